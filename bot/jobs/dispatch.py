"""Dispatch: queued jobs go, oldest first, to the first provider in order of preference that is healthy,
has a free slot on one of its keys and can make the video; an extension goes to the key that made its
parent. Each create's outcome feeds provider and key health, and a create whose outcome is unknown is never
sent again."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import random
from datetime import timedelta

from bot.jobs.context import EngineContext
from bot.jobs.ports import JobEvent
from bot.jobs.providers import ProviderKey
from bot.luma.capabilities import spec_for
from bot.luma.errors import (
    AuthenticationFailed,
    BalanceExhausted,
    InvalidRequest,
    LumaError,
    ModerationRefused,
    ProviderUnavailable,
    RateLimited,
)
from bot.luma.options import ServerOptions, VideoOptions, check_generate, check_server, server_defaults
from bot.luma.types import ExtendRequest, GenerateRequest
from bot.luma.validation import InvalidInput
from bot.store import jobs as store
from bot.store.jobs import SlotTaken, UnstorableValue
from bot.store.models import FailureKind, Job, JobAction, JobState
from bot.store.quotas import video_options

log = logging.getLogger(__name__)

# How many jobs at the head of the queue are looked at per round: a job that cannot go anywhere yet (its
# only provider is down) does not stop those behind it that can.
QUEUE_SCAN = 50
# How many queued jobs get a "your position changed" update when the queue moves: enough for everyone who
# is watching the top of the queue, without a burst of status edits when thousands wait.
POSITION_UPDATES = 10


def member_key(secret: bytes, user_id: int) -> str:
    """A stable opaque id for a member, never their Discord id: Luma attributes a moderation violation to it
    rather than to the whole account, and cannot turn it back into the member."""
    return hmac.new(secret, str(user_id).encode(), hashlib.sha256).hexdigest()[:32]


class Dispatcher:
    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self._held_up: FailureKind | None = None

    def callback_url(self, job: Job) -> str | None:
        base = self.ctx.config.callback_base_url
        return f"{base.rstrip('/')}/callbacks/luma/{job.id}/{job.callback_secret}" if base else None

    async def run(self) -> None:
        ctx = self.ctx
        while not ctx.stopping:
            placed, waiting_reason = await self._place_round()
            if placed:
                ctx.spawn(self.announce_positions())
            elif waiting_reason is not None and waiting_reason != self._held_up:
                ctx.spawn(self.announce_positions(held_up=waiting_reason))
            self._held_up = waiting_reason if not placed else None
            await ctx.dispatch.wait(ctx.health.next_change())

    async def _place_round(self) -> tuple[int, FailureKind | None]:
        """Claim a slot for as many queued jobs as can go now. Returns how many went, and why the head of
        the queue waits when it waits for a provider or key (None: it waits for a free slot, or nothing waits).
        """
        ctx = self.ctx
        queued = await store.queued_jobs(QUEUE_SCAN)
        if not queued:
            return 0, None
        used = await store.active_slots()
        placed = 0
        head_reason: FailureKind | None = None
        for index, job in enumerate(queued):
            routes = await self._routes(job)
            if not routes:
                # The settings changed under it: its provider is gone, or none left can make this video.
                await ctx.fail(job, FailureKind.PROVIDER, self._no_route_reason(job), wake_dispatch=False)
                continue
            reason = ctx.health.held_up_by([key.provider for key, _ in routes])
            if reason is not None:
                if index == 0:
                    head_reason = reason
                continue
            if await self._claim(job, routes, used):
                placed += 1
                ctx.spawn(self.submit(job))
        return placed, head_reason

    def _no_route_reason(self, job: Job) -> str:
        if job.action == JobAction.EXTEND:
            return (
                f"The video it extends was made with {job.provider}, which this bot no longer uses, "
                "so it cannot be extended."
            )
        return "None of the video services this bot now uses can make a video with these options."

    async def _routes(self, job: Job) -> list[tuple[ProviderKey, dict]]:
        """The keys this job may go to, in order, each with the options it would be sent with there: on the
        provider it was accepted for, the options checked then; on another, the member's own choices with
        that provider's defaults, within the server's limits."""
        pool = self.ctx.pool
        if job.action == JobAction.EXTEND:
            # A generation belongs to the account that made it: the parent's key, or (a job from before keys
            # were recorded) any key of its provider.
            keys = [pool.key(job.key_id)] if pool.key(job.key_id) else pool.keys(job.provider)
            return [(k, dict(job.options or {})) for k in keys if k is not None]
        requested = VideoOptions.from_json(job.options).requested()
        server: ServerOptions | None = None
        routes = []
        for name in pool.order:
            if name == job.provider:
                routes += [(key, dict(job.options or {})) for key in pool.keys(name)]
                continue
            spec = spec_for(name)
            if server is None:
                server = ServerOptions.from_json(await video_options(job.guild_id))
            try:
                options = check_generate(
                    spec, requested, server_defaults(spec, self.ctx.config.option_defaults, server)
                )
                check_server(spec, options, server)
            except InvalidInput:
                continue
            routes += [(key, options.to_json()) for key in pool.keys(name)]
        return routes

    async def _claim(
        self, job: Job, routes: list[tuple[ProviderKey, dict]], used: dict[str, set[int]]
    ) -> bool:
        ctx = self.ctx
        for key, options in routes:
            if not ctx.health.can_create(key.provider) or not ctx.health.key_available(key.id):
                continue
            taken = used.setdefault(key.id, set())
            free = [slot for slot in range(key.max_concurrent) if slot not in taken]
            # Several processes dispatch at once: each tries the free slots in its own order, so they do not
            # all queue up on the lowest one.
            random.shuffle(free)
            for slot in free:
                try:
                    claimed = await store.claim_slot(
                        job,
                        provider=key.provider,
                        key_id=key.id,
                        slot=slot,
                        options=options,
                        owner=ctx.config.instance_id,
                        lease=ctx.config.submit_lease,
                    )
                except SlotTaken:
                    taken.add(slot)  # another process holds it now
                    continue
                if claimed:
                    taken.add(slot)
                    ctx.health.begin_create(key.provider)
                return claimed  # False: another process claimed the job itself
        return False

    async def submit(self, job: Job) -> None:
        ctx = self.ctx
        key = ctx.pool.key(job.key_id)
        assert key is not None
        # Finish well inside the claim's lease, or another process may already count the job as cut off.
        budget = ctx.config.submit_lease.total_seconds() * 0.8
        try:
            async with asyncio.timeout(budget):
                task_id = await self._send(job, key)
        except TimeoutError:
            await self._unconfirmed(
                job,
                key,
                "The provider took too long to accept the request, "
                "so it was not sent again (it may not have been received).",
            )
            return
        except ModerationRefused as exc:
            ctx.health.create_neutral(key.provider)
            await ctx.fail(job, FailureKind.MODERATION, exc.message)
        except InvalidRequest as exc:
            ctx.health.create_neutral(key.provider)
            await ctx.fail(job, FailureKind.INVALID, exc.message)
        except (BalanceExhausted, AuthenticationFailed) as exc:
            kind = FailureKind.BALANCE if isinstance(exc, BalanceExhausted) else FailureKind.AUTH
            await self._key_refused(job, key, kind, exc)
        except RateLimited as exc:
            # The key's concurrency or request limit: it rests for the hint; the job keeps its place.
            await self._key_refused(job, key, FailureKind.PROVIDER, exc, seconds=exc.retry_after)
        except ProviderUnavailable as exc:
            if exc.maybe_submitted:
                await self._unconfirmed(job, key, exc.message)
                return
            await store.return_to_queue(job)
            ctx.health.create_failed(key.provider, exc.message)
        except LumaError as exc:
            ctx.health.create_neutral(key.provider)
            await ctx.fail(job, FailureKind.PROVIDER, exc.message)
        else:
            first = store.utcnow() + timedelta(seconds=ctx.config.poll.first_poll)
            try:
                running = await store.mark_running(
                    job, task_id, first_poll_at=first, deadline=ctx.config.deadline
                )
            except UnstorableValue as exc:
                # A task exists but we cannot keep its id, so we could never follow it: say so, never resend.
                await self._unconfirmed(job, key, f"The provider's task id cannot be stored: {exc}.")
                return
            if ctx.health.create_succeeded(key.id):
                ctx.spawn(self.announce_positions())  # the incident is over: back to plain positions
            if running:
                log.info(
                    "job %s: submitted as task %s (%s, key %s)", job.id, task_id, key.provider, key.masked
                )
                ctx.poll.set()
                ctx.reap.set()  # its deadline moved (ctx has no reaper; a wake-up costs one query)
                await ctx.notify(job, JobEvent.STARTED)
            return
        ctx.dispatch.set()

    async def _send(self, job: Job, key: ProviderKey) -> str:
        opts = VideoOptions.from_json(job.options)
        callback = self.callback_url(job) if key.spec.callbacks else None
        member = member_key(self.ctx.config.user_id_secret, job.user_id)
        if job.action == JobAction.EXTEND:
            return await key.client.extend(
                ExtendRequest(
                    prompt=job.prompt,
                    video_id=job.parent_video_id,
                    video_url=None if job.parent_video_id else job.parent_video_url,
                    end_image_url=opts.end_image_url,
                    callback_url=callback,
                    model=opts.model,
                    resolution=opts.resolution,
                    user_id=member,
                )
            )
        return await key.client.generate(
            GenerateRequest(
                prompt=job.prompt,
                aspect_ratio=opts.aspect_ratio,
                loop=opts.loop,
                enhancement=opts.enhancement,
                start_image_url=opts.start_image_url,
                end_image_url=opts.end_image_url,
                callback_url=callback,
                model=opts.model,
                resolution=opts.resolution,
                duration=opts.duration,
                user_id=member,
            )
        )

    async def _unconfirmed(self, job: Job, key: ProviderKey, reason: str) -> None:
        """No provider can deduplicate a create: resending could pay for a second video. The member is told
        the truth and offered Try again; the provider takes no more creates until a probe succeeds, so one
        that swallows requests does not swallow every job in turn."""
        log.warning("job %s: create not confirmed by %s, not resending: %s", job.id, key.provider, reason)
        await self.ctx.fail(job, FailureKind.UNCONFIRMED, reason)
        self.ctx.health.create_failed(key.provider, reason)

    async def _key_refused(
        self, job: Job, key: ProviderKey, kind: FailureKind, exc: LumaError, seconds: float | None = None
    ) -> None:
        """The key is spent, refused or busy: the job keeps its place and the key rests while others work."""
        await store.return_to_queue(job)
        self.ctx.health.rest_key(key.id, kind, exc.message, seconds)
        if kind != FailureKind.PROVIDER:
            await self.ctx.notify(job, JobEvent.HELD_UP, detail=kind.value)
        self.ctx.dispatch.set()

    async def task_needs_funds(self, job: Job, reason: str | None) -> None:
        """A task failed because the account ran dry: its key rests (the job is already back in the queue)."""
        key = self.ctx.pool.key(job.key_id)
        if key is not None:
            self.ctx.health.rest_key(key.id, FailureKind.BALANCE, reason or "budget exhausted")
        self.ctx.dispatch.set()

    async def announce_positions(self, held_up: FailureKind | None = None) -> None:
        ctx = self.ctx
        if ctx.port is None:
            return
        queued = await store.queued_jobs(POSITION_UPDATES)
        for position, job in enumerate(queued, start=1):
            if job.state != JobState.QUEUED:
                continue
            if held_up is not None:
                await ctx.notify(job, JobEvent.HELD_UP, position=position, detail=held_up.value)
            else:
                await ctx.notify(job, JobEvent.QUEUED, position=position)
