"""The Luma Dream Machine API client (Ray 2 and Ray Flash 2; luma-apis.md §2): `POST /generations/video` (the
path SDK 1.21 posts to), `GET /generations/{id}`, `GET /credits`, keyframes for frames and extensions, and
the function that turns a Generation object into a TaskResult. Callbacks POST the Generation object."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.luma.capabilities import DREAM_MACHINE
from bot.luma.errors import InvalidRequest, LumaError, ProviderUnavailable
from bot.luma.http import as_str, looks_like_moderation
from bot.luma.providers.luma_common import GenerationsClient, map_luma_error
from bot.luma.types import ExtendRequest, GenerateRequest, TaskFailure, TaskResult, TaskState

PROVIDER = DREAM_MACHINE.name
DEFAULT_BASE_URL = DREAM_MACHINE.default_base_url
DEFAULT_MODEL = "ray-2"

# failure_reason texts that name a problem with the member's input rather than the service ("Failed to read
# user input frames"); moderation is recognised by its own words.
_INPUT_WORDS = ("input frame", "read user input", "unsupported", "too large")


def map_error(status: int, body: Any, text: str) -> LumaError:
    return map_luma_error(PROVIDER, status, body, text)


def parse_generation(obj: Any) -> TaskResult:
    """A Generation (`{id, state: queued|dreaming|completed|failed, failure_reason, assets: {video, image}}`)
    → TaskResult. The generation id is the video id an extension names."""
    if not isinstance(obj, Mapping):
        raise ProviderUnavailable(f"{PROVIDER}: generation is not a JSON object")
    task_id = as_str(obj.get("id"))
    if not task_id:
        raise ProviderUnavailable(f"{PROVIDER}: generation has no id")
    raw = dict(obj)
    state = str(obj.get("state") or "").strip().lower()
    assets = found if isinstance(found := obj.get("assets"), Mapping) else {}
    if state == "queued":
        return TaskResult(task_id=task_id, state=TaskState.QUEUED, raw=raw)
    if state == "completed":
        url = as_str(assets.get("video"))
        if url is None:
            return TaskResult(
                task_id=task_id,
                state=TaskState.FAILED,
                failure_reason="The provider finished without a video.",
                failure=TaskFailure.TRANSIENT,
                raw=raw,
            )
        return TaskResult(
            task_id=task_id,
            state=TaskState.COMPLETED,
            video_id=task_id,
            video_url=url,
            thumbnail_url=as_str(assets.get("image")),
            raw=raw,
        )
    if state == "failed":
        reason = as_str(obj.get("failure_reason")) or "The provider reported a failure without a reason."
        moderated = looks_like_moderation(reason)
        if moderated:
            failure = TaskFailure.MODERATION
        elif any(word in reason.lower() for word in _INPUT_WORDS):
            failure = TaskFailure.INVALID
        else:
            failure = TaskFailure.OTHER
        return TaskResult(
            task_id=task_id,
            state=TaskState.FAILED,
            failure_reason=reason,
            failure=failure,
            moderated=moderated,
            raw=raw,
        )
    # "dreaming", and any state added later: keep polling.
    return TaskResult(task_id=task_id, state=TaskState.RUNNING, raw=raw)


def _image(url: str | None) -> dict[str, str] | None:
    return {"type": "image", "url": url} if url else None


class DreamMachineClient(GenerationsClient):
    provider = PROVIDER
    default_base_url = DEFAULT_BASE_URL
    map_error = staticmethod(map_error)
    parse = staticmethod(parse_generation)

    async def generate(self, req: GenerateRequest) -> str:
        body = self._body(req.prompt, req.model, req.resolution, req.callback_url)
        body["aspect_ratio"] = req.aspect_ratio
        body["duration"] = req.duration
        if req.loop:
            body["loop"] = True
        keyframes = {
            k: v
            for k, v in (("frame0", _image(req.start_image_url)), ("frame1", _image(req.end_image_url)))
            if v
        }
        if keyframes:
            body["keyframes"] = keyframes
        return await self._create(body)

    async def extend(self, req: ExtendRequest) -> str:
        if not req.video_id or req.video_url:
            raise InvalidRequest(f"{PROVIDER}: a video is extended by its generation id alone, not by a link")
        body = self._body(req.prompt, req.model, req.resolution, req.callback_url)
        keyframes: dict[str, Any] = {"frame0": {"type": "generation", "id": req.video_id}}
        if req.end_image_url:
            keyframes["frame1"] = _image(req.end_image_url)
        body["keyframes"] = keyframes
        return await self._create(body)

    @staticmethod
    def _body(prompt: str, model: str | None, resolution: str | None, callback_url: str | None) -> dict:
        body: dict[str, Any] = {"generation_type": "video", "model": model or DEFAULT_MODEL, "prompt": prompt}
        if resolution:
            body["resolution"] = resolution
        if callback_url:
            body["callback_url"] = callback_url
        return body

    async def _create(self, body: dict[str, Any]) -> str:
        return await self._post_create("/generations/video", {k: v for k, v in body.items() if v is not None})

    async def verify_token(self) -> None:
        """`GET /credits` costs nothing: 401 means the key is refused."""
        await self._http.request("GET", "/credits")
