"""The AceDataCloud Luma client: its wire format (POST /luma/videos, POST /luma/tasks), its error codes, and
the one function that turns an AceDataCloud task record into a TaskResult."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

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
from bot.luma.http import (
    JsonProviderClient,
    as_int,
    as_str,
    body_code,
    body_message,
    body_trace_id,
    error_message,
    looks_like_moderation,
    unique_chunks,
    wanted_results,
)
from bot.luma.types import ExtendRequest, GenerateRequest, TaskResult, TaskState

log = logging.getLogger(__name__)

PROVIDER = "acedatacloud"
DEFAULT_BASE_URL = "https://api.acedata.cloud"

_AUTH_CODES = frozenset({"invalid_token", "token_expired", "token_mismatched", "no_token", "disabled"})
_RATE_CODES = frozenset({"too_many_requests", "rate_limited"})
_SERVER_CODES = frozenset({"api_error", "timeout"})

# response.state values. The documented ones are pending/processing/completed/failed; the rest are synonyms
# other Luma surfaces use, accepted so a renamed state does not leave a job polling forever.
_DONE_STATES = frozenset({"completed", "complete", "succeeded", "success", "done", "finished"})
_FAILED_STATES = frozenset({"failed", "failure", "error", "errored", "cancelled", "canceled"})
_WAITING_STATES = frozenset({"pending", "processing", "queued", "dreaming", "running", "in_progress"})


def map_error(status: int, body: Any, text: str) -> LumaError:
    """AceDataCloud's status + `{"error": {"code", "message"}, "trace_id"}` → a typed error."""
    code = body_code(body)
    kwargs: dict[str, Any] = {"status": status, "code": code, "trace_id": body_trace_id(body)}
    message = error_message(PROVIDER, status, body, text)
    if status == 429 or code in _RATE_CODES:
        return RateLimited(message, **kwargs)
    if status >= 500 or code in _SERVER_CODES:
        return ProviderUnavailable(message, **kwargs)
    # Checked before the status: AceDataCloud sends no_token and token_mismatched as 400, disabled as 403.
    if code in _AUTH_CODES or status == 401:
        return AuthenticationFailed(message, **kwargs)
    if code == "used_up" or status == 402:
        return BalanceExhausted(message, **kwargs)
    if code == "forbidden":
        return ModerationRefused(message, **kwargs)
    if status == 403:
        if looks_like_moderation(body_message(body)):
            return ModerationRefused(message, **kwargs)
        return AuthenticationFailed(message, **kwargs)
    return InvalidRequest(message, **kwargs)


def _error_in_body(body: Any) -> LumaError | None:
    """A 2xx answer that still carries `{"success": false, "error": {...}}`."""
    if (
        isinstance(body, Mapping)
        and isinstance(body.get("error"), Mapping)
        and body.get("success") is not True
    ):
        return map_error(200, body, "")
    return None


def parse_create_answer(body: Any) -> str:
    """The task id from a create answer: `task_id`, else `data.task_id`, else `id` (as the SDK reads it)."""
    if isinstance(body, Mapping):
        candidates = [body.get("task_id")]
        data = body.get("data")
        if isinstance(data, Mapping):
            candidates += [data.get("task_id"), data.get("id")]
        candidates.append(body.get("id"))
        for candidate in candidates:
            task_id = as_str(candidate)
            if task_id:
                return task_id
    err = _error_in_body(body)
    if isinstance(err, ProviderUnavailable):
        # A server error (`api_error`, `timeout`) inside a 200 answer says the provider broke while handling
        # the create, not that it refused it: a task may have started, and sending it again could pay twice.
        err.maybe_submitted = True
    if err is not None:
        raise err
    # It answered 2xx, so a paid task may exist even though we cannot name it.
    raise ProviderUnavailable(f"{PROVIDER}: create answer has no task id", maybe_submitted=True)


def parse_task_record(record: Any) -> TaskResult:
    """One AceDataCloud task record → TaskResult.

    The record has no top-level state; progress is read from `response` (luma-apis.md §1.2): no response →
    queued; pending/processing without `success` → running; `success: true` / completed → completed;
    `success: false` or state failed (possibly with no state at all) → failed. `finished_at` means the task
    has ended, so a record that has it is never reported as still waiting.
    """
    if not isinstance(record, Mapping):
        raise ProviderUnavailable(f"{PROVIDER}: task record is not a JSON object")
    response = record.get("response")
    if not isinstance(response, Mapping):
        response = {}
    task_id = as_str(record.get("id")) or as_str(response.get("task_id"))
    if not task_id:
        raise ProviderUnavailable(f"{PROVIDER}: task record has no id")
    raw = dict(record)
    finished = record.get("finished_at") is not None

    if not response:
        if finished:
            return _failed(task_id, raw, "The provider ended the task without a result.")
        return TaskResult(task_id=task_id, state=TaskState.QUEUED, raw=raw)

    success = response.get("success")
    state = str(response.get("state") or "").strip().lower()
    video_url = as_str(response.get("video_url"))
    error = response.get("error") if isinstance(response.get("error"), Mapping) else None

    if success is False or state in _FAILED_STATES:
        return _failed_from_response(task_id, raw, response, error)
    if success is True or state in _DONE_STATES:
        if video_url:
            return _completed(task_id, raw, response, video_url)
        if success is True or finished:
            return _failed(task_id, raw, "The provider reported success but sent no video URL.")
        return TaskResult(task_id=task_id, state=TaskState.RUNNING, raw=raw)
    if state in _WAITING_STATES and not finished:
        return TaskResult(task_id=task_id, state=TaskState.RUNNING, raw=raw)
    # No success flag and no state we know (or a waiting state contradicted by finished_at): judge by content.
    if video_url:
        return _completed(task_id, raw, response, video_url)
    if error is not None or finished:
        return _failed_from_response(task_id, raw, response, error)
    return TaskResult(task_id=task_id, state=TaskState.RUNNING, raw=raw)


