"""The port the engine delivers through. The Discord layer implements it; the engine never imports discord.

The port sees a job only as an immutable `JobView` and answers with a `Delivery` saying where the result
went; the engine records that in the job's row, so nothing about a delivery lives only in one process.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from types import MappingProxyType
from typing import Any, Protocol

from bot.store.models import Job, JobAction, JobState


class JobEvent(enum.StrEnum):
    QUEUED = "queued"  # accepted, or moved up in the queue
    STARTED = "started"  # the provider has the task
    HELD_UP = "held_up"  # the provider is refusing work for now (down, rate limited, balance, token)
    DELIVERED = "delivered"  # the outcome was delivered and recorded (the unit is charged or refunded)


@dataclass(frozen=True, slots=True)
class JobView:
    """A job as it stood when the engine handed it over: read-only, so the port cannot change the record
    behind the engine's back (what it did comes back as its answer)."""

    id: int
    guild_id: int
    user_id: int
    channel_id: int
    thread_id: int | None
    status_message_id: int | None
    result_message_id: int | None
    result_channel_id: int | None
    action: JobAction
    prompt: str
    options: Mapping[str, Any]
    provider: str
    key_id: str | None  # the provider key that made its task
    task_id: str | None
    state: JobState
    video_id: str | None
    video_url: str | None
    video_width: int | None
    video_height: int | None
    thumbnail_url: str | None
    thumbnail_width: int | None
    thumbnail_height: int | None
    failure_kind: str | None
    failure_reason: str | None
    parent_id: int | None
    parent_video_id: str | None
    parent_video_url: str | None
    created_at: datetime
    submitted_at: datetime | None
    finished_at: datetime | None
    delivered_at: datetime | None
    delivery_attempts: int
    cost: int | None  # millicredits reserved (bot.luma.prices)
    price: int | None  # the provider's price estimate, micro-USD
    deleted_at: datetime | None  # the result post was deleted (the Delete button)

    @classmethod
    def of(cls, job: Job) -> JobView:
        values = {f.name: getattr(job, f.name) for f in fields(cls) if f.name not in ("options", "parent_id")}
        return cls(
            **values,
            options=MappingProxyType(dict(job.options or {})),
            parent_id=getattr(job, "parent_id", None),
        )

    @property
    def is_finished(self) -> bool:
        return JobState(self.state).finished


class Destination(enum.StrEnum):
    THREAD = "thread"  # the job's own thread (or the channel it was asked in, when that is a thread)
    CHANNEL = "channel"  # the request's channel, when the thread is gone or closed to the bot
    DM = "dm"  # the requester's direct messages, when no channel takes it
    NOWHERE = "nowhere"  # every place refused it for good: the video is not charged


@dataclass(frozen=True, slots=True)
class Delivery:
    destination: Destination
    channel_id: int | None = None
    message_id: int | None = None

    @classmethod
    def nowhere(cls) -> Delivery:
        return cls(Destination.NOWHERE)


class DeliveryPort(Protocol):
    async def job_updated(
        self,
        job: JobView,
        event: JobEvent,
        *,
        position: int = 0,
        detail: str | None = None,
    ) -> None:
        """Best effort: show the job's progress (a status message edit). Errors are logged and ignored.
        For DELIVERED the view carries where the result went (result_channel_id, result_message_id)."""

    async def deliver(self, job: JobView) -> Delivery:
        """Tell the requester how the job ended: the video, or why there is none, and say where it went.

        Raise to have the engine try again later; the job is marked delivered (and its unit charged, or
        refunded when it went nowhere) only after this returns.
        """
