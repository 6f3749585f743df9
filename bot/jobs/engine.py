"""The job engine: moves jobs from accepted to delivered, with every step driven by database rows.

Four loops share the work. The dispatcher submits queued jobs in order while fewer than `max_concurrent` are
with the provider; the poller tracks running tasks with batched requests; the deliverer hands finished jobs to
the delivery port; the reaper fails jobs past their deadline. Each loop sleeps until an event wakes it or its
next timer (from the database) is due, so an idle bot makes no requests and a restart loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bot.jobs.policy import Backoff, PollPolicy
from bot.jobs.ports import DeliveryPort, JobEvent
from bot.jobs.requests import JobRequest, build_new_job
from bot.luma.base import LumaClient
from bot.luma.errors import (
    AuthenticationFailed,
    BalanceExhausted,
    InvalidRequest,
    LumaError,
    ModerationRefused,
    ProviderUnavailable,
    RateLimited,
)
from bot.luma.types import ExtendRequest, GenerateRequest, TaskResult, TaskState
from bot.metrics import METRICS
from bot.settings import Settings
from bot.store import jobs as store
from bot.store.models import FailureKind, Job, JobAction, JobState
from bot.store.quotas import QuotaBook

log = logging.getLogger(__name__)

# How many queued jobs get a "your position changed" update when the queue moves: enough for everyone who
# is watching the top of the queue, without a burst of status edits when thousands wait.
POSITION_UPDATES = 10
# Earlier than any real poll time: a job whose callback arrived sorts ahead of routine polls in the next batch.
POLL_FIRST = datetime(2000, 1, 1, tzinfo=UTC)
# How often each loop of a process that shares its database with others looks at it unprompted (see recheck).
SHARED_DATABASE_RECHECK = timedelta(seconds=5)


@dataclass(frozen=True, slots=True)
class EngineConfig:
    max_concurrent: int = 5
    deadline: timedelta = timedelta(minutes=15)
    poll: PollPolicy = field(default_factory=PollPolicy)
    # Backoff while the provider refuses work (down, balance, token), and between delivery attempts.
    incident_backoff: Backoff = field(default_factory=Backoff)
    delivery_backoff: Backoff = field(default_factory=lambda: Backoff(base=2.0, cap=300.0))
    # Public base URL of our callback endpoint; None means the engine relies on polling alone.
    callback_base_url: str | None = None
    delivery_concurrency: int = 10
    # Names this process in job claims. Stable across restarts of one deployment (or one shard set), so a
    # restarted process knows at once which of its submissions were cut off.
    instance_id: str = "main"
    # How long a claim on a submitting job holds; a submission that runs longer is abandoned as interrupted.
    submit_lease: timedelta = timedelta(minutes=2)
    # How long one process holds the right to deliver a job before another may try.
    delivery_lease: timedelta = timedelta(minutes=2)
    # Overrides the client's batch size (1 reproduces the one-request-per-task polling of simpler bots).
    poll_batch: int | None = None
    # Overrides the client's own minimum gap between poll requests (tests and benchmarks scale time down).
    min_poll_interval: float | None = None
    # With several processes on one database (shards), what another process does or leaves behind when it
    # dies wakes none of this one's loops: each loop also looks at the database this often, so a dead
    # process's jobs are taken over once its leases run out. None: a lone process, woken by its own events.
    recheck: timedelta | None = None


class CallbackOutcome(enum.Enum):
    ACCEPTED = "accepted"
    UNKNOWN = "unknown"  # no such job, or the wrong secret
    MISMATCH = "mismatch"  # the body names another task than the job's
    STALE = "stale"  # the job has already finished: a replay or a late duplicate


class _Wakeable:
    """An event a loop sleeps on until it is set or a deadline passes (or, given `recheck`, that long)."""

    def __init__(self, recheck: timedelta | None = None) -> None:
        self._event = asyncio.Event()
        self._recheck = recheck.total_seconds() if recheck is not None else None

    def set(self) -> None:
        self._event.set()

    async def wait(self, until: datetime | None) -> None:
        timeout = None if until is None else max(0.0, (until - store.utcnow()).total_seconds())
        if self._recheck is not None:
            timeout = self._recheck if timeout is None else min(timeout, self._recheck)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)
        self._event.clear()


class JobEngine:
    def __init__(
        self,
        client: LumaClient,
        quotas: QuotaBook,
        config: EngineConfig | None = None,
        port: DeliveryPort | None = None,
    ) -> None:
        self.client = client
        self.quotas = quotas
        self.config = config or EngineConfig()
        self.port = port
        self._dispatch = _Wakeable(self.config.recheck)
        self._poll = _Wakeable(self.config.recheck)
        self._deliver = _Wakeable(self.config.recheck)
        self._reap = _Wakeable(self.config.recheck)
        self._tasks: list[asyncio.Task] = []
        self._inflight: set[asyncio.Task] = set()
        self._paused_until: datetime | None = None
        self._incident: FailureKind | None = None
        self._incident_failures = 0
        self._last_poll_request: datetime | None = None
        # Jobs whose callback arrived after their last poll request went out: an answer older than the
        # callback must not push their next poll back onto the slow schedule.
        self._hinted: set[int] = set()
        self._reaper_idle = True
        self._stopping = False

    # -- lifecycle ----------------------------------------------------------------------------------------

    def set_port(self, port: DeliveryPort) -> None:
        self.port = port

    async def start(self) -> None:
        """Resume whatever the database holds, then run the loops."""
        await self.recover()
        loops: list[Callable[[], Awaitable[None]]] = [
            self._dispatch_loop,
            self._poll_loop,
            self._deliver_loop,
            self._reap_loop,
        ]
        self._tasks = [
            asyncio.create_task(self._guard(loop), name=f"engine:{loop.__name__}") for loop in loops
        ]

    async def stop(self, grace: float = 5.0) -> None:
        """Stop taking new work; let requests in flight finish for `grace` seconds. Jobs stay resumable."""
        self._stopping = True
        if self._inflight:
            await asyncio.wait(self._inflight, timeout=grace)
        for task in [*self._tasks, *self._inflight]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._inflight, return_exceptions=True)
        self._tasks.clear()

    async def recover(self) -> None:
        """Fail this instance's cut-off submissions and resume everything else from the database."""
        await self._fail_interrupted(owner=self.config.instance_id)
        await store.release_deliveries(self.config.instance_id)
        # Running tasks may have finished while we were away: look at them now rather than on the old schedule.
        await store.schedule_polls(
            [j.id for j in await Job.filter(state=JobState.RUNNING).only("id")], store.utcnow()
        )

    async def _fail_interrupted(self, owner: str | None = None) -> None:
        """Jobs left `submitting` by a dead process may have reached the provider or not: sending them again
        could pay twice, so they fail with their unit refunded and the requester is offered a retry."""
        for job in await store.interrupted_submissions(store.utcnow(), owner=owner):
            log.warning("job %s: interrupted while being submitted; failing it without resending", job.id)
            await self._fail(
                job,
                FailureKind.INTERRUPTED,
                "The bot restarted while sending this job to the provider, so it was not sent again.",
            )

    async def _guard(self, loop: Callable[[], Awaitable[None]]) -> None:
        """A loop must never die of one bad iteration; it logs and goes on after a pause."""
        while not self._stopping:
            try:
                await loop()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("engine loop %s failed; restarting it", loop.__name__)
                await asyncio.sleep(1.0)

    # -- intake -------------------------------------------------------------------------------------------

    async def accept(self, request: JobRequest) -> Job:
        """Validate, reserve a unit and store the job; raises InvalidInput or QuotaExceeded, charging nothing."""
        if self._stopping:
            raise RuntimeError("the bot is shutting down")
        try:
            new = await build_new_job(request, provider=self.client.provider)
            job = await store.create_job(new, self.quotas, deadline=self.config.deadline)
        except Exception as exc:
            # For /metrics: QuotaExceeded → "QuotaExceeded", InvalidInput → "InvalidInput", and so on.
            METRICS.request_refused(type(exc).__name__)
            raise
        METRICS.request_accepted()
        log.info(
            "job %s: accepted (%s) for user %s in guild %s", job.id, job.action, job.user_id, job.guild_id
        )
        self._dispatch.set()
        if self._reaper_idle:
            self._reap.set()  # a new job's deadline is never earlier than those the reaper already waits for
        return job

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
            self._hinted.add(job.id)
            await store.schedule_polls([job.id], POLL_FIRST)
            self._poll.set()
            return CallbackOutcome.ACCEPTED
        if job.state in (JobState.QUEUED, JobState.SUBMITTING):
            return CallbackOutcome.ACCEPTED  # it raced our own record of the task; the first poll follows
        return CallbackOutcome.STALE

    def callback_url(self, job: Job) -> str | None:
        base = self.config.callback_base_url
        return f"{base.rstrip('/')}/callbacks/luma/{job.id}/{job.callback_secret}" if base else None

    # -- dispatch -----------------------------------------------------------------------------------------

    async def _dispatch_loop(self) -> None:
        while not self._stopping:
            now = store.utcnow()
            if self._paused_until and now < self._paused_until:
                await self._dispatch.wait(self._paused_until)
                continue
            free = self.config.max_concurrent - await store.active_count()
            claimed = await store.claim_queued(
                free, owner=self.config.instance_id, lease=self.config.submit_lease
            )
            for job in claimed:
                self._spawn(self._submit(job))
            if claimed:
                self._spawn(self._announce_positions())
            await self._dispatch.wait(None)

    async def _submit(self, job: Job) -> None:
        # Finish well inside the claim's lease, or another process may already count the job as cut off.
        budget = self.config.submit_lease.total_seconds() * 0.8
        try:
            async with asyncio.timeout(budget):
                task_id = await self._send(job)
        except TimeoutError:
            await self._fail(
                job,
                FailureKind.INTERRUPTED,
                "The provider took too long to accept the request, "
                "so it was not sent again (it may not have been received).",
            )
        except ModerationRefused as exc:
            await self._fail(job, FailureKind.MODERATION, exc.message)
        except InvalidRequest as exc:
            await self._fail(job, FailureKind.INVALID, exc.message)
        except (BalanceExhausted, AuthenticationFailed) as exc:
            kind = FailureKind.BALANCE if isinstance(exc, BalanceExhausted) else FailureKind.AUTH
            await self._hold_up(job, kind, exc)
        except RateLimited as exc:
            # Usually the provider's concurrency limit: keep the job's place and try again after the hint.
            await store.return_to_queue(job)
            self._pause(exc.retry_after or self.config.incident_backoff.base)
        except ProviderUnavailable as exc:
            if exc.maybe_submitted:
                await self._fail(
                    job,
                    FailureKind.INTERRUPTED,
                    "The provider did not confirm the request, so it "
                    "was not sent again (it may not have been received).",
                )
            else:
                await self._hold_up(job, FailureKind.PROVIDER, exc)
        except LumaError as exc:
            await self._fail(job, FailureKind.PROVIDER, exc.message)
        else:
            first = store.utcnow() + timedelta(seconds=self.config.poll.first_poll)
            if await store.mark_running(job, task_id, first_poll_at=first):
                log.info("job %s: submitted as task %s", job.id, task_id)
                self._recovered()
                self._poll.set()
                await self._notify(job, JobEvent.STARTED)
            return
        self._dispatch.set()

    async def _send(self, job: Job) -> str:
        opts = job.options or {}
        callback = self.callback_url(job)
        if job.action == JobAction.EXTEND:
            return await self.client.extend(
                ExtendRequest(
                    prompt=job.prompt,
                    video_id=job.parent_video_id,
                    video_url=None if job.parent_video_id else job.parent_video_url,
                    end_image_url=opts.get("end_image_url"),
                    callback_url=callback,
                )
            )
        return await self.client.generate(
            GenerateRequest(
                prompt=job.prompt,
                aspect_ratio=opts.get("aspect_ratio", "16:9"),
                loop=bool(opts.get("loop", False)),
                enhancement=bool(opts.get("enhancement", True)),
                start_image_url=opts.get("start_image_url"),
                end_image_url=opts.get("end_image_url"),
                callback_url=callback,
            )
        )

    async def _hold_up(self, job: Job, kind: FailureKind, exc: LumaError) -> None:
        """The provider refuses all work for now: keep the queue, tell the requester, warn the operator once."""
        await store.return_to_queue(job)
        self._incident_failures += 1
        if self._incident != kind:
            self._incident = kind
            log.error("provider incident (%s): %s; holding the queue and retrying with backoff", kind, exc)
            self._spawn(
                self._announce_positions(held_up=kind)
            )  # everyone waiting is held up, not just this job
        self._pause(self.config.incident_backoff.delay(self._incident_failures))
        await self._notify(job, JobEvent.HELD_UP, detail=kind.value)

    def _recovered(self) -> None:
        if self._incident is not None:
            log.warning("provider incident (%s) is over", self._incident)
            self._spawn(self._announce_positions())  # back to plain queue positions
        self._incident = None
        self._incident_failures = 0

    def _pause(self, seconds: float) -> None:
        until = store.utcnow() + timedelta(seconds=seconds)
        if self._paused_until is None or until > self._paused_until:
            self._paused_until = until
        self._dispatch.set()

    async def _announce_positions(self, held_up: FailureKind | None = None) -> None:
        if self.port is None:
            return
        queued = await Job.filter(state=JobState.QUEUED).order_by("id").limit(POSITION_UPDATES)
        for position, job in enumerate(queued, start=1):
            if held_up is not None:
                await self._notify(job, JobEvent.HELD_UP, position=position, detail=held_up.value)
            else:
                await self._notify(job, JobEvent.QUEUED, position=position)

    # -- polling ------------------------------------------------------------------------------------------

    async def _poll_loop(self) -> None:
        provider = self.client.provider
        while not self._stopping:
            now = store.utcnow()
            horizon = now + timedelta(seconds=self.config.poll.coalesce)
            due = await store.due_for_poll(horizon, provider, self.config.poll_batch or self.client.max_batch)
            if not due:
                await self._poll.wait(await store.next_poll_time(provider))
                continue
            if await self._respect_poll_rate():
                # While we waited for the provider's rate limit more jobs fell due (callbacks among them):
                # take them in this request rather than leaving them for the next one.
                horizon = store.utcnow() + timedelta(seconds=self.config.poll.coalesce)
                due = (
                    await store.due_for_poll(
                        horizon, provider, self.config.poll_batch or self.client.max_batch
                    )
                    or due
                )
            self._hinted.difference_update(j.id for j in due)
            try:
                results = await self.client.get_tasks([j.task_id for j in due if j.task_id])
            except RateLimited as exc:
                await self._poll_backoff(due, exc.retry_after or self.config.poll.min_interval)
                continue
            except (ProviderUnavailable, AuthenticationFailed, BalanceExhausted) as exc:
                kind = FailureKind.AUTH if isinstance(exc, AuthenticationFailed) else FailureKind.PROVIDER
                self._incident_failures += 1
                if self._incident != kind:
                    self._incident = kind
                    log.error("provider incident (%s) while polling: %s; backing off", kind, exc)
                await self._poll_backoff(due, self.config.incident_backoff.delay(self._incident_failures))
                continue
            except LumaError as exc:
                log.warning("polling %d tasks failed: %s", len(due), exc)
                await self._poll_backoff(due, self.config.poll.max_interval)
                continue
            self._recovered()
            await self._apply_results(due, results)

    async def _respect_poll_rate(self) -> bool:
        """Never poll faster than the provider allows, however many tasks are due. True if it had to wait."""
        waited = False
        if self._last_poll_request is not None:
            gap = self.config.min_poll_interval
            gap = self.client.min_poll_interval if gap is None else gap
            wait = gap - (store.utcnow() - self._last_poll_request).total_seconds()
            if wait > 0:
                await asyncio.sleep(wait)
                waited = True
        self._last_poll_request = store.utcnow()
        return waited

    async def _poll_backoff(self, jobs: list[Job], seconds: float) -> None:
        await store.schedule_polls([j.id for j in jobs], store.utcnow() + timedelta(seconds=seconds))

    async def _apply_results(self, jobs: list[Job], results: dict[str, TaskResult]) -> None:
        now = store.utcnow()
        finished = False
        later: dict[datetime, list[int]] = {}
        for job in jobs:
            result = results.get(job.task_id or "")
            if result is not None and result.state == TaskState.COMPLETED and result.video_url:
                if await store.mark_completed(job, result):
                    log.info("job %s: task %s completed", job.id, job.task_id)
                    finished = True
                continue
            if result is not None and result.state == TaskState.FAILED:
                kind = FailureKind.MODERATION if result.moderated else FailureKind.FAILED
                await self._fail(job, kind, result.failure_reason, wake_dispatch=False)
                finished = True
                continue
            if job.id in self._hinted:
                continue  # its callback came while this answer was on the way: its "poll now" stands
            age = (now - (job.submitted_at or job.created_at)).total_seconds()
            at = now + timedelta(seconds=self.config.poll.interval(age))
            later.setdefault(at, []).append(job.id)
        for at, ids in later.items():
            await store.schedule_polls(ids, at)
        if finished:
            self._deliver.set()
            self._dispatch.set()

    # -- delivery -----------------------------------------------------------------------------------------

    async def _deliver_loop(self) -> None:
        while not self._stopping:
            if self.port is None:
                await self._deliver.wait(None)
                continue
            pending = await store.pending_deliveries(
                store.utcnow(), limit=self.config.delivery_concurrency * 5
            )
            if not pending:
                await self._deliver.wait(await store.next_delivery_time())
                continue
            gate = asyncio.Semaphore(self.config.delivery_concurrency)
            await asyncio.gather(*(self._deliver_gated(gate, job) for job in pending))

    async def _deliver_gated(self, gate: asyncio.Semaphore, job: Job) -> None:
        async with gate:
            await self._deliver_one(job)

    async def _deliver_one(self, job: Job) -> None:
        assert self.port is not None
        if not await store.claim_delivery(
            job, store.utcnow(), self.config.delivery_lease, owner=self.config.instance_id
        ):
            return  # another process is delivering it
        try:
            message_id = await self.port.deliver(job)
        except Exception as exc:
            delay = self.config.delivery_backoff.delay(job.delivery_attempts + 1)
            log.warning(
                "job %s: delivery attempt %d failed (%s); retrying in %.0fs",
                job.id,
                job.delivery_attempts + 1,
                exc,
                delay,
            )
            await store.delivery_failed(job, store.utcnow() + timedelta(seconds=delay))
            return
        if await store.mark_delivered(job, self.quotas, result_message_id=message_id):
            log.info("job %s: delivered (%s)", job.id, job.state)
            await self._notify(job, JobEvent.DELIVERED)

    # -- deadlines ----------------------------------------------------------------------------------------

    async def _reap_loop(self) -> None:
        while not self._stopping:
            await self._fail_interrupted()
            overdue = await store.overdue(store.utcnow())
            for job in overdue:
                # During a provider incident the deadline is its fault: say so rather than "timed out".
                kind = self._incident or FailureKind.TIMEOUT
                log.warning("job %s: deadline passed in state %s", job.id, job.state)
                await self._fail(job, kind, "The job did not finish before its deadline.")
            if not overdue:
                # Claims of other processes that died expire unannounced: look again within one lease.
                timers = [t for t in (await store.next_deadline(), await store.next_lease_expiry()) if t]
                if timers:
                    timers.append(store.utcnow() + self.config.submit_lease)
                self._reaper_idle = not timers
                await self._reap.wait(min(timers) if timers else None)
                self._reaper_idle = False

    # -- shared -------------------------------------------------------------------------------------------

    async def _fail(
        self, job: Job, kind: FailureKind, reason: str | None, *, wake_dispatch: bool = True
    ) -> None:
        self._hinted.discard(job.id)
        if await store.mark_failed(job, kind, reason, self.quotas):
            log.info("job %s: failed (%s): %s", job.id, kind, reason)
            self._deliver.set()
            if wake_dispatch:
                self._dispatch.set()

    async def _notify(
        self, job: Job, event: JobEvent, *, position: int = 0, detail: str | None = None
    ) -> None:
        if self.port is None:
            return
        try:
            await self.port.job_updated(job, event, position=position, detail=detail)
        except Exception:
            log.warning("job %s: status update %s failed", job.id, event, exc_info=True)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)


def engine_config_from_settings(settings: Settings, **overrides: object) -> EngineConfig:
    """The engine's configuration for a deployment: polling slows to a safety net when callbacks are on."""
    values: dict[str, object] = {
        "max_concurrent": settings.luma_max_concurrent,
        "deadline": settings.job_deadline,
        "callback_base_url": settings.callback_public_url,
        "poll": PollPolicy.safety_net() if settings.callback_public_url else PollPolicy(),
        "instance_id": settings.instance_id,
        "recheck": SHARED_DATABASE_RECHECK if settings.shard_count else None,
    }
    values.update(overrides)
    return EngineConfig(**values)  # type: ignore[arg-type]
