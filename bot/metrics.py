"""The bot's Prometheus metrics: one registry, the counters the code bumps where things happen, and the
gauges read from the database when /metrics is scraped (the database, not this process, knows the queue).

Kept free of discord and aiohttp imports so every layer (luma/, store/, jobs/) may record into it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Seconds: provider calls take from tens of milliseconds (a poll) to the 30 s client timeout.
_PROVIDER_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# Seconds from "the provider finished" to "the requester has it": the README promises about 2 s with callbacks.
_DELIVERY_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900)


@dataclass
class ProviderHealth:
    """What the last request to a provider said; /healthz shows it (provider trouble holds the queue but
    a restart would not help, so it is reported without making the bot unhealthy)."""

    ok: bool = True
    last_outcome: str = "none yet"
    failing_since: float | None = None  # time.time() of the first failure in the current run of failures
    consecutive_failures: int = 0


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.jobs = Gauge("luma_bot_jobs", "Jobs in the database by state", ["state"], registry=r)
        self.jobs_undelivered = Gauge(
            "luma_bot_jobs_undelivered", "Finished jobs whose outcome is not yet posted", registry=r
        )
        self.queue_length = Gauge(
            "luma_bot_queue_length", "Jobs waiting to be sent to the provider", registry=r
        )
        self.queue_oldest_wait = Gauge(
            "luma_bot_queue_oldest_wait_seconds", "How long the oldest queued job has waited", registry=r
        )
        self.requests = Counter(
            "luma_bot_requests",
            "Member requests for a video, by outcome and reason",
            ["outcome", "reason"],
            registry=r,
        )
        self.provider_requests = Counter(
            "luma_bot_provider_requests",
            "HTTP requests to the provider (each retry counts)",
            ["provider", "outcome"],
            registry=r,
        )
        self.provider_latency = Histogram(
            "luma_bot_provider_request_seconds",
            "Provider request latency",
            ["provider", "outcome"],
            buckets=_PROVIDER_BUCKETS,
            registry=r,
        )
        self.delivery_latency = Histogram(
            "luma_bot_delivery_seconds",
            "From the provider finishing a job to its outcome being posted",
            buckets=_DELIVERY_BUCKETS,
            registry=r,
        )
        self.quota_refusals = Counter(
            "luma_bot_quota_refusals",
            "Requests refused because a quota or budget was used up",
            ["kind"],
            registry=r,
        )
        self.discord_errors = Counter(
            "luma_bot_discord_rest_errors",
            "Discord REST calls that failed after discord.py's own retries",
            ["method", "status"],
            registry=r,
        )
        self.providers: dict[str, ProviderHealth] = {}

    # -- recording -----------------------------------------------------------------------------------------

    def provider_request(self, provider: str, outcome: object, seconds: float) -> None:
        """One try of one provider request: `outcome` is the parsed answer or the LumaError it became."""
        name = "ok" if not isinstance(outcome, BaseException) else type(outcome).__name__
        self.provider_requests.labels(provider, name).inc()
        self.provider_latency.labels(provider, name).observe(seconds)
        health = self.providers.setdefault(provider, ProviderHealth())
        health.last_outcome = name
        # A 4xx about one request (an unknown task, a refused prompt) says nothing about the provider itself.
        if name in ("ok", "InvalidRequest", "TaskNotFound", "ModerationRefused"):
            health.ok, health.failing_since, health.consecutive_failures = True, None, 0
        else:
            if health.ok:
                health.failing_since = time.time()
            health.ok = False
            health.consecutive_failures += 1

    def request_accepted(self) -> None:
        self.requests.labels("accepted", "").inc()

    def request_refused(self, reason: str) -> None:
        self.requests.labels("refused", reason).inc()

    def quota_refused(self, kind: str = "quota") -> None:
        self.quota_refusals.labels(kind).inc()

    def delivered(self, finished_at: datetime | None, delivered_at: datetime) -> None:
        if finished_at is not None:
            self.delivery_latency.observe(max((delivered_at - finished_at).total_seconds(), 0.0))

    def discord_error(self, method: str, status: int) -> None:
        self.discord_errors.labels(method, str(status)).inc()

    # -- scraping ------------------------------------------------------------------------------------------

    async def refresh_from_database(self) -> None:
        """Set the gauges the database knows (needs an open Tortoise connection)."""
        from tortoise.functions import Count

        from bot.store.models import Job, JobState

        counts = {state.value: 0 for state in JobState}
        rows = await Job.all().group_by("state").annotate(n=Count("id")).values("state", "n")
        for row in rows:
            counts[str(row["state"])] = row["n"]
        for state, n in counts.items():
            self.jobs.labels(state).set(n)
        self.jobs_undelivered.set(
            await Job.filter(
                state__in=(JobState.COMPLETED, JobState.FAILED), delivered_at__isnull=True
            ).count()
        )
        self.queue_length.set(counts.get(JobState.QUEUED.value, 0))
        oldest = await Job.filter(state=JobState.QUEUED).order_by("created_at").first().values("created_at")
        wait = (datetime.now(UTC) - oldest["created_at"]).total_seconds() if oldest else 0.0
        self.queue_oldest_wait.set(max(wait, 0.0))

    def render(self) -> bytes:
        return generate_latest(self.registry)


# One per process: the counters must outlive any one App (tests run several in turn and read deltas).
METRICS = Metrics()
