"""The UmamiAI Luma client (the AI/ML API "Luma AI v1 legacy" surface): its wire format, its error envelope,
and the function that turns one of its generation objects into a TaskResult."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

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
    body_message,
    error_message,
    looks_like_moderation,
    unique_chunks,
    wanted_results,
)
from bot.luma.types import ExtendRequest, GenerateRequest, TaskResult, TaskState

log = logging.getLogger(__name__)

PROVIDER = "umami"
DEFAULT_BASE_URL = "https://api.umamiai.xyz/v1"

# States of the Luma web app's generation object (pending → processing → completed), plus the official API's
# names (queued → dreaming) which AI/ML API's newer surface uses, in case the legacy one drifts towards them.
_QUEUED_STATES = frozenset({"pending", "queued"})
_RUNNING_STATES = frozenset({"processing", "dreaming", "running", "in_progress"})
_DONE_STATES = frozenset({"completed", "complete", "succeeded", "success", "done"})
_FAILED_STATES = frozenset({"failed", "failure", "error", "errored", "cancelled", "canceled"})


def map_error(status: int, body: Any, text: str) -> LumaError:
    """Status + body in any of the envelopes AI/ML API might use → a typed error. Only the status is reliable,
    so the message is consulted only to tell moderation and credits apart."""
    kwargs: dict[str, Any] = {"status": status}
    message = error_message(PROVIDER, status, body, text)
    words = body_message(body) or ""
    if status == 429:
        return RateLimited(message, **kwargs)
    if status >= 500:
        return ProviderUnavailable(message, **kwargs)
    if status == 401:
        return AuthenticationFailed(message, **kwargs)
    if looks_like_moderation(words):
        return ModerationRefused(message, **kwargs)
    if status == 402 or (status == 403 and "credit" in words.lower()):
        return BalanceExhausted(message, **kwargs)
    if status == 403:
        # AI/ML API documents 403 only for "You've run out of credits"; an unknown 403 is most likely that too,
        # but it may be a revoked key, so say so in the message.
        return BalanceExhausted(message + " (out of credits, or the key lacks permission)", **kwargs)
    return InvalidRequest(message, **kwargs)


def _generations(body: Any) -> list[Any]:
    """The generation objects in an answer: a list, a single object, or a list under a wrapper key."""
    if isinstance(body, list):
        return body
    if isinstance(body, Mapping):
        if "id" in body:
            return [body]
        for key in ("generations", "data", "items"):
            if isinstance(body.get(key), list):
                return body[key]
            if isinstance(body.get(key), Mapping):
                return [body[key]]
    return []


def parse_create_answer(body: Any) -> str:
    """The generation id from a create answer, which may be the object or a list of one object."""
    for item in _generations(body):
        if isinstance(item, Mapping):
            gen_id = as_str(item.get("id"))
            if gen_id:
                return gen_id
    # It answered 2xx, so a paid generation may exist even though we cannot name it.
    raise ProviderUnavailable(f"{PROVIDER}: create answer has no generation id", maybe_submitted=True)


def parse_generation(obj: Any) -> TaskResult:
    """One UmamiAI generation `{id, prompt, state, created_at, video: {url, width, height, thumbnail} | null}`
    → TaskResult. A completed generation's video id is its own id (that is what /extend takes)."""
    if not isinstance(obj, Mapping):
        raise ProviderUnavailable(f"{PROVIDER}: generation is not a JSON object")
    task_id = as_str(obj.get("id"))
    if not task_id:
        raise ProviderUnavailable(f"{PROVIDER}: generation has no id")
    raw = dict(obj)
    state = str(obj.get("state") or "").strip().lower()
    video = found if isinstance(found := obj.get("video"), Mapping) else {}
    video_url = as_str(video.get("url"))

    if state in _FAILED_STATES:
        reason = _failure_reason(obj)
        return TaskResult(
            task_id=task_id,
            state=TaskState.FAILED,
            failure_reason=reason or "The provider reported a failure without a reason.",
            moderated=looks_like_moderation(reason),
            raw=raw,
        )
    if state in _DONE_STATES or (video_url and state not in _QUEUED_STATES | _RUNNING_STATES):
        if not video_url:
            return TaskResult(
                task_id=task_id,
                state=TaskState.FAILED,
                failure_reason="The provider reported success but sent no video URL.",
                raw=raw,
            )
        thumbnail = video.get("thumbnail")
        thumbnail_url = as_str(thumbnail.get("url")) if isinstance(thumbnail, Mapping) else as_str(thumbnail)
        return TaskResult(
            task_id=task_id,
            state=TaskState.COMPLETED,
            video_id=task_id,
            video_url=video_url,
            video_width=as_int(video.get("width")),
            video_height=as_int(video.get("height")),
            thumbnail_url=thumbnail_url,
            raw=raw,
        )
    if state in _QUEUED_STATES:
        return TaskResult(task_id=task_id, state=TaskState.QUEUED, raw=raw)
    # processing/dreaming, or a state we do not know yet: keep waiting; the engine's deadline ends it.
    return TaskResult(task_id=task_id, state=TaskState.RUNNING, raw=raw)


