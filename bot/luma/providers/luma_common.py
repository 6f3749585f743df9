"""What Luma's own two APIs (the Agents API and the Dream Machine API) share: FastAPI `detail` error bodies,
their status codes, and polling many generations with one GET each (neither has a batch lookup)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
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
from bot.luma.http import JsonProviderClient, as_str, body_message, error_message, looks_like_moderation
from bot.luma.types import TaskResult

log = logging.getLogger(__name__)

# GETs in flight at once while polling one provider: enough to check 50 tasks in a few round trips without
# opening a connection per task.
POLL_CONCURRENCY = 10
# A generation id that cannot exist: looking it up costs nothing and tells a good key (404) from a bad one.
NIL_GENERATION = "00000000-0000-4000-8000-000000000000"


def map_luma_error(provider: str, status: int, body: Any, text: str) -> LumaError:
    """Luma's documented codes (Agents "Error handling"; the Dream Machine SDK's table) → a typed error:
    401 bad key, 402 no balance, 403 account suspended, 400/413/422 a request it refuses (its reason is for
    the member), 429 slow down (Retry-After), 5xx its trouble."""
    message = error_message(provider, status, body, text)
    kwargs: dict[str, Any] = {"status": status}
    detail = body_message(body) or ""
    if status == 429:
        return RateLimited(message, **kwargs)
    if status >= 500:
        return ProviderUnavailable(message, **kwargs)
    if status == 401:
        return AuthenticationFailed(message, **kwargs)
    if status == 402:
        return BalanceExhausted(message, **kwargs)
    if looks_like_moderation(detail):
        return ModerationRefused(message, **kwargs)
    if status == 403:
        return AuthenticationFailed(message, **kwargs)
    return InvalidRequest(message, **kwargs)


async def fetch_each(
    provider: str, ids: Sequence[str], get_one: Callable[[str], Awaitable[TaskResult]]
) -> dict[str, TaskResult]:
    """One GET per id, a few at a time. An id the provider no longer knows is left out (its job sees no news
    and ends at its deadline); if every lookup failed, the first error is raised so the engine backs off."""
    unique = list(dict.fromkeys(i for i in ids if i))
    gate = asyncio.Semaphore(POLL_CONCURRENCY)

    async def one(task_id: str) -> TaskResult | LumaError:
        async with gate:
            try:
                return await get_one(task_id)
            except LumaError as exc:
                return exc

    outcomes = await asyncio.gather(*(one(i) for i in unique))
    results: dict[str, TaskResult] = {}
    errors: list[LumaError] = []
    for task_id, outcome in zip(unique, outcomes, strict=True):
        if isinstance(outcome, TaskResult):
            results[task_id] = outcome
        elif isinstance(outcome, TaskNotFound):
            log.warning("%s: generation %s is unknown to the provider", provider, task_id)
        else:
            errors.append(outcome)
    if errors and not results:
        raise errors[0]
    if errors:
        log.warning("%s: %d of %d lookups failed (first: %s)", provider, len(errors), len(unique), errors[0])
    return results


def not_found(exc: InvalidRequest) -> LumaError:
    if exc.status == 404:
        return TaskNotFound(exc.message, status=404)
    return exc


class GenerationsClient(JsonProviderClient):
    """What both of Luma's own clients do alike: a create answers a Generation whose id is the task (and the
    video an extension names), and each generation is looked up with a GET of its own."""

    # One GET per task, a few at a time: a "batch" is only how many tasks one polling round takes.
    max_batch = 50
    # Neither API limits lookups (the Agents API rate-limits creates only; Dream Machine documents none).
    min_poll_interval = 0.0

    @staticmethod
    def parse(obj: Any) -> TaskResult:  # pragma: no cover - always overridden
        raise NotImplementedError

    async def _post_create(self, path: str, body: dict[str, Any]) -> str:
        answer = await self._http.request("POST", path, json_body=body, create=True)
        task_id = as_str(answer.get("id")) if isinstance(answer, Mapping) else None
        if not task_id:
            # It answered 2xx, so a paid generation may exist even though we cannot name it.
            raise ProviderUnavailable(
                f"{self.provider}: create answer has no generation id", maybe_submitted=True
            )
        return task_id

    async def get_task(self, task_id: str) -> TaskResult:
        try:
            body = await self._http.request("GET", f"/generations/{quote(task_id, safe='')}")
        except InvalidRequest as exc:
            raise not_found(exc) from None
        result = type(self).parse(body)
        if result.task_id != task_id:
            raise TaskNotFound(f"{self.provider}: asked for generation {task_id!r}, got {result.task_id!r}")
        return result

    async def get_tasks(self, task_ids: Sequence[str]) -> dict[str, TaskResult]:
        return await fetch_each(self.provider, task_ids, self.get_task)
