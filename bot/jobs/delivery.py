"""Delivery: finished jobs go to the delivery port (the Discord layer), a bounded number at once, each under
a lease so two processes never deliver one job; the port's answer (where the result went) is recorded with
the charge or refund, and a failed attempt is retried with backoff."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from bot.jobs.context import EngineContext
from bot.jobs.ports import Destination, JobEvent, JobView
from bot.luma.types import TaskState
from bot.store import jobs as store
from bot.store.models import Job, JobState

log = logging.getLogger(__name__)


class Deliverer:
    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx

    async def run(self) -> None:
        ctx = self.ctx
        while not ctx.stopping:
            if ctx.port is None:
                await ctx.deliver.wait(None)
                continue
            pending = await store.pending_deliveries(
                store.utcnow(), limit=ctx.config.delivery_concurrency * 5
            )
            if not pending:
                await ctx.deliver.wait(await store.next_delivery_time())
                continue
            gate = asyncio.Semaphore(ctx.config.delivery_concurrency)
            await asyncio.gather(*(self._gated(gate, job) for job in pending))

    async def _gated(self, gate: asyncio.Semaphore, job: Job) -> None:
        async with gate:
            await self.deliver_one(job)

    async def deliver_one(self, job: Job) -> None:
        ctx = self.ctx
        assert ctx.port is not None
        if not await store.claim_delivery(
            job, store.utcnow(), ctx.config.delivery_lease, owner=ctx.config.instance_id
        ):
            return  # another process is delivering it
        try:
            job = await self._with_fresh_link(job)
            delivery = await ctx.port.deliver(JobView.of(job))
        except Exception as exc:
            delay = ctx.config.delivery_backoff.delay(job.delivery_attempts + 1)
            log.warning(
                "job %s: delivery attempt %d failed (%s); retrying in %.0fs",
                job.id,
                job.delivery_attempts + 1,
                exc,
                delay,
            )
            await store.delivery_failed(job, store.utcnow() + timedelta(seconds=delay))
            return
        posted = delivery.destination is not Destination.NOWHERE
        if not posted and job.state == JobState.COMPLETED:
            # The member never saw the video, so it is not charged; the operator should know why.
            log.error(
                "job %s: the video could be posted nowhere (thread, channel and DM refused); its unit is refunded",
                job.id,
            )
        if await store.mark_delivered(
            job,
            ctx.quotas,
            result_message_id=delivery.message_id,
            result_channel_id=delivery.channel_id,
            posted=posted,
        ):
            log.info("job %s: delivered (%s, %s)", job.id, job.state, delivery.destination)
            await ctx.notify(job, JobEvent.DELIVERED)

    async def _with_fresh_link(self, job: Job) -> Job:
        """A presigned result link (the Agents API's lasts an hour) is fetched anew unless it is young, so the
        link posted works when it is posted."""
        key = self.ctx.pool.for_task(job.provider, job.key_id)
        if key is None or job.state != JobState.COMPLETED or not job.task_id:
            return job
        if not key.spec.fresh_links:
            return job
        age = store.utcnow() - (job.finished_at or store.utcnow())
        if age < self.ctx.config.fresh_link_age:
            return job
        result = await key.client.get_task(job.task_id)  # errors retry the delivery later
        if result.state == TaskState.COMPLETED and result.video_url:
            await store.refresh_video_url(job, result.video_url)
        return job
