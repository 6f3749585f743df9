"""The port the engine delivers through. The Discord layer implements it; the engine never imports discord."""

from __future__ import annotations

import enum
from typing import Protocol

from bot.store.models import Job


class JobEvent(enum.StrEnum):
    QUEUED = "queued"  # accepted, or moved up in the queue
    STARTED = "started"  # the provider has the task
    HELD_UP = "held_up"  # the provider is refusing work for now (down, rate limited, balance, token)
    DELIVERED = "delivered"  # the outcome was delivered and recorded (the unit is charged or refunded)


class DeliveryPort(Protocol):
    async def job_updated(self, job: Job, event: JobEvent, *, position: int = 0, detail: str | None = None) -> None:
        """Best effort: show the job's progress (a status message edit). Errors are logged and ignored."""

    async def deliver(self, job: Job) -> int | None:
        """Tell the requester how the job ended: the video, or why there is none.

        Return the id of the message that carries the result. Raise to have the engine try again later; the
        job is marked delivered (and its unit charged) only after this returns.
        """
