"""A fake Luma provider for tests: a real aiohttp server on 127.0.0.1 that speaks four wire formats
(AceDataCloud, UmamiAI, Luma's Agents API and Luma's Dream Machine API) as /work/shared/luma-apis.md and the
official SDKs (`acedatacloud`, `luma-agents`, `lumaai`; see tests/contract) describe them, with tasks that
advance over time (or by hand), callbacks, fault injection, request counting and awaitable conditions
instead of fixed sleeps. One server holds every API, each under its own path prefix; `url_for(provider)`
gives a client its base URL ("acedatacloud", "umami", "luma", "dream-machine").

Paths:
* AceDataCloud at `base_url` (the server root): `POST /luma/videos`, `POST /luma/tasks`.
* UmamiAI at `umami_base_url` (`/v1`): `POST /luma-ai/generations`, `POST /luma-ai/generations/{id}/extend`,
  `GET /luma-ai/generation?ids[0]=..`.
* Luma Agents API at `agents_base_url` (`/agents/v1`): `POST /generations` (201, model ray-3.2, type video),
  `GET /generations/{id}`. Every answer carries `X-Request-Id` (the client's, echoed, else a new one) and
  `X-API-Version`; a successful create carries `X-RateLimit-Limit`. Errors are FastAPI bodies: schema errors
  (missing prompt, a value outside the SDK's enums, such as aspect ratio 9:21) answer 422 with a *list*
  `detail`; every other refusal has a string `detail`: 400 (a valid enum the model refuses, e.g. aspect 3:2 or
  model uni-1), 401, 402 (`set_balance_exhausted`), 404 (unknown generation, or a frame's generation_id that
  is unknown or made with another token), 413 (a frame URL containing "too-large"), 422 (loop with 10s,
  end_frame or hdr; an ImageRef without exactly one of url/data/file_id/generation_id; a frame generation not
  completed) and 429 with `Retry-After` ("Rate limit exceeded": `rate_limit_per_minute`; "Too many concurrent
  jobs": `concurrency_limit`). GETs are never rate limited. States queued → processing → completed | failed;
  a completed generation's `output` is `[{"type": "video", "url": <presigned>}]`, signed afresh on every GET
  and served from `/agents-cdn/<id>.mp4?X-Amz-...`, which answers 403 AccessDenied "Request has expired"
  once `presigned_ttl` seconds have passed (`advance_clock` moves the fake's clock instead of sleeping).
  Failures carry `failure_code` (content_moderated, generation_failed, ...) and `failure_reason`.
* Dream Machine API at `dream_machine_base_url` (`/dream-machine/v1`): `POST /generations` and
  `POST /generations/video` (where `lumaai` 1.21 posts; both 201), `GET /generations/{id}`, `GET /credits`
  (`{"credit_balance": credit_balance}`, 0 when exhausted), `GET /ping`. Refusals are 400 with Luma's own
  words in `{"detail": ...}` ("Prompt is required", "Loop is not supported for end frame", ...), 401, 402
  (balance used up), 404 and 429 (no Retry-After: none is documented). States queued → dreaming →
  completed | failed; `assets` is null until completed, then `{video, image, progress_video}` served from
  `/cdn/dream-machine/<id>.mp4|.jpg` (permanent). With `callback_url` the Generation object is POSTed on
  every change (dreaming, completed, failed); a non-200 answer is retried `dm_callback_retries` (3) times
  `dm_callback_retry_delay` (0.1 s) apart, each try timing out after `dm_callback_timeout` (5 s).
* AceDataCloud/UmamiAI result videos are served from `GET /cdn/luma/<task_id>.mp4|.jpg`.

Prompt markers: "[moderate]" is refused at create with AceDataCloud's 403 `forbidden`; the other APIs have
no documented create-time moderation answer, so there the generation fails later (UmamiAI and Dream Machine
with a moderation `failure_reason`, the Agents API with `failure_code` content_moderated). "[fail]" makes the
task fail when it would have finished (Agents: `generation_failed`). `fail(id, reason, code=...)` fails a task
with any reason and (Agents) any failure_code. A frame or keyframe reference to an earlier generation must
name a completed one made with the same token (tasks remember the token they were made with).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from tests.fakes.media import sample_mp4

# The key of the request being answered: aiohttp runs each request in its own task, so a context variable
# set at the start of a request is that request's alone.
_CALLER: contextvars.ContextVar[str | None] = contextvars.ContextVar("fake_provider_caller", default=None)
ACE_API_ID = "94fc9028-5a9f-4875-aae4-38463bd30ac5"
UMAMI_PREFIX = "/v1"
MODERATE_MARKER = "[moderate]"
FAIL_MARKER = "[fail]"
AGENTS_PREFIX = "/agents/v1"
AGENTS_CDN_PREFIX = "/agents-cdn/"
DREAM_PREFIX = "/dream-machine/v1"
DREAM_CDN_PREFIX = "/cdn/dream-machine/"
TOO_LARGE_MARKER = "too-large"
MODERATION_MESSAGE = "Sorry! Our AI moderators feel your prompt might be against our community standards."
UMAMI_MODERATION_REASON = "Advanced prompt moderation failed"
DEFAULT_FAILURE_REASON = "Generation failed"

# Luma Agents API (luma-agents 0.5.0 types). The SDK's enums are what its server's schema accepts (a value
# outside them is a 422 schema error); the narrower per-model sets are checked afterwards (400).
AGENTS_MODEL = "ray-3.2"
AGENTS_API_VERSION = "2026-07-01"  # the real value is not published; clients should only log it
AGENTS_DEFAULT_RATE_LIMIT = 60  # what X-RateLimit-Limit says when the test sets no limit (plan-dependent)
AGENTS_MODELS = ("uni-1", "uni-1-max", "ray-3.2")
AGENTS_TYPES = ("image", "image_edit", "video", "video_edit", "video_reframe", "layering")
AGENTS_SCHEMA_ASPECT_RATIOS = (
    "3:1",
    "2:1",
    "21:9",
    "16:9",
    "4:3",
    "3:2",
    "1:1",
    "3:4",
    "2:3",
    "9:16",
    "1:2",
    "1:3",
)
AGENTS_VIDEO_ASPECT_RATIOS = ("9:16", "3:4", "1:1", "4:3", "16:9", "21:9")
AGENTS_RESOLUTIONS = ("360p", "540p", "720p", "1080p")
AGENTS_DURATIONS = ("5s", "10s")
AGENTS_IMAGE_REF_SOURCES = ("url", "data", "file_id", "generation_id")
AGENTS_MAX_PROMPT = 6000
AGENTS_FAILURE_REASONS = {
    "content_moderated": "The request was blocked by content moderation.",
    "generation_failed": "The generation failed. Please try again.",
    "budget_exhausted": "The account budget is exhausted.",
    "output_not_found": "The generated output could not be found.",
    "image_too_large": "An input image is too large.",
    "unsupported_format": "An input image has an unsupported format.",
    "corrupt_input": "An input image could not be decoded.",
    "invalid_request": "The request is invalid.",
    "rate_limited": "The upstream provider is rate limiting requests.",
}
AGENTS_FAILURE_CODES = tuple(AGENTS_FAILURE_REASONS)

# Dream Machine API (lumaai 1.21.0 types, docs' refusal wording).
DREAM_MODELS = ("ray-2", "ray-flash-2")
DREAM_ASPECT_RATIOS = ("1:1", "16:9", "9:16", "4:3", "3:4", "21:9", "9:21")
DREAM_RESOLUTIONS = ("540p", "720p", "1080p", "4k")
DREAM_DURATIONS = ("5s", "9s")
DREAM_MIN_PROMPT = 3
DREAM_MAX_PROMPT = 5000
DREAM_MODERATION_REASON = "Advanced prompt moderation failed"

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
# Enough of an MP4 header for anything that sniffs the type; the bytes are not a playable video (a test that
# wants a provider serving broken files gives it with `set_video`). Result videos are real: see `video_bytes`.
FAKE_MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64
FAKE_JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 32 + b"\xff\xd9"

_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    413: "Request Entity Too Large",
    422: "Unprocessable Entity",
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
    provider: str  # "acedatacloud" | "umami" | "luma" | "dream-machine" | "media"
    at: float  # loop.time() when it arrived, for measuring the gaps a client leaves between tries
    query: dict[str, list[str]]
    authorization: str | None
    headers: Mapping[str, str] = field(default_factory=dict)  # case-insensitive when recorded


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
    token: str | None = None  # the token that made it: frame references must come from the same one
    user_id: str | None = None  # Agents API: the end user's id, as sent
    model: str | None = None  # Agents / Dream Machine
    signed_output: bool = False  # Agents API: output URLs are presigned afresh on every GET
    charged: float = 0.0  # Dream Machine: credits taken at create, given back on failure
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

    Knobs for Luma's own APIs: `presigned_ttl` (seconds an Agents output URL works), `rate_limit_per_minute`
    (creates per sliding minute and provider, Agents and Dream Machine; None: unlimited),
    `concurrency_limit` (unfinished tasks; for Agents and Dream Machine counted per provider),
    `concurrency_retry_after` (the Agents' Retry-After for "Too many concurrent jobs"), `credit_balance` and
    `dm_generation_cost` (Dream Machine credits in USD cents, charged at create and refunded on failure), and
    the Dream Machine callback policy `dm_callback_retries`, `dm_callback_retry_delay`, `dm_callback_timeout`.
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
        presigned_ttl: float = 3600.0,
        rate_limit_per_minute: int | None = None,
        concurrency_retry_after: float = 1.0,
        credit_balance: float = 1_000_000.0,
        dm_generation_cost: float = 0.0,
        dm_callback_retries: int = 3,
        dm_callback_retry_delay: float = 0.1,
        dm_callback_timeout: float = 5.0,
    ) -> None:
        self.token = token
        # More keys of the same account (several keys of one provider); each request acts as its caller's key.
        self.extra_tokens: set[str] = set()
        self.exhausted_tokens: set[str] = set()
        # The most unfinished tasks each key had at once (a provider's concurrency limit is per key).
        self.peak_per_token: dict[str, int] = {}
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
        self.presigned_ttl = presigned_ttl
        self.rate_limit_per_minute = rate_limit_per_minute
        self.concurrency_retry_after = concurrency_retry_after
        self.credit_balance = credit_balance
        self.dm_generation_cost = dm_generation_cost
        self.dm_callback_retries = dm_callback_retries
        self.dm_callback_retry_delay = dm_callback_retry_delay
        self.dm_callback_timeout = dm_callback_timeout
        # Added to time.time() wherever the fake judges time (presigned URL expiry, the per-minute window), so
        # a test moves past an expiry with `advance_clock` instead of sleeping.
        self.clock_offset = 0.0
        self._create_times: dict[str, list[float]] = {}
        self._signatures: dict[str, tuple[str, float]] = {}  # signature → (task id, expires at)
        self._callback_locks: dict[str, asyncio.Lock] = {}

        self.tasks: dict[str, FakeTask] = {}
        # The file every finished task serves, unless `set_video` gave it its own: a real 2-second mp4.
        self.video_bytes: bytes = sample_mp4()
        self.videos: dict[str, bytes] = {}
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

    @property
    def agents_base_url(self) -> str:
        """The Luma Agents API (`https://agents.lumalabs.ai/v1` in production)."""
        return self.base_url + AGENTS_PREFIX

    @property
    def dream_machine_base_url(self) -> str:
        """The Dream Machine API (`https://api.lumalabs.ai/dream-machine/v1` in production)."""
        return self.base_url + DREAM_PREFIX

    def url_for(self, provider: str) -> str:
        """Base URL of "acedatacloud", "umami", "luma" (Agents API) or "dream-machine"."""
        if provider == "umami":
            return self.umami_base_url
        if provider == "luma":
            return self.agents_base_url
        if provider == "dream-machine":
            return self.dream_machine_base_url
        return self.base_url

    # ---- test controls ---------------------------------------------------------------------------------

    def set_token(self, token: str) -> None:
        self.token = token

    def set_balance_exhausted(self, exhausted: bool = True, *, token: str | None = None) -> None:
        """The whole account's balance (token None), or only the key `token`'s, is used up (or not)."""
        if token is None:
            self.balance_exhausted = exhausted
        elif exhausted:
            self.exhausted_tokens.add(token)
        else:
            self.exhausted_tokens.discard(token)

    def add_token(self, token: str) -> None:
        """Accept another key (of the same account)."""
        self.extra_tokens.add(token)

    @property
    def caller(self) -> str:
        """The key of the request being answered (the main token outside a request)."""
        return _CALLER.get() or self.token

    def _accepts(self, authorization: str | None) -> bool:
        return any(authorization == f"Bearer {t}" for t in (self.token, *self.extra_tokens))

    def _out_of_funds(self) -> bool:
        return self.balance_exhausted or self.caller in self.exhausted_tokens

    def unfinished_of_caller(self, provider: str | None = None) -> int:
        return sum(
            1 for t in self.tasks.values()
            if not t.finished and t.token == self.caller and (provider is None or t.provider == provider)
        )

    def set_video(self, task_id: str, data: bytes) -> None:
        """Serve `data` as the result file of this task (for every API's media URL)."""
        self.videos[task_id] = data

    def video_of(self, task_id: str) -> bytes:
        return self.videos.get(task_id, self.video_bytes)

    def advance_clock(self, seconds: float) -> None:
        """Move the fake's clock forward: presigned URLs expire and the per-minute create window slides."""
        self.clock_offset += seconds
        self._poke()

    def now(self) -> float:
        return time.time() + self.clock_offset

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

    def count(self, kind: str | None = None, provider: str | None = None) -> int:
        """Requests received of `kind` ("create", "poll", "media", "other"), or all of them; optionally only
        those of one `provider` ("acedatacloud", "umami", "luma", "dream-machine", "media")."""
        return sum(
            1
            for r in self.request_log
            if (kind is None or r.kind == kind) and (provider is None or r.provider == provider)
        )

    @property
    def unfinished(self) -> int:
        return sum(1 for t in self.tasks.values() if not t.finished)

    def unfinished_for(self, provider: str) -> int:
        return sum(1 for t in self.tasks.values() if not t.finished and t.provider == provider)

    def mark_running(self, task_id: str) -> FakeTask:
        task = self.tasks[task_id]
        if task.started_at is None and not task.finished:
            task.started_at = time.time()
            self._poke()
            if task.provider == "dream-machine":
                self._dm_notify(task)
        return task

    def finish(self, task_id: str, *, video_url: str | None = None, video_id: str | None = None) -> FakeTask:
        """Complete a task now (whatever its prompt says) and send its callback. Agents API: without
        `video_url` the output URL is presigned afresh on every GET; with it, that URL is answered as is.
        `video_id` replaces the task's video id in its record (a provider that sends ids the bot cannot use)."""
        task = self._finishing(task_id)
        if video_id is not None:
            task.video_id = video_id
        task.outcome = "completed"
        if task.provider == "luma":
            task.signed_output = video_url is None
            task.video_url = video_url or f"{self.base_url}{AGENTS_CDN_PREFIX}{task.id}.mp4"
            task.thumbnail_url = None  # the Agents API returns no thumbnail
        elif task.provider == "dream-machine":
            task.video_url = video_url or f"{self.base_url}{DREAM_CDN_PREFIX}{task.id}.mp4"
            task.thumbnail_url = f"{self.base_url}{DREAM_CDN_PREFIX}{task.id}.jpg"
        else:
            task.video_url = video_url or f"{self.base_url}/cdn/luma/{task.id}.mp4"
            task.thumbnail_url = f"{self.base_url}/cdn/luma/{task.id}.jpg"
        self._finished(task)
        return task

    def fail(
        self,
        task_id: str,
        reason: str | None = None,
        *,
        moderated: bool = False,
        code: str | None = None,
    ) -> FakeTask:
        """Fail a task now and send its callback. AceDataCloud: a moderated failure carries `forbidden`.
        Agents API: `code` is the `failure_code` (default content_moderated when `moderated`, else
        generation_failed), and `reason` defaults to a sentence for that code."""
        task = self._finishing(task_id)
        task.outcome = "failed"
        if task.provider == "luma":
            task.failure_code = code or ("content_moderated" if moderated else "generation_failed")
            task.moderated = moderated or task.failure_code == "content_moderated"
            task.failure_reason = reason or AGENTS_FAILURE_REASONS.get(
                task.failure_code, DEFAULT_FAILURE_REASON
            )
        elif task.provider == "dream-machine":
            task.moderated = moderated
            task.failure_code = code
            task.failure_reason = reason or (DREAM_MODERATION_REASON if moderated else DEFAULT_FAILURE_REASON)
            if task.charged:  # failed generations are refunded (§2)
                self.credit_balance += task.charged
                task.charged = 0.0
        else:
            task.failure_reason = reason or DEFAULT_FAILURE_REASON
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

    async def drain_callbacks(self, within: float = 10.0) -> None:
        """Until every callback delivery under way has ended: delivered, or given up after its retries."""
        async with asyncio.timeout(within):
            while self._background:
                await asyncio.gather(*list(self._background), return_exceptions=True)

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
        if task.provider == "dream-machine":
            self._dm_notify(task)

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
        elif task.provider in ("luma", "dream-machine") and MODERATE_MARKER in task.prompt:
            self.fail(task.id, moderated=True)
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
        **extra: Any,
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
            token=self.caller,
            **extra,
        )
        self.tasks[task_id] = task
        self.max_concurrent_running = max(self.max_concurrent_running, self.unfinished)
        self.peak_per_token[task.token] = max(self.peak_per_token.get(task.token, 0), self.unfinished_of_caller())
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
                headers=CIMultiDict(request.headers),
            )
        )
        self._poke()
        auth = request.headers.get("Authorization") or ""
        _CALLER.set(auth.removeprefix("Bearer ") if self._accepts(auth) else None)
        response = await self._answer(request, provider, kind, path, body, invalid_json)
        if provider == "luma":
            # Tracing headers on every Agents answer, errors and injected faults included.
            response.headers["X-Request-Id"] = (
                request.headers.get("X-Request-Id") or f"req_{uuid.uuid4().hex}"
            )
            response.headers["X-API-Version"] = AGENTS_API_VERSION
        return response

    async def _answer(
        self, request: web.Request, provider: str, kind: str, path: str, body: Any, invalid_json: bool
    ) -> web.StreamResponse:
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
        if provider in ("luma", "dream-machine"):
            return {"detail": _REASONS.get(status, "Error")}
        if provider == "umami":
            return umami_error_body(status, _UMAMI_DEFAULTS.get(status, _REASONS.get(status, "Error")))
        code, message = _ACE_DEFAULTS.get(status, ("api_error", "Error."))
        return ace_error_body(code, message, success=False if status in (429, 500) else None)

    def _error(
        self, provider: str, status: int, code: str | None = None, message: str | None = None
    ) -> web.Response:
        if provider in ("luma", "dream-machine"):
            return _detail(status, message or _REASONS.get(status, "Error"))
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
            if request.path.startswith(AGENTS_CDN_PREFIX):
                return self._agents_media(request)
            return self._media(request.path)
        if provider == "luma":
            return self._agents(request, body, invalid_json)
        if provider == "dream-machine":
            return self._dream(request, body, invalid_json)
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
        if not self._accepts(auth):
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
        if self._out_of_funds():
            return self._error(provider, 403, "used_up", None)
        if self.concurrency_limit is not None and self.unfinished_of_caller() >= self.concurrency_limit:
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

    # Luma's own APIs: shared ----------------------------------------------------------------------------------

    def _authorized(self, request: web.Request) -> bool:
        return self._accepts(request.headers.get("Authorization"))

    def _rate_limited(self, provider: str) -> float | None:
        """Counts this create in `provider`'s sliding minute; the seconds until a slot frees if it is over."""
        if self.rate_limit_per_minute is None:
            return None
        now = self.now()
        window = [t for t in self._create_times.get(provider, []) if t > now - 60.0]
        self._create_times[provider] = window
        if len(window) >= self.rate_limit_per_minute:
            return max(1.0, float(int(window[0] + 60.0 - now + 0.999)))
        window.append(now)
        return None

    def _frame_source(self, provider: str, generation_id: Any) -> FakeTask | None:
        """An earlier generation a frame may reference: this API's, and made with the caller's token."""
        task = self.tasks.get(generation_id) if isinstance(generation_id, str) else None
        if task is None or task.provider != provider or task.token != self.caller:
            return None
        return task

    # Luma Agents API ------------------------------------------------------------------------------------------

    def _agents(self, request: web.Request, body: Any, invalid_json: bool) -> web.Response:
        route, generation_id = _luma_route(request.path)
        methods = {"agents-generations": "POST", "agents-generation": "GET"}
        if route not in methods:
            return _detail(404, "Not Found")
        if request.method != methods[route]:
            return _detail(405, "Method Not Allowed")
        if not self._authorized(request):
            return _detail(401, "Invalid API key")
        if route == "agents-generation":
            task = self.tasks.get(generation_id or "")
            if task is None or task.provider != "luma":
                return _detail(404, "Generation not found")
            return web.json_response(self._agents_object(task))
        if invalid_json or not isinstance(body, dict):
            return _detail(422, [_schema_error("json_invalid", [], "JSON decode error", None)])
        wait = self._rate_limited("luma")
        if wait is not None:
            return _detail(429, "Rate limit exceeded", {"Retry-After": _seconds(wait)})
        refusal = self._agents_validate(body)
        if refusal is not None:
            return refusal
        video = body.get("video") or {}
        sources = [(video.get(frame) or {}).get("generation_id") for frame in ("start_frame", "end_frame")]
        extends = next((self.tasks[g] for g in sources if g), None)
        if self._out_of_funds():
            return _detail(402, "Insufficient balance")
        if self.concurrency_limit is not None and self.unfinished_of_caller("luma") >= self.concurrency_limit:
            return _detail(
                429, "Too many concurrent jobs", {"Retry-After": _seconds(self.concurrency_retry_after)}
            )
        task = self._new_task(
            "luma",
            "extend" if extends else "generate",
            dict(body),
            body["prompt"],
            body.get("aspect_ratio") or "16:9",
            None,
            bool(video.get("start_frame")),
            extends=extends,
            user_id=body.get("user_id"),
            model=AGENTS_MODEL,
        )
        limit = self.rate_limit_per_minute or AGENTS_DEFAULT_RATE_LIMIT
        return web.json_response(
            self._agents_object(task), status=201, headers={"X-RateLimit-Limit": str(limit)}
        )

    def _agents_validate(self, body: dict[str, Any]) -> web.Response | None:
        """The create checks in the order a FastAPI server makes them: schema (422, a list), then the model's
        own rules (400), then combinations and media (422 / 413 / 404), all with a `detail`."""
        errors: list[dict[str, Any]] = []
        prompt = body.get("prompt")
        if "prompt" not in body:
            errors.append(_schema_error("missing", ["prompt"], "Field required", body))
        elif not isinstance(prompt, str):
            errors.append(_schema_error("string_type", ["prompt"], "Input should be a valid string", prompt))
        elif not prompt.strip():
            errors.append(
                _schema_error(
                    "string_too_short",
                    ["prompt"],
                    "String should have at least 1 character",
                    prompt,
                    {"min_length": 1},
                )
            )
        elif len(prompt) > AGENTS_MAX_PROMPT:
            errors.append(
                _schema_error(
                    "string_too_long",
                    ["prompt"],
                    f"String should have at most {AGENTS_MAX_PROMPT} characters",
                    prompt,
                    {"max_length": AGENTS_MAX_PROMPT},
                )
            )
        for name, allowed in (
            ("model", AGENTS_MODELS),
            ("type", AGENTS_TYPES),
            ("aspect_ratio", AGENTS_SCHEMA_ASPECT_RATIOS),
        ):
            value = body.get(name)
            if value is not None and value not in allowed:
                errors.append(_literal_error([name], value, allowed))
        video = body.get("video")
        if video is not None and not isinstance(video, dict):
            errors.append(_schema_error("dict_type", ["video"], "Input should be a valid dictionary", video))
            video = None
        video = video or {}
        for name, allowed in (("resolution", AGENTS_RESOLUTIONS), ("duration", AGENTS_DURATIONS)):
            value = video.get(name)
            if value is not None and value not in allowed:
                errors.append(_literal_error(["video", name], value, allowed))
        if errors:
            return _detail(422, errors)

        model = body.get("model") or "uni-1"  # the API's default model makes images
        kind = body.get("type") or "image"
        if model != AGENTS_MODEL:
            return _detail(400, f"Model '{model}' does not support type '{kind}'; use model '{AGENTS_MODEL}'")
        if kind != "video":
            return _detail(400, f"Type '{kind}' is not supported by this API client (expected 'video')")
        aspect = body.get("aspect_ratio")
        if aspect is not None and aspect not in AGENTS_VIDEO_ASPECT_RATIOS:
            return _detail(
                400,
                f"aspect_ratio '{aspect}' is not supported for {AGENTS_MODEL} video; "
                f"use one of {', '.join(AGENTS_VIDEO_ASPECT_RATIOS)}",
            )

        keyframes = video.get("keyframes")
        if video.get("loop"):
            if video.get("duration") == "10s":
                return _detail(422, "loop is not supported with duration 10s")
            if video.get("end_frame"):
                return _detail(422, "loop is not supported with end_frame")
            if video.get("hdr"):
                return _detail(422, "loop is not supported with hdr")
        if keyframes:
            if video.get("start_frame") or video.get("end_frame") or video.get("loop"):
                return _detail(422, "keyframes cannot be combined with start_frame, end_frame or loop")
            if len(list(keyframes)) != len(list(video.get("keyframe_indexes") or [])):
                return _detail(422, "keyframe_indexes must match keyframes in length")
        refs = [
            (f"video.{f}", video.get(f)) for f in ("start_frame", "end_frame") if video.get(f) is not None
        ]
        refs += [(f"video.keyframes[{i}]", ref) for i, ref in enumerate(keyframes or [])]
        for where, ref in refs:
            refusal = self._agents_image_ref(where, ref)
            if refusal is not None:
                return refusal
        return None

    def _agents_image_ref(self, where: str, ref: Any) -> web.Response | None:
        if not isinstance(ref, dict):
            return _detail(422, f"{where} must be an object")
        given = [k for k in AGENTS_IMAGE_REF_SOURCES if ref.get(k)]
        if len(given) != 1:
            return _detail(
                422,
                f"{where} must hold exactly one of url, data, file_id or generation_id (got {len(given)})",
            )
        if given == ["data"] and not ref.get("media_type"):
            return _detail(422, f"{where}.media_type is required with data")
        if given == ["url"]:
            url = ref["url"]
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                return _detail(422, f"{where}.url must be a public http(s) URL")
            if TOO_LARGE_MARKER in url:
                return _detail(413, f"{where}: media too large")
        if given == ["generation_id"]:
            source = self._frame_source("luma", ref["generation_id"])
            if source is None:
                return _detail(404, f"{where}.generation_id: generation not found")
            if source.outcome != "completed":
                return _detail(422, f"{where}.generation_id: generation is not completed")
        return None

    def _agents_object(self, task: FakeTask) -> dict[str, Any]:
        state = {"running": "processing"}.get(task.state, task.state)
        output: list[dict[str, Any]] = []
        if task.outcome == "completed":
            output = [{"type": "video", "url": self._presign(task) if task.signed_output else task.video_url}]
        return {
            "id": task.id,
            "created_at": _iso(task.created_at),
            "model": task.model or AGENTS_MODEL,
            "state": state,
            "type": "video",
            "failure_code": task.failure_code if task.outcome == "failed" else None,
            "failure_reason": task.failure_reason if task.outcome == "failed" else None,
            "output": output,
        }

    def _presign(self, task: FakeTask) -> str:
        """A fresh S3-style presigned URL for the task's video, good for `presigned_ttl` seconds."""
        now = self.now()
        signature = secrets.token_hex(32)
        self._signatures[signature] = (task.id, now + self.presigned_ttl)
        stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ")
        expires = max(1, round(self.presigned_ttl))
        return (
            f"{self.base_url}{AGENTS_CDN_PREFIX}{task.id}.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256"
            f"&X-Amz-Credential=FAKEACCESSKEY%2F{stamp[:8]}%2Fus-east-1%2Fs3%2Faws4_request"
            f"&X-Amz-Date={stamp}&X-Amz-Expires={expires}&X-Amz-SignedHeaders=host&X-Amz-Signature={signature}"
        )

    def _agents_media(self, request: web.Request) -> web.Response:
        task_id = request.path[len(AGENTS_CDN_PREFIX) :].removesuffix(".mp4")
        signed = self._signatures.get(request.query.get("X-Amz-Signature", ""))
        if signed is None or signed[0] != task_id:
            return _s3_error(
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        if self.now() > signed[1]:
            expired = datetime.fromtimestamp(signed[1], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            server = datetime.fromtimestamp(self.now(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            return _s3_error(
                "AccessDenied",
                "Request has expired",
                f"<X-Amz-Expires>{request.query.get('X-Amz-Expires', '')}</X-Amz-Expires>"
                f"<Expires>{expired}</Expires><ServerTime>{server}</ServerTime>",
            )
        task = self.tasks.get(task_id)
        if task is None or task.outcome != "completed":
            return _s3_error("NoSuchKey", "The specified key does not exist.", status=404)
        return web.Response(body=self.video_of(task_id), content_type="video/mp4")

    # Dream Machine API ----------------------------------------------------------------------------------------

    def _dream(self, request: web.Request, body: Any, invalid_json: bool) -> web.Response:
        route, generation_id = _luma_route(request.path)
        methods = {
            "dm-generations": "POST",
            "dm-generations-video": "POST",
            "dm-generation": "GET",
            "dm-credits": "GET",
            "dm-ping": "GET",
        }
        if route not in methods:
            return _detail(404, "Not Found")
        if request.method != methods[route]:
            return _detail(405, "Method Not Allowed")
        if route == "dm-ping":
            return web.json_response({"message": "pong"})
        if not self._authorized(request):
            return _detail(401, "Invalid API key")
        if route == "dm-credits":
            return web.json_response({"credit_balance": 0 if self._out_of_funds() else self.credit_balance})
        if route == "dm-generation":
            task = self.tasks.get(generation_id or "")
            if task is None or task.provider != "dream-machine":
                return _detail(404, "Generation not found")
            return web.json_response(self._dream_object(task))
        if invalid_json or not isinstance(body, dict):
            return _detail(400, "Invalid JSON body")
        if self._rate_limited("dream-machine") is not None:
            return _detail(429, "Too many requests")
        refusal = self._dream_validate(body)
        if refusal is not None:
            return refusal
        if self._out_of_funds() or self.credit_balance < self.dm_generation_cost:
            return _detail(402, "Insufficient credits")
        if (
            self.concurrency_limit is not None
            and self.unfinished_of_caller("dream-machine") >= self.concurrency_limit
        ):
            return _detail(429, "Too many concurrent generations")
        keyframes = body.get("keyframes") or {}
        refs = [keyframes.get(f) for f in ("frame0", "frame1")]
        extends = next((self.tasks[r["id"]] for r in refs if r and r.get("type") == "generation"), None)
        request_echo = {"generation_type": "video", **body}
        self.credit_balance -= self.dm_generation_cost
        frame0 = keyframes.get("frame0") or {}
        task = self._new_task(
            "dream-machine",
            "extend" if extends else "generate",
            request_echo,
            body["prompt"],
            body.get("aspect_ratio") or "16:9",
            body.get("callback_url"),
            frame0.get("type") == "image",
            extends=extends,
            model=body["model"],
            charged=self.dm_generation_cost,
        )
        return web.json_response(self._dream_object(task), status=201)

    def _dream_validate(self, body: dict[str, Any]) -> web.Response | None:
        """Luma's pre-submission refusals (docs "Errors"), each a 400 with its sentence as `detail`."""
        if body.get("generation_type", "video") != "video":
            return _detail(400, "Unknown request type")
        model = body.get("model")
        if model is None:
            return _detail(400, "Model is required")
        if model not in DREAM_MODELS:
            return _detail(400, f"Invalid model '{model}', expected one of {', '.join(DREAM_MODELS)}")
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return _detail(400, "Prompt is required")
        if len(prompt.strip()) < DREAM_MIN_PROMPT:
            return _detail(400, f"Prompt is too short, minimum length is {DREAM_MIN_PROMPT} characters")
        if len(prompt) > DREAM_MAX_PROMPT:
            return _detail(400, f"Prompt is too long, maximum length is {DREAM_MAX_PROMPT} characters")
        for name, allowed in (
            ("aspect_ratio", DREAM_ASPECT_RATIOS),
            ("resolution", DREAM_RESOLUTIONS),
            ("duration", DREAM_DURATIONS),
        ):
            value = body.get(name)
            if value is not None and value not in allowed:
                return _detail(400, f"Invalid {name} '{value}', expected one of {', '.join(allowed)}")
        keyframes = body.get("keyframes")
        if keyframes is None:
            return None
        if not isinstance(keyframes, dict) or not (keyframes.get("frame0") or keyframes.get("frame1")):
            return _detail(400, "No keyframes provided")
        frame0, frame1 = keyframes.get("frame0"), keyframes.get("frame1")
        for frame in (frame0, frame1):
            if frame is None:
                continue
            if not isinstance(frame, dict) or frame.get("type") not in ("image", "generation"):
                return _detail(400, "Unknown keyframe type")
            if frame["type"] == "image":
                url = frame.get("url")
                if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                    return _detail(400, "Keyframe image url is required")
            else:
                source = self._frame_source("dream-machine", frame.get("id"))
                if source is None:
                    return _detail(400, f"Generation {frame.get('id')} not found")
                if source.outcome != "completed":
                    return _detail(400, f"Generation {source.id} is not completed")
        if body.get("loop"):
            generations = [f is not None and f.get("type") == "generation" for f in (frame0, frame1)]
            if frame0 is not None and frame1 is not None:
                what = "interpolate" if all(generations) else "keyframes"
                return _detail(400, f"Loop is not supported for {what}")
            if frame1 is not None:
                return _detail(
                    400,
                    "Loop is not supported for extend reverse"
                    if generations[1]
                    else "Loop is not supported for end frame",
                )
        return None

    def _dream_object(self, task: FakeTask) -> dict[str, Any]:
        assets = None
        if task.outcome == "completed":
            assets = {"video": task.video_url, "image": task.thumbnail_url, "progress_video": None}
        return {
            "id": task.id,
            "generation_type": "video",
            "state": {"running": "dreaming"}.get(task.state, task.state),
            "failure_reason": task.failure_reason if task.outcome == "failed" else None,
            "created_at": _iso(task.created_at),
            "model": task.model,
            "assets": assets,
            "request": task.request,
        }

    def _dm_notify(self, task: FakeTask) -> None:
        """Queue a callback with the generation as it is now; a task's callbacks go out in order."""
        if task.callback_url:
            self._spawn(self._dm_callback(task, self._dream_object(task)))

    async def _dm_callback(self, task: FakeTask, body: dict[str, Any]) -> None:
        assert self._session is not None and task.callback_url
        lock = self._callback_locks.setdefault(task.id, asyncio.Lock())
        async with lock:
            for attempt in range(1 + max(self.dm_callback_retries, 0)):
                if attempt:
                    await self._pause(self.dm_callback_retry_delay)
                    if self._closing.is_set():
                        return
                status: int | None = None
                error: str | None = None
                try:
                    async with self._session.post(
                        task.callback_url,
                        json=body,
                        timeout=aiohttp.ClientTimeout(total=self.dm_callback_timeout),
                    ) as resp:
                        status = resp.status
                        await resp.read()
                except (aiohttp.ClientError, TimeoutError) as exc:
                    error = f"{type(exc).__name__}: {exc}"
                self.callbacks.append(CallbackRecord(task.callback_url, body, status, error))
                self._poke()
                if status == 200:
                    return

    # Media -------------------------------------------------------------------------------------------------

    def _media(self, path: str) -> web.Response:
        name = path.rsplit("/", 1)[-1]
        task_id, _, ext = name.rpartition(".")
        task = self.tasks.get(task_id)
        if task is None or task.outcome != "completed" or ext not in ("mp4", "jpg"):
            return web.Response(status=404, text="Not Found")
        if ext == "mp4":
            return web.Response(body=self.video_of(task_id), content_type="video/mp4")
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


def _luma_route(path: str) -> tuple[str, str | None]:
    """Agents / Dream Machine path → (route, generation id or None)."""
    for prefix, name in ((AGENTS_PREFIX, "agents"), (DREAM_PREFIX, "dm")):
        if not path.startswith(prefix + "/"):
            continue
        rest = path[len(prefix) :].rstrip("/")
        if rest == "/generations":
            return f"{name}-generations", None
        if name == "dm" and rest == "/generations/video":
            return "dm-generations-video", None
        if name == "dm" and rest in ("/credits", "/ping"):
            return f"dm-{rest[1:]}", None
        parts = rest.split("/")
        if len(parts) == 3 and parts[1] == "generations" and parts[2]:
            return f"{name}-generation", parts[2]
        return f"{name}-unknown", None
    return "unknown", None


def _classify(method: str, path: str) -> tuple[str, str]:
    """(provider, kind) of a request, for counting and for choosing the error envelope."""
    if path.startswith("/cdn/") or path.startswith(AGENTS_CDN_PREFIX):
        return "media", "media"
    if path.startswith(AGENTS_PREFIX + "/") or path.startswith(DREAM_PREFIX + "/"):
        provider = "luma" if path.startswith(AGENTS_PREFIX + "/") else "dream-machine"
        route, _ = _luma_route(path)
        if method == "POST" and route in ("agents-generations", "dm-generations", "dm-generations-video"):
            return provider, "create"
        if method == "GET" and route in ("agents-generation", "dm-generation"):
            return provider, "poll"
        return provider, "other"
    provider = "umami" if path.startswith(UMAMI_PREFIX + "/") else "acedatacloud"
    route = _route(path)
    if method == "POST" and route in ("ace-videos", "umami-create", "umami-extend"):
        return provider, "create"
    if (method, route) in (("POST", "ace-tasks"), ("GET", "umami-list")):
        return provider, "poll"
    return provider, "other"


def _detail(status: int, detail: Any, headers: dict[str, str] | None = None) -> web.Response:
    """FastAPI's error body, as both of Luma's own APIs answer."""
    return web.json_response({"detail": detail}, status=status, headers=headers)


def _schema_error(kind: str, loc: list[Any], msg: str, value: Any, ctx: dict[str, Any] | None = None) -> dict:
    """One item of a FastAPI/pydantic v2 validation `detail` list."""
    item: dict[str, Any] = {"type": kind, "loc": ["body", *loc], "msg": msg, "input": value}
    if ctx:
        item["ctx"] = ctx
    return item


def _literal_error(loc: list[Any], value: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    expected = ", ".join(f"'{a}'" for a in allowed[:-1]) + f" or '{allowed[-1]}'"
    return _schema_error("literal_error", loc, f"Input should be {expected}", value, {"expected": expected})


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _seconds(value: float) -> str:
    """A Retry-After value: whole seconds when whole, else as given (the SDKs parse floats)."""
    return str(int(value)) if float(value).is_integer() else str(value)


def _s3_error(code: str, message: str, extra: str = "", status: int = 403) -> web.Response:
    """The XML error body S3 answers a presigned URL with."""
    request_id = secrets.token_hex(8).upper()
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>{extra}"
        f"<RequestId>{request_id}</RequestId><HostId>{secrets.token_urlsafe(24)}</HostId></Error>"
    )
    return web.Response(status=status, text=text, content_type="application/xml")
