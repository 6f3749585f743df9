"""Downloading a provider's result file: streamed to a temporary file, with a timeout, a size cap, a bounded
number at once, over http(s) only, following at most a few redirects, and never to an address on this machine
or a private network (every hop and every resolved address is checked) unless the provider itself lives on one.
Never imports discord."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from bot.luma.validation import address_refusal, host_refusal

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
REDIRECTS = {301, 302, 303, 307, 308}


class MediaError(Exception):
    """The file could not be fetched or used; str(exc) is for the log (it never holds the URL's query)."""


class DownloadRefused(MediaError):
    """The URL or an address it leads to is not one the bot may fetch from."""


class TooLarge(MediaError):
    """The file is over the download cap."""


@dataclass(frozen=True, slots=True)
class FetchLimits:
    max_bytes: int = 512 * 1024 * 1024
    timeout: float = 120.0
    max_redirects: int = 3
    concurrency: int = 4


def is_local_url(url: str | None) -> bool:
    """True when `url`'s host is this machine or a private network: a provider there (as in tests) may serve
    its files from there too."""
    if not url:
        return False
    host = urlsplit(url).hostname
    if not host:
        return False
    return host_refusal(host) is not None


class _PublicResolver(AbstractResolver):
    """Resolves as usual, then keeps only public addresses, so the connection goes to an address that was
    checked (a name that resolves to 127.0.0.1 or 10.x is refused, whatever it looks like)."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        public = [r for r in results if address_refusal(r["host"]) is None]
        if not public:
            raise OSError(f"{host} resolves only to addresses that are not public")
        return public

    async def close(self) -> None:
        await self._inner.close()


def _host_of(url: str) -> str:
    return urlsplit(url).hostname or "?"


# A download or re-encode file this old belongs to no delivery in progress (downloads time out long before):
# it is what a process killed mid-delivery left behind.
STALE_AFTER = 3600.0


def remove_stale_files(temp_dir: str | None, *, now: float | None = None) -> int:
    """Remove this bot's leftover media files (`luma-*.mp4` / `.jpg`) older than STALE_AFTER from the temp
    directory; other processes' fresh files are left alone. Returns how many were removed."""
    folder = Path(temp_dir or tempfile.gettempdir())
    now = time.time() if now is None else now
    removed = 0
    for path in folder.glob("luma-*"):
        try:
            if (
                path.is_file()
                and path.suffix in (".mp4", ".jpg")
                and now - path.stat().st_mtime > STALE_AFTER
            ):
                path.unlink()
                removed += 1
        except OSError:
            continue  # gone meanwhile, or not ours to remove
    if removed:
        log.info("removed %d media files left behind by an earlier run in %s", removed, folder)
    return removed


class MediaFetcher:
    """One per process: its own HTTP sessions (the provider client's carries the token, which must never go to
    a file host) and a semaphore bounding the downloads in flight."""

    def __init__(self, limits: FetchLimits | None = None, *, temp_dir: str | None = None) -> None:
        self.limits = limits or FetchLimits()
        self.temp_dir = temp_dir
        self._gate = asyncio.Semaphore(self.limits.concurrency)
        self._sessions: dict[bool, aiohttp.ClientSession] = {}
        remove_stale_files(temp_dir)

    def _session(self, allow_private: bool) -> aiohttp.ClientSession:
        session = self._sessions.get(allow_private)
        if session is None or session.closed:
            resolver: Any = DefaultResolver() if allow_private else _PublicResolver()
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(resolver=resolver, limit=self.limits.concurrency * 2),
                # The bytes posted must be the provider's bytes, and no proxy from the environment sees them.
                auto_decompress=False,
                trust_env=False,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=15, sock_read=30),
            )
            self._sessions[allow_private] = session
        return session

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()

    def check_url(self, url: str, *, allow_private: bool) -> URL:
        try:
            parsed = URL(url)
        except (ValueError, TypeError):
            raise DownloadRefused("not a valid URL") from None
        if parsed.scheme not in ("http", "https"):
            raise DownloadRefused(f"scheme {parsed.scheme!r} is not http(s)")
        if parsed.user is not None or parsed.password is not None:
            raise DownloadRefused("the URL carries credentials")
        if not parsed.host:
            raise DownloadRefused("the URL has no host")
        if not allow_private:
            refusal = host_refusal(parsed.host)
            if refusal:
                raise DownloadRefused(f"{parsed.host} is {refusal}")
        return parsed

    async def download(self, url: str, *, allow_private: bool = False, suffix: str = ".mp4") -> Path:
        """The file at `url` in a new temporary file (the caller deletes it). Raises MediaError."""
        async with self._gate:
            fd, name = tempfile.mkstemp(prefix="luma-", suffix=suffix, dir=self.temp_dir)
            path = Path(name)
            try:
                with os.fdopen(fd, "wb") as out:
                    async with asyncio.timeout(self.limits.timeout):
                        await self._fetch_into(out, url, allow_private)
            except BaseException as exc:
                remove(path)
                host = _host_of(url)
                if isinstance(exc, TimeoutError):
                    raise MediaError(f"download from {host} took over {self.limits.timeout:.0f}s") from None
                if isinstance(exc, aiohttp.ClientError):
                    raise MediaError(f"download from {host} failed: {type(exc).__name__}") from None
                if isinstance(exc, OSError) and not isinstance(exc, MediaError):
                    raise MediaError(f"download from {host} failed: {exc.strerror or exc}") from None
                raise
            return path

    async def _fetch_into(self, out: Any, url: str, allow_private: bool) -> None:
        session = self._session(allow_private)
        current = self.check_url(url, allow_private=allow_private)
        for _ in range(self.limits.max_redirects + 1):
            async with session.get(current, allow_redirects=False) as response:
                if response.status in REDIRECTS:
                    location = response.headers.get("Location")
                    if not location:
                        raise MediaError(f"{current.host} answered {response.status} without a Location")
                    current = self.check_url(str(current.join(URL(location))), allow_private=allow_private)
                    continue
                if response.status != 200:
                    raise MediaError(f"{current.host} answered HTTP {response.status}")
                cap = self.limits.max_bytes
                if response.content_length is not None and response.content_length > cap:
                    raise TooLarge(f"{response.content_length} bytes is over the {cap}-byte cap")
                written = 0
                async for chunk in response.content.iter_chunked(CHUNK):
                    written += len(chunk)
                    if written > cap:
                        raise TooLarge(f"over the {cap}-byte cap")
                    out.write(chunk)
                if written == 0:
                    raise MediaError(f"{current.host} sent an empty file")
                return
        raise MediaError(f"more than {self.limits.max_redirects} redirects")


def remove(*paths: Path | None) -> None:
    for path in paths:
        if path is not None:
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
