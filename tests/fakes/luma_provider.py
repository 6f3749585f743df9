"""A fake Luma provider for tests: a real aiohttp server on 127.0.0.1 that speaks both AceDataCloud's and
UmamiAI's wire formats as /work/shared/luma-apis.md describes them, with tasks that advance over time (or
by hand), callbacks, fault injection, request counting and awaitable conditions instead of fixed sleeps.

Paths: AceDataCloud at `base_url` (`POST /luma/videos`, `POST /luma/tasks`); UmamiAI at `umami_base_url`
(`base_url + "/v1"`: `POST /luma-ai/generations`, `POST /luma-ai/generations/{id}/extend`,
`GET /luma-ai/generation?ids[0]=..`). Result videos are served from `GET /cdn/luma/<task_id>.mp4|.jpg`.

Prompt markers: "[moderate]" is refused at create with AceDataCloud's 403 `forbidden`; UmamiAI has no
documented create-time moderation answer, so there the generation fails later with a moderation reason (as
the Luma web app does). "[fail]" makes the task fail when it would have finished.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

ACE_API_ID = "94fc9028-5a9f-4875-aae4-38463bd30ac5"
UMAMI_PREFIX = "/v1"
MODERATE_MARKER = "[moderate]"
FAIL_MARKER = "[fail]"
MODERATION_MESSAGE = "Sorry! Our AI moderators feel your prompt might be against our community standards."
UMAMI_MODERATION_REASON = "Advanced prompt moderation failed"
DEFAULT_FAILURE_REASON = "Generation failed"

# Dimensions from AceDataCloud's examples (1360x752 for 16:9; 1552x656 with a start image); the rest scaled.
_DIMENSIONS = {
    "16:9": (1360, 752),
    "9:16": (752, 1360),
    "1:1": (1024, 1024),
    "4:3": (1184, 880),
    "3:4": (880, 1184),
    "21:9": (1552, 656),
    "9:21": (656, 1552),
}
_START_IMAGE_DIMENSIONS = (1552, 656)
# Enough of an MP4 header for anything that sniffs the type; the bytes are not a playable video.
FAKE_MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64
FAKE_JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 32 + b"\xff\xd9"

_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_ACE_DEFAULTS = {
    400: ("bad_request", "invalid request"),
    401: ("invalid_token", "The specified token is invalid or wrong."),
    402: ("used_up", "Your balance is used up."),
    403: ("used_up", "Your balance is used up, please top up."),
    404: ("not_found", "Not found."),
    422: ("bad_request", "Unprocessable request."),
    429: ("too_many_requests", "Too many requests, please slow down."),
    500: ("api_error", "Internal server error."),
    502: ("api_error", "fetch failed"),
    503: ("api_error", "Service unavailable."),
    504: ("timeout", "Timeout to generate the image."),
}
_UMAMI_DEFAULTS = {
    400: "Body validation error!",
    401: "This request requires a valid API key. Make sure you provide it in the Authorization header.",
    403: "You've run out of credits. Please top up your balance.",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal server error",
}


def ace_error_body(code: str, message: str, *, success: bool | None = None) -> dict[str, Any]:
    """AceDataCloud's error body; `success: false` appears only on some of their answers."""
    body: dict[str, Any] = {"error": {"code": code, "message": message}, "trace_id": str(uuid.uuid4())}
    if success is not None:
        body["success"] = success
    return body


def umami_error_body(status: int, message: str | list[str]) -> dict[str, Any]:
    """AI/ML API's NestJS-style error body (the envelope is uncertain; this is the likeliest one)."""
    return {"statusCode": status, "message": message, "error": _REASONS.get(status, "Error")}


@dataclass
class Fault:
    status: int | None
    body: Any
    path: str | None
    times: int | None
    retry_after: float | str | None
    raw_text: str | None
    delay: float | None
    drop: bool
    malformed: bool

    def matches(self, path: str, kind: str) -> bool:
        return self.path is None or self.path in (path, kind)


@dataclass
class RecordedRequest:
    method: str
    path: str
    json: Any
    kind: str  # "create" | "poll" | "media" | "other"
    provider: str  # "acedatacloud" | "umami" | "media"
    at: float  # loop.time() when it arrived, for measuring the gaps a client leaves between tries
    query: dict[str, list[str]]
    authorization: str | None


