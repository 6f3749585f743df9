"""Snowflake ids and timestamps shaped like Discord's.

Ids are real time-based snowflakes (milliseconds since the Discord epoch in
the top bits) so that ``discord.utils.snowflake_time`` and everything built on
it in discord.py (``Message.created_at``, the "young message" delete sub-limit,
...) behaves as it would against the real API.
"""

from __future__ import annotations

import datetime
import time

DISCORD_EPOCH_MS = 1420070400000


class SnowflakeGenerator:
    """Hands out strictly increasing snowflakes based on the wall clock."""

    def __init__(self, worker_id: int = 1, process_id: int = 0) -> None:
        self._worker = worker_id & 0x1F
        self._process = process_id & 0x1F
        self._last = 0

    def next(self) -> int:
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        candidate = (ms << 22) | (self._worker << 17) | (self._process << 12)
        # Several ids per millisecond are common in tests; bump the increment
        # bits (and spill into the timestamp) instead of ever repeating an id.
        if candidate <= self._last:
            candidate = self._last + 1
        self._last = candidate
        return candidate


def snowflake_time(snowflake: int) -> datetime.datetime:
    """The creation time encoded in ``snowflake``."""
    ms = (snowflake >> 22) + DISCORD_EPOCH_MS
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)


def iso(dt: datetime.datetime | None) -> str | None:
    """Discord's timestamp format: ISO 8601 with microseconds and ``+00:00``."""
    if dt is None:
        return None
    return dt.astimezone(datetime.UTC).isoformat(timespec="microseconds")


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
