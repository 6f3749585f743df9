"""The HTTP plumbing both provider clients share: bearer auth, per-request timeouts, retries of transient
failures with capped exponential backoff, and the rule that a paid create is never sent twice by accident."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp

from bot.luma.errors import InvalidRequest, LumaError, ProviderUnavailable, RateLimited
from bot.luma.types import TaskResult
from bot.metrics import METRICS

log = logging.getLogger(__name__)

# (status, parsed JSON body or None when the body was not JSON, redacted body text) → the typed error.
ErrorMapper = Callable[[int, Any, str], LumaError]

# How much of a body that is not JSON goes into an error message: enough to recognise a proxy's error page.
_SNIPPET_CHARS = 160


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How transient failures are retried. Tests pass a tiny `base`/`cap` and `jitter=0`."""

    attempts: int = 5  # total tries, the first one included
    base: float = 1.0  # seconds before the first retry; doubles each time (AceDataCloud: 1, 2, 4, 8, 16 s)
    cap: float = 16.0
    jitter: float = 0.5  # up to this many seconds added at random, so many bots do not retry in step
    # A provider's Retry-After is obeyed up to this many seconds; longer hints are cut (as lumaai does).
    max_retry_after: float = 60.0

    def delay(self, failures: int, retry_after: float | None = None) -> float:
        """Seconds to wait after the `failures`-th failed try (1-based), honouring a Retry-After hint."""
        if retry_after is not None:
            wait = min(max(retry_after, 0.0), self.max_retry_after)
        else:
            wait = min(self.cap, self.base * 2 ** max(failures - 1, 0))
        if self.jitter > 0:
            wait += random.uniform(0, self.jitter)
        return wait


class Secret:
    """A token that never shows itself in repr/str, so it cannot leak into logs or exception messages."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def redact(self, text: str) -> str:
        """`text` with every copy of the token masked (providers sometimes echo what they were sent)."""
        return text.replace(self._value, "***") if self._value else text

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds (fractions accepted) or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(seconds, 0.0)


def body_message(body: Any) -> str | None:
    """The human message of an error body in any envelope we have seen: AceDataCloud's
    `{"error": {"code", "message"}}`, NestJS `{"statusCode", "message", "error"}` (message may be a list),
    FastAPI `{"detail": ...}`, or a bare string."""
    if isinstance(body, str):
        return body or None
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, dict):
        msg = error.get("message")
        if isinstance(msg, str) and msg:
            return msg
    for key in ("message", "detail", "msg"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
        if isinstance(value, list) and value:
            parts = [v.get("msg") or v.get("message") if isinstance(v, dict) else v for v in value]
            return "; ".join(str(p) for p in parts if p)
    if isinstance(error, str) and error:
        return error
    return None


def body_code(body: Any) -> str | None:
    """AceDataCloud's `error.code` (e.g. "used_up"), if the body has one."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("code"), str):
            return error["code"]
    return None


def body_trace_id(body: Any) -> str | None:
    if isinstance(body, dict) and isinstance(body.get("trace_id"), str):
        return body["trace_id"]
    return None


def snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _SNIPPET_CHARS else text[: _SNIPPET_CHARS - 1] + "…"


class _NotJson:
    """Marks a body that did not parse as JSON (None is a valid JSON value)."""


_NOT_JSON = _NotJson()


def _parse_json(text: str) -> Any:
    if not text.strip():
        return _NOT_JSON
    try:
        return json.loads(text)
    except ValueError:
        return _NOT_JSON


