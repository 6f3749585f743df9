"""Job queries and state transitions. Every transition is a compare-and-set on the job's state, so two
loops or two processes racing on one job can never both win, and quota settlement rides in the same
transaction as the state change it belongs to."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from tortoise.exceptions import IntegrityError, ValidationError
from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from bot.luma.types import TaskResult
from bot.metrics import METRICS
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
            # Tortoise's stubs want the model or an instance, but its fields accept None (no instance to update),
            # which is what a check before any instance exists needs.
            field.to_db_value(value, None)  # type: ignore[arg-type]
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
    # An extension runs on the key that made its parent (a generation belongs to one account).
    key_id: str | None = None


async def create_job(new: NewJob, quotas: QuotaBook, *, deadline: timedelta, placed: bool = True) -> Job:
    """Price the request, reserve its cost on the member and the server budget, and record the job, in one
    transaction: either all happen or none (QuotaExceeded / BudgetExceeded). `deadline`: how long the job may
    wait in the queue (its deadline restarts when it is submitted)."""
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
            key_id=new.key_id,
            provider=new.provider,
            callback_secret=secrets.token_urlsafe(32),
            deadline_at=now + deadline,
            placed_at=now if placed else None,
            cost=cost.millicredits,
            price=cost.micro_usd,
        )
        await QuotaEntry.create(
            job=job,
            usage_id=reservation.usage_id,
            budget_usage_id=reservation.budget_usage_id,
            amount=cost.millicredits,
            price=cost.micro_usd,
        )
    return job


async def get_job(job_id: int) -> Job | None:
    return await Job.get_or_none(id=job_id)


# How long a job's result waits for its status message and thread to be recorded: they normally take well
# under a second; past this (the process that was posting them died) the result goes out without them.
PLACEMENT_WAIT = timedelta(seconds=15)


async def set_location(
    job_id: int, *, thread_id: int | None = None, status_message_id: int | None = None
) -> None:
    """Where the job is shown. Recording it (even as nowhere) releases the job's delivery, which waits for it
    so that a fast result lands in the thread rather than beside it, in whichever process delivers it."""
    values: dict = {
        k: v for k, v in {"thread_id": thread_id, "status_message_id": status_message_id}.items() if v
    }
    values["placed_at"] = utcnow()
    await Job.filter(id=job_id).update(**values)


async def queue_position(job: Job) -> int:
    """1 for the next job to be sent; 0 once the job has left the queue."""
    if job.state != JobState.QUEUED:
        return 0
    return await Job.filter(state=JobState.QUEUED, id__lte=job.id).count()


class SlotTaken(Exception):
    """Another process took that slot of the key first: try the next one."""


async def queued_jobs(limit: int) -> list[Job]:
    """The head of the queue, oldest first."""
    return await Job.filter(state=JobState.QUEUED).order_by("id").limit(limit)


async def active_slots() -> dict[str, set[int]]:
    """Slots in use per key: a job holds one from its claim until it leaves the provider."""
    used: dict[str, set[int]] = {}
    rows = await Job.filter(state__in=ACTIVE_STATES, key_id__isnull=False).values_list("key_id", "slot")
    for key_id, slot in rows:
        used.setdefault(key_id, set()).add(slot)
    return used


async def claim_slot(
    job: Job,
    *,
    provider: str,
    key_id: str,
    slot: int,
    options: dict,
    owner: str,
    lease: timedelta,
) -> bool:
    """Move a queued job to `submitting` on one slot of one key, in one statement. The database holds the
    limit: a unique index on (key_id, slot) over submitting and running jobs refuses a second holder of a
    slot, whatever number of processes race for it (SlotTaken). False when another process claimed the job.
    """
    try:
        changed = await Job.filter(id=job.id, state=JobState.QUEUED).update(
            state=JobState.SUBMITTING,
            provider=provider,
            key_id=key_id,
            slot=slot,
            options=options,
            claimed_by=owner,
            lease_until=utcnow() + lease,
        )
    except IntegrityError:
        raise SlotTaken(f"{key_id} slot {slot}") from None
    if changed:
        job.state, job.provider, job.key_id, job.slot, job.options = (
            JobState.SUBMITTING,
            provider,
            key_id,
            slot,
            options,
        )
        job.claimed_by = owner
    return bool(changed)


async def return_to_queue(job: Job) -> bool:
    """The provider could not take the job now; it keeps its place (its id) in the queue."""
    return bool(
        await Job.filter(id=job.id, state=JobState.SUBMITTING, claimed_by=job.claimed_by).update(
            state=JobState.QUEUED, claimed_by=None, lease_until=None
        )
    )


async def mark_running(
    job: Job, task_id: str, *, first_poll_at: datetime, deadline: timedelta | None = None
) -> bool:
    """Only the claim's holder may record the task; a claim that expired was already failed elsewhere. The
    job's deadline now runs from its submission (`deadline`), no longer from its wait in the queue."""
    now = utcnow()
    _storable({"task_id": task_id})
    values: dict = {
        "state": JobState.RUNNING,
        "task_id": task_id,
        "submitted_at": now,
        "next_poll_at": first_poll_at,
        "lease_until": None,
    }
    if deadline is not None:
        values["deadline_at"] = now + deadline
    changed = await Job.filter(id=job.id, state=JobState.SUBMITTING, claimed_by=job.claimed_by).update(
        **values
    )
    if changed:
        job.state, job.task_id, job.submitted_at, job.next_poll_at = (
            JobState.RUNNING,
            task_id,
            now,
            first_poll_at,
        )
    return bool(changed)


