"""The bot's HTTP server, over HTTP against the running bot: /healthz tells the truth about Discord and the
database, /metrics counts real jobs, garbage gets a 4xx, and slow or idle clients cannot starve it."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.app import App
from bot.store.models import JobState
from bot.web import ServerLimits
from tests.e2e.harness import WAIT, BotHarness


def base(harness: BotHarness) -> str:
    assert harness.app is not None and harness.app.web is not None
    return f"http://127.0.0.1:{harness.app.web.port}"


async def get(harness: BotHarness, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.get(base(harness) + path) as resp:
        body = await resp.json() if resp.content_type == "application/json" else await resp.text()
        return resp.status, body


async def healthz_until(harness: BotHarness, want: Callable[[int, dict], bool], what: str) -> dict:
    deadline = time.monotonic() + WAIT * 2
    while True:
        status, body = await get(harness, "/healthz")
        if want(status, body):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"/healthz never showed {what}: last {status} {body}")
        await asyncio.sleep(0.05)  # polling a condition, with a deadline


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out: dict[tuple[str, tuple], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(snapshot: dict, name: str, **labels: str) -> float:
    return snapshot.get((name, tuple(sorted(labels.items()))), 0.0)


async def metrics(harness: BotHarness) -> dict:
    status, text = await get(harness, "/metrics")
    assert status == 200
    return samples(text)


# ---- /healthz -----------------------------------------------------------------------------------------


async def test_healthz_is_served_without_callbacks_and_names_each_part(bot: BotHarness) -> None:
    status, body = await get(bot, "/healthz")
    assert status == 200 and body["ok"] is True
    assert body["discord"]["ok"] and body["database"]["ok"]
    assert set(body["providers"]) == {"acedatacloud"}
    # No callback route without CALLBACK_PUBLIC_URL.
    async with aiohttp.ClientSession() as http, http.post(base(bot) + "/callbacks/luma/1/x", json={}) as resp:
        assert resp.status == 404


async def test_healthz_is_503_while_the_gateway_is_down_and_200_once_it_resumes(bot: BotHarness) -> None:
    gateway = bot.fake.gateway
    gateway.accepting.clear()  # new connections hang before HELLO: neither IDENTIFY nor RESUME can succeed
    await gateway.disconnect(4000, "outage")
    body = await healthz_until(bot, lambda s, b: s == 503, "503 during the outage")
    assert body["discord"]["ok"] is False and body["database"]["ok"] is True
    assert bot.bot.is_ready()  # what /healthz used to trust
    gateway.accepting.set()
    await healthz_until(bot, lambda s, b: s == 200, "200 after the session resumed")


async def test_healthz_is_503_while_the_database_cannot_be_written_and_200_after(bot: BotHarness) -> None:
    path = str(bot.tmp_path / "luma-bot.sqlite3")
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")  # another writer holds the file: the bot's writes would fail
        body = await healthz_until(bot, lambda s, b: s == 503, "503 while the database is locked")
        assert body["database"]["ok"] is False and body["discord"]["ok"] is True
    finally:
        other.execute("ROLLBACK")
        other.close()
    await healthz_until(bot, lambda s, b: s == 200, "200 once the database is writable again")


# ---- /metrics after real jobs -------------------------------------------------------------------------


@pytest.mark.parametrize("settings_overrides", [{"quota_default_limit": 2}])
async def test_metrics_count_real_jobs_requests_refusals_and_discord_errors(bot: BotHarness) -> None:
    before = await metrics(bot)
    runs = [await bot.generate(bot.scene.alice, f"a lighthouse, take {i}") for i in range(2)]
    for run in runs:
        await bot.result(run)
        await bot.delivered(run.job_id)
    refused = await bot.slash(bot.scene.alice, "generate", {"prompt": "one too many"})
    await bot.answer(refused)
    # A status edit Discord refuses (403): counted after discord.py gives up.
    third = await bot.generate(bot.scene.bob, "a lighthouse at dusk")
    job = await bot.job(third.job_id)
    refused_edit = bot.fake.inject_rest_error(
        "PATCH", rf"/channels/\d+/messages/{job.status_message_id}", 403, times=1
    )
    await bot.result(third)
    # Whichever status edit Discord refused, the job is still recorded as delivered.
    deadline = time.monotonic() + WAIT
    while refused_edit.hits < 1 or (await bot.job(third.job_id)).delivered_at is None:
        assert time.monotonic() < deadline, "the refused edit or the delivery never happened"
        await asyncio.sleep(0.02)
    after = await metrics(bot)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert value(after, "luma_bot_jobs", state=JobState.COMPLETED.value) == 3
    assert value(after, "luma_bot_queue_length") == 0 and value(after, "luma_bot_queue_oldest_wait_seconds") == 0
    assert delta("luma_bot_requests_total", outcome="accepted", reason="") == 3
    assert delta("luma_bot_requests_total", outcome="refused", reason="QuotaExceeded") == 1
    assert delta("luma_bot_quota_refusals_total", kind="quota") == 1
    ok = delta("luma_bot_provider_requests_total", provider="acedatacloud", outcome="ok")
    assert ok == bot.provider.count("create") + bot.provider.count("poll")
    assert delta("luma_bot_provider_request_seconds_count", provider="acedatacloud", outcome="ok") == ok
    assert delta("luma_bot_delivery_seconds_count") == 3
    assert delta("luma_bot_discord_rest_errors_total", method="PATCH", status="403") == 1


# ---- garbage never gets a 500 (issue 13.7) ------------------------------------------------------------


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"callback_public_url": "http://127.0.0.1:9/"}


@pytest.mark.parametrize(
    "job_id",
    [str(2**63), str(2**64), "9" * 4300, "9" * 4301, "-1", "0", "١٢", "1e3", "%00"],
)
async def test_a_callback_for_an_impossible_job_id_is_a_404(bot: BotHarness, job_id: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base(bot)}/callbacks/luma/{job_id}/secret", json={"task_id": "t"}) as resp:
            assert resp.status in (400, 404, 414)
        status, _ = await get(bot, "/healthz")
        assert status == 200


async def test_a_deeply_nested_callback_body_is_a_400_and_changes_nothing(bot: BotHarness) -> None:
    bot.provider.manual = True
    run = await bot.generate(bot.scene.alice, "a kite in a storm")
    deadline = time.monotonic() + WAIT
    while (job := await bot.job(run.job_id)).state != JobState.RUNNING:
        assert time.monotonic() < deadline, "the job never reached the provider"
        await asyncio.sleep(0.02)
    url = f"{base(bot)}/callbacks/luma/{job.id}/{job.callback_secret}"
    async with aiohttp.ClientSession() as http:
        for body in (b"[" * 60_000, b'{"a":' * 10_000 + b"1" + b"}" * 10_000):
            async with http.post(url, data=body, headers={"Content-Type": "application/json"}) as resp:
                assert resp.status == 400, await resp.text()
    after = await bot.job(run.job_id)
    assert (after.state, after.next_poll_at) == (JobState.RUNNING, job.next_poll_at)  # not even a poll hint


# ---- slow or idle clients (issue 13.10) ---------------------------------------------------------------

LIMITS = ServerLimits(read_timeout=0.5, max_connections=20)


async def _start_with_limits(harness: BotHarness) -> None:
    original = harness.make_app

    def make_app(**overrides: Any) -> App:
        app = original(**overrides)
        app.web_limits = LIMITS
        return app

    harness.make_app = make_app  # type: ignore[method-assign]
    await harness.start()


async def test_idle_and_slow_connections_are_capped_and_closed_and_the_bot_keeps_working(
    harness: BotHarness,
) -> None:
    await _start_with_limits(harness)
    port = harness.app.web.port  # type: ignore[union-attr]
    opened = [await asyncio.open_connection("127.0.0.1", port) for _ in range(LIMITS.max_connections + 15)]
    # One slow-loris client trickling a request head that never ends.
    slow_reader, slow_writer = opened[0]

    async def trickle() -> None:
        slow_writer.write(b"GET /healthz HTTP/1.1\r\n")
        while not slow_writer.is_closing():
            slow_writer.write(b"X-a: b\r\n")
            await asyncio.sleep(0.1)

    trickling = asyncio.create_task(trickle())
    try:
        # The ones over the cap are told 503 at once; the others (the trickler too) are closed at the timeout.
        answers = await asyncio.wait_for(
            asyncio.gather(*(reader.read() for reader, _ in opened), return_exceptions=True), WAIT
        )
        busy = [a for a in answers if isinstance(a, bytes) and a.startswith(b"HTTP/1.1 503")]
        assert len(busy) == 15
        assert harness.app.web.timed_out_connections >= LIMITS.max_connections  # type: ignore[union-attr]
        # Meanwhile and afterwards: members are answered and /healthz works.
        run = await harness.generate(harness.scene.alice, "a lantern in fog")
        await harness.result(run)
        status, _ = await get(harness, "/healthz")
        assert status == 200
        assert harness.app.web.open_connections <= 1  # type: ignore[union-attr]
    finally:
        trickling.cancel()
        for _, writer in opened:
            writer.close()