class JsonHttp:
    """Sends JSON requests to one provider and returns parsed JSON answers, or raises a typed LumaError.

    Retried (up to `retry.attempts` tries): 429 (obeying Retry-After), 5xx, timeouts, connection failures and
    2xx answers that are not JSON. Never retried: other 4xx. A create (`create=True`) is retried only when the
    connection was refused; a 429 is raised at once for the engine to requeue the job. If the request may have
    been received (timeout or dropped connection after sending, a 5xx, or a 2xx we cannot read) we raise
    ProviderUnavailable(maybe_submitted=True) at once, because a blind resend could pay for a second video.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        provider: str,
        base_url: str,
        token: str,
        error_mapper: ErrorMapper,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
    ) -> None:
        if not token:
            raise ValueError(f"{provider}: the API token is empty")
        self._session = session
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self._token = Secret(token)
        self._map_error = error_mapper
        self.retry = retry or RetryPolicy()
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"JsonHttp(provider={self.provider!r}, base_url={self.base_url!r})"

    def redact(self, text: str) -> str:
        return self._token.redact(text)

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        create: bool = False,
    ) -> Any:
        """Send one logical request (with retries) and return its parsed JSON answer."""
        attempts = max(self.retry.attempts, 1)
        for attempt in range(1, attempts + 1):
            started = time.monotonic()
            try:
                outcome, retry_after, status = await self._attempt(method, path, json_body, params, create)
            except LumaError as exc:
                METRICS.provider_request(self.provider, exc, time.monotonic() - started)
                raise
            METRICS.provider_request(self.provider, outcome, time.monotonic() - started)
            if not isinstance(outcome, LumaError):
                return outcome  # the parsed answer
            if attempt == attempts:
                raise outcome
            delay = self.retry.delay(attempt, retry_after)
            # Method, path, status and attempt only: headers carry the token, query strings carry task ids.
            log.warning(
                "%s %s %s failed (status=%s, %s); attempt %d/%d, retrying in %.2fs",
                self.provider,
                method,
                path,
                status,
                type(outcome).__name__,
                attempt,
                attempts,
                delay,
            )
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # the loop either returns or raises

    async def _attempt(
        self,
        method: str,
        path: str,
        json_body: Any,
        params: Any,
        create: bool,
    ) -> tuple[Any, float | None, int | None]:
        """One try. Returns (answer, None, status) on success, (retryable error, retry_after, status) for a
        transient failure, and raises for anything that must not be retried."""
        url = self.base_url + path
        what = f"{self.provider}: {method} {path}"
        headers = {"Authorization": f"Bearer {self._token.reveal()}", "Accept": "application/json"}
        started = time.monotonic()
        # On a network failure we keep only the exception's type name: aiohttp's ClientResponseError carries
        # the request headers (our token) in its request_info, so no aiohttp exception is chained to ours.
        lost: str | None = None
        try:
            async with self._session.request(
                method,
                url,
                json=json_body,
                params=params,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                allow_redirects=False,  # a redirect would re-send the token to wherever Location points
            ) as resp:
                status = resp.status
                raw = await resp.read()
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                content_type = resp.headers.get("Content-Type", "")
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            # The TCP/TLS connection never opened, so the request was never sent: safe to retry, even a create.
            return ProviderUnavailable(f"{what}: could not connect ({type(exc).__name__})"), None, None
        except aiohttp.InvalidURL:
            # A configuration mistake, not a provider failure: retrying cannot help.
            raise InvalidRequest(f"{what}: invalid URL; check the provider base URL") from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            # Sent (at least partly) but no usable answer: the provider may be working on it.
            lost = "timed out" if isinstance(exc, TimeoutError) else f"connection lost ({type(exc).__name__})"
        if lost is not None:
            if create:
                raise ProviderUnavailable(
                    f"{what}: {lost} after the request was sent; a task may have been created",
                    maybe_submitted=True,
                )
            return ProviderUnavailable(f"{what}: {lost}"), None, None

        log.debug("%s -> %s in %.3fs", what, status, time.monotonic() - started)
        text = raw.decode("utf-8", errors="replace")
        if 200 <= status < 300:
            body = _parse_json(text)
            if body is not _NOT_JSON:
                return body, None, status
            not_json = ProviderUnavailable(
                f"{what}: answer is not JSON ({content_type or 'no content type'}): {snippet(self.redact(text))}",
                status=status,
            )
            if create:
                # It answered 2xx, so a task probably exists; we just cannot read its id.
                not_json.maybe_submitted = True
                raise not_json
            return not_json, None, status
        if 300 <= status < 400:
            raise InvalidRequest(f"{what}: unexpected redirect; check the provider base URL", status=status)

        text = self.redact(text)
        body = _parse_json(text)
        err = self._map_error(status, None if body is _NOT_JSON else body, text)
        if status == 429:
            if not isinstance(err, RateLimited):
                err = RateLimited(err.message, status=status, code=err.code, trace_id=err.trace_id)
            err.retry_after = retry_after
            if create:
                # Nothing was created, but waiting here could outlast the job's claim: the engine keeps the
                # job's place in the queue and sends it again after the hint instead.
                raise err
            return err, retry_after, status
        if status >= 500:
            if not isinstance(err, ProviderUnavailable):
                err = ProviderUnavailable(err.message, status=status, code=err.code, trace_id=err.trace_id)
            if create:
                # A gateway's 502/504 (or a server error after the work began) may follow a task that was
                # created and will be billed; no provider can deduplicate a create, so it is never resent.
                err.maybe_submitted = True
                raise err
            return err, None, status
        raise err


# Words Luma and the resellers use when moderation refuses a prompt or frame ("Advanced prompt moderation
# failed", "Contains blacklisted words", AceDataCloud's "Our AI moderators feel your prompt...").
_MODERATION_WORDS = ("moderat", "blacklist", "community standards", "nsfw")


def looks_like_moderation(*texts: str | None) -> bool:
    return any(word in text.lower() for text in texts if text for word in _MODERATION_WORDS)


def unique_chunks(ids: Sequence[str], size: int) -> list[list[str]]:
    """`ids` without duplicates (first occurrence kept), cut into lists of at most `size`."""
    seen = list(dict.fromkeys(i for i in ids if i))
    return [seen[i : i + size] for i in range(0, len(seen), max(size, 1))]


def wanted_results(
    items: Iterable[Any], parse: Callable[[Any], TaskResult], wanted: Iterable[str], provider: str
) -> dict[str, TaskResult]:
    """The parsed records of a batch answer whose task ids were asked for. One unreadable record must not
    hide the others: it is logged and skipped, and its job simply sees no news this round."""
    asked = set(wanted)
    results: dict[str, TaskResult] = {}
    for item in items:
        try:
            result = parse(item)
        except ProviderUnavailable as exc:
            log.warning("%s: skipping an unreadable task record in a batch answer: %s", provider, exc)
            continue
        if result.task_id in asked:
            results[result.task_id] = result
    return results


def as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def as_str(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def error_message(provider: str, status: int, body: Any, text: str) -> str:
    """A one-line description of a failed answer for an exception message (already redacted)."""
    msg = body_message(body)
    if msg is None:
        msg = f"answer is not JSON: {snippet(text)}" if body is None and text.strip() else "no error message"
    return f"{provider}: HTTP {status}: {msg}"


class JsonProviderClient:
    """What every provider client shares: one JsonHttp bound to its base URL, token and error table.
    Subclasses set `provider`, `default_base_url` and `map_error`, and implement the LumaClient methods."""

    provider: str
    default_base_url: str

    @staticmethod
    def map_error(status: int, body: Any, text: str) -> LumaError:  # pragma: no cover - always overridden
        raise NotImplementedError

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        token: str,
        base_url: str | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 30,
    ) -> None:
        self._http = JsonHttp(
            session,
            provider=self.provider,
            base_url=base_url or self.default_base_url,
            token=token,
            error_mapper=type(self).map_error,
            retry=retry,
            timeout=timeout,
        )

    @property
    def base_url(self) -> str:
        return self._http.base_url

    def redact(self, text: str) -> str:
        return self._http.redact(text)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"
