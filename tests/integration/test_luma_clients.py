"""Both provider clients against the fake provider over real sockets: the happy paths, batch polling, every
error class, the retry rules (and the no-double-charge rule for creates), and that the token never leaks."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.luma.base import LumaClient
from bot.luma.errors import (
    AuthenticationFailed,
    BalanceExhausted,
    InvalidRequest,
    LumaError,
    ModerationRefused,
    ProviderUnavailable,
    RateLimited,
    TaskNotFound,
)
from bot.luma.http import RetryPolicy
from bot.luma.providers import DEFAULT_BASE_URLS, PROVIDERS, make_client
from bot.luma.providers.acedatacloud import AceDataCloudClient
from bot.luma.providers.umami import UmamiClient
from bot.luma.types import ExtendRequest, GenerateRequest, TaskState

# tests/integration has no __init__.py, so pytest puts only this directory on sys.path at import time; the
# repository root is needed for `tests.fakes`. Harmless once the tree gets package markers or `pythonpath`.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.fakes.luma_provider import FakeLumaProvider, ace_error_body, umami_error_body  # noqa: E402

TOKEN = "sk-live-TOKEN-5f0c1e9a7d3b"
# Tiny backoff so retry tests stay fast; three tries in all.
FAST = RetryPolicy(attempts=3, base=0.001, cap=0.004, jitter=0)
START_IMAGE = "https://images.example.com/start.png"
END_IMAGE = "https://images.example.com/end.png"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def fake() -> AsyncIterator[FakeLumaProvider]:
    """Tasks move only when a test says so."""
    async with FakeLumaProvider(token=TOKEN, manual=True) as f:
        yield f


def client_for(provider: str, session: aiohttp.ClientSession, fake: FakeLumaProvider, **kwargs) -> LumaClient:
    kwargs.setdefault("retry", FAST)
    return make_client(
        provider, session, token=kwargs.pop("token", TOKEN), base_url=fake.url_for(provider), **kwargs
    )


@pytest.fixture(params=PROVIDERS)
def provider(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def client(provider: str, session: aiohttp.ClientSession, fake: FakeLumaProvider) -> LumaClient:
    return client_for(provider, session, fake)


async def finished_video(
    client: LumaClient, fake: FakeLumaProvider, prompt: str = "a fox"
) -> tuple[str, str]:
    """(task_id, video_id) of a completed task on the fake."""
    task_id = await client.generate(GenerateRequest(prompt))
    fake.finish(task_id)
    result = await client.get_task(task_id)
    assert result.state is TaskState.COMPLETED and result.video_id
    return task_id, result.video_id


# ---- happy paths -----------------------------------------------------------------------------------------


async def test_ace_generate_goes_queued_running_completed(session, fake) -> None:
    client = client_for("acedatacloud", session, fake)
    req = GenerateRequest(
        "a cat surfing",
        aspect_ratio="9:16",
        loop=True,
        enhancement=False,
        start_image_url=START_IMAGE,
        end_image_url=END_IMAGE,
        callback_url="https://bot/cb/1",
    )
    task_id = await client.generate(req)

    method, path, body = fake.requests[-1]
    assert (method, path) == ("POST", "/luma/videos")
    assert body == {
        "action": "generate",
        "prompt": "a cat surfing",
        "aspect_ratio": "9:16",
        "loop": True,
        "enhancement": False,
        "start_image_url": START_IMAGE,
        "end_image_url": END_IMAGE,
        "callback_url": "https://bot/cb/1",
        "async": True,
    }
    assert (await client.get_task(task_id)).state is TaskState.QUEUED
    fake.mark_running(task_id)
    assert (await client.get_task(task_id)).state is TaskState.RUNNING
    fake.finish(task_id)
    done = await client.get_task(task_id)
    assert done.state is TaskState.COMPLETED
    assert done.video_url == fake.task(task_id).video_url
    assert done.video_id == fake.task(task_id).video_id != task_id
    assert (done.video_width, done.video_height) == (1552, 656)  # start-image generations are 1552x656


async def test_ace_never_uses_the_blocking_mode(session, fake) -> None:
    client = client_for("acedatacloud", session, fake)
    await client.generate(GenerateRequest("x"))
    _, video_id = await finished_video(client, fake)
    await client.extend(ExtendRequest("more", video_id=video_id))
    creates = [r for r in fake.request_log if r.kind == "create"]
    assert len(creates) == 3
    assert all(r.json["async"] is True for r in creates)


async def test_tasks_advance_on_their_own_in_timed_mode(provider, session) -> None:
    async with FakeLumaProvider(token=TOKEN, queue_time=0.01, run_time=0.02) as fake:
        client = client_for(provider, session, fake)
        task_id = await client.generate(GenerateRequest("a slow river"))
        await fake.wait_for_state(task_id, "completed")
        result = await client.get_task(task_id)
        assert result.state is TaskState.COMPLETED
        assert result.video_url


async def test_failed_task_reports_the_reason(client, fake) -> None:
    task_id = await client.generate(GenerateRequest("a dog"))
    fake.fail(task_id, "Job error: upstream")
    result = await client.get_task(task_id)
    assert result.state is TaskState.FAILED
    assert result.failure_reason == "Job error: upstream"
    assert result.moderated is False


async def test_moderated_failure_is_flagged(client, fake) -> None:
    task_id = await client.generate(GenerateRequest("a dog"))
    fake.fail(task_id, "Frame moderation failed", moderated=True)
    result = await client.get_task(task_id)
    assert result.state is TaskState.FAILED
    assert result.moderated is True


async def test_fail_marker_fails_the_task_in_timed_mode(provider, session) -> None:
    async with FakeLumaProvider(token=TOKEN, queue_time=0.0, run_time=0.01) as fake:
        client = client_for(provider, session, fake)
        task_id = await client.generate(GenerateRequest("a storm [fail]"))
        await fake.wait_for_state(task_id, "failed")
        assert (await client.get_task(task_id)).state is TaskState.FAILED


async def test_ace_extend_by_video_id(session, fake) -> None:
    client = client_for("acedatacloud", session, fake)
    source_task, video_id = await finished_video(client, fake)
    new_task = await client.extend(ExtendRequest("keeps running", video_id=video_id, end_image_url=END_IMAGE))
    assert fake.requests[-1][2] == {
        "action": "extend",
        "prompt": "keeps running",
        "video_id": video_id,
        "end_image_url": END_IMAGE,
        "async": True,
    }
    assert fake.task(new_task).extends == source_task


async def test_ace_extend_by_video_url(session, fake) -> None:
    client = client_for("acedatacloud", session, fake)
    source_task, _ = await finished_video(client, fake)
    url = fake.task(source_task).video_url
    new_task = await client.extend(ExtendRequest("and then", video_url=url))
    assert fake.requests[-1][2]["video_url"] == url
    assert fake.task(new_task).extends == source_task


async def test_extend_of_unknown_video_is_invalid(client, fake) -> None:
    with pytest.raises(InvalidRequest):
        await client.extend(ExtendRequest("more", video_id="no-such-video-123"))
    assert fake.count("create") == 1


@pytest.mark.parametrize(
    "req",
    [ExtendRequest("more"), ExtendRequest("more", video_id="abcdef", video_url="https://x.example/v.mp4")],
)
async def test_extend_needs_exactly_one_target_and_sends_nothing_otherwise(client, fake, req) -> None:
    with pytest.raises(InvalidRequest):
        await client.extend(req)
    assert fake.count() == 0


async def test_umami_generate_sends_its_field_names(session, fake) -> None:
    client = client_for("umami", session, fake)
    task_id = await client.generate(
        GenerateRequest(
            "a cat",
            aspect_ratio="1:1",
            enhancement=False,
            start_image_url=START_IMAGE,
            end_image_url=END_IMAGE,
            callback_url="https://bot/cb",
        )
    )
    method, path, body = fake.requests[-1]
    assert (method, path) == ("POST", "/v1/luma-ai/generations")
    # No `loop` when it is false, and no callback_url (UmamiAI has no callbacks).
    assert body == {
        "user_prompt": "a cat",
        "aspect_ratio": "1:1",
        "expand_prompt": False,
        "image_url": START_IMAGE,
        "image_end_url": END_IMAGE,
    }
    assert (await client.get_task(task_id)).state is TaskState.QUEUED
    fake.mark_running(task_id)
    assert (await client.get_task(task_id)).state is TaskState.RUNNING
    fake.finish(task_id)
    done = await client.get_task(task_id)
    assert done.state is TaskState.COMPLETED
    assert done.video_id == task_id  # UmamiAI extends by the generation id


async def test_umami_sends_loop_only_when_wanted(session, fake) -> None:
    client = client_for("umami", session, fake)
    await client.generate(GenerateRequest("a loop", loop=True))
    assert fake.requests[-1][2]["loop"] is True


@pytest.mark.parametrize(("status", "as_list"), [(200, False), (201, False), (200, True), (201, True)])
async def test_umami_create_accepts_200_or_201_and_object_or_list(session, status, as_list) -> None:
    async with FakeLumaProvider(
        token=TOKEN, manual=True, umami_create_status=status, umami_create_list=as_list
    ) as fake:
        client = client_for("umami", session, fake)
        task_id = await client.generate(GenerateRequest("a cat"))
        assert task_id in fake.tasks


async def test_umami_extend_by_id_posts_to_the_extend_path(session, fake) -> None:
    client = client_for("umami", session, fake)
    source_task, video_id = await finished_video(client, fake)
    new_task = await client.extend(ExtendRequest("more", video_id=video_id, end_image_url=END_IMAGE))
    method, path, body = fake.requests[-1]
    assert (method, path) == ("POST", f"/v1/luma-ai/generations/{video_id}/extend")
    assert body == {"user_prompt": "more", "image_end_url": END_IMAGE}
    assert fake.task(new_task).extends == source_task


async def test_umami_extend_by_url_is_refused_before_any_request(session, fake) -> None:
    client = client_for("umami", session, fake)
    with pytest.raises(InvalidRequest, match="URL is not supported"):
        await client.extend(ExtendRequest("more", video_url="https://cdn.example.com/v.mp4"))
    assert fake.count() == 0


# ---- batch polling -----------------------------------------------------------------------------------------


BATCH_PROVIDERS = [p for p in PROVIDERS if p in ("acedatacloud", "umami")]
# Luma's own APIs have no batch lookup: one GET per generation.
SINGLE_PROVIDERS = [p for p in PROVIDERS if p not in BATCH_PROVIDERS]


@pytest.mark.parametrize("provider", BATCH_PROVIDERS)
async def test_batch_fetch_is_one_request_and_leaves_out_unknown_ids(client, fake) -> None:
    ids = [await client.generate(GenerateRequest(f"clip {i}")) for i in range(4)]
    fake.finish(ids[0])
    fake.fail(ids[1], "nope")
    fake.mark_running(ids[2])
    polls_before = fake.count("poll")

    results = await client.get_tasks([*ids, "unknown-task-id", ids[0]])

    assert fake.count("poll") == polls_before + 1
    assert set(results) == set(ids)
    assert [results[i].state for i in ids] == [
        TaskState.COMPLETED,
        TaskState.FAILED,
        TaskState.RUNNING,
        TaskState.QUEUED,
    ]


@pytest.mark.parametrize("provider", SINGLE_PROVIDERS)
async def test_luma_apis_fetch_each_task_once_and_leave_out_unknown_ids(client, fake) -> None:
    ids = [await client.generate(GenerateRequest(f"clip {i}")) for i in range(4)]
    fake.finish(ids[0])
    fake.fail(ids[1], "nope")
    fake.mark_running(ids[2])
    polls_before = fake.count("poll")

    results = await client.get_tasks([*ids, "unknown-task-id", ids[0]])

    assert fake.count("poll") == polls_before + 5  # four tasks and the unknown id, the duplicate once
    assert set(results) == set(ids)
    assert [results[i].state for i in ids] == [
        TaskState.COMPLETED,
        TaskState.FAILED,
        TaskState.RUNNING,
        TaskState.QUEUED,
    ]


async def test_ace_batch_request_body(session, fake) -> None:
    client = client_for("acedatacloud", session, fake)
    await client.get_tasks(["a1b2c3", "d4e5f6"])
    assert fake.requests[-1] == (
        "POST",
        "/luma/tasks",
        {"ids": ["a1b2c3", "d4e5f6"], "action": "retrieve_batch"},
    )


async def test_umami_batch_request_uses_indexed_ids(session, fake) -> None:
    client = client_for("umami", session, fake)
    await client.get_tasks(["a1b2c3", "d4e5f6"])
    last = fake.request_log[-1]
    assert (last.method, last.path) == ("GET", "/v1/luma-ai/generation")
    assert last.query == {"ids[0]": ["a1b2c3"], "ids[1]": ["d4e5f6"]}


@pytest.mark.parametrize("provider", BATCH_PROVIDERS)
async def test_batch_fetch_splits_into_chunks_of_max_batch(client, fake) -> None:
    ids = [await client.generate(GenerateRequest(f"clip {i}")) for i in range(5)]
    client.max_batch = 2  # type: ignore[misc]  # a smaller batch than the real 50, to see the split
    results = await client.get_tasks(ids)
    assert fake.count("poll") == 3
    assert set(results) == set(ids)


async def test_batch_fetch_of_nothing_sends_nothing(client, fake) -> None:
    assert await client.get_tasks([]) == {}
    assert fake.count() == 0


async def test_unknown_single_task_is_task_not_found(client, fake) -> None:
    with pytest.raises(TaskNotFound):
        await client.get_task("does-not-exist-42")
    assert fake.count("poll") == 1


async def test_clients_declare_their_limits(client) -> None:
    assert isinstance(client, LumaClient)
    assert client.max_batch == 50
    if client.provider in BATCH_PROVIDERS:
        assert client.min_poll_interval >= 1.0
    else:  # the Agents API rate-limits creates only; Dream Machine documents no poll limit
        assert client.min_poll_interval == 0


# ---- errors ---------------------------------------------------------------------------------------------


async def test_wrong_token_is_authentication_failed_without_retry(client, fake) -> None:
    fake.set_token("another-token")
    with pytest.raises(AuthenticationFailed) as info:
        await client.generate(GenerateRequest("a cat"))
    assert info.value.status == 401
    assert fake.count() == 1


async def test_exhausted_balance_is_balance_exhausted_without_retry(client, fake) -> None:
    fake.set_balance_exhausted(True)
    with pytest.raises(BalanceExhausted):
        await client.generate(GenerateRequest("a cat"))
    assert fake.count("create") == 1
    assert not fake.tasks


async def test_ace_moderation_refusal_at_create(session, fake) -> None:
    client = client_for("acedatacloud", session, fake)
    with pytest.raises(ModerationRefused) as info:
        await client.generate(GenerateRequest("something [moderate]"))
    assert info.value.code == "forbidden"
    assert fake.count("create") == 1


async def test_umami_moderation_shows_up_as_a_moderated_failure(session) -> None:
    async with FakeLumaProvider(token=TOKEN, queue_time=0.0, run_time=0.01) as fake:
        client = client_for("umami", session, fake)
        task_id = await client.generate(GenerateRequest("something [moderate]"))
        await fake.wait_for_state(task_id, "failed")
        result = await client.get_task(task_id)
        assert result.state is TaskState.FAILED
        assert result.moderated is True


PERMANENT_ERRORS = [
    ("acedatacloud", 400, ace_error_body("bad_request", "prompt is required"), InvalidRequest),
    ("acedatacloud", 400, ace_error_body("no_token", "The token is missing."), AuthenticationFailed),
    ("acedatacloud", 401, ace_error_body("invalid_token", "The token is invalid."), AuthenticationFailed),
    ("acedatacloud", 403, ace_error_body("used_up", "used up"), BalanceExhausted),
    ("acedatacloud", 403, ace_error_body("disabled", "disabled"), AuthenticationFailed),
    ("acedatacloud", 403, ace_error_body("forbidden", "our AI moderators"), ModerationRefused),
    ("acedatacloud", 404, ace_error_body("no_api", "no api"), InvalidRequest),
    ("acedatacloud", 422, {"detail": "unprocessable"}, InvalidRequest),
    ("umami", 400, umami_error_body(400, "Body validation error!"), InvalidRequest),
    ("umami", 400, {"message": "Prompt moderation failed"}, ModerationRefused),
    ("umami", 401, umami_error_body(401, "This request requires a valid API key."), AuthenticationFailed),
    ("umami", 403, umami_error_body(403, "You've run out of credits."), BalanceExhausted),
    ("umami", 403, {"detail": "Forbidden"}, BalanceExhausted),
    ("umami", 404, umami_error_body(404, "Not Found"), InvalidRequest),
    ("umami", 422, {"detail": "unprocessable"}, InvalidRequest),
]


@pytest.mark.parametrize(("provider", "status", "body", "expected"), PERMANENT_ERRORS)
async def test_permanent_errors_are_typed_and_never_retried(
    session, fake, provider, status, body, expected
) -> None:
    client = client_for(provider, session, fake)
    fake.inject(status, body, path="create", times=5)
    with pytest.raises(expected) as info:
        await client.generate(GenerateRequest("a cat"))
    assert info.value.status == status
    assert fake.count("create") == 1
    assert not fake.tasks


async def test_429_exhausting_retries_is_rate_limited_with_the_hint(client, fake) -> None:
    fake.inject(429, path="poll", times=None, retry_after=0.01)
    with pytest.raises(RateLimited) as info:
        await client.get_tasks(["abcdef"])
    assert info.value.retry_after == pytest.approx(0.01)
    assert fake.count("poll") == FAST.attempts


async def test_5xx_exhausting_retries_is_provider_unavailable(client, fake) -> None:
    fake.inject(500, path="poll", times=None)
    with pytest.raises(ProviderUnavailable) as info:
        await client.get_tasks(["abcdef"])
    assert info.value.status == 500
    assert info.value.maybe_submitted is False
    assert fake.count("poll") == FAST.attempts


async def test_concurrency_limit_answers_429_and_peak_is_recorded(provider, session) -> None:
    async with FakeLumaProvider(token=TOKEN, manual=True, concurrency_limit=2) as fake:
        client = client_for(provider, session, fake)
        first = await client.generate(GenerateRequest("one"))
        await client.generate(GenerateRequest("two"))
        with pytest.raises(RateLimited):
            await client.generate(GenerateRequest("three"))
        assert fake.max_concurrent_running == 2
        assert len(fake.tasks) == 2
        fake.finish(first)
        await client.generate(GenerateRequest("three again"))
        assert fake.max_concurrent_running == 2


# ---- retries ---------------------------------------------------------------------------------------------


async def test_429_is_retried_after_the_retry_after_hint(client, fake, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="bot.luma")
    task_id = await client.generate(GenerateRequest("a cat"))
    fake.inject(429, path="poll", retry_after=0.15)

    result = await client.get_task(task_id)

    assert result.state is TaskState.QUEUED
    polls = [r for r in fake.request_log if r.kind == "poll"]
    assert len(polls) == 2
    # The backoff alone would be 1 ms; a gap of at least 0.15 s means the hint was obeyed.
    assert polls[1].at - polls[0].at >= 0.15
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "status=429" in warnings[0] and "attempt 1/3" in warnings[0]


async def test_create_answered_429_is_handed_back_at_once_with_the_hint(client, fake) -> None:
    # Waiting inside the request could outlast the job's claim; the engine requeues the job instead.
    fake.inject(429, path="create", retry_after=30)
    with pytest.raises(RateLimited) as info:
        await client.generate(GenerateRequest("a cat"))
    assert info.value.retry_after == pytest.approx(30)
    assert fake.count("create") == 1
    assert fake.tasks == {}


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_5xx_is_retried_then_succeeds(client, fake, status) -> None:
    task_id = await client.generate(GenerateRequest("a cat"))
    fake.inject(status, path="poll", times=2)
    assert (await client.get_task(task_id)).task_id == task_id
    assert fake.count("poll") == 3


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_create_answered_5xx_is_an_unknown_outcome_and_never_resent(client, fake, status) -> None:
    # A gateway error may follow a task that was created (and billed): no provider can deduplicate.
    fake.inject(status, path="create", times=1)
    with pytest.raises(ProviderUnavailable) as info:
        await client.generate(GenerateRequest("a cat"))
    assert info.value.maybe_submitted
    assert fake.count("create") == 1


async def test_non_json_success_body_on_poll_is_retried(client, fake) -> None:
    task_id = await client.generate(GenerateRequest("a cat"))
    fake.inject(200, path="poll", raw_text="<html><body>Just a moment...</body></html>")
    assert (await client.get_task(task_id)).task_id == task_id
    assert fake.count("poll") == 2


async def test_html_error_page_is_provider_unavailable_with_a_snippet(client, fake) -> None:
    fake.inject(502, path="poll", times=None, raw_text="<html><h1>502 Bad Gateway</h1></html>")
    with pytest.raises(ProviderUnavailable) as info:
        await client.get_tasks(["abcdef"])
    assert "502 Bad Gateway" in str(info.value)
    assert fake.count("poll") == FAST.attempts


async def test_non_json_success_body_on_create_is_not_resent(client, fake) -> None:
    # A 2xx means the provider took the order; resending could pay for a second video.
    fake.inject(200, path="create", raw_text="OK")
    with pytest.raises(ProviderUnavailable) as info:
        await client.generate(GenerateRequest("a cat"))
    assert info.value.maybe_submitted is True
    assert fake.count("create") == 1


async def test_create_that_times_out_after_sending_is_not_resent(provider, session, fake) -> None:
    client = client_for(provider, session, fake, timeout=0.2)
    fake.inject(None, path="create", delay=5)  # the provider creates the task but answers late

    with pytest.raises(ProviderUnavailable) as info:
        await client.generate(GenerateRequest("a cat"))

    assert info.value.maybe_submitted is True
    assert info.value.retryable is True
    # The error is raised only after any retry would have been sent, so one create means no retry.
    assert fake.count("create") == 1
    assert len(fake.tasks) == 1  # the paid task does exist: that is why it must not be resent


async def test_poll_that_times_out_is_retried(provider, session, fake) -> None:
    client = client_for(provider, session, fake, timeout=0.2)
    task_id = await client.generate(GenerateRequest("a cat"))
    fake.inject(None, path="poll", delay=5)
    assert (await client.get_task(task_id)).task_id == task_id
    assert fake.count("poll") == 2


async def test_create_whose_connection_drops_after_sending_is_not_resent(client, fake) -> None:
    fake.inject(None, path="create", drop=True)
    with pytest.raises(ProviderUnavailable) as info:
        await client.generate(GenerateRequest("a cat"))
    assert info.value.maybe_submitted is True
    assert fake.count("create") == 1


async def test_answer_that_is_not_http_is_retried_for_polls_but_not_for_creates(client, fake) -> None:
    task_id = await client.generate(GenerateRequest("a cat"))
    fake.inject(None, path="poll", malformed=True)
    assert (await client.get_task(task_id)).task_id == task_id
    assert fake.count("poll") == 2

    fake.inject(None, path="create", malformed=True)
    with pytest.raises(ProviderUnavailable) as info:
        await client.generate(GenerateRequest("a dog"))
    assert info.value.maybe_submitted is True
    assert fake.count("create") == 2


async def test_poll_whose_connection_drops_is_retried(client, fake) -> None:
    task_id = await client.generate(GenerateRequest("a cat"))
    fake.inject(None, path="poll", drop=True)
    assert (await client.get_task(task_id)).task_id == task_id
    assert fake.count("poll") == 2


async def test_create_on_a_refused_connection_is_retried_and_not_marked_submitted(
    provider, session, caplog
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.luma")
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = make_client(provider, session, token=TOKEN, base_url=f"http://127.0.0.1:{port}/v1", retry=FAST)

    with pytest.raises(ProviderUnavailable) as info:
        await client.generate(GenerateRequest("a cat"))

    assert info.value.maybe_submitted is False
    retries = [r for r in caplog.records if r.levelno == logging.WARNING and "retrying" in r.getMessage()]
    assert len(retries) == FAST.attempts - 1


# ---- the token never leaks ----------------------------------------------------------------------------------


async def test_token_never_appears_in_errors_reprs_or_logs(provider, session, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[LumaError] = []

    async def collect(coro) -> None:
        try:
            await coro
        except LumaError as exc:
            errors.append(exc)
        else:
            raise AssertionError("expected a LumaError")

    async with FakeLumaProvider(token=TOKEN, manual=True) as fake:
        client = client_for(provider, session, fake)
        slow = client_for(provider, session, fake, timeout=0.2)
        echo = f"bad header 'Authorization: Bearer {TOKEN}'"  # a provider that echoes what it was sent

        fake.inject(
            401, {"message": echo, "error": {"code": "invalid_token", "message": echo}}, path="create"
        )
        await collect(client.generate(GenerateRequest("a cat")))  # AuthenticationFailed
        fake.inject(400, raw_text=f"<html>{echo}</html>", path="create")
        await collect(client.generate(GenerateRequest("a cat")))  # InvalidRequest, not JSON
        fake.set_balance_exhausted(True)
        await collect(client.generate(GenerateRequest("a cat")))  # BalanceExhausted
        fake.set_balance_exhausted(False)
        fake.inject(
            403,
            ace_error_body("forbidden", echo)
            if provider == "acedatacloud"
            else {"message": f"moderation: {echo}"},
            path="create",
        )
        await collect(client.generate(GenerateRequest("a cat")))  # ModerationRefused
        fake.inject(
            429,
            {"message": echo, "error": {"code": "too_many_requests", "message": echo}},
            path="poll",
            times=None,
            retry_after=0,
        )
        await collect(client.get_tasks(["abcdef"]))  # RateLimited
        fake.clear_faults()
        fake.inject(500, raw_text=echo, path="poll", times=None)
        await collect(client.get_tasks(["abcdef"]))  # ProviderUnavailable (5xx)
        fake.clear_faults()
        fake.inject(200, raw_text=echo, path="create")
        await collect(
            client.generate(GenerateRequest("a cat"))
        )  # ProviderUnavailable (not JSON, maybe submitted)
        fake.inject(None, path="create", delay=5)
        await collect(slow.generate(GenerateRequest("a cat")))  # ProviderUnavailable (timeout, maybe submitted)
        fake.inject(None, path="create", drop=True)
        await collect(client.generate(GenerateRequest("a cat")))  # ProviderUnavailable (dropped)
        fake.inject(None, path="create", malformed=True)
        await collect(client.generate(GenerateRequest("a cat")))  # ProviderUnavailable (not HTTP)
        fake.inject(None, path="poll", malformed=True, times=None)
        await collect(client.get_tasks(["abcdef"]))  # ProviderUnavailable (not HTTP, after retries)
        fake.clear_faults()
        await collect(client.get_task("does-not-exist"))  # TaskNotFound

        assert repr(client).count(TOKEN) == 0 and TOKEN not in str(vars(client))

    kinds = {type(e) for e in errors}
    assert kinds == {
        AuthenticationFailed,
        InvalidRequest,
        BalanceExhausted,
        ModerationRefused,
        RateLimited,
        ProviderUnavailable,
        TaskNotFound,
    }
    for exc in errors:
        # Also the chained exceptions: aiohttp's ClientResponseError repr carries the request headers.
        chain: list[BaseException] = [exc]
        while (nxt := chain[-1].__cause__ or chain[-1].__context__) is not None and len(chain) < 10:
            chain.append(nxt)
        for link in chain:
            assert TOKEN not in str(link)
            assert TOKEN not in repr(link)
            assert TOKEN not in str(link.args)
    assert any("***" in str(e) for e in errors)  # the echoed token was masked, not merely absent
    assert caplog.records  # the retries above did log
    assert TOKEN not in caplog.text
    assert all(TOKEN not in r.getMessage() for r in caplog.records)


# ---- callbacks (the fake's AceDataCloud callback delivery) ---------------------------------------------------


async def test_ace_callback_is_posted_on_success_and_failure(session, fake) -> None:
    client = client_for("acedatacloud", session, fake)
    hook = f"{fake.base_url}/hooks/luma?secret=s3"  # the fake records the POSTs it receives itself
    ok = await client.generate(GenerateRequest("a cat", callback_url=hook))
    bad = await client.generate(GenerateRequest("a dog", callback_url=hook))
    fake.finish(ok)
    fake.fail(bad, "Generation failed")
    await fake.wait_for_callbacks(2)

    received = {r.json["task_id"]: r.json for r in fake.request_log if r.path == "/hooks/luma"}
    assert received[ok]["success"] is True
    assert received[ok]["state"] == "completed"
    assert received[ok]["video_url"] == fake.task(ok).video_url
    assert received[ok]["trace_id"]
    assert received[bad]["success"] is False
    assert received[bad]["error"]["message"] == "Generation failed"
    assert "state" not in received[bad]
    assert all(c.status == 404 for c in fake.callbacks)  # the fake itself has no such route


async def test_fake_speaks_the_documented_ace_wire_format(session, fake) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with session.post(
        f"{fake.base_url}/luma/videos", json={"prompt": "x", "async": True}, headers=auth
    ) as r:
        created = await r.json()
    task_id = created["task_id"]
    fake.finish(task_id)
    batch = {"ids": [task_id, "unknown"], "action": "retrieve_batch"}
    async with session.post(f"{fake.base_url}/luma/tasks", json=batch, headers=auth) as r:
        answer = await r.json()
    assert answer["count"] == 1 and [i["id"] for i in answer["items"]] == [task_id]
    record = answer["items"][0]
    assert "status" not in record and "state" not in record  # progress lives only in `response`
    assert isinstance(record["created_at"], float) and isinstance(record["finished_at"], float)
    assert record["request"]["prompt"] == "x"
    async with session.post(
        f"{fake.base_url}/luma/tasks", json=batch, headers={"Authorization": "Bearer no"}
    ) as r:
        assert r.status == 401
        assert (await r.json())["error"]["code"] == "invalid_token"


async def test_fake_lets_tests_await_requests_instead_of_sleeping(client, fake) -> None:
    task_id = await client.generate(GenerateRequest("a cat"))
    poller = asyncio.create_task(client.get_tasks([task_id]))
    await fake.wait_for_requests(1, "poll")
    assert fake.count("poll") == 1
    assert (await poller)[task_id].state is TaskState.QUEUED
    with pytest.raises(TimeoutError):
        await fake.wait_for_requests(2, "poll", within=0.05)


async def test_result_video_is_downloadable_from_the_fake(client, fake, session) -> None:
    task_id, _ = await finished_video(client, fake)
    url = (await client.get_task(task_id)).video_url
    async with session.get(url) as resp:
        assert resp.status == 200
        assert resp.content_type == "video/mp4"
        assert (await resp.read())[4:8] == b"ftyp"


# ---- factory --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "cls"), [("acedatacloud", AceDataCloudClient), ("umami", UmamiClient)])
async def test_factory_builds_each_provider_with_its_default_url(session, name, cls) -> None:
    client = make_client(name, session, token=TOKEN)
    assert isinstance(client, cls)
    assert isinstance(client, LumaClient)
    assert client.provider == name
    assert client.base_url == DEFAULT_BASE_URLS[name]


async def test_factory_refuses_unknown_providers_and_empty_tokens(session) -> None:
    with pytest.raises(ValueError, match="unknown Luma provider"):
        make_client("lumalabs", session, token=TOKEN)
    with pytest.raises(ValueError, match="token"):
        make_client("umami", session, token="")


# ---- token check (python -m bot check) -------------------------------------------------------------------


async def test_verify_token_passes_a_good_token_with_one_request_that_creates_nothing(client, fake) -> None:
    await client.verify_token()
    assert fake.count() == 1 and fake.count("create") == 0


async def test_verify_token_raises_authentication_failed_for_a_rejected_token(provider, session, fake) -> None:
    client = client_for(provider, session, fake, token="sk-revoked-0000")
    with pytest.raises(AuthenticationFailed):
        await client.verify_token()
    assert fake.count("create") == 0
