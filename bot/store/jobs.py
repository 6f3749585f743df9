"""Job queries and state transitions. Every transition is a compare-and-set on the job's state, so two
loops or two processes racing on one job can never both win, and quota settlement rides in the same
transaction as the state change it belongs to."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.exceptions import ValidationError
from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from bot.luma.types import TaskResult
from bot.store.models import (
    ACTIVE_STATES,
    UNFINISHED_STATES,
    FailureKind,
    Job,
    JobAction,
    JobState,
    QuotaEntry,
)
from bot.store.quotas import QuotaBook


class UnstorableValue(ValueError):
    """A value from outside (a provider's answer) that the jobs table cannot hold. Refused before any write, so
    it ends the one job it belongs to instead of failing every write that carries it."""


def _storable(values: dict[str, Any]) -> dict[str, Any]:
    """`values` for an update of Job, checked against each column: its length and range (Tortoise's own
    validators), and text both databases can encode (PostgreSQL refuses NUL; neither takes a lone surrogate)."""
    for name, value in values.items():
        if isinstance(value, str):
            if "\x00" in value:
                raise UnstorableValue(f"{name}: contains a NUL character")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise UnstorableValue(f"{name}: not valid Unicode text") from None
        field = Job._meta.fields_map[name]
        try:
            field.to_db_value(value, None)
        except (ValidationError, TypeError, ValueError):
            raise UnstorableValue(f"{name}: {_described(value)} does not fit its column") from None
        # Integer columns declare their range as constraints but do not check it.
        low, high = field.constraints.get("ge"), field.constraints.get("le")
        if isinstance(value, int) and (
            (low is not None and value < low) or (high is not None and value > high)
        ):
            raise UnstorableValue(f"{name}: {_described(value)} is out of the column's range")
    return values


def _described(value: Any) -> str:
    """A value named without quoting it: it may be huge, and it goes into logs and failure reasons."""
    if isinstance(value, str):
        return f"text of {len(value)} characters"
    if isinstance(value, int):
        return f"a {value.bit_length()}-bit number"
    return f"a value of type {type(value).__name__}"


def _storable_text(text: str) -> str:
    """Free text (a failure reason) made storable rather than refused: it is ours to keep, whatever it says."""
    return text.replace("\x00", "").encode("utf-8", errors="replace").decode("utf-8")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class NewJob:
    """What a member asked for, already validated, plus where the answer must go."""

    guild_id: int
    channel_id: int
    user_id: int
    action: JobAction
    prompt: str
    provider: str
    options: dict = field(default_factory=dict)
    role_ids: tuple[int, ...] = ()
    thread_id: int | None = None
    source_message_id: int | None = None
    parent_id: int | None = None
    parent_video_id: str | None = None
    parent_video_url: str | None = None


async def create_job(new: NewJob, quotas: QuotaBook, *, deadline: timedelta) -> Job:
    """Price the request, reserve its cost on the member and the server budget, and record the job, in one
    transaction: either all happen or none (QuotaExceeded / BudgetExceeded)."""
    now = utcnow()
    cost = quotas.cost_of(new.provider, new.action, new.options)
    reservation = await quotas.prepare(new.guild_id, new.user_id, new.role_ids, now=now)
    async with in_transaction():
        await quotas.hold(reservation, cost.millicredits)
        job = await Job.create(
            guild_id=new.guild_id,
            user_id=new.user_id,
            channel_id=new.channel_id,
            thread_id=new.thread_id,
            source_message_id=new.source_message_id,
            action=new.action,
            prompt=new.prompt,
            options=new.options,
            parent_id=new.parent_id,
            parent_video_id=new.parent_video_id,
            parent_video_url=new.parent_video_url,
            provider=new.provider,
            callback_secret=secrets.token_urlsafe(32),
            deadline_at=now + deadline,
            cost=cost.millicredits,
            price=cost.micro_usd,
        )
        await QuotaEntry.create(
            job=job, usage_id=reservation.usage_id, budget_usage_id=reservation.budget_usage_id,
            amount=cost.millicredits, price=cost.micro_usd,
        )
    return job


async def get_job(job_id: int) -> Job | None:
    return await Job.get_or_none(id=job_id)


async def set_location(job_id: int, *, thread_id: int | None = None, status_message_id: int | None = None) -> None:
    values = {k: v for k, v in {"thread_id": thread_id, "status_message_id": status_message_id}.items() if v}
    if values:
        await Job.filter(id=job_id).update(**values)


async def queue_position(job: Job) -> int:
    """1 for the next job to be sent; 0 once the job has left the queue."""
    if job.state != JobState.QUEUED:
        return 0
    return await Job.filter(state=JobState.QUEUED, id__lte=job.id).count()


async def active_count() -> int:
    return await Job.filter(state__in=ACTIVE_STATES).count()


async def claim_queued(limit: int, *, owner: str = "main", lease: timedelta = timedelta(minutes=2)) -> list[Job]:
    """Move up to `limit` of the oldest queued jobs to `submitting`, in order. Each claim is a CAS, so
    processes sharing the database never claim the same job; the lease says how long the claim holds."""
    claimed: list[Job] = []
    if limit <= 0:
        return claimed
    candidates = await Job.filter(state=JobState.QUEUED).order_by("id").limit(limit).values_list("id", flat=True)
    for job_id in candidates:
        if await Job.filter(id=job_id, state=JobState.QUEUED).update(
            state=JobState.SUBMITTING, claimed_by=owner, lease_until=utcnow() + lease
        ):
            claimed.append(await Job.get(id=job_id))
    return claimed


async def return_to_queue(job: Job) -> bool:
    """The provider could not take the job now; it keeps its place (its id) in the queue."""
    return bool(await Job.filter(id=job.id, state=JobState.SUBMITTING, claimed_by=job.claimed_by).update(
        state=JobState.QUEUED, claimed_by=None, lease_until=None))


async def mark_running(job: Job, task_id: str, *, first_poll_at: datetime) -> bool:
    """Only the claim's holder may record the task; a claim that expired was already failed elsewhere."""
    now = utcnow()
    _storable({"task_id": task_id})
    changed = await Job.filter(id=job.id, state=JobState.SUBMITTING, claimed_by=job.claimed_by).update(
        state=JobState.RUNNING, task_id=task_id, submitted_at=now, next_poll_at=first_poll_at, lease_until=None
    )
    if changed:
        job.state, job.task_id, job.submitted_at, job.next_poll_at = JobState.RUNNING, task_id, now, first_poll_at
    return bool(changed)


async def resubmit(job: Job) -> bool:
    """A running job whose task failed without a bill goes back to its place in the queue (its id), to be
    sent again as a new task."""
    changed = await Job.filter(id=job.id, state=JobState.RUNNING, task_id=job.task_id).update(
        state=JobState.QUEUED, task_id=None, submitted_at=None, next_poll_at=None, claimed_by=None,
        lease_until=None, resubmits=F("resubmits") + 1,
    )
    return bool(changed)


async def refresh_video_url(job: Job, url: str) -> None:
    """A presigned link fetched anew; the generation id stays the durable handle."""
    await Job.filter(id=job.id).update(video_url=url)
    job.video_url = url


async def mark_completed(job: Job, result: TaskResult) -> bool:
    """Record the video; raises UnstorableValue (changing nothing) when the provider's values do not fit."""
    video = _storable(
        {
            "video_id": result.video_id,
            "video_url": result.video_url,
            "video_width": result.video_width,
            "video_height": result.video_height,
            "thumbnail_url": result.thumbnail_url,
            "thumbnail_width": result.thumbnail_width,
            "thumbnail_height": result.thumbnail_height,
        }
    )
    changed = await Job.filter(id=job.id, state__in=UNFINISHED_STATES).update(
        state=JobState.COMPLETED, finished_at=utcnow(), next_poll_at=None, **video
    )
    return bool(changed)


async def mark_failed(job: Job, kind: FailureKind, reason: str | None, quotas: QuotaBook) -> bool:
    """End the job without a video and give its unit back, atomically."""
    async with in_transaction():
        changed = await Job.filter(id=job.id, state__in=UNFINISHED_STATES).update(
            lease_until=None,
            state=JobState.FAILED, finished_at=utcnow(), next_poll_at=None, failure_kind=kind,
            failure_reason=_storable_text(reason or "")[:2000] or None,
        )
        if changed:
            await quotas.refund(job.id)
    return bool(changed)


async def mark_delivered(job: Job, quotas: QuotaBook, *, result_message_id: int | None = None) -> bool:
    """The requester has the outcome: charge a delivered video's unit in the same transaction."""
    async with in_transaction():
        values: dict = {"delivered_at": utcnow(), "next_delivery_at": None}
        if result_message_id:
            values["result_message_id"] = result_message_id
        changed = await Job.filter(
            id=job.id, state__in=(JobState.COMPLETED, JobState.FAILED), delivered_at__isnull=True
        ).update(**values)
        if changed:
            if job.state == JobState.COMPLETED:
                await quotas.charge(job.id)
            else:
                await quotas.refund(job.id)  # no-op when the failure already refunded it
    return bool(changed)


async def delivery_failed(job: Job, retry_at: datetime) -> None:
    await Job.filter(id=job.id).update(delivery_attempts=F("delivery_attempts") + 1, next_delivery_at=retry_at)


async def due_for_poll(now: datetime, provider: str, limit: int) -> list[Job]:
    return (
        await Job.filter(state=JobState.RUNNING, provider=provider, next_poll_at__lte=now)
        .order_by("next_poll_at")
        .limit(limit)
    )


async def next_poll_time(provider: str) -> datetime | None:
    row = await Job.filter(state=JobState.RUNNING, provider=provider).order_by("next_poll_at").first()
    return row.next_poll_at if row else None


async def schedule_polls(job_ids: Iterable[int], at: datetime) -> None:
    ids = list(job_ids)
    if ids:
        await Job.filter(id__in=ids, state=JobState.RUNNING).update(next_poll_at=at)


async def pending_deliveries(now: datetime, limit: int = 50) -> list[Job]:
    return (
        await Job.filter(state__in=(JobState.COMPLETED, JobState.FAILED), delivered_at__isnull=True)
        .filter(Q(next_delivery_at__isnull=True) | Q(next_delivery_at__lte=now))
        .order_by("finished_at", "id")
        .limit(limit)
    )


async def next_delivery_time() -> datetime | None:
    row = (
        await Job.filter(state__in=(JobState.COMPLETED, JobState.FAILED), delivered_at__isnull=True)
        .order_by("next_delivery_at")
        .first()
    )
    if row is None:
        return None
    return row.next_delivery_at or utcnow()


async def overdue(now: datetime, limit: int = 100) -> list[Job]:
    return await Job.filter(state__in=UNFINISHED_STATES, deadline_at__lte=now).order_by("id").limit(limit)


async def next_deadline() -> datetime | None:
    row = await Job.filter(state__in=UNFINISHED_STATES).order_by("deadline_at").first()
    return row.deadline_at if row else None


async def interrupted_submissions(now: datetime, *, owner: str | None = None) -> list[Job]:
    """Jobs left in `submitting` by a process that died (its lease ran out, or it was this very instance
    before a restart): the create request may or may not have landed."""
    stale = Q(lease_until__lte=now) | Q(lease_until__isnull=True)
    if owner is not None:
        stale |= Q(claimed_by=owner)
    return await Job.filter(state=JobState.SUBMITTING).filter(stale).order_by("id")


async def next_lease_expiry() -> datetime | None:
    row = await Job.filter(state=JobState.SUBMITTING, lease_until__isnull=False).order_by("lease_until").first()
    return row.lease_until if row else None


async def claim_delivery(job: Job, now: datetime, lease: timedelta, *, owner: str = "main") -> bool:
    """Take the right to deliver this job for `lease`; a process that dies mid-delivery loses it when the
    lease runs out, and the next holder's delivery port must notice a post that already went out."""
    return bool(
        await Job.filter(id=job.id, delivered_at__isnull=True)
        .filter(Q(next_delivery_at__isnull=True) | Q(next_delivery_at__lte=now))
        .update(next_delivery_at=now + lease, claimed_by=owner)
    )


async def release_deliveries(owner: str) -> int:
    """At start: deliveries this instance held in its previous life are free to retry at once."""
    return await Job.filter(
        state__in=(JobState.COMPLETED, JobState.FAILED), delivered_at__isnull=True, claimed_by=owner
    ).update(next_delivery_at=None)


async def find_by_video(
    guild_id: int, video_id: str | None = None, video_url: str | None = None, *, url_prefix: str | None = None
) -> Job | None:
    """This server's finished job that made the video with this id or link (another server's never shows:
    servers are separate). `url_prefix` matches presigned links whose signature changed since."""
    done = Job.filter(guild_id=guild_id, state=JobState.COMPLETED)
    if video_id:
        return await done.filter(video_id=video_id).order_by("-id").first()
    if video_url:
        found = await done.filter(video_url=video_url).order_by("-id").first()
        if found is None and url_prefix:
            found = await done.filter(video_url__startswith=url_prefix + "?").order_by("-id").first()
        return found
    return None


async def find_by_message(message_id: int) -> Job | None:
    """The job whose result or status message this is."""
    return await Job.filter(Q(result_message_id=message_id) | Q(status_message_id=message_id)).order_by("-id").first()


async def recent_jobs(guild_id: int, user_id: int, limit: int = 10, *, completed_only: bool = False) -> list[Job]:
    query = Job.filter(guild_id=guild_id, user_id=user_id)
    if completed_only:
        query = query.filter(state=JobState.COMPLETED)
    return await query.order_by("-id").limit(limit)
