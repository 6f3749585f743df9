"""What the engine's parts share: the configuration, the providers and their health, the quota book, the
delivery port, the events each loop sleeps on, and the few actions every part takes (fail a job, tell its
member, start a background task)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bot.jobs.health import Health
from bot.jobs.policy import Backoff, PollPolicy
from bot.jobs.ports import DeliveryPort, JobEvent, JobView
from bot.jobs.providers import ProviderPool
from bot.luma.options import OptionDefaults
from bot.store import jobs as store
from bot.store.models import FailureKind, Job
from bot.store.quotas import QuotaBook

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EngineConfig:
    # Videos at once per key when the engine is given a bare client (the settings give each key its own).
    max_concurrent: int = 5
    # How long a job may take once it is sent to the provider.
    deadline: timedelta = timedelta(minutes=15)
    # How long a job may wait in the queue before it is sent.
    queue_timeout: timedelta = timedelta(days=1)
    poll: PollPolicy = field(default_factory=PollPolicy)
    # Backoff while a provider or key refuses work (down, balance, token), and between delivery attempts.
    incident_backoff: Backoff = field(default_factory=Backoff)
    delivery_backoff: Backoff = field(default_factory=lambda: Backoff(base=2.0, cap=300.0))
    # Public base URL of our callback endpoint; None means the engine relies on polling alone.
    callback_base_url: str | None = None
    delivery_concurrency: int = 10
    # Names this process in job claims. Stable across restarts of one deployment (or one shard set), so a
    # restarted process knows at once which of its submissions were cut off.
    instance_id: str = "main"
    # How long a claim on a submitting job holds; a submission that runs longer is abandoned as unconfirmed.
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
    # The admin's defaults for members who choose no model, resolution or duration.
    option_defaults: OptionDefaults = field(default_factory=OptionDefaults)
    # Keys the opaque member id sent to the provider (see dispatch.member_key).
    user_id_secret: bytes = b"luma-bot"
    # How many times a job whose task failed in a way worth retrying goes back to the queue.
    max_resubmits: int = 1
    # A presigned result link (the Agents API's lasts an hour) older than this is fetched anew before it is
    # posted, so the posted link works when it is posted.
    fresh_link_age: timedelta = timedelta(minutes=2)
    # How long each provider's videos usually take (shortest, longest) until the engine has timed its own; an
    # empty mapping: learn from scratch (see PollPolicy.delay).
    expected_durations: Mapping[str, tuple[float, float]] = field(default_factory=dict)


class Wakeable:
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


class EngineContext:
    def __init__(
        self, pool: ProviderPool, quotas: QuotaBook, config: EngineConfig, port: DeliveryPort | None
    ) -> None:
        self.pool = pool
        self.quotas = quotas
        self.config = config
        self.port = port
        self.health = Health(pool.keys(), config.incident_backoff)
        self.dispatch = Wakeable(config.recheck)
        self.poll = Wakeable(config.recheck)
        self.deliver = Wakeable(config.recheck)
        self.reap = Wakeable(config.recheck)
        self.inflight: set[asyncio.Task] = set()
        # Jobs whose callback arrived after their last poll request went out: an answer older than the
        # callback must not push their next poll back onto the slow schedule.
        self.hinted: set[int] = set()
        self.stopping = False

    def redact(self, text: str) -> str:
        """`text` without any of our provider tokens (providers sometimes echo what they were sent)."""
        for key in self.pool.keys():
            text = key.client.redact(text)
        return text

    async def fail(
        self, job: Job, kind: FailureKind, reason: str | None, *, wake_dispatch: bool = True
    ) -> bool:
        self.hinted.discard(job.id)
        # Every failure reason passes here on its way to the database, whether it came from an exception or a
        # task record, so here is where the provider's echo of our token is masked (the log filter would only
        # clean the log line).
        reason = self.redact(reason) if reason else reason
        if await store.mark_failed(job, kind, reason, self.quotas):
            log.info("job %s: failed (%s): %s", job.id, kind, reason)
            self.deliver.set()
            if wake_dispatch:
                self.dispatch.set()
            return True
        return False

    async def notify(
        self, job: Job, event: JobEvent, *, position: int = 0, detail: str | None = None
    ) -> None:
        if self.port is None:
            return
        try:
            await self.port.job_updated(JobView.of(job), event, position=position, detail=detail)
        except Exception:
            log.warning("job %s: status update %s failed", job.id, event, exc_info=True)

    def spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self.inflight.add(task)
        task.add_done_callback(self.inflight.discard)


def utcnow() -> datetime:
    return datetime.now(UTC)
