"""Timing rules: how often to poll a task as it ages, and how long to back off after failures."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PollPolicy:
    """Young tasks are polled often (a Luma video takes 1–5 minutes, rarely less than 30 s), old ones less.

    The interval is `age × age_factor`, clamped to [min_interval, max_interval]; with callbacks the maximum is
    raised, since polling is then only the safety net for lost callbacks.
    """

    first_poll: float = 10.0
    min_interval: float = 5.0
    max_interval: float = 15.0
    age_factor: float = 0.1
    # Tasks due within this window ride along in the same batch request instead of costing one of their own.
    coalesce: float = 2.0

    def scaled(self, factor: float) -> PollPolicy:
        """The same schedule on a faster or slower clock (benchmarks run minutes of video time in seconds)."""
        return PollPolicy(first_poll=self.first_poll * factor, min_interval=self.min_interval * factor,
                          max_interval=self.max_interval * factor, age_factor=self.age_factor,
                          coalesce=self.coalesce * factor)

    @classmethod
    def safety_net(cls) -> PollPolicy:
        """With callbacks, polls only catch the callbacks that get lost: rarely, and in big batches."""
        return cls(first_poll=60.0, min_interval=30.0, max_interval=60.0, age_factor=0.25, coalesce=10.0)

    def interval(self, age_seconds: float) -> float:
        return min(self.max_interval, max(self.min_interval, age_seconds * self.age_factor))


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff with jitter, for provider incidents and failed deliveries."""

    base: float = 5.0
    cap: float = 300.0
    jitter: float = 0.1

    def delay(self, failures: int) -> float:
        raw = min(self.cap, self.base * (2 ** max(0, failures - 1)))
        return raw * (1 + random.uniform(0, self.jitter))