async def resubmit(job: Job, *, queue_timeout: timedelta | None = None) -> bool:
    """A running job whose task failed without a bill goes back to its place in the queue (its id), to be
    sent again as a new task, with a new wait allowance."""
    values: dict = {
        "state": JobState.QUEUED,
        "task_id": None,
        "submitted_at": None,
        "next_poll_at": None,
        "claimed_by": None,
        "lease_until": None,
        "resubmits": F("resubmits") + 1,
    }
    if queue_timeout is not None:
        values["deadline_at"] = utcnow() + queue_timeout
    changed = await Job.filter(id=job.id, state=JobState.RUNNING, task_id=job.task_id).update(**values)
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
            state=JobState.FAILED,
            finished_at=utcnow(),
            next_poll_at=None,
            failure_kind=kind,
            failure_reason=_storable_text(reason or "")[:2000] or None,
        )
        if changed:
            await quotas.refund(job.id)
    return bool(changed)


async def mark_delivered(
    job: Job,
    quotas: QuotaBook,
    *,
    result_message_id: int | None = None,
    result_channel_id: int | None = None,
    posted: bool = True,
) -> bool:
    """The requester has the outcome: charge a delivered video's unit in the same transaction. A video that
    could be posted nowhere (`posted=False`) is not charged: its unit is refunded."""
    async with in_transaction():
        values: dict = {"delivered_at": utcnow(), "next_delivery_at": None}
        if result_message_id:
            values["result_message_id"] = result_message_id
        if result_channel_id:
            values["result_channel_id"] = result_channel_id
        changed = await Job.filter(
            id=job.id, state__in=(JobState.COMPLETED, JobState.FAILED), delivered_at__isnull=True
        ).update(**values)
        if changed:
            METRICS.delivered(job.finished_at, values["delivered_at"])
            if job.state == JobState.COMPLETED and posted:
                await quotas.charge(job.id)
            else:
                await quotas.refund(job.id)  # no-op when the failure already refunded it
    if changed:
        job.delivered_at = values["delivered_at"]
        job.result_message_id = result_message_id or job.result_message_id
        job.result_channel_id = result_channel_id or job.result_channel_id
    return bool(changed)


async def note_post_attempt(job_id: int) -> datetime | None:
    """Record that the job's outcome is about to be posted; returns when an earlier attempt was recorded (None
    when this is the first, so nothing can have been posted yet)."""
    now = utcnow()
    if await Job.filter(id=job_id, post_attempted_at__isnull=True).update(post_attempted_at=now):
        return None
    row = await Job.filter(id=job_id).only("id", "post_attempted_at").first()
    return row.post_attempted_at if row is not None else now


