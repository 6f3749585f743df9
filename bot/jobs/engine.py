"""The job engine: moves jobs from accepted to delivered, with every step driven by database rows.

It only composes its parts, each in its own module: dispatch (queued jobs to a provider key with a free
slot), polling (running tasks through the key that made them), delivery (finished jobs to the port),
deadlines (jobs that waited or ran too long) and provider health. Each part's loop sleeps until an event
wakes it or its next timer (from the database) is due, so an idle bot makes no requests and a restart loses
nothing.
"""

from __future__ import annotations

import asyncio
import enum
import hmac
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from bot.jobs.context import EngineConfig, EngineContext
from bot.jobs.deadlines import Reaper
from bot.jobs.delivery import Deliverer
from bot.jobs.dispatch import Dispatcher, member_key
from bot.jobs.policy import PollPolicy
from bot.jobs.polling import POLL_FIRST, Poller
from bot.jobs.ports import DeliveryPort
from bot.jobs.providers import ProviderKey, ProviderPool
from bot.jobs.requests import JobRequest, build_new_job
from bot.luma.base import LumaClient
from bot.luma.capabilities import spec_for
from bot.metrics import METRICS
from bot.settings import Settings
from bot.store import jobs as store
from bot.store.models import Job, JobState
from bot.store.quotas import QuotaBook

__all__ = ["CallbackOutcome", "EngineConfig", "JobEngine", "engine_config_from_settings", "member_key"]

log = logging.getLogger(__name__)

# How often each loop of a process that shares its database with others looks at it unprompted (see recheck).
SHARED_DATABASE_RECHECK = timedelta(seconds=5)


class CallbackOutcome(enum.Enum):
    ACCEPTED = "accepted"
    UNKNOWN = "unknown"  # no such job, or the wrong secret
    MISMATCH = "mismatch"  # the body names another task than the job's
    STALE = "stale"  # the job has already finished: a replay or a late duplicate


