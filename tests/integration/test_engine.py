"""The job engine against the fake provider over real sockets: from accepted to delivered, and every way
a job can go wrong on the way. The delivery port here is a recorder: the Discord layer is not involved."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.jobs import JobEngine, JobEvent
from bot.luma.prices import CREDIT
from bot.luma.validation import InvalidInput
from bot.store.models import FailureKind, Job, JobAction, JobState, QuotaEntry
from bot.store.quotas import QuotaExceeded
from tests.fakes.luma_provider import FakeLumaProvider
from tests.integration.rig import GUILD, TOKEN, USER, RecordingPort


def creates(fake: FakeLumaProvider) -> list[dict]:
    return [r.json for r in fake.request_log if r.kind == "create"]


async def test_a_job_goes_from_queued_to_delivered_and_is_charged(rig):
    r = await rig()
    job = await r.engine.accept(r.request("a red fox in snow", aspect_ratio="9:16", loop=True, enhancement=False,
                                          start_image_url="https://cdn.example.com/a.png",
                                          end_image_url="https://cdn.example.com/b.webp"))
    assert job.state == JobState.QUEUED
    done = await r.delivered(job)
    assert done.state == JobState.COMPLETED
    assert done.video_url and done.video_url.endswith(".mp4") and done.thumbnail_url
    assert done.video_width and done.video_height
    assert done.result_message_id == 900_000 + job.id
    body = creates(r.fake)[0]
    assert body["async"] is True  # never the blocking mode
    assert (body["prompt"], body["aspect_ratio"], body["loop"], body["enhancement"]) == (
        "a red fox in snow", "9:16", True, False)
    assert body["start_image_url"] == "https://cdn.example.com/a.png"
    assert body["end_image_url"] == "https://cdn.example.com/b.webp"
    status = await r.quotas.status(GUILD, USER)
    assert (status.used, status.held) == (CREDIT, 0)
    assert any(e[1] == JobEvent.STARTED for e in r.port.events if e[0] == job.id)


async def test_extend_by_video_id_links_the_parent_and_sends_the_id(rig):
    r = await rig()
    parent = await r.delivered(await r.engine.accept(r.request("a lighthouse")))
    child = await r.engine.accept(r.request("the waves rise", action=JobAction.EXTEND,
                                            extend_target=parent.video_id))
    done = await r.delivered(child)
    assert done.parent_id == parent.id and done.state == JobState.COMPLETED
    body = creates(r.fake)[-1]
    assert (body["action"], body["video_id"], body["prompt"]) == ("extend", parent.video_id, "the waves rise")
    assert "video_url" not in body


async def test_extend_by_foreign_video_url_sends_the_url(rig):
    r = await rig()
    parent = await r.delivered(await r.engine.accept(r.request("a lighthouse")))
    # A URL the bot did not produce: the provider is asked to extend it by URL.
    r.fake.tasks[parent.task_id].video_url = "https://media.example.org/clip.mp4"
    child = await r.engine.accept(r.request("and then night falls", action=JobAction.EXTEND,
                                            extend_target="https://media.example.org/clip.mp4"))
    await r.delivered(child)
    body = creates(r.fake)[-1]
    assert body["action"] == "extend" and body["video_url"] == "https://media.example.org/clip.mp4"


async def test_extend_of_our_own_job_by_parent_job_id(rig):
    r = await rig()
    parent = await r.delivered(await r.engine.accept(r.request("a lighthouse")))
    child = await r.engine.accept(r.request("more", action=JobAction.EXTEND, parent_job_id=parent.id))
    assert (await r.delivered(child)).parent_id == parent.id


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"prompt": "   \n\t "}, "empty"),
        ({"prompt": "x" * 5001}, "5000"),
        ({"aspect_ratio": "5:4"}, "aspect ratio"),
        ({"start_image_url": "file:///etc/passwd"}, "http"),
        ({"end_image_url": "http://169.254.169.254/latest/meta-data"}, ""),
        ({"start_image_url": "http://127.0.0.1:8080/a.png"}, ""),
        ({"action": JobAction.EXTEND, "extend_target": "not a video!"}, "video"),
        ({"action": JobAction.EXTEND, "extend_target": "abcdef123456"}, "don't know"),
        ({"action": JobAction.EXTEND, "extend_target": "http://10.0.0.5/v.mp4"}, ""),
    ],
)
async def test_bad_input_is_refused_before_any_provider_request_and_charges_nothing(rig, kwargs, words):
    r = await rig()
    prompt = kwargs.pop("prompt", "a valid prompt")
    with pytest.raises(InvalidInput) as err:
        await r.engine.accept(r.request(prompt, **kwargs))
    assert words.lower() in str(err.value).lower()
    assert r.fake.count() == 0
    assert await Job.all().count() == 0 and await QuotaEntry.all().count() == 0
    assert (await r.quotas.status(GUILD, USER)).remaining == 10 * CREDIT


async def test_exhausted_quota_is_refused_with_nothing_sent(rig):
    r = await rig(limit=1)
    await r.engine.accept(r.request("first"))
    with pytest.raises(QuotaExceeded) as err:
        await r.engine.accept(r.request("second"))
    assert err.value.status.limit == CREDIT
    await r.fake.wait_for_requests(1, "create")
    assert len(creates(r.fake)) == 1 and creates(r.fake)[0]["prompt"] == "first"


async def test_moderation_refusal_fails_the_job_and_refunds(rig):
    r = await rig(limit=1)
    job = await r.engine.accept(r.request("something [moderate]"))
    done = await r.delivered(job)
    assert (done.state, done.failure_kind) == (JobState.FAILED, FailureKind.MODERATION)
    status = await r.quotas.status(GUILD, USER)
    assert (status.used, status.held, status.remaining) == (0, 0, CREDIT)


async def test_task_failure_reported_by_polling_refunds(rig):
    r = await rig(limit=1)
    done = await r.delivered(await r.engine.accept(r.request("a storm [fail]")))
    assert (done.state, done.failure_kind) == (JobState.FAILED, FailureKind.FAILED)
    assert done.failure_reason
    assert (await r.quotas.status(GUILD, USER)).remaining == 1 * CREDIT


async def test_invalid_request_from_provider_fails_without_retrying(rig):
    r = await rig()
    r.fake.inject(400, path="create")
    done = await r.delivered(await r.engine.accept(r.request("fine prompt")))
    assert done.failure_kind == FailureKind.INVALID
    assert r.fake.count("create") == 1


async def test_rate_limited_submission_keeps_the_job_and_succeeds_later(rig):
    r = await rig()
    r.fake.inject(429, path="create", times=5, retry_after=0)  # more than the client's own retries
    done = await r.delivered(await r.engine.accept(r.request("patience")))
    assert done.state == JobState.COMPLETED
    assert r.fake.count("create") == 6


async def test_a_create_answered_by_a_gateway_error_is_never_resent_and_costs_nothing(rig):
    r = await rig(limit=2)
    r.fake.inject(502, path="create", raw_text="<html>Bad Gateway</html>")
    unsure = await r.delivered(await r.engine.accept(r.request("maybe made")))
    # The 502 may have followed a created (billed) task: not resent, the member told so, the unit back.
    assert (unsure.state, unsure.failure_kind) == (JobState.FAILED, FailureKind.UNCONFIRMED)
    assert r.fake.count("create") == 1
    assert (await r.quotas.status(GUILD, USER)).remaining == 2 * CREDIT


async def test_poll_server_errors_and_html_pages_are_retried(rig):
    r = await rig()
    r.fake.inject(500, path="poll", times=2)
    r.fake.inject(502, path="poll", raw_text="<html>Bad Gateway</html>")
    done = await r.delivered(await r.engine.accept(r.request("resilient")))
    assert done.state == JobState.COMPLETED
    assert r.fake.count("create") == 1


@pytest.mark.parametrize("cause", ["balance", "token"])
async def test_balance_or_token_trouble_holds_the_queue_then_fails_when_the_wait_runs_out(rig, cause, caplog):
    # The jobs never get sent: they fail when their wait in the queue runs out, saying why they waited.
    r = await rig(limit=2, queue_timeout=timedelta(seconds=0.6))
    if cause == "balance":
        r.fake.set_balance_exhausted(True)
    else:
        r.fake.set_token("rotated-token")
    first = await r.engine.accept(r.request("one"))
    second = await r.engine.accept(r.request("two"))
    # Both requesters hear that their job is held up, not only the one whose submission was refused.
    await r.port.wait_for(lambda: {e[0] for e in r.port.events if e[1] == JobEvent.HELD_UP} == {first.id, second.id})
    assert (await Job.get(id=first.id)).state in (JobState.QUEUED, JobState.SUBMITTING)
    done = [await r.delivered(first), await r.delivered(second)]
    kind = FailureKind.BALANCE if cause == "balance" else FailureKind.AUTH
    assert [(j.state, j.failure_kind) for j in done] == [(JobState.FAILED, kind)] * 2
    assert (await r.quotas.status(GUILD, USER)).remaining == 2 * CREDIT
    # The operator is warned once per incident, not once per job or per retry.
    incident_lines = [rec for rec in caplog.records if "provider incident" in rec.getMessage()
                      and rec.levelname == "ERROR"]
    assert len(incident_lines) == 1
    assert "rotated-token" not in caplog.text and TOKEN not in caplog.text


async def test_concurrency_cap_and_queue_order(rig):
    r = await rig(max_concurrent=2, fake_kwargs={"manual": True})
    jobs = [await r.engine.accept(r.request(f"job {i}")) for i in range(5)]
    await r.fake.wait_for_requests(2, "create")
    assert [b["prompt"] for b in creates(r.fake)] == ["job 0", "job 1"]
    assert [await r.engine.queue_position(await Job.get(id=j.id)) for j in jobs[2:]] == [1, 2, 3]
    for _ in range(3):
        running = [t for t in r.fake.tasks.values() if not t.finished]
        assert len(running) <= 2
        r.fake.finish(running[0].id)
        await r.fake.wait_for_requests(len(creates(r.fake)) + 1, "create")
    assert [b["prompt"] for b in creates(r.fake)] == [f"job {i}" for i in range(5)]
    assert r.fake.max_concurrent_running <= 2


async def test_many_running_tasks_are_polled_in_batches(rig):
    r = await rig(limit=20, max_concurrent=20, fake_kwargs={"manual": True})
    jobs = [await r.engine.accept(r.request(f"clip {i}")) for i in range(12)]
    await r.fake.wait_for_requests(12, "create")

    def batch_sizes() -> list[int]:
        return [len(rec.json.get("ids", [])) for rec in r.fake.request_log if rec.kind == "poll"]

    # Once all twelve are running, one request carries every one of them (times out otherwise).
    await r.fake.wait_until(lambda: 12 in batch_sizes())
    for t in list(r.fake.tasks):
        r.fake.finish(t)
    for job in jobs:
        await r.delivered(job)
    polled_tasks = sum(len(rec.json.get("ids", [])) for rec in r.fake.request_log if rec.kind == "poll")
    assert r.fake.count("poll") < polled_tasks  # far fewer requests than task look-ups


async def test_a_task_that_never_finishes_fails_at_the_deadline_and_refunds(rig):
    r = await rig(limit=1, deadline=timedelta(seconds=0.4), fake_kwargs={"manual": True})
    done = await r.delivered(await r.engine.accept(r.request("forever")))
    assert (done.state, done.failure_kind) == (JobState.FAILED, FailureKind.TIMEOUT)
    assert (await r.quotas.status(GUILD, USER)).remaining == 1 * CREDIT


async def test_a_failed_delivery_is_retried_and_charged_once(rig):
    r = await rig(limit=3)
    r.port.fail_next = 2
    done = await r.delivered(await r.engine.accept(r.request("try again")))
    assert done.delivery_attempts == 2
    assert [j.id for j in r.port.delivered] == [done.id]
    status = await r.quotas.status(GUILD, USER)
    assert (status.used, status.held) == (CREDIT, 0)


async def test_restart_resumes_running_jobs_and_fails_interrupted_submissions(rig):
    r = await rig(limit=5, fake_kwargs={"manual": True})
    running = await r.engine.accept(r.request("survives a restart"))
    await r.fake.wait_for_requests(1, "create")
    await r.engine.stop(grace=0.5)
    # A job the dead process had claimed but whose task id it never stored.
    cut = await JobEngine(r.engine.client, r.quotas, r.engine.config).accept(r.request("cut off"))
    await Job.filter(id=cut.id).update(state=JobState.SUBMITTING)
    r.fake.finish(next(iter(r.fake.tasks)))

    port = RecordingPort()
    engine = JobEngine(r.engine.client, r.quotas, r.engine.config, port)
    await engine.start()
    r.engine, r.port = engine, port
    done = await r.delivered(running)
    assert done.state == JobState.COMPLETED
    interrupted = await r.delivered(cut)
    assert (interrupted.state, interrupted.failure_kind) == (JobState.FAILED, FailureKind.INTERRUPTED)
    assert r.fake.count("create") == 1  # the cut-off job was never sent again
    status = await r.quotas.status(GUILD, USER)
    assert (status.used, status.held) == (CREDIT, 0)


async def test_umami_provider_runs_a_job_end_to_end(rig):
    r = await rig(provider="umami")
    done = await r.delivered(await r.engine.accept(r.request("umami cat", aspect_ratio="1:1")))
    assert done.state == JobState.COMPLETED and done.provider == "umami"
    body = creates(r.fake)[0]
    assert body["user_prompt"] == "umami cat" and body["aspect_ratio"] == "1:1"


# -- no secret at rest ---------------------------------------------------------------------------------------
# Providers echo what they were sent, our token included; the log is filtered, but the database must never
# keep the token either (backups, admin tools and support dumps read it).


async def test_a_task_failure_that_echoes_the_token_is_stored_redacted(rig):
    r = await rig(fake_kwargs={"manual": True})
    job = await r.engine.accept(r.request("a harbour at night"))
    await r.fake.wait_for_requests(1, "create")
    [task_id] = r.fake.tasks
    r.fake.fail(task_id, f"upstream refused Authorization: Bearer {TOKEN} (token {TOKEN})")
    done = await r.delivered(job)
    assert done.failure_kind == FailureKind.FAILED
    assert TOKEN not in (done.failure_reason or "")
    assert "upstream refused" in (done.failure_reason or "")


@pytest.mark.parametrize("status", [200, 400])
async def test_a_create_refusal_that_echoes_the_token_is_stored_redacted(rig, status):
    r = await rig()
    # AceDataCloud sends some refusals as HTTP 200 with `success: false`, others with a 4xx status.
    r.fake.inject(status, {"success": False, "error": {"code": "bad_request", "message": f"bad token {TOKEN}"}},
                  path="create")
    done = await r.delivered(await r.engine.accept(r.request("a lighthouse")))
    assert done.failure_kind == FailureKind.INVALID
    assert TOKEN not in (done.failure_reason or "")
    assert "bad token" in (done.failure_reason or "")
    assert r.fake.count("create") == 1