async def mark_result_deleted(job_id: int, user_id: int) -> bool:
    """The result post was deleted (the job stays, marked so); False when it already was."""
    changed = await Job.filter(id=job_id, deleted_at__isnull=True).update(
        deleted_at=utcnow(), deleted_by=user_id
    )
    return bool(changed)


async def delivery_failed(job: Job, retry_at: datetime) -> None:
    await Job.filter(id=job.id).update(
        delivery_attempts=F("delivery_attempts") + 1, next_delivery_at=retry_at
    )


async def due_for_poll(now: datetime, limit: int) -> list[Job]:
    """Running jobs due for a poll, of every provider and key (each is polled through the one that made it)."""
    return (
        await Job.filter(state=JobState.RUNNING, next_poll_at__lte=now).order_by("next_poll_at").limit(limit)
    )


async def next_poll_time() -> datetime | None:
    row = (
        await Job.filter(state=JobState.RUNNING, next_poll_at__isnull=False).order_by("next_poll_at").first()
    )
    return row.next_poll_at if row else None


async def running_per_key() -> dict[str, int]:
    counts: dict[str, int] = {}
    # Tortoise types every values_list as tuples, but flat=True with one field gives the values themselves.
    key_ids = cast(
        list[str],
        await Job.filter(state__in=ACTIVE_STATES, key_id__isnull=False).values_list("key_id", flat=True),
    )
    for key_id in key_ids:
        counts[key_id] = counts.get(key_id, 0) + 1
    return counts


async def schedule_polls(job_ids: Iterable[int], at: datetime) -> None:
    ids = list(job_ids)
    if ids:
        await Job.filter(id__in=ids, state=JobState.RUNNING).update(next_poll_at=at)


def _placed_or_given_up(now: datetime) -> Q:
    return Q(placed_at__isnull=False) | Q(created_at__lte=now - PLACEMENT_WAIT)


async def pending_deliveries(now: datetime, limit: int = 50) -> list[Job]:
    return (
        await Job.filter(state__in=(JobState.COMPLETED, JobState.FAILED), delivered_at__isnull=True)
        .filter(Q(next_delivery_at__isnull=True) | Q(next_delivery_at__lte=now))
        .filter(_placed_or_given_up(now))
        .order_by("finished_at", "id")
        .limit(limit)
    )


async def next_delivery_time() -> datetime | None:
    """When the deliverer next has work: a result due now, a retry's time, or the end of an unrecorded
    placement's wait (a later retry time wins over an earlier one, as pending_deliveries reads them)."""
    waiting = Job.filter(state__in=(JobState.COMPLETED, JobState.FAILED), delivered_at__isnull=True)
    times: list[datetime] = []
    if await waiting.filter(placed_at__isnull=False, next_delivery_at__isnull=True).exists():
        times.append(utcnow())
    later = await waiting.filter(next_delivery_at__isnull=False).order_by("next_delivery_at").first()
    if later is not None:
        assert later.next_delivery_at is not None  # the query asked for a job that has one
        times.append(later.next_delivery_at)
    unplaced = await waiting.filter(placed_at__isnull=True).order_by("created_at").first()
    if unplaced is not None:
        times.append(
            max(unplaced.created_at + PLACEMENT_WAIT, unplaced.next_delivery_at or unplaced.created_at)
        )
    return min(times) if times else None


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
    row = (
        await Job.filter(state=JobState.SUBMITTING, lease_until__isnull=False).order_by("lease_until").first()
    )
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
    return (
        await Job.filter(Q(result_message_id=message_id) | Q(status_message_id=message_id))
        .order_by("-id")
        .first()
    )


async def recent_jobs(
    guild_id: int, user_id: int, limit: int = 10, *, completed_only: bool = False
) -> list[Job]:
    query = Job.filter(guild_id=guild_id, user_id=user_id)
    if completed_only:
        query = query.filter(state=JobState.COMPLETED)
    return await query.order_by("-id").limit(limit)