def _failure_reason(obj: Mapping[str, Any]) -> str | None:
    for key in ("failure_reason", "error", "message", "detail"):
        value = obj.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
        if isinstance(value, Mapping):
            text = body_message({"error": value}) or as_str(value.get("message"))
            if text:
                return text
    return None


class UmamiClient(JsonProviderClient):
    """UmamiAI's Luma v1-legacy API. It has no callbacks, so `callback_url` is ignored and jobs are polled."""

    provider = PROVIDER
    default_base_url = DEFAULT_BASE_URL
    map_error = staticmethod(map_error)
    max_batch = 50
    # Undocumented; AceDataCloud's 1 req/s is the safe assumption for a thinly documented reseller.
    min_poll_interval = 1.0

    async def generate(self, req: GenerateRequest) -> str:
        body: dict[str, Any] = {
            "user_prompt": req.prompt,
            "aspect_ratio": req.aspect_ratio,
            "expand_prompt": req.enhancement,
        }
        if req.loop:
            # Only sent when wanted: the legacy schema does not list `loop`, so a false one is left out.
            body["loop"] = True
        _put(body, "image_url", req.start_image_url)
        _put(body, "image_end_url", req.end_image_url)
        answer = await self._http.request("POST", "/luma-ai/generations", json_body=body, create=True)
        return parse_create_answer(answer)

    async def extend(self, req: ExtendRequest) -> str:
        if not req.video_id:
            raise InvalidRequest(
                f"{PROVIDER}: extending a video by its URL is not supported; give the video id instead"
            )
        if req.video_url:
            raise InvalidRequest(f"{PROVIDER}: extend needs exactly one of video_id and video_url")
        body: dict[str, Any] = {"user_prompt": req.prompt}
        _put(body, "image_end_url", req.end_image_url)
        # quote(safe=""): the id goes into the path, so a "/" or "?" in it must not change which URL we call.
        path = f"/luma-ai/generations/{quote(req.video_id, safe='')}/extend"
        answer = await self._http.request("POST", path, json_body=body, create=True)
        return parse_create_answer(answer)

    async def get_task(self, task_id: str) -> TaskResult:
        try:
            results = await self._fetch([task_id])
        except InvalidRequest as exc:
            if exc.status == 404:
                raise TaskNotFound(exc.message, status=404) from None
            raise
        if task_id not in results:
            raise TaskNotFound(f"{PROVIDER}: no generation {task_id!r}")
        return results[task_id]

    async def verify_token(self) -> None:
        # Listing a generation id that cannot exist is free: 401 for a bad key, else an empty list or a 404.
        try:
            await self._http.request("GET", "/luma-ai/generation", params=[("ids[0]", str(uuid.uuid4()))])
        except (InvalidRequest, TaskNotFound):
            return

    async def get_tasks(self, task_ids: Sequence[str]) -> dict[str, TaskResult]:
        results: dict[str, TaskResult] = {}
        for chunk in unique_chunks(task_ids, self.max_batch):
            results.update(await self._fetch(chunk))
        return results

    async def _fetch(self, ids: list[str]) -> dict[str, TaskResult]:
        # AI/ML API names the parameter `ids[]`; indexed keys keep the order explicit for any PHP/Nest parser.
        params = [(f"ids[{i}]", task_id) for i, task_id in enumerate(ids)]
        body = await self._http.request("GET", "/luma-ai/generation", params=params)
        if not isinstance(body, list | Mapping):
            raise ProviderUnavailable(f"{PROVIDER}: generation list answer is not a list")
        return wanted_results(_generations(body), parse_generation, ids, PROVIDER)


def _put(body: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        body[key] = value
