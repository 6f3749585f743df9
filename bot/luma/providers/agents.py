"""The Luma Agents API client (Ray 3.2; luma-apis.md §5): `POST /generations`, `GET /generations/{id}`, its
failure codes, and the function that turns a Generation object into a TaskResult. It has no callbacks and no
batch lookup; result links are presigned for one hour, so the generation id is what we keep."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.luma.capabilities import LUMA_AGENTS
from bot.luma.errors import InvalidRequest, LumaError, ProviderUnavailable, TaskNotFound
from bot.luma.http import as_str
from bot.luma.providers.luma_common import NIL_GENERATION, GenerationsClient, map_luma_error
from bot.luma.types import ExtendRequest, GenerateRequest, TaskFailure, TaskResult, TaskState

PROVIDER = LUMA_AGENTS.name
DEFAULT_BASE_URL = LUMA_AGENTS.default_base_url
MODEL = "ray-3.2"

# The SDK's GenerationFailureCode, by what each means for the job (its docs: generation_failed and
# output_not_found are worth retrying; content_moderated needs another prompt; budget_exhausted needs funds).
_FAILURES: dict[str, TaskFailure] = {
    "content_moderated": TaskFailure.MODERATION,
    "generation_failed": TaskFailure.TRANSIENT,
    "output_not_found": TaskFailure.TRANSIENT,
    "rate_limited": TaskFailure.TRANSIENT,
    "budget_exhausted": TaskFailure.BALANCE,
    "image_too_large": TaskFailure.INVALID,
    "unsupported_format": TaskFailure.INVALID,
    "corrupt_input": TaskFailure.INVALID,
    "invalid_request": TaskFailure.INVALID,
}


def map_error(status: int, body: Any, text: str) -> LumaError:
    return map_luma_error(PROVIDER, status, body, text)


def parse_generation(obj: Any) -> TaskResult:
    """A Generation (`{id, state, output: [{type, url}], failure_code, failure_reason, ...}`) → TaskResult.
    The generation id is also the video id: it is what an extension names."""
    if not isinstance(obj, Mapping):
        raise ProviderUnavailable(f"{PROVIDER}: generation is not a JSON object")
    task_id = as_str(obj.get("id"))
    if not task_id:
        raise ProviderUnavailable(f"{PROVIDER}: generation has no id")
    raw = dict(obj)
    state = str(obj.get("state") or "").strip().lower()
    if state == "queued":
        return TaskResult(task_id=task_id, state=TaskState.QUEUED, raw=raw)
    if state == "completed":
        url = _video_url(obj.get("output"))
        if url is None:
            return _failed(task_id, raw, "output_not_found", "The provider finished without a video.")
        return TaskResult(
            task_id=task_id, state=TaskState.COMPLETED, video_id=task_id, video_url=url, raw=raw
        )
    if state == "failed":
        code = as_str(obj.get("failure_code"))
        reason = as_str(obj.get("failure_reason")) or "The provider reported a failure without a reason."
        return _failed(task_id, raw, code, reason)
    # "processing", and any state added later: keep polling.
    return TaskResult(task_id=task_id, state=TaskState.RUNNING, raw=raw)


def _video_url(output: Any) -> str | None:
    if not isinstance(output, list):
        return None
    urls = [(item.get("type"), as_str(item.get("url"))) for item in output if isinstance(item, Mapping)]
    for kind, url in urls:
        if url and kind == "video":
            return url
    return next((url for _, url in urls if url), None)


def _failed(task_id: str, raw: dict[str, Any], code: str | None, reason: str) -> TaskResult:
    failure = _FAILURES.get(code or "", TaskFailure.OTHER)
    return TaskResult(
        task_id=task_id,
        state=TaskState.FAILED,
        failure_reason=reason,
        failure_code=code,
        failure=failure,
        moderated=failure is TaskFailure.MODERATION,
        raw=raw,
    )


def _url_ref(url: str | None) -> dict[str, str] | None:
    return {"url": url} if url else None


class LumaAgentsClient(GenerationsClient):
    provider = PROVIDER
    default_base_url = DEFAULT_BASE_URL
    map_error = staticmethod(map_error)
    parse = staticmethod(parse_generation)

    async def generate(self, req: GenerateRequest) -> str:
        video: dict[str, Any] = {}
        _put(video, "duration", req.duration)
        _put(video, "resolution", req.resolution)
        if req.loop:
            video["loop"] = True
        _put(video, "start_frame", _url_ref(req.start_image_url))
        _put(video, "end_frame", _url_ref(req.end_image_url))
        return await self._create(req.prompt, req.model, req.aspect_ratio, req.user_id, video)

    async def extend(self, req: ExtendRequest) -> str:
        if not req.video_id or req.video_url:
            raise InvalidRequest(f"{PROVIDER}: a video is extended by its generation id alone, not by a link")
        video: dict[str, Any] = {"start_frame": {"generation_id": req.video_id}}
        _put(video, "resolution", req.resolution)
        _put(video, "end_frame", _url_ref(req.end_image_url))
        return await self._create(req.prompt, req.model, None, req.user_id, video)

    async def _create(
        self, prompt: str, model: str | None, aspect_ratio: str | None, user_id: str | None, video: dict
    ) -> str:
        body: dict[str, Any] = {"model": model or MODEL, "type": "video", "prompt": prompt}
        _put(body, "aspect_ratio", aspect_ratio)
        _put(body, "user_id", user_id)
        if video:
            body["video"] = video
        return await self._post_create("/generations", body)

    async def verify_token(self) -> None:
        """One free request: a lookup of a generation that cannot exist (401 bad key, 404 good key)."""
        try:
            await self.get_task(NIL_GENERATION)
        except TaskNotFound:
            return


def _put(body: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        body[key] = value