@dataclass
class CallbackRecord:
    url: str
    body: dict[str, Any]
    status: int | None
    error: str | None


@dataclass
class FakeTask:
    id: str
    provider: str
    kind: str  # "generate" | "extend"
    request: dict[str, Any]
    prompt: str
    aspect_ratio: str
    callback_url: str | None
    created_at: float
    trace_id: str
    video_id: str
    extends: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    outcome: str | None = None  # "completed" | "failed"
    failure_reason: str | None = None
    failure_code: str | None = None
    moderated: bool = False
    video_url: str | None = None
    thumbnail_url: str | None = None
    width: int = 1360
    height: int = 752
    done: asyncio.Event = field(default_factory=asyncio.Event)
    timer: asyncio.Task | None = None

    @property
    def finished(self) -> bool:
        return self.outcome is not None

    @property
    def state(self) -> str:
        """One of "queued", "running", "completed", "failed"."""
        if self.outcome:
            return self.outcome
        return "running" if self.started_at is not None else "queued"


class FakeLumaProvider:
    """See the module docstring. Timed mode (the default): a task is queued for `queue_time * time_scale`
    seconds, then running for `run_time * time_scale`, then completes (or fails, per the prompt markers).
    Manual mode (`manual=True`): tasks stay queued until a test calls `mark_running`, `finish` or `fail`.
    Typical use:

    async with FakeLumaProvider(token="t", manual=True) as fake:
        client = AceDataCloudClient(session, token="t", base_url=fake.base_url)
        task_id = await client.generate(GenerateRequest("a cat"))
        fake.finish(task_id)
    """

    def __init__(
        self,
        *,
        token: str = "test-token",
        queue_time: float = 0.02,
        run_time: float = 0.05,
        time_scale: float = 1.0,
        manual: bool = False,
        concurrency_limit: int | None = None,
        umami_create_status: int = 201,
        umami_create_list: bool = False,
        callback_repeats: int = 1,
        sync_timeout: float = 0.5,
    ) -> None:
        self.token = token
        self.queue_time = queue_time
        self.run_time = run_time
        self.time_scale = time_scale
        self.manual = manual
        self.concurrency_limit = concurrency_limit
        self.umami_create_status = umami_create_status
        self.umami_create_list = umami_create_list
        # AceDataCloud's callback retry policy is undocumented: a test can make every callback arrive twice.
        self.callback_repeats = callback_repeats
        self.sync_timeout = sync_timeout
        self.balance_exhausted = False

        self.tasks: dict[str, FakeTask] = {}
        self.requests: list[tuple[str, str, Any]] = []
        self.request_log: list[RecordedRequest] = []
        self.callbacks: list[CallbackRecord] = []
        self.max_concurrent_running = 0
        self.faults: list[Fault] = []

        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._session: aiohttp.ClientSession | None = None
        self._closing = asyncio.Event()
        self._changed = asyncio.Event()
        self._background: set[asyncio.Task] = set()

    # ---- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        # No access log: keeps captured logs about the client under test; shutdown stays quick because every
        # artificial wait in a handler also ends when `_closing` is set.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)  # port 0: the OS picks a free one
        await site.start()
        self._port = self._runner.addresses[0][1]
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))

    async def stop(self) -> None:
        self._closing.set()
        pending = [t.timer for t in self.tasks.values() if t.timer is not None] + list(self._background)
        for bg in pending:
            bg.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeLumaProvider:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """AceDataCloud's base URL (the server root)."""
        if self._port is None:
            raise RuntimeError("FakeLumaProvider is not started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def umami_base_url(self) -> str:
        return self.base_url + UMAMI_PREFIX

    def url_for(self, provider: str) -> str:
        return self.umami_base_url if provider == "umami" else self.base_url

    # ---- test controls ---------------------------------------------------------------------------------

    def set_token(self, token: str) -> None:
        self.token = token

    def set_balance_exhausted(self, exhausted: bool = True) -> None:
        self.balance_exhausted = exhausted

    def inject(
        self,
        status: int | None,
        body: Any = None,
        *,
        path: str | None = None,
        times: int | None = 1,
        retry_after: float | str | None = None,
        raw_text: str | None = None,
        delay: float | None = None,
        drop: bool = False,
        malformed: bool = False,
    ) -> Fault:
        """Make the next `times` matching requests (None: all of them) go wrong.

        `path` is an exact path ("/luma/tasks", "/v1/luma-ai/generation") or a kind ("create", "poll"); None
        matches every request. `status` with `body` (default: the provider's usual body for that status) or
        `raw_text` (sent as text/html) replaces the answer, after `delay` seconds if given. `status=None` with
        `delay` handles the request for real (a create does create the task) and then answers late: a slow
        provider. `drop=True` closes the connection after reading the request, without answering;
        `malformed=True` answers bytes that are not HTTP (aiohttp then raises ClientResponseError, whose repr
        holds the request headers: the case to test for token leaks).
        """
        fault = Fault(status, body, path, times, retry_after, raw_text, delay, drop, malformed)
        self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        self.faults.clear()

    def task(self, task_id: str) -> FakeTask:
        return self.tasks[task_id]

    def count(self, kind: str | None = None) -> int:
        """Requests received of `kind` ("create", "poll", "media", "other"), or all of them."""
        return sum(1 for r in self.request_log if kind is None or r.kind == kind)

    @property
    def unfinished(self) -> int:
        return sum(1 for t in self.tasks.values() if not t.finished)

    def mark_running(self, task_id: str) -> FakeTask:
        task = self.tasks[task_id]
        if task.started_at is None and not task.finished:
            task.started_at = time.time()
            self._poke()
        return task

    def finish(self, task_id: str, *, video_url: str | None = None) -> FakeTask:
        """Complete a task now (whatever its prompt says) and send its callback."""
        task = self._finishing(task_id)
        task.outcome = "completed"
        task.video_url = video_url or f"{self.base_url}/cdn/luma/{task.id}.mp4"
        task.thumbnail_url = f"{self.base_url}/cdn/luma/{task.id}.jpg"
        self._finished(task)
        return task

    def fail(
        self,
        task_id: str,
        reason: str = DEFAULT_FAILURE_REASON,
        *,
        moderated: bool = False,
        code: str | None = None,
    ) -> FakeTask:
        """Fail a task now and send its callback. A moderated failure carries AceDataCloud's `forbidden`."""
        task = self._finishing(task_id)
        task.outcome = "failed"
        task.failure_reason = reason
        task.moderated = moderated
        task.failure_code = code or ("forbidden" if moderated else "api_error")
        self._finished(task)
        return task

    async def wait_until(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        """Return once `predicate()` holds; re-checked on every request, task change and callback. Raises
        TimeoutError after `within` seconds, so a test that waits for something that never comes fails
        instead of hanging."""
        async with asyncio.timeout(within):
            while not predicate():
                await self._changed.wait()

    async def wait_for_requests(self, n: int, kind: str | None = None, within: float = 5.0) -> None:
        """Until at least `n` requests of `kind` ("create", "poll", ...; None: any) have arrived."""
        await self.wait_until(lambda: self.count(kind) >= n, within)

    async def wait_for_callbacks(self, n: int, within: float = 5.0) -> None:
        """Until at least `n` callback POSTs have been attempted (see `callbacks` for their outcome)."""
        await self.wait_until(lambda: len(self.callbacks) >= n, within)

    async def wait_for_state(self, task_id: str, state: str, within: float = 5.0) -> None:
        """Until the task is in `state`: "queued" | "running" | "completed" | "failed"."""
        await self.wait_until(lambda: task_id in self.tasks and self.tasks[task_id].state == state, within)

    # ---- internals: state --------------------------------------------------------------------------------

    def _poke(self) -> None:
        # Wake every waiter, then arm a fresh event for the next change (works from sync code too).
        self._changed.set()
        self._changed = asyncio.Event()

    def _finishing(self, task_id: str) -> FakeTask:
        task = self.tasks[task_id]
        if task.finished:
            raise ValueError(f"task {task_id} already {task.outcome}")
        if task.timer is not None and task.timer is not asyncio.current_task():
            task.timer.cancel()
        now = time.time()
        if task.started_at is None:
            task.started_at = now
        task.finished_at = now
        return task

    def _finished(self, task: FakeTask) -> None:
        task.done.set()
        self._poke()
        if task.callback_url and task.provider == "acedatacloud":
            self._spawn(self._send_callback(task))

    def _spawn(self, coro: Any) -> None:
        bg = asyncio.create_task(coro)
        self._background.add(bg)
        bg.add_done_callback(self._background.discard)

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the server stops (so stop() never waits on an artificial delay)."""
        try:
            await asyncio.wait_for(self._closing.wait(), seconds)
        except TimeoutError:
            pass

    async def _advance(self, task: FakeTask) -> None:
        await asyncio.sleep(self.queue_time * self.time_scale)
        self.mark_running(task.id)
        await asyncio.sleep(self.run_time * self.time_scale)
        if task.finished:
            return
        if FAIL_MARKER in task.prompt:
            self.fail(task.id)
        elif task.provider == "umami" and MODERATE_MARKER in task.prompt:
            self.fail(task.id, UMAMI_MODERATION_REASON, moderated=True)
        else:
            self.finish(task.id)

    async def _send_callback(self, task: FakeTask) -> None:
        assert self._session is not None and task.callback_url
        body = self._ace_result_body(task)
        body["trace_id"] = task.trace_id
        for _ in range(max(self.callback_repeats, 1)):
            status: int | None = None
            error: str | None = None
            try:
                async with self._session.post(task.callback_url, json=body) as resp:
                    status = resp.status
                    await resp.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = f"{type(exc).__name__}: {exc}"
            self.callbacks.append(CallbackRecord(task.callback_url, body, status, error))
            self._poke()

    def _new_task(
        self,
        provider: str,
        kind: str,
        request: dict[str, Any],
        prompt: str,
        aspect_ratio: str,
        callback_url: str | None,
        start_image: bool,
        extends: FakeTask | None = None,
    ) -> FakeTask:
        task_id = str(uuid.uuid4())
        width, height = _START_IMAGE_DIMENSIONS if start_image else _DIMENSIONS.get(aspect_ratio, (1360, 752))
        if extends is not None:
            width, height = extends.width, extends.height
        task = FakeTask(
            id=task_id,
            provider=provider,
            kind=kind,
            request=request,
            prompt=prompt,
            aspect_ratio=aspect_ratio,
            callback_url=callback_url,
            created_at=time.time(),
            trace_id=str(uuid.uuid4()),
            # AceDataCloud's video_id differs from its task_id; UmamiAI extends by the generation id.
            video_id=str(uuid.uuid4()) if provider == "acedatacloud" else task_id,
            extends=extends.id if extends else None,
            width=width,
            height=height,
        )
        self.tasks[task_id] = task
        self.max_concurrent_running = max(self.max_concurrent_running, self.unfinished)
        if not self.manual:
            task.timer = asyncio.create_task(self._advance(task))
        self._poke()
        return task

    def _find_video(
        self, provider: str, *, video_id: str | None = None, video_url: str | None = None
    ) -> FakeTask | None:
        for task in self.tasks.values():
            if task.provider != provider or task.outcome != "completed":
                continue
            if (video_id and task.video_id == video_id) or (video_url and task.video_url == video_url):
                return task
        return None

    # ---- internals: HTTP -----------------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        text = await request.text()
        invalid_json = False
        body: Any = None
        if text.strip():
            try:
                body = json.loads(text)
            except ValueError:
                invalid_json = True
        provider, kind = _classify(request.method, path)
        self.requests.append((request.method, path, body))
        self.request_log.append(
            RecordedRequest(
                method=request.method,
                path=path,
                json=body,
                kind=kind,
                provider=provider,
                at=asyncio.get_running_loop().time(),
                query={k: request.query.getall(k) for k in request.query},
                authorization=request.headers.get("Authorization"),
            )
        )
        self._poke()

        fault = next((f for f in self.faults if f.matches(path, kind)), None)
        if fault is not None:
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
            if fault.drop or fault.malformed:
                assert request.transport is not None
                if fault.malformed:
                    request.transport.write(b"HTTP/1.1 2x0 WHAT\r\nContent-Length: zz\r\n\r\n{}")
                request.transport.close()
                return web.Response(status=500)  # never written: the connection is gone
            if fault.status is not None:
                if fault.delay:
                    await self._pause(fault.delay)
                return self._fault_response(fault, provider)

        response = await self._handle(request, provider, kind, body, invalid_json)
        if fault is not None and fault.delay:
            await self._pause(fault.delay)
        return response

    def _fault_response(self, fault: Fault, provider: str) -> web.Response:
        assert fault.status is not None
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = str(fault.retry_after)
        if fault.raw_text is not None:
            return web.Response(
                status=fault.status, text=fault.raw_text, content_type="text/html", headers=headers
            )
        body = fault.body
        if body is None:
            body = self._default_error_body(provider, fault.status)
        return web.json_response(body, status=fault.status, headers=headers)

    def _default_error_body(self, provider: str, status: int) -> dict[str, Any]:
        if provider == "umami":
            return umami_error_body(status, _UMAMI_DEFAULTS.get(status, _REASONS.get(status, "Error")))
        code, message = _ACE_DEFAULTS.get(status, ("api_error", "Error."))
        return ace_error_body(code, message, success=False if status in (429, 500) else None)

    def _error(
        self, provider: str, status: int, code: str | None = None, message: str | None = None
    ) -> web.Response:
        if provider == "umami":
            body = umami_error_body(
                status, message or _UMAMI_DEFAULTS.get(status, _REASONS.get(status, "Error"))
            )
        else:
            default_code, default_message = _ACE_DEFAULTS.get(status, ("api_error", "Error."))
            body = ace_error_body(
                code or default_code,
                message or default_message,
                success=False if status in (429, 500) else None,
            )
        return web.json_response(body, status=status)

    async def _handle(
        self, request: web.Request, provider: str, kind: str, body: Any, invalid_json: bool
    ) -> web.StreamResponse:
        if provider == "media":
            return self._media(request.path)
        route = (request.method, _route(request.path))
        known = {
            ("POST", "ace-videos"),
            ("POST", "ace-tasks"),
            ("POST", "umami-create"),
            ("POST", "umami-extend"),
            ("GET", "umami-list"),
        }
        if route not in known:
            if provider == "umami":
                return self._error("umami", 404, message=f"Cannot {request.method} {request.path}")
            return self._error("acedatacloud", 404, "no_api", "API not found.")

        auth = request.headers.get("Authorization")
        if not auth:
            if provider == "umami":
                return self._error("umami", 401)
            return self._error("acedatacloud", 400, "no_token", "The token is missing.")
        if auth != f"Bearer {self.token}":
            return self._error(provider, 401)
        if invalid_json or (request.method == "POST" and not isinstance(body, dict)):
            return self._error(provider, 400, "bad_request", "invalid JSON body")

        if route == ("POST", "ace-videos"):
            return await self._ace_videos(body)
        if route == ("POST", "ace-tasks"):
            return self._ace_tasks(body)
        if route == ("POST", "umami-create"):
            return self._umami_create(body, None)
        if route == ("POST", "umami-extend"):
            return self._umami_create(body, request.path.split("/")[-2])
        return self._umami_list(request)

    def _create_refusal(self, provider: str) -> web.Response | None:
        if self.balance_exhausted:
            return self._error(provider, 403, "used_up", None)
        if self.concurrency_limit is not None and self.unfinished >= self.concurrency_limit:
            return self._error(
                provider,
                429,
                "too_many_requests",
                f"Too many tasks in flight (limit {self.concurrency_limit}).",
            )
        return None

    # AceDataCloud -----------------------------------------------------------------------------------------

    async def _ace_videos(self, body: dict[str, Any]) -> web.StreamResponse:
        action = body.get("action", "generate")
        if action not in ("generate", "extend"):
            return self._error("acedatacloud", 400, "bad_request", f"unknown action {action!r}")
        prompt = body.get("prompt")
        if action == "generate" and (not isinstance(prompt, str) or not prompt.strip()):
            return self._error("acedatacloud", 400, "bad_request", "prompt is required")
        prompt = prompt if isinstance(prompt, str) else ""
        if MODERATE_MARKER in prompt:
            return self._error("acedatacloud", 403, "forbidden", MODERATION_MESSAGE)
        source: FakeTask | None = None
        if action == "extend":
            if not body.get("video_id") and not body.get("video_url"):
                return self._error("acedatacloud", 400, "bad_request", "video_id or video_url is required")
            source = self._find_video(
                "acedatacloud", video_id=body.get("video_id"), video_url=body.get("video_url")
            )
            if source is None:
                return self._error("acedatacloud", 400, "bad_request", "the video to extend was not found")
        refusal = self._create_refusal("acedatacloud")
        if refusal is not None:
            return refusal
        task = self._new_task(
            "acedatacloud",
            action,
            dict(body),
            prompt,
            str(body.get("aspect_ratio") or "16:9"),
            body.get("callback_url"),
            bool(body.get("start_image_url")),
            extends=source,
        )
        if body.get("async") is True:
            return web.json_response({"success": True, "task_id": task.id})
        if body.get("callback_url"):
            return web.json_response({"task_id": task.id})
        # The synchronous default mode: hold the answer until the video is done (what the bot must avoid), or
        # answer 504 after `sync_timeout` (AceDataCloud's `timeout` field), so a client that forgets
        # `async: true` fails a test quickly instead of hanging it.
        done = asyncio.create_task(task.done.wait())
        closing = asyncio.create_task(self._closing.wait())
        await asyncio.wait({done, closing}, timeout=self.sync_timeout, return_when=asyncio.FIRST_COMPLETED)
        done.cancel()
        closing.cancel()
        if not task.finished:
            return self._error("acedatacloud", 504, "timeout")
        result = self._ace_result_body(task)
        return web.json_response(result, status=200 if task.outcome == "completed" else 500)

    def _ace_tasks(self, body: dict[str, Any]) -> web.Response:
        action = body.get("action", "retrieve")
        if action == "retrieve":
            task_id = body.get("id") or body.get("task_id")
            task = self.tasks.get(task_id) if isinstance(task_id, str) else None
            if task is None or task.provider != "acedatacloud":
                return self._error("acedatacloud", 404, "not_found", "task not found")
            return web.json_response(self._ace_record(task))
        if action == "retrieve_batch":
            ids = body.get("ids")
            if not isinstance(ids, list):
                return self._error("acedatacloud", 400, "bad_request", "ids is required")
            items = [
                self._ace_record(self.tasks[i])
                for i in ids
                if isinstance(i, str) and i in self.tasks and self.tasks[i].provider == "acedatacloud"
            ]
            return web.json_response({"items": items, "count": len(items)})
        return self._error("acedatacloud", 400, "bad_request", f"unknown action {action!r}")

    def _ace_record(self, task: FakeTask) -> dict[str, Any]:
        record: dict[str, Any] = {
            "_id": secrets.token_hex(12),
            "id": task.id,
            "api_id": ACE_API_ID,
            "application_id": "app-fake",
            "credential_id": "cred-fake",
            "user_id": "user-fake",
            "trace_id": task.trace_id,
            "type": "videos",
            "created_at": task.created_at,
            "request": task.request,
        }
        if task.started_at is not None:
            record["started_at"] = task.started_at
        if task.state == "running":
            record["response"] = {"task_id": task.id, "state": "processing"}
        elif task.finished:
            record["response"] = self._ace_result_body(task)
            assert task.finished_at is not None
            record["finished_at"] = task.finished_at
            record["elapsed"] = round(task.finished_at - task.created_at, 3)
        return record

    def _ace_result_body(self, task: FakeTask) -> dict[str, Any]:
        """§1.1's success object, or §1.3's failure object (which has no `state`)."""
        if task.outcome == "completed":
            return {
                "success": True,
                "task_id": task.id,
                "video_id": task.video_id,
                "prompt": task.prompt,
                "video_url": task.video_url,
                "video_width": task.width,
                "video_height": task.height,
                "state": "completed",
                "thumbnail_url": task.thumbnail_url,
                "thumbnail_width": task.width,
                "thumbnail_height": task.height,
            }
        return {
            "success": False,
            "task_id": task.id,
            "trace_id": task.trace_id,
            "error": {"code": task.failure_code or "api_error", "message": task.failure_reason or ""},
        }

    # UmamiAI -----------------------------------------------------------------------------------------------

    def _umami_create(self, body: dict[str, Any], extend_id: str | None) -> web.Response:
        prompt = body.get("user_prompt")
        if extend_id is None and (not isinstance(prompt, str) or not prompt.strip()):
            return self._error("umami", 400, message=["user_prompt should not be empty"])
        prompt = prompt if isinstance(prompt, str) else ""
        source: FakeTask | None = None
        if extend_id is not None:
            source = self._find_video("umami", video_id=extend_id)
            if source is None:
                return self._error("umami", 400, message="Generation to extend was not found")
        refusal = self._create_refusal("umami")
        if refusal is not None:
            return refusal
        task = self._new_task(
            "umami",
            "extend" if source else "generate",
            dict(body),
            prompt,
            str(body.get("aspect_ratio") or "16:9"),
            None,
            bool(body.get("image_url")),
            extends=source,
        )
        obj = self._umami_object(task)
        return web.json_response([obj] if self.umami_create_list else obj, status=self.umami_create_status)

    def _umami_list(self, request: web.Request) -> web.Response:
        ids: list[str] = []
        for key in request.query:
            if key == "ids" or (key.startswith("ids[") and key.endswith("]")):
                ids.extend(request.query.getall(key))
        found = [
            self._umami_object(self.tasks[i])
            for i in ids
            if i in self.tasks and self.tasks[i].provider == "umami"
        ]
        return web.json_response(found)

    def _umami_object(self, task: FakeTask) -> dict[str, Any]:
        state = {"queued": "pending", "running": "processing"}.get(task.state, task.state)
        video = None
        if task.outcome == "completed":
            video = {
                "url": task.video_url,
                "width": task.width,
                "height": task.height,
                "thumbnail": task.thumbnail_url,
            }
        obj: dict[str, Any] = {
            "id": task.id,
            "prompt": task.prompt,
            "state": state,
            "created_at": datetime.fromtimestamp(task.created_at, UTC).isoformat().replace("+00:00", "Z"),
            "video": video,
            "liked": None,
            "estimate_wait_seconds": None if task.finished else 60,
        }
        if task.outcome == "failed":
            obj["failure_reason"] = task.failure_reason
        return obj

    # Media -------------------------------------------------------------------------------------------------

    def _media(self, path: str) -> web.Response:
        name = path.rsplit("/", 1)[-1]
        task_id, _, ext = name.rpartition(".")
        task = self.tasks.get(task_id)
        if task is None or task.outcome != "completed" or ext not in ("mp4", "jpg"):
            return web.Response(status=404, text="Not Found")
        if ext == "mp4":
            return web.Response(body=FAKE_MP4, content_type="video/mp4")
        return web.Response(body=FAKE_JPEG, content_type="image/jpeg")


def _route(path: str) -> str:
    if path == "/luma/videos":
        return "ace-videos"
    if path == "/luma/tasks":
        return "ace-tasks"
    if path == f"{UMAMI_PREFIX}/luma-ai/generations":
        return "umami-create"
    if path == f"{UMAMI_PREFIX}/luma-ai/generation":
        return "umami-list"
    parts = path.split("/")
    # /v1/luma-ai/generations/{id}/extend
    if len(parts) == 6 and path.startswith(f"{UMAMI_PREFIX}/luma-ai/generations/") and parts[5] == "extend":
        return "umami-extend"
    return "unknown"


def _classify(method: str, path: str) -> tuple[str, str]:
    """(provider, kind) of a request, for counting and for choosing the error envelope."""
    if path.startswith("/cdn/"):
        return "media", "media"
    provider = "umami" if path.startswith(UMAMI_PREFIX + "/") else "acedatacloud"
    route = _route(path)
    if method == "POST" and route in ("ace-videos", "umami-create", "umami-extend"):
        return provider, "create"
    if (method, route) in (("POST", "ace-tasks"), ("GET", "umami-list")):
        return provider, "poll"
    return provider, "other"
