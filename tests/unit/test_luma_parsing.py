"""Provider JSON → TaskResult and status/body → typed error, for both providers, plus the retry arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from bot.luma.errors import (
    AuthenticationFailed,
    BalanceExhausted,
    InvalidRequest,
    ModerationRefused,
    ProviderUnavailable,
    RateLimited,
)
from bot.luma.http import RetryPolicy, Secret, body_message, parse_retry_after, unique_chunks
from bot.luma.providers import acedatacloud, umami
from bot.luma.types import TaskState

TASK_ID = "6a97ba3e-7e4a-4fe9-a7c5-1c6e1e2f4d10"
VIDEO_ID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


def ace_record(response: object = None, *, finished: bool = False, **extra: object) -> dict:
    record: dict = {
        "_id": "66d297a3550a4144a5a5db42",
        "id": TASK_ID,
        "api_id": "94fc9028-5a9f-4875-aae4-38463bd30ac5",
        "trace_id": "trace-1",
        "type": "videos",
        "created_at": 1725077411.961,
        "started_at": 1725077412.021,
        "request": {"action": "generate", "prompt": "a cat"},
    }
    if response is not None:
        record["response"] = response
    if finished:
        record["finished_at"] = 1725077566.241
        record["elapsed"] = 154.22
    record.update(extra)
    return record


SUCCESS = {
    "success": True,
    "task_id": TASK_ID,
    "video_id": VIDEO_ID,
    "prompt": "a cat",
    "video_url": f"https://platform.cdn.acedata.cloud/luma/{TASK_ID}.mp4",
    "video_width": 1360,
    "video_height": 752,
    "state": "completed",
    "thumbnail_url": f"https://platform.cdn.acedata.cloud/luma/{TASK_ID}.jpg",
    "thumbnail_width": 1360,
    "thumbnail_height": 752,
}


# ---- AceDataCloud task records (luma-apis.md §1.2) --------------------------------------------------------


def test_ace_record_without_response_is_queued() -> None:
    result = acedatacloud.parse_task_record(ace_record())
    assert result.state is TaskState.QUEUED
    assert result.task_id == TASK_ID
    assert result.video_url is None


@pytest.mark.parametrize("response", [None, {}])
def test_ace_record_with_null_or_empty_response_is_queued(response: object) -> None:
    record = ace_record()
    record["response"] = response
    assert acedatacloud.parse_task_record(record).state is TaskState.QUEUED


@pytest.mark.parametrize("state", ["pending", "processing", "PROCESSING"])
def test_ace_waiting_state_without_success_is_running(state: str) -> None:
    result = acedatacloud.parse_task_record(ace_record({"task_id": TASK_ID, "state": state}))
    assert result.state is TaskState.RUNNING


def test_ace_success_is_completed_with_all_video_fields() -> None:
    result = acedatacloud.parse_task_record(ace_record(SUCCESS, finished=True))
    assert result.state is TaskState.COMPLETED
    assert result.video_id == VIDEO_ID
    assert result.video_id != result.task_id
    assert result.video_url == SUCCESS["video_url"]
    assert (result.video_width, result.video_height) == (1360, 752)
    assert result.thumbnail_url == SUCCESS["thumbnail_url"]
    assert (result.thumbnail_width, result.thumbnail_height) == (1360, 752)
    assert result.failure_reason is None
    assert result.raw["id"] == TASK_ID


def test_ace_completed_state_without_success_flag_is_completed() -> None:
    response = {k: v for k, v in SUCCESS.items() if k != "success"}
    assert acedatacloud.parse_task_record(ace_record(response)).state is TaskState.COMPLETED


def test_ace_failure_without_state_is_failed_with_the_error_message() -> None:
    # AceDataCloud's regression case: `success: false` and no `state` must stop polling.
    response = {
        "success": False,
        "task_id": TASK_ID,
        "error": {"code": "api_error", "message": "fetch failed"},
    }
    result = acedatacloud.parse_task_record(ace_record(response, finished=True))
    assert result.state is TaskState.FAILED
    assert result.failure_reason == "fetch failed"
    assert result.moderated is False


def test_ace_failure_without_state_or_finished_at_is_still_failed() -> None:
    response = {"success": False, "error": {"code": "api_error", "message": "boom"}}
    assert acedatacloud.parse_task_record(ace_record(response)).state is TaskState.FAILED


def test_ace_failed_state_is_failed() -> None:
    response = {"task_id": TASK_ID, "state": "failed", "error": {"message": "Prompt processing failed"}}
    result = acedatacloud.parse_task_record(ace_record(response))
    assert result.state is TaskState.FAILED
    assert result.failure_reason == "Prompt processing failed"


def test_ace_failure_without_a_message_gets_a_default_reason() -> None:
    result = acedatacloud.parse_task_record(ace_record({"success": False}))
    assert result.state is TaskState.FAILED
    assert result.failure_reason


@pytest.mark.parametrize(
    ("error", "moderated"),
    [
        ({"code": "forbidden", "message": "Sorry!"}, True),
        ({"code": "api_error", "message": "Advanced prompt moderation failed"}, True),
        ({"code": "api_error", "message": "Contains blacklisted words"}, True),
        ({"code": "api_error", "message": "fetch failed"}, False),
    ],
)
def test_ace_moderation_failures_are_flagged(error: dict, moderated: bool) -> None:
    result = acedatacloud.parse_task_record(ace_record({"success": False, "error": error}))
    assert result.state is TaskState.FAILED
    assert result.moderated is moderated


def test_ace_finished_at_without_response_is_failed_not_queued() -> None:
    result = acedatacloud.parse_task_record(ace_record(finished=True))
    assert result.state is TaskState.FAILED


def test_ace_finished_at_overrides_a_stale_processing_state_when_a_video_is_there() -> None:
    response = {"task_id": TASK_ID, "state": "processing", "video_url": "https://cdn.example/v.mp4"}
    result = acedatacloud.parse_task_record(ace_record(response, finished=True))
    assert result.state is TaskState.COMPLETED
    assert result.video_url == "https://cdn.example/v.mp4"


def test_ace_finished_at_with_processing_state_and_no_video_is_failed() -> None:
    result = acedatacloud.parse_task_record(ace_record({"state": "processing"}, finished=True))
    assert result.state is TaskState.FAILED


def test_ace_success_without_video_url_is_failed_rather_than_completed() -> None:
    response = {"success": True, "task_id": TASK_ID, "state": "completed"}
    result = acedatacloud.parse_task_record(ace_record(response, finished=True))
    assert result.state is TaskState.FAILED
    assert "no video" in (result.failure_reason or "")


def test_ace_unknown_state_without_news_keeps_running() -> None:
    assert acedatacloud.parse_task_record(ace_record({"state": "warming_up"})).state is TaskState.RUNNING


def test_ace_unknown_state_with_video_url_is_completed() -> None:
    response = {"state": "ready", "video_url": "https://cdn.example/v.mp4"}
    assert acedatacloud.parse_task_record(ace_record(response)).state is TaskState.COMPLETED


def test_ace_task_id_falls_back_to_the_response() -> None:
    record = ace_record(SUCCESS)
    del record["id"]
    assert acedatacloud.parse_task_record(record).task_id == TASK_ID


@pytest.mark.parametrize("record", [[], "x", {"request": {}}])
def test_ace_unreadable_record_raises_provider_unavailable(record: object) -> None:
    with pytest.raises(ProviderUnavailable):
        acedatacloud.parse_task_record(record)


# ---- AceDataCloud create answers and errors --------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"task_id": TASK_ID},
        {"success": True, "task_id": TASK_ID},
        {"data": {"task_id": TASK_ID}},
        {"id": TASK_ID},
    ],
)
def test_ace_create_answer_shapes_all_give_the_task_id(body: dict) -> None:
    assert acedatacloud.parse_create_answer(body) == TASK_ID


def test_ace_create_answer_with_error_body_raises_the_mapped_error() -> None:
    body = {"success": False, "error": {"code": "used_up", "message": "no balance"}, "trace_id": "t"}
    with pytest.raises(BalanceExhausted):
        acedatacloud.parse_create_answer(body)


@pytest.mark.parametrize("code", ["api_error", "timeout"])
def test_ace_create_answer_with_a_server_error_may_have_been_submitted(code: str) -> None:
    body = {"success": False, "error": {"code": code, "message": "upstream trouble"}, "trace_id": "t"}
    with pytest.raises(ProviderUnavailable) as info:
        acedatacloud.parse_create_answer(body)
    assert info.value.maybe_submitted is True  # so the engine does not send it again


def test_ace_create_answer_without_id_may_have_been_submitted() -> None:
    with pytest.raises(ProviderUnavailable) as info:
        acedatacloud.parse_create_answer({"success": True})
    assert info.value.maybe_submitted is True


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (400, "bad_request", InvalidRequest),
        (400, "api_not_implemented", InvalidRequest),
        (400, "no_token", AuthenticationFailed),
        (400, "token_mismatched", AuthenticationFailed),
        (401, "token_mismatched", AuthenticationFailed),
        (401, "invalid_token", AuthenticationFailed),
        (401, "token_expired", AuthenticationFailed),
        (401, None, AuthenticationFailed),
        (403, "disabled", AuthenticationFailed),
        (403, "used_up", BalanceExhausted),
        (403, "forbidden", ModerationRefused),
        (404, "no_api", InvalidRequest),
        (422, None, InvalidRequest),
        (429, "too_many_requests", RateLimited),
        (429, "rate_limited", RateLimited),
        (500, "api_error", ProviderUnavailable),
        (502, None, ProviderUnavailable),
        (504, "timeout", ProviderUnavailable),
    ],
)
def test_ace_error_table(status: int, code: str | None, expected: type) -> None:
    body = (
        {"error": {"code": code, "message": "words"}, "trace_id": "trace-9"} if code else {"message": "words"}
    )
    err = acedatacloud.map_error(status, body, "")
    assert type(err) is expected
    assert err.status == status
    assert err.code == code
    assert "words" in err.message


def test_ace_error_keeps_the_trace_id_for_support_tickets() -> None:
    err = acedatacloud.map_error(500, {"error": {"code": "api_error", "message": "x"}, "trace_id": "abc"}, "")
    assert err.trace_id == "abc"
    assert "trace_id=abc" in str(err)


def test_ace_error_with_html_body_quotes_a_snippet() -> None:
    err = acedatacloud.map_error(502, None, "<html><body>502 Bad Gateway</body></html>")
    assert isinstance(err, ProviderUnavailable)
    assert "502 Bad Gateway" in str(err)


# ---- UmamiAI generations (luma-apis.md §3) ------------------------------------------------------------------


def umami_generation(state: str, video: dict | None = None, **extra: object) -> dict:
    return {
        "id": TASK_ID,
        "prompt": "a cat",
        "state": state,
        "created_at": "2024-07-29T21:25:14.144179Z",
        "video": video,
        "liked": None,
        "estimate_wait_seconds": None,
        **extra,
    }


VIDEO = {
    "url": "https://storage.cdn-luma.com/v.mp4",
    "width": 1360,
    "height": 752,
    "thumbnail": "https://t/j.jpg",
}


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("pending", TaskState.QUEUED),
        ("queued", TaskState.QUEUED),
        ("processing", TaskState.RUNNING),
        ("dreaming", TaskState.RUNNING),
        ("something_new", TaskState.RUNNING),
    ],
)
def test_umami_waiting_states(state: str, expected: TaskState) -> None:
    assert umami.parse_generation(umami_generation(state)).state is expected


def test_umami_completed_uses_the_generation_id_as_video_id() -> None:
    result = umami.parse_generation(umami_generation("completed", VIDEO))
    assert result.state is TaskState.COMPLETED
    assert result.video_id == TASK_ID
    assert result.video_url == VIDEO["url"]
    assert (result.video_width, result.video_height) == (1360, 752)
    assert result.thumbnail_url == "https://t/j.jpg"


def test_umami_thumbnail_may_be_an_object() -> None:
    video = {**VIDEO, "thumbnail": {"url": "https://t/k.jpg", "width": 10}}
    assert umami.parse_generation(umami_generation("completed", video)).thumbnail_url == "https://t/k.jpg"


def test_umami_completed_without_video_is_failed() -> None:
    assert umami.parse_generation(umami_generation("completed", None)).state is TaskState.FAILED


def test_umami_failed_carries_the_reason() -> None:
    result = umami.parse_generation(umami_generation("failed", failure_reason="Job error"))
    assert result.state is TaskState.FAILED
    assert result.failure_reason == "Job error"
    assert result.moderated is False


def test_umami_moderation_failure_is_flagged() -> None:
    result = umami.parse_generation(umami_generation("failed", failure_reason="Frame moderation failed"))
    assert result.moderated is True


def test_umami_failed_without_reason_gets_a_default() -> None:
    result = umami.parse_generation(umami_generation("failed"))
    assert result.state is TaskState.FAILED
    assert result.failure_reason


@pytest.mark.parametrize(
    "body",
    [umami_generation("pending"), [umami_generation("pending")], {"data": [umami_generation("pending")]}],
)
def test_umami_create_answer_may_be_object_or_list(body: object) -> None:
    assert umami.parse_create_answer(body) == TASK_ID


@pytest.mark.parametrize("body", [{}, [], {"message": "ok"}])
def test_umami_create_answer_without_id_may_have_been_submitted(body: object) -> None:
    with pytest.raises(ProviderUnavailable) as info:
        umami.parse_create_answer(body)
    assert info.value.maybe_submitted is True


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            400,
            {"statusCode": 400, "message": ["user_prompt should not be empty"], "error": "Bad Request"},
            InvalidRequest,
        ),
        (400, {"detail": "Body validation error!"}, InvalidRequest),
        (401, {"message": "This request requires a valid API key."}, AuthenticationFailed),
        (
            403,
            {"statusCode": 403, "message": "You've run out of credits.", "error": "Forbidden"},
            BalanceExhausted,
        ),
        (403, {"detail": "Forbidden"}, BalanceExhausted),
        (400, {"message": "Prompt moderation failed"}, ModerationRefused),
        (404, {"message": "Not Found"}, InvalidRequest),
        (429, {"message": "Too Many Requests"}, RateLimited),
        (500, None, ProviderUnavailable),
        (503, {"detail": [{"msg": "upstream down"}]}, ProviderUnavailable),
    ],
)
def test_umami_error_table(status: int, body: object, expected: type) -> None:
    err = umami.map_error(status, body, "")
    assert type(err) is expected
    assert err.status == status


def test_umami_nest_validation_list_is_joined_into_the_message() -> None:
    body = {"statusCode": 400, "message": ["a must be set", "b too long"], "error": "Bad Request"}
    assert "a must be set; b too long" in umami.map_error(400, body, "").message


# ---- shared HTTP helpers ----------------------------------------------------------------------------------


def test_backoff_doubles_from_base_and_is_capped() -> None:
    policy = RetryPolicy(base=1.0, cap=16.0, jitter=0)
    assert [policy.delay(n) for n in range(1, 7)] == [1, 2, 4, 8, 16, 16]


def test_backoff_jitter_stays_within_bounds() -> None:
    policy = RetryPolicy(base=1.0, cap=16.0, jitter=0.5)
    delays = [policy.delay(1) for _ in range(200)]
    assert all(1.0 <= d <= 1.5 for d in delays)
    assert len(set(delays)) > 1  # it is actually random


def test_retry_after_replaces_backoff_and_is_capped_at_60s() -> None:
    policy = RetryPolicy(base=1.0, jitter=0)
    assert policy.delay(1, retry_after=7) == 7
    assert policy.delay(4, retry_after=0.25) == 0.25
    assert policy.delay(1, retry_after=3600) == 60


def test_parse_retry_after_seconds_and_dates() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now) == 30.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now=now) == 0.0
    assert parse_retry_after("-4") == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"error": {"code": "x", "message": "ace words"}, "trace_id": "t"}, "ace words"),
        ({"statusCode": 400, "message": "nest words", "error": "Bad Request"}, "nest words"),
        ({"detail": "fastapi words"}, "fastapi words"),
        ({"detail": [{"msg": "one"}, {"msg": "two"}]}, "one; two"),
        ({"error": "plain"}, "plain"),
        ("bare", "bare"),
        ({}, None),
        (None, None),
    ],
)
def test_body_message_reads_every_envelope(body: object, expected: str | None) -> None:
    assert body_message(body) == expected


def test_unique_chunks_dedupes_and_splits() -> None:
    assert unique_chunks(["a", "b", "a", "c", "", "d", "e"], 2) == [["a", "b"], ["c", "d"], ["e"]]
    assert unique_chunks([], 50) == []


def test_secret_never_shows_itself() -> None:
    secret = Secret("sk-very-secret")
    assert "sk-very" not in repr(secret)
    assert "sk-very" not in str(secret)
    assert secret.redact("echo sk-very-secret back") == "echo *** back"
    assert secret.reveal() == "sk-very-secret"