def _completed(task_id: str, raw: dict[str, Any], response: Mapping[str, Any], video_url: str) -> TaskResult:
    return TaskResult(
        task_id=task_id,
        state=TaskState.COMPLETED,
        video_id=as_str(response.get("video_id")),
        video_url=video_url,
        video_width=as_int(response.get("video_width")),
        video_height=as_int(response.get("video_height")),
        thumbnail_url=as_str(response.get("thumbnail_url")),
        thumbnail_width=as_int(response.get("thumbnail_width")),
        thumbnail_height=as_int(response.get("thumbnail_height")),
        raw=raw,
    )


def _failed_from_response(
    task_id: str, raw: dict[str, Any], response: Mapping[str, Any], error: Mapping[str, Any] | None
) -> TaskResult:
    code = as_str(error.get("code")) if error else None
    reason = (as_str(error.get("message")) if error else None) or as_str(response.get("message"))
    moderated = code == "forbidden" or looks_like_moderation(reason)
    return _failed(task_id, raw, reason or "The provider reported a failure without a reason.", moderated)


def _failed(task_id: str, raw: dict[str, Any], reason: str, moderated: bool = False) -> TaskResult:
    return TaskResult(
        task_id=task_id, state=TaskState.FAILED, failure_reason=reason, moderated=moderated, raw=raw
    )


class AceDataCloudClient(JsonProviderClient):
    """AceDataCloud's Luma API. Always submits with `async: true`: the default mode holds the HTTP call open
    for the 1–3 minutes a video takes."""

    provider = PROVIDER
    default_base_url = DEFAULT_BASE_URL
    map_error = staticmethod(map_error)
    # The MCP suggests batches of at most about 50 ids.
    max_batch = 50
    # "Stay under 1 req/s or you'll hit 429" (AceDataCloud async-task doc).
    min_poll_interval = 1.0

    async def generate(self, req: GenerateRequest) -> str:
        body: dict[str, Any] = {
            "action": "generate",
            "prompt": req.prompt,
            "aspect_ratio": req.aspect_ratio,
            "loop": req.loop,
            "enhancement": req.enhancement,
            "async": True,
        }
        _put(body, "start_image_url", req.start_image_url)
        _put(body, "end_image_url", req.end_image_url)
        _put(body, "callback_url", req.callback_url)
        answer = await self._http.request("POST", "/luma/videos", json_body=body, create=True)
        return parse_create_answer(answer)

    async def extend(self, req: ExtendRequest) -> str:
        if bool(req.video_id) == bool(req.video_url):
            raise InvalidRequest(f"{PROVIDER}: extend needs exactly one of video_id and video_url")
        body: dict[str, Any] = {"action": "extend", "prompt": req.prompt, "async": True}
        _put(body, "video_id", req.video_id)
        _put(body, "video_url", req.video_url)
        _put(body, "end_image_url", req.end_image_url)
        _put(body, "callback_url", req.callback_url)
        answer = await self._http.request("POST", "/luma/videos", json_body=body, create=True)
        return parse_create_answer(answer)

    async def get_task(self, task_id: str) -> TaskResult:
        try:
            body = await self._http.request(
                "POST", "/luma/tasks", json_body={"id": task_id, "action": "retrieve"}
            )
        except InvalidRequest as exc:
            # The answer for an unknown id is undocumented; a 404 other than "no such API" is the likely one.
            if exc.status == 404 and exc.code != "no_api":
                raise TaskNotFound(exc.message, status=404, code=exc.code, trace_id=exc.trace_id) from None
            raise
        if isinstance(body, Mapping) and "id" not in body and isinstance(body.get("data"), Mapping):
            body = body["data"]
        err = _error_in_body(body)
        if err is not None:
            raise err
        if not isinstance(body, Mapping) or not body.get("id"):
            # An empty answer is the other way an unknown id may come back.
            raise TaskNotFound(f"{PROVIDER}: no task {task_id!r}")
        result = parse_task_record(body)
        if result.task_id != task_id:
            raise TaskNotFound(f"{PROVIDER}: asked for task {task_id!r}, got {result.task_id!r}")
        return result

    async def verify_token(self) -> None:
        # Retrieving a task id that cannot exist is free; only the token decides between 401/invalid_token
        # and "no such task" (a 404 or an empty answer).
        try:
            body = await self._http.request(
                "POST", "/luma/tasks", json_body={"id": str(uuid.uuid4()), "action": "retrieve"}
            )
        except (InvalidRequest, TaskNotFound):
            return
        err = _error_in_body(body)
        if isinstance(err, AuthenticationFailed):
            raise err

    async def get_tasks(self, task_ids: Sequence[str]) -> dict[str, TaskResult]:
        results: dict[str, TaskResult] = {}
        for chunk in unique_chunks(task_ids, self.max_batch):
            body = await self._http.request(
                "POST", "/luma/tasks", json_body={"ids": chunk, "action": "retrieve_batch"}
            )
            items = body.get("items") if isinstance(body, Mapping) else None
            if not isinstance(items, list):
                err = _error_in_body(body)
                raise err or ProviderUnavailable(f"{PROVIDER}: batch answer has no items list")
            results.update(wanted_results(items, parse_task_record, chunk, PROVIDER))
        return results


def _put(body: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        body[key] = value
