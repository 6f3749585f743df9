"""Deadlines: a job may wait in the queue for `queue_timeout` and take `deadline` once sent; past either it
fails with its unit back. Submissions cut off by a dead process (their claim's lease ran out) fail without
being resent, since the provider may have them."""

from __future__ import annotations

import logging
from datetime import datetime

from bot.jobs.context import EngineContext
from bot.store import jobs as store
from bot.store.models import FailureKind, JobAction, JobState

log = logging.getLogger(__name__)


class Reaper:
    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        # When the reaper will next look by itself (None: it waits for a wake-up).
        self.waiting_until: datetime | None = None

    def deadline_added(self, at: datetime) -> None:
        """A job's deadline is set or moved: wake the reaper if it would look too late (a job's wait in the
        queue may end long before the deadlines of the jobs already running)."""
        if self.waiting_until is None or at < self.waiting_until:
            self.ctx.reap.set()

    async def fail_interrupted(self, owner: str | None = None) -> None:
        """Jobs left `submitting` by a dead process may have reached the provider or not: sending them again
        could pay twice, so they fail with their unit refunded and the requester is offered a retry."""
        for job in await store.interrupted_submissions(store.utcnow(), owner=owner):
            log.warning("job %s: interrupted while being submitted; failing it without resending", job.id)
            await self.ctx.fail(
                job,
                FailureKind.INTERRUPTED,
                "The bot restarted while sending this job to the provider, so it was not sent again.",
            )

    async def run(self) -> None:
        ctx = self.ctx
        while not ctx.stopping:
            await self.fail_interrupted()
            overdue = await store.overdue(store.utcnow())
            for job in overdue:
                if job.state == JobState.QUEUED:
                    # Never sent. If its providers are refusing work, that is why: say so.
                    providers = [job.provider] if job.action == JobAction.EXTEND else list(ctx.pool.order)
                    kind = ctx.health.held_up_by(providers) or FailureKind.QUEUE_TIMEOUT
                    reason = "The job waited in the queue longer than it may and was never sent."
                else:
                    kind = FailureKind.TIMEOUT
                    reason = "The job did not finish before its deadline."
                log.warning("job %s: deadline passed in state %s", job.id, job.state)
                await ctx.fail(job, kind, reason)
            if not overdue:
                # Claims of other processes that died expire unannounced: look again within one lease.
                timers = [t for t in (await store.next_deadline(), await store.next_lease_expiry()) if t]
                if timers:
                    timers.append(store.utcnow() + ctx.config.submit_lease)
                self.waiting_until = min(timers) if timers else None
                await ctx.reap.wait(self.waiting_until)
                self.waiting_until = store.utcnow()  # awake: a deadline added now is looked at in this round
