"""The four benchmark scenarios. Each starts its own fakes and bot process and returns a plain dict of
measurements (JSON-ready); `bench.report` turns them into the table and RESULTS.md.

Clocks: acknowledgement latency uses the fake Discord's own records (loop.time() when the interaction was
dispatched and when its callback arrived); delivery latency compares the fake provider's `finished_at` with
the fake Discord's creation time of the result message (both time.time() in this process).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.harness import PROVIDER_TOKEN, AckTracker, BenchError, BotOptions, BotProcess, Stage
from bench.stats import summary
from tests.fakes.luma_provider import FakeLumaProvider

GENERATION_TIME = 60.0  # seconds at full scale, on average: a typical Luma video
# Each task takes a time drawn uniformly from this range (seeded): real videos vary, and a fixed 60 s would
# line finishing times up with any poll period that divides 60 s (the baseline's 5 s) and flatter it.
GENERATION_SPREAD = (50.0, 70.0)


class BenchProvider(FakeLumaProvider):
    """The fake provider with per-task generation times from GENERATION_SPREAD (times `time_scale`)."""

    def __init__(self, *, seed: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._rng = random.Random(seed)

    async def _advance(self, task: Any) -> None:  # replaces the fake's fixed queue_time + run_time
        duration = self._rng.uniform(*GENERATION_SPREAD) * self.time_scale
        self.mark_running(task.id)
        await asyncio.sleep(duration)
        if not task.finished:
            self.finish(task.id)


@dataclass(frozen=True)
class Config:
    scale: float = 0.1
    burst_jobs: int = 200
    burst_users: int = 100
    load_jobs: int = 1000
    load_users: int = 300
    # Arrival rate of the load scenario's requests, per second of real time (see RESULTS.md: the bot's
    # intake, not the fake clock, bounds how fast requests can come without queueing in the gateway).
    load_rate: float = 40.0
    waiting_jobs: int = 10_000
    waiting_warmup: int = 200
    waiting_wave: int = 200
    waiting_users: int = 300
    # Polling latency (issues 8 and 9): (tasks running at once, jobs in the run). With fewer running than jobs
    # the bot keeps that many at the provider, sending the next queued job as each one ends.
    agents_runs: tuple[tuple[int, int], ...] = ((5, 15), (50, 100))
    batch_runs: tuple[tuple[int, int], ...] = ((5, 15), (50, 100), (1000, 1000))
    latency_users: int = 50
    # Failover (issue 9): jobs arrive at `failover_rate` per second; the first provider collapses after
    # `failover_before` seconds and arrivals go on for `failover_after` more.
    failover_rate: float = 1.0
    failover_before: float = 15.0
    failover_after: float = 30.0
    # Result media (issue 10): deliveries at once, for each file size.
    media_deliveries: tuple[int, ...] = (5, 50)
    media_sizes_mb: tuple[int, ...] = (5, 25)
    database: str | None = None
    seed: int = 7

    @classmethod
    def quick(cls, **overrides: Any) -> Config:
        base = dict(
            burst_jobs=20,
            burst_users=10,
            load_jobs=20,
            load_users=10,
            load_rate=20.0,
            waiting_jobs=200,
            waiting_warmup=20,
            waiting_wave=50,
            waiting_users=10,
            agents_runs=((5, 5),),
            batch_runs=((5, 5),),
            latency_users=5,
            failover_rate=4.0,
            failover_before=2.0,
            failover_after=3.0,
            media_deliveries=(2,),
            media_sizes_mb=(25,),
        )
        base.update(overrides)
        return cls(**base)


def _provider(cfg: Config, *, manual: bool = False) -> FakeLumaProvider:
    return BenchProvider(token=PROVIDER_TOKEN, time_scale=cfg.scale, manual=manual, seed=cfg.seed)


async def _placed(stage: Stage, records: list, bot: BotProcess, timeout: float) -> None:  # noqa: ASYNC109
    """Until every interaction got its final ephemeral answer (the job is stored and shown in a thread)."""
    index = 0

    def done() -> bool:
        nonlocal index
        while index < len(records):
            original = records[index].original
            if original is None or original.loading:
                return False
            index += 1
        return True

    try:
        await stage.discord.wait_for(
            lambda: done() or not bot.running, timeout, f"{len(records)} answered requests"
        )
    except TimeoutError as exc:
        raise BenchError(f"{exc} ({index} answered)\n{bot.log_tail()}") from None
    if not bot.running:
        raise BenchError(f"the bot exited:\n{bot.log_tail()}")


def _rejected(records: list) -> int:
    return sum(1 for r in records if r.rejections or not r.acknowledged)


# -- 1. burst -------------------------------------------------------------------------------------------------


async def burst(cfg: Config) -> dict[str, Any]:
    """`cfg.burst_jobs` /luma generate from `cfg.burst_users` members, all dispatched at once."""
    async with Stage(users=cfg.burst_users, provider=_provider(cfg)) as stage:
        bot = await stage.launch(
            BotOptions(
                scale=cfg.scale,
                max_concurrent=1000,
                label="burst",
                database_url=await _database(cfg, "burst"),
            )
        )
        try:
            t0 = time.time()
            records = [await stage.generate(i, i % cfg.burst_users) for i in range(cfg.burst_jobs)]
            acks = AckTracker(stage.discord, records)
            await acks.wait(60, bot)
            await _placed(stage, records, bot, 120)
            all_placed = time.time() - t0
            latencies = acks.latencies_ms()
        finally:
            await bot.stop()
    return {
        "jobs": cfg.burst_jobs,
        "users": cfg.burst_users,
        "ack_ms": summary(latencies),
        "over_3s": sum(1 for v in latencies if v > 3000),
        "rejected": _rejected(records),
        "all_answered_s": all_placed,
    }


# -- 2. load (and 4. baseline) --------------------------------------------------------------------------------


def _poll_times(provider: FakeLumaProvider) -> dict[str, list[float]]:
    """Task id → the times (time.time()) of the poll requests that asked for it, in order."""
    offset = time.time() - asyncio.get_running_loop().time()  # the fake logs requests on the loop's clock
    polled: dict[str, list[float]] = {}
    for req in provider.request_log:
        if req.kind != "poll":
            continue
        if req.provider in ("luma", "dream-machine"):  # GET /generations/{id}: one task per request
            ids = [req.path.rstrip("/").rsplit("/", 1)[-1]]
        elif isinstance(req.json, dict):
            ids = req.json.get("ids") or ([req.json["id"]] if req.json.get("id") else [])
        else:
            ids = req.query.get("ids[0]", [])
        for task_id in ids:
            polled.setdefault(task_id, []).append(req.at + offset)
    return polled


def _poll_gaps(provider: FakeLumaProvider, polled: dict[str, list[float]]) -> tuple[list[float], list[float]]:
    """(delay from create to first poll, gaps between polls of one task), in seconds."""
    first: list[float] = []
    gaps: list[float] = []
    for task_id, times in polled.items():
        task = provider.tasks.get(task_id)
        if task is not None:
            first.append(times[0] - task.created_at)
        gaps.extend(b - a for a, b in zip(times, times[1:], strict=False))
    return first, gaps


def _peak_rate(provider: FakeLumaProvider, kinds: tuple[str, ...] = ("create", "poll")) -> int:
    """The most provider requests of these kinds received within any one second."""
    times = sorted(r.at for r in provider.request_log if r.kind in kinds)
    peak = first = 0
    for last, t in enumerate(times):
        while t - times[first] >= 1.0:
            first += 1
        peak = max(peak, last - first + 1)
    return peak


def _delivery_split(
    provider: FakeLumaProvider, polled: dict[str, list[float]], posts: list
) -> tuple[list[float], list[float]]:
    """Delivery latency in two parts (ms): task finished → the poll that saw it finished, and that poll →
    result posted (the bot's own pipeline: recording the result, the delivery queue, the Discord calls)."""
    to_poll: list[float] = []
    to_post: list[float] = []
    for post in posts:
        task = provider.tasks.get(post.task_id or "")
        if task is None or task.finished_at is None:
            continue
        seen = next((t for t in polled.get(task.id, []) if t >= task.finished_at), None)
        if seen is None:
            continue
        to_poll.append((seen - task.finished_at) * 1000)
        to_post.append((post.posted_at - seen) * 1000)
    return to_poll, to_post


async def load(cfg: Config, *, strategy: str = "ours", callbacks: bool = False) -> dict[str, Any]:
    """`cfg.load_jobs` requests from `cfg.load_users` members arriving at `cfg.load_rate` per second, each a
    video that takes GENERATION_TIME × scale on average; measured from the first request to the last result.

    CPU is also split in three phases: intake (first request → every request answered), waiting (→ first
    result posted: polling, or waiting for callbacks) and delivery (→ last result posted)."""
    label = {("ours", False): "load-polling", ("ours", True): "load-callbacks"}.get(
        (strategy, callbacks), "baseline"
    )
    rng = random.Random(cfg.seed)
    users = [rng.randrange(cfg.load_users) for _ in range(cfg.load_jobs)]
    provider = _provider(cfg)
    jobs = cfg.load_jobs
    async with Stage(users=cfg.load_users, provider=provider) as stage:
        options = BotOptions(
            scale=cfg.scale,
            strategy=strategy,
            max_concurrent=1000,
            callbacks=callbacks,
            label=label,
            database_url=await _database(cfg, label),
        )
        bot = await stage.launch(options)
        try:
            loop = asyncio.get_running_loop()
            creates0, polls0, all0 = provider.count("create"), provider.count("poll"), provider.count()
            rss0 = bot.rss_bytes()
            cpu = [bot.cpu_seconds()]
            harness_cpu0 = time.process_time()
            t0 = time.time()
            start = loop.time()
            records = []
            for i, user in enumerate(users):
                due = start + i / cfg.load_rate
                if (wait := due - loop.time()) > 0:
                    await asyncio.sleep(wait)  # the arrival schedule, not a wait for the bot
                records.append(await stage.generate(i, user))
            arrivals_s = time.time() - t0
            await _placed(stage, records, bot, 120)
            cpu.append(bot.cpu_seconds())
            placed_s = time.time() - t0
            budget = 120 + jobs / 10 + GENERATION_SPREAD[1] * cfg.scale * 3
            await stage.observer.wait_results(1, budget, bot)
            cpu.append(bot.cpu_seconds())
            await stage.observer.wait_results(jobs, budget, bot)
            cpu.append(bot.cpu_seconds())
            elapsed = time.time() - t0
            harness_cpu = time.process_time() - harness_cpu0
            rss1 = bot.rss_bytes()
            creates = provider.count("create") - creates0
            polls = provider.count("poll") - polls0
            other = provider.count() - all0 - creates - polls
        finally:
            await bot.stop()
        delivery = []
        missing = 0
        for post in stage.observer.results:
            task = provider.tasks.get(post.task_id or "")
            if task is None or task.finished_at is None:
                missing += 1
                continue
            delivery.append((post.posted_at - task.finished_at) * 1000)
        polled = _poll_times(provider)
        first_poll, gaps = _poll_gaps(provider, polled)
        to_poll, to_post = _delivery_split(provider, polled, stage.observer.results)
        acks = AckTracker(stage.discord, records).latencies_ms()
        durations = [t.finished_at - t.created_at for t in provider.tasks.values() if t.finished_at]
        finished = sorted(t.finished_at for t in provider.tasks.values() if t.finished_at)
        completion_rate = len(finished) / (finished[-1] - finished[0]) if len(finished) > 1 else None
        peak = _peak_rate(provider)
        peak_polls = _peak_rate(provider, ("poll",))
        callbacks_sent = len(provider.callbacks)
        callbacks_ok = sum(1 for c in provider.callbacks if c.status == 200)
        in_thread = sum(1 for p in stage.observer.results if p.in_thread)
        slow = sorted(delivery)[-max(1, jobs // 100) :]
    total_cpu = cpu[-1] - cpu[0]
    return {
        "strategy": strategy,
        "callbacks": callbacks,
        "jobs": jobs,
        "users": cfg.load_users,
        "scale": cfg.scale,
        "generation_s": summary(durations),
        "arrival_rate_per_s": cfg.load_rate,
        "arrivals_s": arrivals_s,
        "all_answered_s": placed_s,
        "elapsed_s": elapsed,
        "creates": creates,
        "polls": polls,
        "other_requests": other,
        "requests_per_job": (creates + polls) / jobs,
        "peak_requests_per_s": peak,
        "peak_polls_per_s": peak_polls,
        "completion_rate_per_s": completion_rate,
        "polls_per_job": polls / jobs,
        "delivery_ms": summary(delivery),
        "delivery_over_2s": sum(1 for v in delivery if v > 2000),
        "delivery_split_ms": {"finished_to_poll": summary(to_poll), "poll_to_posted": summary(to_post)},
        "slowest_percent_ms": summary(slow),
        "delivery_unmatched": missing,
        "results_in_thread": in_thread,
        "ack_ms": summary(acks),
        "rejected": _rejected(records),
        "cpu_s": total_cpu,
        "cpu_ms_per_job": total_cpu * 1000 / jobs,
        "cpu_phases_ms_per_job": {
            "intake": (cpu[1] - cpu[0]) * 1000 / jobs,
            "waiting": (cpu[2] - cpu[1]) * 1000 / jobs,
            "delivery": (cpu[3] - cpu[2]) * 1000 / jobs,
        },
        "rss_mb_before": rss0 / 2**20,
        "rss_mb_after": rss1 / 2**20,
        "bot_cpu_percent": total_cpu * 100 / elapsed,
        "bot_cpu_percent_intake": (cpu[1] - cpu[0]) * 100 / placed_s,
        "harness_cpu_percent": harness_cpu * 100 / elapsed,
        "first_poll_s": summary(first_poll),
        "poll_gap_s": summary(gaps),
        "callbacks_sent": callbacks_sent,
        "callbacks_accepted": callbacks_ok,
        "max_concurrent_tasks": provider.max_concurrent_running,
    }


# -- 3. waiting work ------------------------------------------------------------------------------------------


WAITING_CONCURRENCY = 5  # the product default: AceDataCloud runs 5 tasks per token


async def _enqueue(stage: Stage, bot: BotProcess, start: int, count: int, wave: int, users: int) -> None:
    """`count` requests through /luma generate, `wave` at a time, each wave answered before the next goes
    (a gateway flooded with thousands of interactions at once would only measure the 3-second rule)."""
    for first in range(start, start + count, wave):
        n = min(wave, start + count - first)
        records = [await stage.generate(i, i % users) for i in range(first, first + n)]
        await _placed(stage, records, bot, 120)
        if _rejected(records):
            raise BenchError(f"{_rejected(records)} requests were not acknowledged in time")


async def _settled_rss(bot: BotProcess) -> int:
    """RSS once the bot has gone quiet: sampled until two readings 0.5 s apart agree within 64 KB."""
    previous = bot.rss_bytes()
    for _ in range(20):
        await asyncio.sleep(0.5)  # sampling a gauge, not waiting for an event
        current = bot.rss_bytes()
        if abs(current - previous) <= 64 * 1024:
            return current
        previous = current
    return previous


async def _job_states(database_url: str) -> dict[str, int]:
    """How many jobs the database holds in each state (read after the bot has stopped)."""
    query = "SELECT state, COUNT(*) FROM jobs GROUP BY state"
    if database_url.startswith("sqlite://"):
        import sqlite3

        with contextlib.closing(sqlite3.connect(database_url.removeprefix("sqlite://"))) as db:
            return {state: n for state, n in db.execute(query).fetchall()}
    import asyncpg

    conn = await asyncpg.connect("postgresql://" + database_url.split("://", 1)[1])
    try:
        return {row[0]: row[1] for row in await conn.fetch(query)}
    finally:
        await conn.close()


async def waiting(cfg: Config) -> dict[str, Any]:
    """`cfg.waiting_jobs` jobs queued behind the provider's concurrency limit: the bot's memory growth per
    queued job, then a restart and how long until the queue moves again."""
    provider = _provider(cfg, manual=True)  # tasks never finish on their own: the queue only grows
    async with Stage(users=cfg.waiting_users, provider=provider) as stage:
        database_url = await _database(cfg, "waiting") or stage.sqlite_url("waiting.sqlite3")
        options = BotOptions(
            scale=cfg.scale, max_concurrent=WAITING_CONCURRENCY, label="waiting", database_url=database_url
        )
        bot = await stage.launch(options)
        try:
            rss_idle = await _settled_rss(bot)
            # Warm-up: first-use allocations (imports, pools, caches) are not growth per job.
            await _enqueue(stage, bot, 0, cfg.waiting_warmup, cfg.waiting_wave, cfg.waiting_users)
            await provider.wait_for_requests(WAITING_CONCURRENCY, "create", within=30)
            rss0 = await _settled_rss(bot)
            cpu0 = bot.cpu_seconds()
            t0 = time.time()
            await _enqueue(
                stage, bot, cfg.waiting_warmup, cfg.waiting_jobs, cfg.waiting_wave, cfg.waiting_users
            )
            enqueue_s = time.time() - t0
            cpu = bot.cpu_seconds() - cpu0
            rss1 = await _settled_rss(bot)
        finally:
            await bot.stop()
        queued_total = cfg.waiting_warmup + cfg.waiting_jobs
        # While the bot is down, the provider finishes the tasks it had: after the restart the bot must
        # notice (recover → poll), deliver them, and submit the next queued jobs.
        running = [t.id for t in provider.tasks.values() if not t.finished]
        for task_id in running:
            provider.finish(task_id)
        creates_before = provider.count("create")
        polls_before = provider.count("poll")
        log_before = len(provider.request_log)
        stage.observer.reset()
        stage_sessions = stage.sessions_now()
        restarted = BotProcess(
            stage.env(options, database_url),
            ["--scale", repr(cfg.scale)],
            stage.workdir / "waiting-restart.log",
            stage.workdir,
        )
        await restarted.start()
        try:
            ready_at = await stage.wait_ready(restarted, stage_sessions)
            await provider.wait_for_requests(polls_before + 1, "poll", within=60)
            await provider.wait_for_requests(creates_before + 1, "create", within=60)
            await stage.observer.wait_results(len(running), 60, restarted)
            delivered_at = max(p.posted_at for p in stage.observer.results)
            await provider.wait_for_requests(creates_before + len(running), "create", within=60)
            rss_restarted = await _settled_rss(restarted)
        finally:
            await restarted.stop()
        states = await _job_states(database_url)
        spawned = restarted.spawned_at
        # When the fake provider received them (its log is on the event loop's clock).
        offset = time.time() - asyncio.get_running_loop().time()
        after = provider.request_log[log_before:]
        first_poll_at = next(r.at for r in after if r.kind == "poll") + offset
        creates = [r.at + offset for r in after if r.kind == "create"]
        first_create_at, refilled_at = creates[0], creates[len(running) - 1]
    return {
        "jobs": cfg.waiting_jobs,
        "warmup_jobs": cfg.waiting_warmup,
        "queued_total": queued_total,
        "max_concurrent": WAITING_CONCURRENCY,
        "enqueue_s": enqueue_s,
        "enqueue_cpu_ms_per_job": cpu * 1000 / cfg.waiting_jobs,
        "rss_mb_idle": rss_idle / 2**20,
        "rss_mb_before": rss0 / 2**20,
        "rss_mb_after": rss1 / 2**20,
        "rss_growth_kb_per_job": (rss1 - rss0) / 1024 / cfg.waiting_jobs,
        "restart": {
            "running_finished_while_down": len(running),
            "ready_s": ready_at - spawned,
            "first_poll_s": first_poll_at - spawned,
            "first_submit_s": first_create_at - spawned,
            "results_delivered_s": delivered_at - spawned,
            "slots_refilled_s": refilled_at - spawned,
            "rss_mb": rss_restarted / 2**20,
        },
        "job_states_after": states,
    }


async def _database(cfg: Config, label: str) -> str | None:
    """None: a fresh SQLite file in the stage's directory. With --database, a fresh PostgreSQL database."""
    if cfg.database is None:
        return None
    from bench.pg import fresh_database

    return await fresh_database(cfg.database, label)


def config_dict(cfg: Config) -> dict[str, Any]:
    return asdict(cfg)


# -- 5. polling latency (issues 8 and 9) ----------------------------------------------------------------------


def _min_gap(provider: FakeLumaProvider, kind: str, name: str) -> float | None:
    """The shortest time between two requests of this kind to this provider, in seconds."""
    times = sorted(r.at for r in provider.request_log if r.kind == kind and r.provider == name)
    return min((b - a for a, b in zip(times, times[1:], strict=False)), default=None)


def _peak_rate_of(provider: FakeLumaProvider, kind: str, name: str) -> int:
    """The most requests of this kind to this provider within any one second (a sliding window)."""
    times = sorted(r.at for r in provider.request_log if r.kind == kind and r.provider == name)
    peak = first = 0
    for last, t in enumerate(times):
        while t - times[first] >= 1.0:
            first += 1
        peak = max(peak, last - first + 1)
    return peak


async def _arrive(stage: Stage, jobs: int, users: int, rate: float | None, start: int = 0) -> list:
    """`jobs` /luma generate from `users` members: all at once (rate None) or `rate` per second."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    records = []
    for i in range(jobs):
        if rate is not None and (wait := t0 + i / rate - loop.time()) > 0:
            await asyncio.sleep(wait)  # the arrival schedule, not a wait for the bot
        records.append(await stage.generate(start + i, (start + i) % users))
    return records


async def polling_latency(cfg: Config, *, provider_name: str, running: int, jobs: int) -> dict[str, Any]:
    """`jobs` videos with at most `running` at the provider at once (the bot's own concurrency limit keeps the
    rest queued), each taking GENERATION_SPREAD × scale seconds: how soon after the provider finished each one
    is its result posted, and how many provider requests that took."""
    label = f"latency-{provider_name}-{running}"
    provider = _provider(cfg)
    async with Stage(users=cfg.latency_users, provider=provider) as stage:
        database_url = await _database(cfg, label) or stage.sqlite_url(f"{label}.sqlite3")
        options = BotOptions(
            scale=cfg.scale,
            max_concurrent=running,
            label=label,
            provider=provider_name,
            database_url=database_url,
        )
        bot = await stage.launch(options)
        try:
            cpu0, t0 = bot.cpu_seconds(), time.time()
            # A thousand at once would only measure the gateway: arrivals then come at the load scenario's rate.
            rate = None if jobs <= 100 else cfg.load_rate
            records = await _arrive(stage, jobs, cfg.latency_users, rate)
            await _placed(stage, records, bot, 120)
            waves = -(-jobs // running)
            budget = 120 + jobs / 10 + waves * GENERATION_SPREAD[1] * cfg.scale * 1.5
            await stage.observer.wait_results(jobs, budget, bot)
            elapsed = time.time() - t0
            cpu = bot.cpu_seconds() - cpu0
            rss = bot.rss_bytes()
        finally:
            await bot.stop()
        posts = stage.observer.results
        delivery = [
            (p.posted_at - provider.tasks[p.task_id].finished_at) * 1000
            for p in posts
            if p.task_id in provider.tasks and provider.tasks[p.task_id].finished_at
        ]
        polled = _poll_times(provider)
        first_poll, gaps = _poll_gaps(provider, polled)
        to_poll, to_post = _delivery_split(provider, polled, posts)
        creates = provider.count("create", provider_name)
        polls = provider.count("poll", provider_name)
        per_task = [len(v) for v in polled.values()]
        durations = [t.finished_at - t.created_at for t in provider.tasks.values() if t.finished_at]
        polls_after_finish = [
            sum(1 for t in times if t >= provider.tasks[tid].finished_at)
            for tid, times in polled.items()
            if tid in provider.tasks and provider.tasks[tid].finished_at
        ]
    return {
        "provider": provider_name,
        "batch": provider_name == "acedatacloud",
        "running": running,
        "jobs": jobs,
        "scale": cfg.scale,
        "arrivals": "at once" if rate is None else f"{rate:g} per second",
        "max_concurrent_tasks": provider.max_concurrent_running,
        "generation_s": summary(durations),
        "results": len(posts),
        "results_unmatched": len(posts) - len(delivery),
        "failed_posts": sum(1 for p in posts if p.failed),
        "delivery_ms": summary(delivery),
        "delivery_over_2_5s": sum(1 for v in delivery if v > 2500),
        "delivery_split_ms": {"finished_to_poll": summary(to_poll), "poll_to_posted": summary(to_post)},
        "creates": creates,
        "polls": polls,
        "polls_per_job": polls / jobs,
        "requests_per_job": (creates + polls) / jobs,
        "polls_per_task": summary([float(n) for n in per_task]),
        "polls_after_finish_per_task": summary([float(n) for n in polls_after_finish]),
        "peak_polls_per_s": _peak_rate_of(provider, "poll", provider_name),
        "min_poll_gap_s": _min_gap(provider, "poll", provider_name),
        "mean_polls_per_s": polls / elapsed,
        "first_poll_s": summary(first_poll),
        "poll_gap_s": summary(gaps),
        "elapsed_s": elapsed,
        "cpu_ms_per_job": cpu * 1000 / jobs,
        "rss_mb_after": rss / 2**20,
    }


# -- 6. failover (issue 9) ----------------------------------------------------------------------------------


FAILOVER_PROVIDERS = ("luma", "dream-machine")
FAILOVER_CREATE_PATH = "/agents/v1/generations"


async def _jobs_table(database_url: str) -> list[dict[str, Any]]:
    """Every job with its unit's ledger state (read after the bot has stopped)."""
    query = (
        "SELECT j.id, j.state, j.provider, j.failure_kind, j.task_id, j.delivered_at IS NOT NULL, "
        "j.resubmits, q.state FROM jobs j LEFT JOIN quota_ledger q ON q.job_id = j.id ORDER BY j.id"
    )
    names = ("id", "state", "provider", "failure_kind", "task_id", "delivered", "resubmits", "unit")
    if database_url.startswith("sqlite://"):
        import sqlite3

        with contextlib.closing(sqlite3.connect(database_url.removeprefix("sqlite://"))) as db:
            rows = db.execute(query).fetchall()
    else:
        import asyncpg

        conn = await asyncpg.connect("postgresql://" + database_url.split("://", 1)[1])
        try:
            rows = [tuple(r) for r in await conn.fetch(query)]
        finally:
            await conn.close()
    return [dict(zip(names, row, strict=True)) for row in rows]


def _accounting(rows: list[dict[str, Any]], posts: list, provider: FakeLumaProvider) -> dict[str, Any]:
    """Did every job end exactly once: delivered with its unit charged, or failed with it refunded, with one
    post each, and one task at most per job (none made twice, at one provider or two)?"""
    posts_per_job: dict[int, int] = {}
    for p in posts:
        posts_per_job[p.job_id] = posts_per_job.get(p.job_id, 0) + 1
    task_owner: dict[str, int] = {}
    for r in rows:
        if r["task_id"]:
            task_owner[r["task_id"]] = r["id"]
    ok_delivered = [
        r for r in rows if r["state"] == "completed" and r["unit"] == "charged" and posts_per_job.get(r["id"]) == 1
    ]
    ok_failed = [
        r for r in rows if r["state"] == "failed" and r["unit"] == "refunded" and posts_per_job.get(r["id"]) == 1
    ]
    lost = [r["id"] for r in rows if r not in ok_delivered and r not in ok_failed]
    orphan_tasks = [t for t in provider.tasks if t not in task_owner]
    kinds: dict[str, int] = {}
    for r in rows:
        if r["state"] == "failed":
            kinds[r["failure_kind"] or "?"] = kinds.get(r["failure_kind"] or "?", 0) + 1
    by_provider: dict[str, int] = {}
    for r in ok_delivered:
        by_provider[r["provider"]] = by_provider.get(r["provider"], 0) + 1
    return {
        "jobs": len(rows),
        "delivered_charged": len(ok_delivered),
        "failed_refunded": len(ok_failed),
        "failures_by_kind": kinds,
        "delivered_by_provider": by_provider,
        "lost": len(lost),
        "lost_ids": lost[:20],
        "posted_twice": sum(1 for n in posts_per_job.values() if n > 1),
        "tasks": len(provider.tasks),
        "tasks_without_job": len(orphan_tasks),
        "resubmits": sum(r["resubmits"] or 0 for r in rows),
    }


async def failover(cfg: Config) -> dict[str, Any]:
    """Two providers (the Agents API first, Dream Machine second), jobs arriving steadily; then every create
    at the first is answered 502. How soon do new jobs flow to the second, and does every job still end
    exactly once (delivered and charged, or failed with its unit back)?"""
    label = "failover"
    provider = _provider(cfg)
    jobs_before = round(cfg.failover_before * cfg.failover_rate)
    jobs_after = round(cfg.failover_after * cfg.failover_rate)
    jobs = jobs_before + jobs_after
    env = {"LUMA_PROVIDERS": ",".join(FAILOVER_PROVIDERS)}
    async with Stage(users=cfg.latency_users, provider=provider) as stage:
        for name in FAILOVER_PROVIDERS:
            key = name.upper().replace("-", "_")
            env[f"PROVIDER_{key}_TOKENS"] = PROVIDER_TOKEN
            env[f"PROVIDER_{key}_BASE_URL"] = provider.url_for(name)
            env[f"PROVIDER_{key}_MAX_CONCURRENT"] = str(max(50, jobs))
        database_url = await _database(cfg, label) or stage.sqlite_url(f"{label}.sqlite3")
        options = BotOptions(
            scale=cfg.scale, max_concurrent=max(50, jobs), label=label, provider="luma", env=env,
            database_url=database_url,
        )
        bot = await stage.launch(options)
        loop = asyncio.get_running_loop()
        try:
            records = await _arrive(stage, jobs_before, cfg.latency_users, cfg.failover_rate)
            collapse = loop.time()
            provider.inject(502, path=FAILOVER_CREATE_PATH, times=None)
            records += await _arrive(stage, jobs_after, cfg.latency_users, cfg.failover_rate, start=jobs_before)
            await _placed(stage, records, bot, 120)
            budget = 120 + GENERATION_SPREAD[1] * cfg.scale * 2
            await stage.observer.wait_results(jobs, budget, bot)
            # Late duplicates would show up here: give the bot a moment to (wrongly) post anything twice.
            await asyncio.sleep(max(1.0, 2 * cfg.scale))  # a quiet period to observe, not a wait for an event
        finally:
            await bot.stop()
        rows = await _jobs_table(database_url)
        log = provider.request_log
        creates = [r for r in log if r.kind == "create"]
        first_create = {
            name: next((r.at for r in creates if r.provider == name and r.at >= collapse), None)
            for name in FAILOVER_PROVIDERS
        }
        second_first = first_create["dream-machine"]
        before = [r for r in creates if r.at < collapse]
        after = [r for r in creates if r.at >= collapse]
        refused = [r for r in after if r.provider == "luma"]
        acct = _accounting(rows, stage.observer.results, provider)
        posts = stage.observer.results
        delivery = [
            (p.posted_at - provider.tasks[p.task_id].finished_at) * 1000
            for p in posts
            if p.task_id in provider.tasks and provider.tasks[p.task_id].finished_at
        ]
    return {
        "providers": list(FAILOVER_PROVIDERS),
        "jobs": jobs,
        "jobs_before_collapse": jobs_before,
        "jobs_after_collapse": jobs_after,
        "arrival_rate_per_s": cfg.failover_rate,
        "scale": cfg.scale,
        "collapse_to_second_provider_s": None if second_first is None else second_first - collapse,
        "creates_before_collapse": {n: sum(1 for r in before if r.provider == n) for n in FAILOVER_PROVIDERS},
        "creates_after_collapse": {n: sum(1 for r in after if r.provider == n) for n in FAILOVER_PROVIDERS},
        "creates_refused_502": len(refused),
        "refused_after_switch": sum(1 for r in refused if second_first is not None and r.at > second_first),
        "refused_at_s": [round(r.at - collapse, 2) for r in refused],
        "creates": len(creates),
        "creates_per_job": len(creates) / jobs,
        "tasks_per_job": len(provider.tasks) / jobs,
        "accounting": acct,
        "jobs_lost": acct["lost"] + acct["posted_twice"] + acct["tasks_without_job"],
        "delivery_ms": summary(delivery),
        "results_posted": sum(1 for p in posts if not p.failed),
        "failure_notices_posted": sum(1 for p in posts if p.failed),
    }


# -- 7. result media (issue 10) -----------------------------------------------------------------------------


async def _sample_rss(bot: BotProcess, into: list[int], stop: asyncio.Event) -> None:
    """Sample the bot's resident memory every 50 ms until `stop` (a gauge: peaks between samples are caught
    by VmHWM, read as well)."""
    while not stop.is_set():
        with contextlib.suppress(OSError, BenchError):
            into.append(bot.rss_bytes())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.05)


def _vm_hwm(bot: BotProcess) -> int:
    for line in Path(f"/proc/{bot.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


UPLOAD_LIMIT = 10 * 2**20  # the fake Discord's default guild (no boost), as Discord's


async def media(cfg: Config, *, size_mb: int, deliveries: int) -> dict[str, Any]:
    """`deliveries` finished videos of `size_mb` MB each, all ready at once: the bot downloads each, attaches
    it (re-encoded to fit when it is over the server's 10 MiB limit) and posts it. Delivery latency (provider
    finished → result posted), bot CPU per job and the bot's memory while it works."""
    from bench.media import digest, video

    label = f"media-{size_mb}mb-{deliveries}"
    path = video(size_mb * 1_000_000, seed=cfg.seed)
    provider = FakeLumaProvider(token=PROVIDER_TOKEN, manual=True)
    provider.video_bytes = path.read_bytes()
    async with Stage(users=cfg.latency_users, provider=provider) as stage:
        tmp = stage.workdir / "media-tmp"
        tmp.mkdir()
        database_url = await _database(cfg, label) or stage.sqlite_url(f"{label}.sqlite3")
        options = BotOptions(
            scale=cfg.scale,
            max_concurrent=deliveries,
            callbacks=True,  # the result is fetched at once: the figures are the delivery, not a poll's wait
            label=label,
            env={"MEDIA_TEMP_DIR": str(tmp)},
            database_url=database_url,
        )
        bot = await stage.launch(options)
        samples: list[int] = []
        stop = asyncio.Event()
        try:
            records = await _arrive(stage, deliveries, cfg.latency_users, None)
            await _placed(stage, records, bot, 120)
            await provider.wait_for_requests(deliveries, "create", within=60)
            rss_before = await _settled_rss(bot)
            hwm_before = _vm_hwm(bot)
            sampler = asyncio.create_task(_sample_rss(bot, samples, stop))
            cpu0, t0 = bot.cpu_seconds(), time.time()
            for task_id in list(provider.tasks):
                provider.finish(task_id)
            await stage.observer.wait_results(deliveries, 120 + deliveries * 20, bot)
            elapsed = time.time() - t0
            cpu = bot.cpu_seconds() - cpu0
            hwm_after = _vm_hwm(bot)
            stop.set()
            await sampler
            rss_after = await _settled_rss(bot)
            leftovers = sum(1 for _ in tmp.rglob("*"))
        finally:
            stop.set()
            await bot.stop()
        posts = stage.observer.results
        delivery = [
            (p.posted_at - provider.tasks[p.task_id].finished_at) * 1000
            for p in posts
            if p.task_id in provider.tasks and provider.tasks[p.task_id].finished_at
        ]
        sizes = [s for p in posts for s in p.file_sizes if s > 100_000]  # videos, not thumbnails
        downloads = provider.count("media")
    peak = max([*samples, rss_before])
    return {
        "size_bytes": path.stat().st_size,
        "file": path.name,
        "file_sha256": digest(path),
        "deliveries": deliveries,
        "upload_limit_bytes": UPLOAD_LIMIT,
        "reencoded": size_mb * 1_000_000 > UPLOAD_LIMIT,
        "results": len(posts),
        "results_with_video": sum(1 for p in posts if any(s > 100_000 for s in p.file_sizes)),
        "results_link_only": sum(1 for p in posts if not any(s > 100_000 for s in p.file_sizes)),
        "attached_bytes": summary([float(s) for s in sizes]),
        "attached_over_limit": sum(1 for s in sizes if s > UPLOAD_LIMIT),
        "media_requests": downloads,
        "delivery_ms": summary(delivery),
        "elapsed_s": elapsed,
        "cpu_s": cpu,
        "cpu_ms_per_job": cpu * 1000 / deliveries,
        "rss_mb_before": rss_before / 2**20,
        "rss_mb_peak_sampled": peak / 2**20,
        "rss_mb_peak_hwm": hwm_after / 2**20,
        "hwm_grew": hwm_after > hwm_before,
        "rss_mb_after": rss_after / 2**20,
        "peak_growth_mb": (max(peak, hwm_after) - rss_before) / 2**20,
        "peak_growth_mb_per_job": (max(peak, hwm_after) - rss_before) / 2**20 / deliveries,
        "temp_files_left": leftovers,
    }


def plan(cfg: Config) -> dict[str, Any]:
    """Scenario name → a function running it, in run order (the cheap ones first, waiting work last)."""
    runs: dict[str, Any] = {
        "burst": lambda: burst(cfg),
        "load_polling": lambda: load(cfg),
        "load_callbacks": lambda: load(cfg, callbacks=True),
        "baseline": lambda: load(cfg, strategy="baseline"),
    }
    for kind, provider_name, table in (
        ("agents", "luma", cfg.agents_runs),
        ("batch", "acedatacloud", cfg.batch_runs),
    ):
        for running, jobs in table:
            runs[f"{kind}_{running}"] = (
                lambda p=provider_name, r=running, j=jobs: polling_latency(cfg, provider_name=p, running=r, jobs=j)
            )
    runs["failover"] = lambda: failover(cfg)
    for size in cfg.media_sizes_mb:
        for n in cfg.media_deliveries:
            runs[f"media_{size}mb_{n}"] = lambda s=size, d=n: media(cfg, size_mb=s, deliveries=d)
    runs["waiting"] = lambda: waiting(cfg)
    return runs