class JobEngine:
    def __init__(
        self,
        providers: LumaClient | ProviderPool,
        quotas: QuotaBook,
        config: EngineConfig | None = None,
        port: DeliveryPort | None = None,
    ) -> None:
        self.config = config or EngineConfig()
        pool = (
            providers
            if isinstance(providers, ProviderPool)
            else ProviderPool.single(providers, self.config.max_concurrent)
        )
        self.ctx = EngineContext(pool, quotas, self.config, port)
        self.quotas = quotas
        self.dispatcher = Dispatcher(self.ctx)
        self.poller = Poller(self.ctx, self.dispatcher.task_needs_funds)
        self.deliverer = Deliverer(self.ctx)
        self.reaper = Reaper(self.ctx)
        self._tasks: list[asyncio.Task] = []

    @property
    def pool(self) -> ProviderPool:
        return self.ctx.pool

    @property
    def client(self) -> LumaClient:
        """The preferred provider's first key's client."""
        return self.ctx.pool.primary.client

    @property
    def port(self) -> DeliveryPort | None:
        return self.ctx.port

    def key_for(self, job: Job) -> ProviderKey | None:
        """The provider key that made (or will follow) this job's task; None if its provider is gone."""
        return self.ctx.pool.for_task(job.provider, job.key_id)

    # -- lifecycle ----------------------------------------------------------------------------------------

    def set_port(self, port: DeliveryPort) -> None:
        self.ctx.port = port

    async def start(self) -> None:
        """Resume whatever the database holds, then run the loops."""
        await self.recover()
        loops: list[Callable[[], Awaitable[None]]] = [
            self.dispatcher.run,
            self.poller.run,
            self.deliverer.run,
            self.reaper.run,
        ]
        self._tasks = [
            asyncio.create_task(self._guard(loop), name=f"engine:{type(loop.__self__).__name__}")  # type: ignore[attr-defined]
            for loop in loops
        ]

    async def stop(self, grace: float = 5.0) -> None:
        """Stop taking new work; let requests in flight finish for `grace` seconds. Jobs stay resumable."""
        self.ctx.stopping = True
        inflight = self.ctx.inflight
        if inflight:
            await asyncio.wait(inflight, timeout=grace)
        for task in [*self._tasks, *inflight]:
            task.cancel()
        await asyncio.gather(*self._tasks, *inflight, return_exceptions=True)
        self._tasks.clear()

    async def recover(self) -> None:
        """Fail this instance's cut-off submissions and resume everything else from the database."""
        await self.reaper.fail_interrupted(owner=self.config.instance_id)
        await store.release_deliveries(self.config.instance_id)
        # Running tasks may have finished while we were away: look at them now rather than on the old schedule.
        await store.schedule_polls(
            [j.id for j in await Job.filter(state=JobState.RUNNING).only("id")], store.utcnow()
        )

    async def _guard(self, loop: Callable[[], Awaitable[None]]) -> None:
        """A loop must never die of one bad iteration; it logs and goes on after a pause."""
        while not self.ctx.stopping:
            try:
                await loop()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("engine loop %s failed; restarting it", getattr(loop, "__qualname__", loop))
                await asyncio.sleep(1.0)

    # -- intake -------------------------------------------------------------------------------------------

    async def accept(self, request: JobRequest, *, shown_later: bool = False) -> Job:
        """Validate, reserve a unit and store the job; raises InvalidInput or QuotaExceeded, charging nothing.
        `shown_later`: the caller is about to post where the job is shown and will call `placed`; its result
        waits for that (for up to store.PLACEMENT_WAIT)."""
        if self.ctx.stopping:
            raise RuntimeError("the bot is shutting down")
        try:
            new = await build_new_job(
                request, providers=self.pool.order, defaults=self.config.option_defaults
            )
            job = await store.create_job(
                new, self.quotas, deadline=self.config.queue_timeout, placed=not shown_later
            )
        except Exception as exc:
            # For /metrics: QuotaExceeded → "QuotaExceeded", InvalidInput → "InvalidInput", and so on.
            METRICS.request_refused(type(exc).__name__)
            raise
        METRICS.request_accepted()
        log.info(
            "job %s: accepted (%s) for user %s in guild %s", job.id, job.action, job.user_id, job.guild_id
        )
        self.ctx.dispatch.set()
        self.reaper.deadline_added(job.deadline_at)
        return job

    async def placed(
        self, job_id: int, *, thread_id: int | None = None, status_message_id: int | None = None
    ) -> None:
        """The job's status message and thread are posted (or could not be): its result may go out now."""
        await store.set_location(job_id, thread_id=thread_id, status_message_id=status_message_id)
        self.ctx.deliver.set()

    async def queue_position(self, job: Job) -> int:
        return await store.queue_position(job)

    async def handle_callback(self, job_id: int, secret: str, task_id: str | None) -> CallbackOutcome:
        """A provider says a task changed. It is only a hint: the job is confirmed by polling it right away,
        batched with any others due, so a forged or replayed callback can change nothing."""
        job = await store.get_job(job_id)
        if job is None or not hmac.compare_digest(job.callback_secret.encode(), secret.encode()):
            return CallbackOutcome.UNKNOWN
        if task_id and job.task_id and task_id != job.task_id:
            return CallbackOutcome.MISMATCH
        if job.state == JobState.RUNNING:
            self.ctx.hinted.add(job.id)
            await store.schedule_polls([job.id], POLL_FIRST)
            self.ctx.poll.set()
            return CallbackOutcome.ACCEPTED
        if job.state in (JobState.QUEUED, JobState.SUBMITTING):
            return CallbackOutcome.ACCEPTED  # it raced our own record of the task; the first poll follows
        return CallbackOutcome.STALE

    def callback_url(self, job: Job) -> str | None:
        return self.dispatcher.callback_url(job)

    # -- what admins see ----------------------------------------------------------------------------------

    async def provider_report(self) -> list[dict[str, Any]]:
        """Each provider and key: health, running tasks and slots, last error, success rates (this process's
        view, learnt from its own traffic; running tasks are counted in the database, for all processes)."""
        running = await store.running_per_key()
        slots = {key.id: key.max_concurrent for key in self.pool.keys()}
        return self.ctx.health.report(running, slots)


def engine_config_from_settings(settings: Settings, **overrides: object) -> EngineConfig:
    """The engine's configuration for a deployment: polling slows to a safety net when callbacks are on."""
    values: dict[str, object] = {
        "max_concurrent": settings.luma_max_concurrent,
        "deadline": settings.job_deadline,
        "queue_timeout": settings.job_queue_timeout,
        "callback_base_url": settings.callback_public_url,
        "poll": PollPolicy.safety_net() if settings.callback_public_url else PollPolicy(),
        "instance_id": settings.instance_id,
        "recheck": SHARED_DATABASE_RECHECK if settings.shard_count else None,
        "option_defaults": settings.option_defaults,
        "user_id_secret": settings.user_id_secret,
        "expected_durations": {
            c.name: spec_for(c.name).typical_seconds
            for c in settings.provider_configs()
            if spec_for(c.name).typical_seconds is not None
        },
    }
    values.update(overrides)
    return EngineConfig(**values)  # type: ignore[arg-type]
