"""SIGKILL the bot process at each point of a job's life, start it again: every job is delivered exactly
once and every quota unit is settled exactly once."""

from __future__ import annotations

import asyncio

from bot.luma.prices import CREDIT
from bot.store.models import FailureKind, JobState, LedgerState, QuotaEntry
from tests.e2e.harness import WAIT


async def ledger(job_id: int) -> list[QuotaEntry]:
    return await QuotaEntry.filter(job_id=job_id)


async def settled_once(proc, job_id: int, expected: LedgerState) -> None:
    entries = await proc.db(ledger(job_id))
    assert [e.state for e in entries] == [expected]


async def test_killed_while_one_job_runs_and_another_waits(proc):
    await proc.start(luma_max_concurrent=1)
    first = await proc.generate(proc.scene.alice, "first light")
    second = await proc.generate(proc.scene.alice, "second wind")
    await proc.provider.wait_for_requests(1, "create")
    assert (await proc.job(second.job_id)).state == JobState.QUEUED

    await proc.kill()
    await proc.start(luma_max_concurrent=1)
    proc.provider.finish(next(iter(proc.provider.tasks)))
    await proc.provider.wait_for_requests(2, "create")
    proc.provider.finish(list(proc.provider.tasks)[1])
    for run in (first, second):
        await proc.result(run)
        await proc.delivered(run.job_id)
        assert len(proc.result_posts(run.job_id)) == 1
        await settled_once(proc, run.job_id, LedgerState.CHARGED)
    assert [b["prompt"] for b in proc.creates()] == ["first light", "second wind"]
    status = await proc.quota(proc.scene.alice)
    assert (status.used, status.held) == (2 * CREDIT, 0)


async def test_killed_while_the_create_request_is_in_flight(proc):
    await proc.start()
    # The provider takes the request (a task is created) but answers only after the bot is dead.
    proc.provider.inject(None, path="create", delay=30)
    run = await proc.generate(proc.scene.alice, "cut off mid-air")
    await proc.provider.wait_until(lambda: len(proc.provider.tasks) == 1)
    await proc.kill()
    proc.provider.clear_faults()

    await proc.start()
    failure = await proc.result(run)
    job = await proc.delivered(run.job_id)
    assert (job.state, job.failure_kind) == (JobState.FAILED, FailureKind.INTERRUPTED)
    assert any("retry" in b.get("custom_id", "") for b in failure.buttons())
    assert proc.provider.count("create") == 1  # never sent twice
    await settled_once(proc, run.job_id, LedgerState.REFUNDED)
    assert len(proc.result_posts(run.job_id)) == 1


async def test_killed_after_the_provider_finished_before_the_post(proc):
    await proc.start()
    run = await proc.generate(proc.scene.alice, "finished in the dark")
    await proc.provider.wait_for_requests(1, "create")
    # Discord is failing every post (thread, channel fallback, DM): the finished job cannot be delivered.
    blocked = proc.fake.inject_rest_error("POST", r"/channels/\d+/messages", 503, times=None)
    proc.provider.finish(next(iter(proc.provider.tasks)))
    await proc.fake.wait_for(lambda: blocked.hits >= 1, WAIT, "a delivery attempt")
    assert (await proc.job(run.job_id)).state == JobState.COMPLETED
    await proc.kill()

    proc.fake.clear_injections()
    await proc.start()
    await proc.result(run)
    await proc.delivered(run.job_id)
    assert len(proc.result_posts(run.job_id)) == 1
    await settled_once(proc, run.job_id, LedgerState.CHARGED)


async def test_killed_after_the_post_before_recording_it(proc):
    await proc.start()
    run = await proc.generate(proc.scene.alice, "posted but not noted")
    await proc.provider.wait_for_requests(1, "create")
    killed = asyncio.Event()

    async def kill_before_answer() -> None:
        await proc.kill()  # Discord has the message; the bot never hears back
        killed.set()

    proc.fake.on_handled("POST", rf"/channels/{run.thread_id}/messages", kill_before_answer)
    proc.provider.finish(next(iter(proc.provider.tasks)))
    await asyncio.wait_for(killed.wait(), WAIT)
    assert len(proc.result_posts(run.job_id)) == 1
    assert (await proc.job(run.job_id)).delivered_at is None

    await proc.start()
    await proc.delivered(run.job_id)
    assert len(proc.result_posts(run.job_id)) == 1  # found, not posted again
    await settled_once(proc, run.job_id, LedgerState.CHARGED)


async def test_sigterm_stops_cleanly_and_leaves_jobs_resumable(proc):
    await proc.start()
    run = await proc.generate(proc.scene.alice, "a gentle stop")
    await proc.provider.wait_for_requests(1, "create")
    code = await proc.stop()
    assert code == 0, proc.process.log()[-3000:]
    assert "Traceback" not in proc.process.log()
    assert (await proc.job(run.job_id)).state == JobState.RUNNING

    await proc.start()
    proc.provider.finish(next(iter(proc.provider.tasks)))
    await proc.result(run)
    await proc.delivered(run.job_id)
    await settled_once(proc, run.job_id, LedgerState.CHARGED)


async def test_killed_while_downloading_the_video(proc):
    await proc.start()
    run = await proc.generate(proc.scene.alice, "cut off while fetching")
    await proc.provider.wait_for_requests(1, "create")
    proc.provider.inject(None, path="media", delay=60)  # the file host answers only after the bot is dead
    proc.provider.finish(next(iter(proc.provider.tasks)))
    await proc.provider.wait_for_requests(1, "media", within=WAIT)
    await proc.kill()
    assert proc.result_posts(run.job_id) == []

    proc.provider.clear_faults()
    await proc.start()
    result = await proc.result(run)
    await proc.delivered(run.job_id)
    assert len(proc.result_posts(run.job_id)) == 1
    assert [a["content_type"] for a in result.attachments] == ["video/mp4"]
    await settled_once(proc, run.job_id, LedgerState.CHARGED)


async def test_killed_while_uploading_the_video(proc):
    await proc.start()
    run = await proc.generate(proc.scene.alice, "cut off while uploading")
    await proc.provider.wait_for_requests(1, "create")
    # Discord has the upload but has not made the message when the bot dies.
    held = proc.fake.inject_rest_error("POST", rf"/channels/{run.thread_id}/messages", 503, delay=60)
    proc.provider.finish(next(iter(proc.provider.tasks)))
    await proc.fake.wait_for(lambda: held.hits >= 1, WAIT, "the upload to arrive")
    uploads = proc.fake.requests_to("POST", rf"/channels/{run.thread_id}/messages")
    assert uploads and uploads[-1].files  # the video was on its way
    await proc.kill()

    proc.fake.clear_injections()
    await proc.start()
    result = await proc.result(run)
    await proc.delivered(run.job_id)
    assert len(proc.result_posts(run.job_id)) == 1
    assert [a["content_type"] for a in result.attachments] == ["video/mp4"]
    await settled_once(proc, run.job_id, LedgerState.CHARGED)
