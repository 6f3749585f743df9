"""Polling: running tasks are checked through the provider key that created them, in batches where the
provider has a batch lookup, young tasks more often than old ones, never faster than each key allows. A
callback only moves a job's next poll forward; the poll's answer is what counts."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from bot.jobs.context import EngineContext
from bot.jobs.providers import ProviderKey
from bot.luma.errors import LumaError, RateLimited
from bot.luma.types import TaskFailure, TaskResult, TaskState
from bot.store import jobs as store
from bot.store.jobs import UnstorableValue
from bot.store.models import FailureKind, Job

log = logging.getLogger(__name__)

# Earlier than any real poll time: a job whose callback arrived sorts ahead of routine polls in the next batch.
POLL_FIRST = datetime(2000, 1, 1, tzinfo=UTC)
# Due jobs read per round, across all keys.
ROUND_SIZE = 500
# Videos timed before the engine trusts its own measure of a provider over the prior it was given.
MIN_TIMED = 5
TIMED_KEPT = 100


class Poller:
    def __init__(self, ctx: EngineContext, needs_funds: Callable[[Job, str | None], Awaitable[None]]) -> None:
        self.ctx = ctx
        self._needs_funds = needs_funds
        self._last_request: dict[str, datetime] = {}
        # How long each provider's recent videos took (an optimisation of polling, so memory is enough).
        self._durations: dict[str, deque[float]] = {}

    def _expected(self, key: ProviderKey) -> tuple[float, float] | None:
        """(shortest, longest) a video of this provider takes, from the last ones timed (10th and 90th
        percentiles), else the prior; None with callbacks on, which make close polling needless."""
        ctx = self.ctx
        if ctx.config.callback_base_url and key.spec.callbacks:
            return None
        timed = sorted(self._durations.get(key.provider, ()))
        if len(timed) >= MIN_TIMED:
            return timed[len(timed) // 10], timed[(len(timed) * 9) // 10]
        prior = ctx.config.expected_durations.get(key.provider)
        if prior is None:
            return None
        scale = ctx.config.poll.scale
        return prior[0] * scale, prior[1] * scale

    def _timed(self, provider: str, seconds: float) -> None:
        self._durations.setdefault(provider, deque(maxlen=TIMED_KEPT)).append(seconds)

    async def run(self) -> None:
        ctx = self.ctx
        while not ctx.stopping:
            horizon = store.utcnow() + timedelta(seconds=ctx.config.poll.batch_window)
            due = await store.due_for_poll(horizon, ROUND_SIZE)
            if not due:
                await ctx.poll.wait(await store.next_poll_time())
                continue
            groups: dict[str, tuple[ProviderKey, list[Job]]] = {}
            for job in due:
                key = ctx.pool.for_task(job.provider, job.key_id)
                if key is None:
                    await ctx.fail(
                        job,
                        FailureKind.PROVIDER,
                        f"The video service making this video ({job.provider}) is no longer configured, so "
                        "its result cannot be fetched.",
                    )
                    continue
                groups.setdefault(key.id, (key, []))[1].append(job)
            ctx.hinted.difference_update(j.id for j in due)
            await asyncio.gather(*(self._poll_key(key, jobs) for key, jobs in groups.values()))

    def _gap(self, key: ProviderKey) -> float:
        override = self.ctx.config.min_poll_interval
        return key.client.min_poll_interval if override is None else override

    async def _poll_key(self, key: ProviderKey, jobs: list[Job]) -> None:
        """One request's worth of this key's due jobs; the rest stay due for the next round. A key whose
        provider allows one request a second is never asked sooner: its jobs wait for the gap instead."""
        ctx = self.ctx
        last = self._last_request.get(key.id)
        if last is not None:
            wait = (last + timedelta(seconds=self._gap(key)) - store.utcnow()).total_seconds()
            if wait > 0:
                await asyncio.sleep(wait)
                # While we waited for the key's rate limit more of its jobs fell due (callbacks among them):
                # take them in this request rather than leaving them for the next one.
                horizon = store.utcnow() + timedelta(seconds=ctx.config.poll.batch_window)
                fresh = [
                    j
                    for j in await store.due_for_poll(horizon, ROUND_SIZE)
                    if (k := ctx.pool.for_task(j.provider, j.key_id)) is not None and k.id == key.id
                ]
                ctx.hinted.difference_update(j.id for j in fresh)
                jobs = fresh or jobs
        batch = jobs[: ctx.config.poll_batch or key.client.max_batch]
        self._last_request[key.id] = store.utcnow()
        try:
            results = await key.client.get_tasks([j.task_id for j in batch if j.task_id])
        except RateLimited as exc:
            await self._backoff(batch, exc.retry_after or ctx.config.poll.min_interval)
            return
        except LumaError as exc:
            failures = ctx.health.poll_failed(key.provider, exc.message)
            await self._backoff(batch, ctx.config.incident_backoff.delay(failures))
            return
        ctx.health.poll_succeeded(key.provider)
        await self._apply_results(key, batch, results)

    async def _backoff(self, jobs: list[Job], seconds: float) -> None:
        await store.schedule_polls([j.id for j in jobs], store.utcnow() + timedelta(seconds=seconds))

    async def _apply_results(self, key: ProviderKey, jobs: list[Job], results: dict[str, TaskResult]) -> None:
        ctx = self.ctx
        now = store.utcnow()
        expected = self._expected(key)
        finished = False
        later: dict[datetime, list[int]] = {}
        for job in jobs:
            result = results.get(job.task_id or "")
            # Each job's record is applied on its own: one the bot cannot store or use ends that job alone,
            # and an unexpected error leaves it for a later poll, so the rest of the batch always goes on.
            try:
                ended = await self._apply_result(job, result)
            except UnstorableValue as exc:
                log.warning(
                    "job %s: task %s: the provider's record cannot be stored (%s)", job.id, job.task_id, exc
                )
                await ctx.fail(
                    job,
                    FailureKind.FAILED,
                    f"The provider's record cannot be stored: {exc}.",
                    wake_dispatch=False,
                )
                finished = True
                continue
            except Exception:
                log.exception(
                    "job %s: applying the record of task %s failed; polling it again later",
                    job.id,
                    job.task_id,
                )
                later.setdefault(now + timedelta(seconds=ctx.config.poll.max_interval), []).append(job.id)
                continue
            age = (now - (job.submitted_at or job.created_at)).total_seconds()
            if ended:
                if result is not None and result.state == TaskState.COMPLETED:
                    self._timed(key.provider, age)
                finished = True
                continue
            if job.id in ctx.hinted:
                continue  # its callback came while this answer was on the way: its "poll now" stands
            at = now + timedelta(seconds=ctx.config.poll.delay(age, expected))
            later.setdefault(at, []).append(job.id)
        for at, ids in later.items():
            await store.schedule_polls(ids, at)
        if finished:
            ctx.deliver.set()
            ctx.dispatch.set()  # a slot is free

    async def _apply_result(self, job: Job, result: TaskResult | None) -> bool:
        """Record a finished task's outcome; True if its task is over (the job ended, was sent back to the
        queue, or another process ended it first)."""
        if result is not None and result.state == TaskState.COMPLETED and result.video_url:
            if await store.mark_completed(job, result):
                log.info("job %s: task %s completed", job.id, job.task_id)
            return True
        if result is not None and result.state == TaskState.FAILED:
            await self._task_failed(job, result)
            return True  # ended, or back in the queue as a new task: either way this task is done
        return False

    async def _task_failed(self, job: Job, result: TaskResult) -> None:
        """A failed task is not billed, so a failure worth retrying sends the job once more, and one that says
        the account ran dry puts the job back in the queue while its key rests."""
        ctx = self.ctx
        reason = result.failure_reason
        if result.failure is TaskFailure.BALANCE:
            if await store.resubmit(job, queue_timeout=ctx.config.queue_timeout):
                await self._needs_funds(job, reason)
                return
        if result.failure is TaskFailure.TRANSIENT and job.resubmits < ctx.config.max_resubmits:
            if await store.resubmit(job, queue_timeout=ctx.config.queue_timeout):
                log.info("job %s: task %s failed (%s); sending it once more", job.id, job.task_id, reason)
                ctx.dispatch.set()
                ctx.reap.set()  # its wait in the queue has a deadline of its own again
                return
        if result.moderated or result.failure is TaskFailure.MODERATION:
            kind = FailureKind.MODERATION
        elif result.failure is TaskFailure.INVALID:
            kind = FailureKind.INVALID
        else:
            kind = FailureKind.FAILED
        await ctx.fail(job, kind, reason, wake_dispatch=False)
