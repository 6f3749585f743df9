"""The engine with several providers and keys, against the fake provider over sockets: slots held by the
database across engines, provider health that neither flaps nor swallows jobs, waits that never fail a job
for nothing, and deadlines counted from submission."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest

from bot.jobs import EngineConfig, JobEngine, JobEvent, JobRequest
from bot.jobs.policy import Backoff
from bot.jobs.providers import ProviderKey, ProviderPool, key_id_for, mask
from bot.luma.http import RetryPolicy
from bot.luma.prices import CREDIT
from bot.luma.providers import make_client
from bot.store.db import close_database, open_database
from bot.store.models import FailureKind, Job, JobState, QuotaPeriod
from bot.store.quotas import QuotaBook, QuotaDefaults
from tests.fakes.luma_provider import FakeLumaProvider
from tests.integration.rig import FAST_POLL, GUILD, TOKEN, RecordingPort

SECOND = "engine-test-second-key"
FAST_RETRY = RetryPolicy(attempts=2, base=0.01, cap=0.02, jitter=0.0)


def request(prompt: str, user: int = 30) -> JobRequest:
    return JobRequest(guild_id=GUILD, channel_id=20, user_id=user, prompt=prompt)


def incident_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("provider incident")]


async def test_an_incident_does_not_end_because_polls_succeed(rig, caplog):
    """Creates refused for want of funds while running tasks are polled fine: one incident, one log line,
    and waiting members are not told "queued" again until a create works."""
    caplog.set_level(logging.INFO)
    r = await rig(fake_kwargs={"manual": True}, poll=FAST_POLL)
    running = await r.engine.accept(r.request("already running"))
    await r.fake.wait_for_requests(1, "create")
    r.fake.set_balance_exhausted(True)
    waiting = await r.engine.accept(r.request("waits for funds"))
    polls_before = r.fake.count("poll")
    await r.fake.wait_until(lambda: r.fake.count("poll") >= polls_before + 10 and r.fake.count("create") >= 3)
    assert [line for line in incident_lines(caplog) if "is over" in line] == []
    assert len([line for line in incident_lines(caplog) if "(balance)" in line]) == 1
    assert (await Job.get(id=waiting.id)).state == JobState.QUEUED
    assert (await Job.get(id=running.id)).state == JobState.RUNNING
    # Funds are back: the next create ends the incident, once.
    r.fake.set_balance_exhausted(False)
    await r.fake.wait_until(lambda: r.fake.unfinished == 2)
    await r.fake.wait_until(lambda: any("is over" in line for line in incident_lines(caplog)))
    assert len([line for line in incident_lines(caplog) if "is over" in line]) == 1


async def test_a_long_retry_after_on_create_keeps_the_job_waiting_not_failed(rig):
    """A 429 whose Retry-After outlasts the submit budget used to fail the job as interrupted."""
    r = await rig(submit_lease=timedelta(seconds=1))
    r.fake.inject(429, path="create", retry_after=30)
    job = await r.engine.accept(r.request("patience"))
    # The key rests for the hint; the job keeps its place, is told it waits, and is neither resent nor failed.
    await r.port.wait_for(lambda: any(e[0] == job.id and e[1] == JobEvent.HELD_UP for e in r.port.events))
    fresh = await Job.get(id=job.id)
    assert fresh.state == JobState.QUEUED and fresh.failure_kind is None
    assert r.fake.count("create") == 1
    report = await r.engine.provider_report()
    assert report[0]["keys"][0]["available"] is False


async def test_a_provider_that_hangs_gets_one_create_until_a_probe_succeeds(rig):
    """A provider that accepts connections and never answers used to fail every job asked meanwhile."""
    r = await rig(submit_lease=timedelta(seconds=0.5), incident_backoff=Backoff(base=0.3, cap=0.3, jitter=0.0))
    r.fake.inject(None, path="create", delay=30, times=1)
    jobs = [await r.engine.accept(r.request(f"hang {i}")) for i in range(3)]
    first = await r.delivered(jobs[0])
    assert first.failure_kind == FailureKind.UNCONFIRMED
    # The others were held while the provider was in doubt, then the probe (the next job) went through.
    done = [await r.delivered(job) for job in jobs[1:]]
    assert [j.state for j in done] == [JobState.COMPLETED, JobState.COMPLETED]
    assert r.fake.count("create") == 3  # one each: nothing resent


async def test_a_jobs_deadline_runs_from_its_submission_and_its_wait_has_its_own_allowance(rig):
    r = await rig(
        fake_kwargs={"manual": True},
        deadline=timedelta(minutes=2),
        queue_timeout=timedelta(hours=6),
        max_concurrent=1,
    )
    first = await r.engine.accept(r.request("takes the only slot"))
    second = await r.engine.accept(r.request("waits behind it"))
    await r.fake.wait_for_requests(1, "create")
    waiting = await Job.get(id=second.id)
    assert waiting.state == JobState.QUEUED
    assert timedelta(hours=5, minutes=59) < waiting.deadline_at - waiting.created_at <= timedelta(hours=6)
    sent = await Job.get(id=first.id)
    assert sent.state == JobState.RUNNING
    assert sent.deadline_at - sent.submitted_at == timedelta(minutes=2)


async def test_a_queued_job_past_its_wait_allowance_fails_with_that_reason_and_its_unit_back(rig):
    r = await rig(fake_kwargs={"manual": True}, max_concurrent=1, queue_timeout=timedelta(seconds=0.4), limit=2)
    await r.engine.accept(r.request("holds the slot"))
    await r.fake.wait_for_requests(1, "create")
    stuck = await r.engine.accept(r.request("never gets a slot"))
    failed = await r.delivered(stuck)
    assert (failed.state, failed.failure_kind) == (JobState.FAILED, FailureKind.QUEUE_TIMEOUT)
    assert "queue" in failed.failure_reason
    status = await r.quotas.status(GUILD, 30)
    # The running job holds its credit; the one that never went out is back.
    assert (status.used, status.held, status.remaining) == (0, CREDIT, CREDIT)


async def test_a_running_job_whose_provider_is_gone_ends_with_a_reason_and_its_unit_back(rig):
    r = await rig(fake_kwargs={"manual": True})
    job = await r.engine.accept(r.request("orphaned by a settings change"))
    await r.fake.wait_for_requests(1, "create")
    # The admin replaced the provider: this task belongs to one the bot no longer uses.
    await Job.filter(id=job.id).update(provider="umami", key_id="umami:gone")
    await r.engine.handle_callback(job.id, (await Job.get(id=job.id)).callback_secret, None)
    failed = await r.delivered(job)
    assert (failed.state, failed.failure_kind) == (JobState.FAILED, FailureKind.PROVIDER)
    assert "no longer configured" in failed.failure_reason
    assert (await r.quotas.status(GUILD, 30)).held == 0


# -- slots held by the database, across engines ------------------------------------------------------------


@contextlib.asynccontextmanager
async def two_key_engines(database_url: str, count: int) -> AsyncIterator[tuple[FakeLumaProvider, list[JobEngine]]]:
    """`count` engines (as separate processes would be, with their own instance ids) sharing one database and
    one provider account with two keys of 5 videos at once each."""
    await open_database(database_url)
    fake = FakeLumaProvider(token=TOKEN, manual=True)
    fake.add_token(SECOND)
    await fake.start()
    engines: list[JobEngine] = []
    try:
        async with aiohttp.ClientSession() as session:
            for index in range(count):
                keys = [
                    ProviderKey(
                        key_id_for("acedatacloud", token),
                        "acedatacloud",
                        make_client("acedatacloud", session, token=token, base_url=fake.base_url, retry=FAST_RETRY),
                        5,
                        mask(token),
                    )
                    for token in (TOKEN, SECOND)
                ]
                config = EngineConfig(
                    poll=FAST_POLL, min_poll_interval=0.01, instance_id=f"proc-{index}",
                    recheck=timedelta(seconds=0.05), incident_backoff=Backoff(base=0.05, cap=0.1),
                )
                quotas = QuotaBook(QuotaDefaults(limit=100, period=QuotaPeriod.DAY))
                engine = JobEngine(ProviderPool(keys), quotas, config, RecordingPort())
                await engine.start()
                engines.append(engine)
            yield fake, engines
            for engine in engines:
                await engine.stop(grace=0.5)
    finally:
        await fake.stop()
        await close_database()


async def test_two_keys_of_five_slots_run_ten_videos_at_once_never_eleven(database_url):
    async with two_key_engines(database_url, count=4) as (fake, engines):
        jobs = [
            await engines[i % len(engines)].accept(request_for(i)) for i in range(30)
        ]
        await fake.wait_until(lambda: fake.unfinished == 10, within=10)
        # Finish a few at a time: the freed slots fill again, and never past 5 per key.
        for _ in range(3):
            for task_id in [t.id for t in fake.tasks.values() if not t.finished][:4]:
                fake.finish(task_id)
            await fake.wait_until(lambda: fake.unfinished == 10, within=10)
        assert fake.peak_per_token == {TOKEN: 5, SECOND: 5}
        assert fake.max_concurrent_running == 10
        assert len(fake.tasks) == 22  # 12 finished + 10 running; nothing created twice
        created = [j.id for j in jobs]
        assert len(set(created)) == 30


def request_for(i: int) -> JobRequest:
    return request(f"clip {i}", user=1000 + i)
