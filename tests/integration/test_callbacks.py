"""Provider callbacks over HTTP: a genuine one delivers at once, anything else changes nothing and gets 4xx."""

from __future__ import annotations

import socket
from datetime import timedelta

import aiohttp
import pytest

from bot.jobs import EngineConfig, JobEngine, JobEvent, JobRequest, PollPolicy
from bot.luma.http import RetryPolicy
from bot.luma.providers import make_client
from bot.store.models import Job, JobState, QuotaPeriod
from bot.store.quotas import QuotaBook, QuotaDefaults
from bot.web.callbacks import MAX_CALLBACK_BYTES
from bot.web.server import start_callback_server
from tests.fakes.luma_provider import FakeLumaProvider
from tests.integration.test_engine import RecordingPort

TOKEN = "callback-test-token"
# Polling so slow that only a callback can deliver within a test's patience.
SLOW_POLL = PollPolicy(first_poll=300, min_interval=300, max_interval=300, coalesce=0.05)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def rig(sqlite_db, request):
    provider = getattr(request, "param", "acedatacloud")
    fake = FakeLumaProvider(token=TOKEN, manual=True)
    await fake.start()
    session = aiohttp.ClientSession()
    client = make_client(provider, session, token=TOKEN, base_url=fake.url_for(provider),
                         retry=RetryPolicy(attempts=2, base=0.01, cap=0.02, jitter=0))
    port_no = free_port()
    healthy = {"ok": True}
    port = RecordingPort()
    engine = JobEngine(client, QuotaBook(QuotaDefaults(5, QuotaPeriod.DAY)), EngineConfig(
        poll=SLOW_POLL, min_poll_interval=0.0, callback_base_url=f"http://127.0.0.1:{port_no}",
        deadline=timedelta(minutes=5)), port)
    await engine.start()
    runner = await start_callback_server(engine, "127.0.0.1", port_no, lambda: healthy["ok"])

    class Rig:
        pass

    r = Rig()
    r.fake, r.engine, r.port, r.base, r.http, r.healthy = fake, engine, port, f"http://127.0.0.1:{port_no}", session, healthy
    yield r
    await runner.cleanup()
    await engine.stop(grace=0.2)
    await session.close()
    await fake.stop()


async def submitted(r) -> Job:
    job = await r.engine.accept(JobRequest(guild_id=1, channel_id=2, user_id=3, prompt="a comet"))
    await r.port.wait_for(lambda: any(e[0] == job.id and e[1] == JobEvent.STARTED for e in r.port.events))
    return await Job.get(id=job.id)


async def delivered(r, job: Job) -> None:
    await r.port.wait_for(lambda: any(e[0] == job.id and e[1] == JobEvent.DELIVERED for e in r.port.events))


async def test_a_genuine_callback_delivers_at_once_and_costs_one_batched_poll(rig):
    job = await submitted(rig)
    sent = rig.fake.request_log[0].json
    assert sent["callback_url"] == f"{rig.base}/callbacks/luma/{job.id}/{job.callback_secret}"
    polls_before = rig.fake.count("poll")
    rig.fake.finish(job.task_id)  # the fake POSTs the result to callback_url
    await delivered(rig, job)
    assert (await Job.get(id=job.id)).state == JobState.COMPLETED
    assert rig.fake.count("poll") - polls_before == 1  # confirmed by exactly one poll


@pytest.mark.parametrize("rig", ["dream-machine"], indirect=True)
async def test_dream_machine_callbacks_post_the_generation_and_are_confirmed_by_a_poll(rig):
    job = await submitted(rig)
    sent = rig.fake.request_log[0].json
    assert sent["callback_url"] == f"{rig.base}/callbacks/luma/{job.id}/{job.callback_secret}"
    rig.fake.mark_running(job.task_id)  # Luma calls back on every change: "dreaming" first
    rig.fake.finish(job.task_id)
    await delivered(rig, job)
    done = await Job.get(id=job.id)
    assert (done.state, done.video_id) == (JobState.COMPLETED, job.task_id)
    await rig.fake.drain_callbacks()
    assert [c.body["state"] for c in rig.fake.callbacks] == ["dreaming", "completed"]
    assert 1 <= rig.fake.count("poll") <= len(rig.fake.callbacks)  # each one only a hint, confirmed by a GET


async def test_forged_secret_or_unknown_job_changes_nothing(rig):
    job = await submitted(rig)
    for path in (f"/callbacks/luma/{job.id}/wrong-secret", f"/callbacks/luma/{job.id + 99}/{job.callback_secret}",
                 f"/callbacks/luma/abc/{job.callback_secret}"):
        async with rig.http.post(rig.base + path, json={"task_id": job.task_id, "success": True}) as resp:
            assert resp.status == 404
    assert rig.fake.count("poll") == 0
    assert (await Job.get(id=job.id)).state == JobState.RUNNING


async def test_a_body_naming_another_task_is_refused(rig):
    job = await submitted(rig)
    url = f"{rig.base}/callbacks/luma/{job.id}/{job.callback_secret}"
    async with rig.http.post(url, json={"task_id": "someone-elses-task", "success": True}) as resp:
        assert resp.status == 409
    assert rig.fake.count("poll") == 0


async def test_a_replayed_callback_after_delivery_changes_nothing(rig):
    job = await submitted(rig)
    rig.fake.finish(job.task_id)
    await delivered(rig, job)
    polls = rig.fake.count("poll")
    url = f"{rig.base}/callbacks/luma/{job.id}/{job.callback_secret}"
    body = rig.fake.callbacks[0].body if hasattr(rig.fake.callbacks[0], "body") else {"task_id": job.task_id}
    async with rig.http.post(url, json=body) as resp:
        assert resp.status == 409
    assert rig.fake.count("poll") == polls
    assert len([j for j in rig.port.delivered if j.id == job.id]) == 1


@pytest.mark.parametrize(("data", "status"), [
    (b"x" * (MAX_CALLBACK_BYTES + 1), 413),
    (b"<html>not json</html>", 400),
    (b"[1, 2, 3]", 400),
])
async def test_oversized_and_malformed_bodies_get_4xx(rig, data, status):
    job = await submitted(rig)
    url = f"{rig.base}/callbacks/luma/{job.id}/{job.callback_secret}"
    async with rig.http.post(url, data=data, headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == status
    assert rig.fake.count("poll") == 0
    assert (await Job.get(id=job.id)).state == JobState.RUNNING


async def test_healthz_reports_the_health_check(rig):
    async with rig.http.get(rig.base + "/healthz") as resp:
        assert resp.status == 200
    rig.healthy["ok"] = False
    async with rig.http.get(rig.base + "/healthz") as resp:
        assert resp.status == 503
