"""Downloading a result file against a real local HTTP server: streamed to a temporary file, capped in size and
time, http(s) only, a few redirects, and never to this machine or a private network unless allowed."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from bot.media.fetch import (
    DownloadRefused,
    FetchLimits,
    MediaError,
    MediaFetcher,
    TooLarge,
    _PublicResolver,
    is_local_url,
)

BODY = bytes(range(256)) * 40  # 10 KiB


@pytest.fixture
async def server() -> AsyncIterator[str]:
    never = asyncio.Event()

    async def file(request: web.Request) -> web.Response:
        return web.Response(body=BODY, content_type="video/mp4")

    async def hops(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        raise web.HTTPFound("/file.mp4" if n == 0 else f"/hops/{n - 1}")

    async def elsewhere(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])

    async def stall(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"x" * 100)
        await never.wait()
        return response

    async def gzipped(request: web.Request) -> web.Response:
        return web.Response(body=b"\x1f\x8b not really gzip", headers={"Content-Encoding": "gzip"})

    app = web.Application()
    app.router.add_get("/file.mp4", file)
    app.router.add_get("/hops/{n}", hops)
    app.router.add_get("/elsewhere", elsewhere)
    app.router.add_get("/stall", stall)
    app.router.add_get("/gzip", gzipped)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    never.set()
    await runner.cleanup()


@pytest.fixture
async def fetcher(tmp_path: Path) -> AsyncIterator[MediaFetcher]:
    fetcher = MediaFetcher(
        FetchLimits(max_bytes=64 * 1024, timeout=2.0, max_redirects=3), temp_dir=str(tmp_path)
    )
    yield fetcher
    await fetcher.close()


async def test_the_file_is_streamed_to_a_temporary_file_with_its_exact_bytes(
    server, fetcher, tmp_path
) -> None:
    path = await fetcher.download(f"{server}/file.mp4", allow_private=True)
    assert path.parent == tmp_path and path.read_bytes() == BODY
    gz = await fetcher.download(f"{server}/gzip", allow_private=True)
    assert gz.read_bytes() == b"\x1f\x8b not really gzip"  # never decoded on the way


async def test_loopback_and_private_addresses_are_refused_unless_allowed(server, fetcher, tmp_path) -> None:
    for url in (
        f"{server}/file.mp4",
        "http://10.0.0.8/v.mp4",
        "http://[::1]/v.mp4",
        "http://169.254.169.254/",
    ):
        with pytest.raises(DownloadRefused):
            await fetcher.download(url)
    with pytest.raises(DownloadRefused):
        await fetcher.download("http://localhost/v.mp4")
    assert list(tmp_path.iterdir()) == []


async def test_a_name_that_resolves_to_this_machine_is_refused_at_connection() -> None:
    resolver = _PublicResolver()
    try:
        with pytest.raises(OSError, match="not public"):
            await resolver.resolve("localhost", 80, socket.AF_INET)
    finally:
        await resolver.close()


async def test_only_http_and_https(fetcher) -> None:
    for url in ("file:///etc/passwd", "ftp://example.com/v.mp4", "http://user:pw@example.com/v.mp4"):
        with pytest.raises(DownloadRefused):
            await fetcher.download(url, allow_private=True)


async def test_at_most_three_redirects_each_one_checked(server, fetcher) -> None:
    assert (await fetcher.download(f"{server}/hops/2", allow_private=True)).read_bytes() == BODY
    with pytest.raises(MediaError, match="more than 3 redirects"):
        await fetcher.download(f"{server}/hops/3", allow_private=True)
    with pytest.raises(DownloadRefused):
        await fetcher.download(f"{server}/elsewhere?to=file:///etc/passwd", allow_private=True)


async def test_a_file_over_the_cap_is_abandoned_and_removed(server, tmp_path) -> None:
    small = MediaFetcher(FetchLimits(max_bytes=1000), temp_dir=str(tmp_path))
    try:
        with pytest.raises(TooLarge):
            await small.download(f"{server}/file.mp4", allow_private=True)
    finally:
        await small.close()
    assert list(tmp_path.iterdir()) == []


async def test_a_stalled_download_times_out_and_is_removed(server, tmp_path) -> None:
    quick = MediaFetcher(FetchLimits(timeout=0.3), temp_dir=str(tmp_path))
    try:
        with pytest.raises(MediaError, match="took over"):
            await quick.download(f"{server}/stall", allow_private=True)
    finally:
        await quick.close()
    assert list(tmp_path.iterdir()) == []


def test_a_provider_on_a_local_address_may_serve_files_from_one() -> None:
    assert is_local_url("http://127.0.0.1:8080/v1")
    assert not is_local_url("https://agents.lumalabs.ai/v1")
