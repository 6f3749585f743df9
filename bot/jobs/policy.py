"""Timing rules: how often to poll a task as it ages, and how long to back off after failures."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PollPolicy:
    """When to look at a task again.

    Without knowing how long the provider's videos take: young tasks often, old ones less (`age × age_factor`,
    clamped to [min_interval, max_interval]). Knowing it (`expected`: the shortest and longest times recent
    videos took): a look every `far_interval` while the video cannot be ready yet, then one every
    `fine_interval` from just before the earliest it may be ready, so a finished video is found within about a
    second at about a dozen requests per video, even where each task costs a request of its own. With
    callbacks the maximum is raised, since polling is then only the safety net for lost callbacks.
    """

    first_poll: float = 10.0
    min_interval: float = 5.0
    max_interval: float = 15.0
    age_factor: float = 0.1
    # Tasks due within this window ride along in the same batch request instead of costing one of their own.
    coalesce: float = 2.0
    far_interval: float = 20.0
    # Half of it is the average wait between a video being ready and the bot seeing it.
    fine_interval: float = 1.6
    # The clock factor `scaled` applied: the expected durations the engine learnt or was given are in real
    # seconds and are scaled with it.
    scale: float = 1.0

    def scaled(self, factor: float) -> PollPolicy:
        """The same schedule on a faster or slower clock (benchmarks run minutes of video time in seconds)."""
        return PollPolicy(
            first_poll=self.first_poll * factor,
            min_interval=self.min_interval * factor,
            max_interval=self.max_interval * factor,
            age_factor=self.age_factor,
            coalesce=self.coalesce * factor,
            far_interval=self.far_interval * factor,
            fine_interval=self.fine_interval * factor,
            scale=self.scale * factor,
        )

    @classmethod
    def safety_net(cls) -> PollPolicy:
        """With callbacks, polls only catch the callbacks that get lost: rarely, and in big batches."""
        return cls(first_poll=60.0, min_interval=30.0, max_interval=60.0, age_factor=0.25, coalesce=10.0)

    @property
    def batch_window(self) -> float:
        """How far ahead of their time due tasks join a poll: less than half the close interval, or a task just
        polled would be due again at once and a provider without a batch lookup would be asked in a loop."""
        return min(self.coalesce, min(self.fine_interval, self.max_interval) * 0.5)

    def interval(self, age_seconds: float) -> float:
        return min(self.max_interval, max(self.min_interval, age_seconds * self.age_factor))

    def delay(self, age: float, expected: tuple[float, float] | None = None) -> float:
        """Seconds until the next look at a task `age` seconds old."""
        if expected is None:
            return self.interval(age)
        shortest, longest = expected
        # A schedule scaled down (tests, benchmarks) keeps its shape: no gap longer than its own bounds allow.
        fine = min(self.fine_interval, self.max_interval)
        far = min(self.far_interval, self.max_interval * 2)
        window = shortest - fine
        if age < window:
            return max(min(window - age, far), fine)
        if age <= longest * 1.5 + fine:
            return fine
        return self.interval(age)  # far slower than usual: no reason to keep looking every second


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff with jitter, for provider incidents and failed deliveries."""

    base: float = 5.0
    cap: float = 300.0
    jitter: float = 0.1

    def delay(self, failures: int) -> float:
        raw = min(self.cap, self.base * (2 ** max(0, failures - 1)))
        return raw * (1 + random.uniform(0, self.jitter))
