"""Targets, the console table and RESULTS.md, all computed from one run's results dict (the JSON)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.scenarios import GENERATION_SPREAD, GENERATION_TIME

# AceDataCloud's minimum gap between poll requests and the safety net's shortest interval, for the notes.
PROVIDER_POLL_GAP_S = 1.0
SAFETY_NET_INTERVAL_S = 30.0


@dataclass(frozen=True)
class Target:
    key: str
    label: str
    value: float | None
    limit: float
    unit: str
    strict: bool = True  # value < limit (else value <= limit)

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        return self.value < self.limit if self.strict else self.value <= self.limit

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "value": self.value,
            "limit": self.limit,
            "unit": self.unit,
            "comparison": "<" if self.strict else "<=",
            "met": self.met,
        }


def _get(results: dict[str, Any], *path: str) -> Any:
    node: Any = results.get("scenarios", {})
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def targets(results: dict[str, Any]) -> list[Target]:
    found = []
    if _get(results, "burst"):
        found += [
            Target(
                "burst_ack_p99",
                "Burst: acknowledgement p99",
                _get(results, "burst", "ack_ms", "p99"),
                250,
                "ms",
            ),
            Target(
                "burst_ack_max",
                "Burst: no acknowledgement over 3 s (max)",
                _get(results, "burst", "ack_ms", "max"),
                3000,
                "ms",
                strict=False,
            ),
        ]
    if _get(results, "load_polling"):
        found += [
            Target(
                "polling_requests",
                "Load, polling: provider requests per job",
                _get(results, "load_polling", "requests_per_job"),
                1.5,
                "",
                strict=False,
            ),
            Target(
                "polling_cpu",
                "Load, polling: bot CPU per job",
                _get(results, "load_polling", "cpu_ms_per_job"),
                20,
                "ms",
            ),
        ]
    if _get(results, "load_callbacks"):
        found += [
            Target(
                "callbacks_requests",
                "Load, callbacks: provider requests per job",
                _get(results, "load_callbacks", "requests_per_job"),
                1.2,
                "",
                strict=False,
            ),
            Target(
                "callbacks_delivery_p99",
                "Load, callbacks: delivery latency p99",
                _get(results, "load_callbacks", "delivery_ms", "p99"),
                2000,
                "ms",
            ),
            Target(
                "callbacks_cpu",
                "Load, callbacks: bot CPU per job",
                _get(results, "load_callbacks", "cpu_ms_per_job"),
                20,
                "ms",
            ),
        ]
    if _get(results, "waiting"):
        found.append(
            Target(
                "waiting_rss",
                "Waiting work: resident memory growth per queued job",
                _get(results, "waiting", "rss_growth_kb_per_job"),
                5,
                "KB",
            )
        )
    return found


# -- formatting -----------------------------------------------------------------------------------------------


def fmt(value: Any, digits: int = 0, unit: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, float | int):
        text = f"{value:,.{digits}f}"
    else:
        text = str(value)
    return f"{text} {unit}".strip()


def ms(value: float | None) -> str:
    """Milliseconds, or seconds above 10 s."""
    if value is None:
        return "–"
    if value >= 10_000:
        return f"{value / 1000:,.1f} s"
    return f"{value:,.0f} ms" if value >= 10 else f"{value:,.1f} ms"


def verdict(target: Target) -> str:
    return {True: "met", False: "NOT MET", None: "not measured"}[target.met]


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b in (None, 0):
        return "–"
    return f"{a / b:,.1f}×"


def rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(scenario, measure, value, target/verdict) for the console and the summary table."""
    out: list[tuple[str, str, str, str]] = []
    by_key = {t.key: t for t in targets(results)}

    def check(key: str) -> str:
        t = by_key.get(key)
        if t is None:
            return ""
        limit = f"{t.limit:g} {t.unit}".strip()
        return f"{'<' if t.strict else '≤'} {limit}: {verdict(t)}"

    burst = _get(results, "burst")
    if burst:
        a = burst["ack_ms"]
        out += [
            (
                "1. Burst",
                f"acknowledgement p50 / p99 / max ({burst['jobs']} requests, {burst['users']} users)",
                f"{ms(a['p50'])} / {ms(a['p99'])} / {ms(a['max'])}",
                check("burst_ack_p99"),
            ),
            ("1. Burst", "acknowledgements over 3 s", fmt(burst["over_3s"]), check("burst_ack_max")),
        ]
    for key, name in (
        ("load_polling", "2. Load, polling"),
        ("load_callbacks", "2. Load, callbacks"),
        ("baseline", "4. Baseline"),
    ):
        r = _get(results, key)
        if not r:
            continue
        kind = "polling" if key == "load_polling" else "callbacks" if key == "load_callbacks" else None
        out += [
            (
                name,
                "provider requests per job (create + polls)",
                fmt(r["requests_per_job"], 2),
                check(f"{kind}_requests") if kind else "",
            ),
            (
                name,
                "delivery latency p50 / p99",
                f"{ms(r['delivery_ms']['p50'])} / {ms(r['delivery_ms']['p99'])}",
                check("callbacks_delivery_p99") if kind == "callbacks" else "",
            ),
            (name, "bot CPU per job", ms(r["cpu_ms_per_job"]), check(f"{kind}_cpu") if kind else ""),
        ]
    base, ours = _get(results, "baseline"), _get(results, "load_polling")
    if base and ours:
        out += [
            (
                "4. Baseline ÷ ours (polling)",
                "provider requests per job",
                ratio(base["requests_per_job"], ours["requests_per_job"]),
                "",
            ),
            (
                "4. Baseline ÷ ours (polling)",
                "bot CPU per job",
                ratio(base["cpu_ms_per_job"], ours["cpu_ms_per_job"]),
                "",
            ),
            (
                "4. Baseline ÷ ours (polling)",
                "delivery latency p50",
                ratio(base["delivery_ms"]["p50"], ours["delivery_ms"]["p50"]),
                "",
            ),
        ]
    cb = _get(results, "load_callbacks")
    if base and cb:
        out += [
            (
                "4. Baseline ÷ ours (callbacks)",
                "provider requests per job",
                ratio(base["requests_per_job"], cb["requests_per_job"]),
                "",
            ),
            (
                "4. Baseline ÷ ours (callbacks)",
                "delivery latency p50",
                ratio(base["delivery_ms"]["p50"], cb["delivery_ms"]["p50"]),
                "",
            ),
        ]
    w = _get(results, "waiting")
    if w:
        r = w["restart"]
        out += [
            (
                "3. Waiting work",
                f"resident memory growth per queued job ({w['jobs']:,} jobs)",
                fmt(w["rss_growth_kb_per_job"], 2, "KB"),
                check("waiting_rss"),
            ),
            (
                "3. Waiting work",
                f"restart with {w['queued_total']:,} queued: start → next job submitted",
                ms(r["first_submit_s"] * 1000),
                "",
            ),
        ]
    return out


def table(results: dict[str, Any]) -> str:
    data = rows(results)
    headers = ("scenario", "measure", "value", "target")
    widths = [max(len(h), *(len(r[i]) for r in data)) if data else len(h) for i, h in enumerate(headers)]
    line = "  ".join("-" * w for w in widths)
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)), line]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in data]
    return "\n".join(out)


# -- RESULTS.md -----------------------------------------------------------------------------------------------


def _md_table(headers: tuple[str, ...], data: list[tuple[str, ...]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in data]
    return "\n".join(out)


def _load_section(title: str, r: dict[str, Any]) -> str:
    d, a, g = r["delivery_ms"], r["ack_ms"], r["generation_s"]
    split = r["delivery_split_ms"]
    phases = r["cpu_phases_ms_per_job"]
    gap, first = r["poll_gap_s"], r["first_poll_s"]
    data = [
        ("jobs / members", f"{r['jobs']:,} / {r['users']:,}"),
        ("arrivals", f"{r['arrival_rate_per_s']:g} per second for {r['arrivals_s']:.1f} s"),
        ("generation time per task (provider)", f"p50 {g['p50']:.1f} s, {_minmax(r)}"),
        ("most tasks at the provider at once", fmt(r["max_concurrent_tasks"])),
        (
            "provider requests",
            f"{r['creates']:,} creates + {r['polls']:,} polls = "
            f"{r['requests_per_job']:.2f} per job (other requests: {r['other_requests']})",
        ),
        (
            "provider requests in the busiest second: all / polls",
            f"{r['peak_requests_per_s']:,} / {r['peak_polls_per_s']:,}",
        ),
        (
            "delivery latency p50 / p99 / max",
            f"{ms(d['p50'])} / {ms(d['p99'])} / {ms(d['max'])} ({r['delivery_over_2s']:,} over 2 s)",
        ),
        (
            "… task finished → the poll that saw it, p50 / p99",
            f"{ms(split['finished_to_poll']['p50'])} / {ms(split['finished_to_poll']['p99'])}",
        ),
        (
            "… that poll → result posted, p50 / p99",
            f"{ms(split['poll_to_posted']['p50'])} / {ms(split['poll_to_posted']['p99'])}",
        ),
        ("results posted in the job's thread", f"{r['results_in_thread']:,} of {r['jobs']:,}"),
        ("acknowledgement p50 / p99 / max", f"{ms(a['p50'])} / {ms(a['p99'])} / {ms(a['max'])}"),
        (
            "bot CPU",
            f"{r['cpu_s']:.2f} s = {r['cpu_ms_per_job']:.1f} ms per job: intake "
            f"{phases['intake']:.1f}, waiting {phases['waiting']:.1f}, delivery {phases['delivery']:.1f}",
        ),
        (
            "bot CPU use: whole run / during intake / harness (fakes)",
            f"{r['bot_cpu_percent']:.0f} % / {r['bot_cpu_percent_intake']:.0f} % / {r['harness_cpu_percent']:.0f} % "
            "of one core",
        ),
        ("bot resident memory before → after", f"{r['rss_mb_before']:.1f} → {r['rss_mb_after']:.1f} MB"),
        (
            "first poll of a task after its creation p50 / p99",
            "–" if first["p50"] is None else f"{first['p50']:.1f} s / {first['p99']:.1f} s",
        ),
        (
            "gap between two polls of one task p50 / p99",
            "–" if gap["p50"] is None else f"{gap['p50']:.1f} s / {gap['p99']:.1f} s",
        ),
        ("callbacks sent / accepted by the bot", f"{r['callbacks_sent']:,} / {r['callbacks_accepted']:,}"),
        ("first request → last result posted", f"{r['elapsed_s']:.1f} s"),
    ]
    return f"### {title}\n\n" + _md_table(("measure", "value"), data)


def _minmax(r: dict[str, Any]) -> str:
    g = r["generation_s"]
    return f"min–max {g['min']:.1f}–{g['max']:.1f} s"


def _notes(results: dict[str, Any]) -> list[str]:
    """Why a target is missed, from this run's own numbers."""
    notes = []
    by_key = {t.key: t for t in targets(results)}
    burst = _get(results, "burst")
    if burst and (by_key["burst_ack_p99"].met is False or by_key["burst_ack_max"].met is False):
        notes.append(
            f"**Burst acknowledgement.** All {burst['jobs']} interactions reach the bot's single gateway "
            f"connection at once; discord.py reads and parses the frames before the command handlers run, so "
            f"the last deferral waits for the whole batch. The slowest acknowledgement took {ms(burst['ack_ms']['max'])}."
        )
    for key, target_key, name in (
        ("load_polling", "polling_cpu", "polling"),
        ("load_callbacks", "callbacks_cpu", "callbacks"),
    ):
        r = _get(results, key)
        if r and by_key[target_key].met is False:
            p = r["cpu_phases_ms_per_job"]
            notes.append(
                f"**CPU per job ({name}): {r['cpu_ms_per_job']:.1f} ms.** By phase: {p['intake']:.1f} ms while "
                f"the requests arrive (each slash command's deferral, quota reservation and job row, status "
                f"message, thread and answer; the engine submits the jobs to the provider meanwhile), "
                f"{p['waiting']:.1f} ms while the videos are made (polls, status edits) and {p['delivery']:.1f} ms "
                f"delivering (result post with its duplicate check, status edit, quota settlement). The intake "
                f"phase alone uses {p['intake'] / 20:.0%} of the 20 ms budget. Every message and thread the bot "
                "creates also comes back to it as a gateway event that discord.py parses."
            )
    cb = _get(results, "load_callbacks")
    if cb and by_key["callbacks_delivery_p99"].met is False:
        split = cb["delivery_split_ms"]
        slow = cb["slowest_percent_ms"]
        gap_s = PROVIDER_POLL_GAP_S * cb["scale"]
        text = (
            f"**Delivery with callbacks: p99 {ms(cb['delivery_ms']['p99'])}.** {cb['delivery_over_2s']:,} of "
            f"{cb['jobs']:,} results took over 2 s (median {ms(cb['delivery_ms']['p50'])}). Almost all of it "
            f"is the wait for a poll: a callback is only a hint, and the job's result is fetched by a poll "
            f"(task finished → that poll: p50 {ms(split['finished_to_poll']['p50'])}, p99 "
            f"{ms(split['finished_to_poll']['p99'])}; poll → result posted: p50 "
            f"{ms(split['poll_to_posted']['p50'])}, p99 {ms(split['poll_to_posted']['p99'])}). Poll requests "
            f"go out at most once per {PROVIDER_POLL_GAP_S * cb['scale']:g} s (AceDataCloud's limit) with up "
            f"to 50 tasks, and tasks finished at about {cb['completion_rate_per_s']:.0f} per second. The engine "
            "chooses a batch's tasks before it waits out that gap, so a callback that arrives during the wait "
            "misses the next request and rides in the one after: one to two gaps"
            + (
                ", which is what the median shows."
                if gap_s * 1000 <= split["finished_to_poll"]["p50"] <= 2 * gap_s * 1000
                else f"; here the median is {ms(split['finished_to_poll']['p50'])}, so the bot was also behind "
                "(other processes took "
                f"{cb.get('other_processes_cpu_percent', 0):.0f} % of a core during this scenario)."
                if split["finished_to_poll"]["p50"] > 2 * gap_s * 1000
                else "."
            )
            + " Choosing the batch after the wait (and letting callback-hinted jobs go before the safety net's "
            "routine polls) would bring it down to at most one gap."
        )
        if slow["max"] is not None and slow["max"] >= 0.8 * SAFETY_NET_INTERVAL_S * cb["scale"] * 1000:
            text += (
                f" The slowest took {ms(slow['max'])}, the safety net's interval: its callback's \"poll now\" "
                'was lost, overwritten by the stale "still running" answer of a poll batch that was on the '
                "wire when the task finished."
            )
        notes.append(text)
    w = _get(results, "waiting")
    if w and by_key["waiting_rss"].met is False:
        notes.append(f"**Memory per queued job: {w['rss_growth_kb_per_job']:.2f} KB.** {_memory_reading(w)}")
    return notes


def _memory_reading(w: dict[str, Any]) -> str:
    r = w["restart"]
    growth = w["rss_mb_after"] - w["rss_mb_before"]
    restart_excess = r["rss_mb"] - w["rss_mb_idle"]
    text = (
        f"The bot grew by {growth:.1f} MB while {w['jobs']:,} jobs queued. Every job opens a thread, and "
        f"discord.py keeps a server's open threads in memory. The restarted bot has loaded none of the "
        f"{w['queued_total']:,} queued jobs (the engine reads the running ones and the next in line) but "
        f"receives the server's open threads when it connects: it uses {r['rss_mb']:.1f} MB, "
        f"{abs(restart_excess):.1f} MB {'more' if restart_excess >= 0 else 'less'} than the first bot just "
        f"after its start on an empty database ({w['rss_mb_idle']:.1f} MB)"
    )
    if growth > 0 and restart_excess >= 0.5 * growth:
        return text + ", so the growth follows the open threads rather than the queued jobs."
    return text + "."


def _readings(results: dict[str, Any]) -> list[str]:
    """What the numbers mean where they could mislead, from this run's own figures."""
    out = []
    ours, base, cb = _get(results, "load_polling"), _get(results, "baseline"), _get(results, "load_callbacks")
    if ours and base:
        scale = ours["scale"]
        later = ours["delivery_ms"]["p50"] > base["delivery_ms"]["p50"]
        out.append(
            f"**Polling: {'fewer requests, later results' if later else 'fewer requests'}.** Ours sends "
            f"{ours['requests_per_job']:.2f} requests per job against the baseline's "
            f"{base['requests_per_job']:.2f}; delivery p50 is {ms(ours['delivery_ms']['p50'])} against "
            f"{ms(base['delivery_ms']['p50'])}. Ours never polls more than once per "
            f"{PROVIDER_POLL_GAP_S * scale:g} s (AceDataCloud's limit of one poll request per second"
            f"{'' if scale == 1 else ', scaled'}) and asks for at most 50 tasks per "
            f"request, so with up to {ours['max_concurrent_tasks']:,} tasks running it sees each one about every "
            f"{ours['poll_gap_s']['p50']:.1f} s (gap p50); the baseline sees each every "
            f"{base['poll_gap_s']['p50']:.1f} s by sending up to {base['peak_polls_per_s']:,} poll requests a "
            f"second (ours: {ours['peak_polls_per_s']:,})"
            + (
                ", which the real provider would answer with 429."
                if base["peak_polls_per_s"] > 1 / (PROVIDER_POLL_GAP_S * scale)
                else "."
            )
            + (
                f" With callbacks, ours delivers in {ms(cb['delivery_ms']['p50'])} (p50) with "
                f"{cb['requests_per_job']:.2f} requests per job."
                if cb
                else ""
            )
        )
    w = _get(results, "waiting")
    if w:
        out.append(f"**Waiting work.** {_memory_reading(w)}")
    return out


# Above this share of one core used by other processes during a scenario, its figures are flagged.
CONTENTION_PERCENT = 25.0


def contention(results: dict[str, Any]) -> str:
    scenarios = results.get("scenarios", {})
    shares = {
        name: r["other_processes_cpu_percent"]
        for name, r in scenarios.items()
        if r.get("other_processes_cpu_percent") is not None
    }
    if not shares:
        return ""
    text = (
        "Other processes on the machine used "
        + ", ".join(f"{v:.0f} % ({k.replace('_', ' ')})" for k, v in shares.items())
        + " of one core while the scenarios ran."
    )
    for name, r in scenarios.items():
        tries = r.get("attempts_other_cpu_percent") or []
        if len(tries) > 1:
            text += (
                f" {name.replace('_', ' ').capitalize()} ran {len(tries)} times because other processes took "
                + ", ".join(f"{v:.0f} %" for v in tries)
                + " of a core; the figures are from the least disturbed attempt."
            )
    busy = [k for k, v in shares.items() if v > CONTENTION_PERCENT]
    if busy:
        text += (
            f" **The machine was shared during {', '.join(b.replace('_', ' ') for b in busy)}: those figures "
            "are disturbed; rerun on a quiet machine.**"
        )
    return text


def results_md(results: dict[str, Any]) -> str:
    m = results["machine"]
    cfg = results["config"]
    scale = cfg["scale"]
    all_targets = targets(results)
    missed = [t for t in all_targets if t.met is False]
    parts = [
        "# Benchmark results",
        "",
        "Generated by the command below; every number in this file comes from its run on "
        f"{results['generated_at']}. Do not edit by hand: rerun the command.",
        "",
        "```bash",
        "pip install -e '.[dev]'   # once, in a fresh clone",
        results["command"],
        "```",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM; {m['os']}; Python {m['python']}, "
        f"discord.py {m['discord_py']}. Database: {results['database']}. Whole run: {results['duration_s']:.0f} s.",
        "",
        contention(results),
        "",
        "## Summary",
        "",
        *(
            ["**Smoke run (`--quick`): small numbers; the targets apply to the full run.**", ""]
            if results.get("quick")
            else []
        ),
        _md_table(("scenario", "measure", "value", "target"), rows(results)),
        "",
        f"Targets met: {sum(1 for t in all_targets if t.met)} of {len(all_targets)}"
        + (f"; not met: {', '.join(t.label for t in missed)} (see *Targets not met*)." if missed else "."),
        "",
        "## How it is measured",
        "",
        "`python -m bench` runs the fake Discord (REST + gateway) and the fake Luma provider (AceDataCloud's "
        "API) from `tests/fakes/` on 127.0.0.1 in its own process, and the real bot as a separate process "
        "(`python -m bench.botproc`: `bot.app.App` configured from the environment, like `python -m bot`). "
        "Each scenario starts a fresh bot on a fresh database. Only the engine's poll schedule is overridden, "
        "and only to follow the time scale (and, for the baseline, the naive strategy).",
        "",
        (
            f"- **Time scale: 1 (nothing is scaled).** A video takes {GENERATION_TIME:g} s on average (each task "
            f"uniformly {GENERATION_SPREAD[0]:g}–{GENERATION_SPREAD[1]:g} s, seeded, so finishing times do not "
            "line up with any poll period); the bot runs its production poll schedule. All times are real."
            if scale == 1
            else f"- **Time scale: {scale:g}.** A video takes {GENERATION_TIME:g} s on average at full scale "
            f"(each task uniformly {GENERATION_SPREAD[0]:g}–{GENERATION_SPREAD[1]:g} s, seeded, so finishing "
            f"times do not line up with any poll period), times {scale:g}; the bot's poll schedule and its "
            "minimum gap between poll requests are multiplied by the same factor, so requests per job are what "
            "they would be at full scale. Latencies are real wall-clock times of this run; polling delays in "
            f"them are {scale:g} times their full-scale value."
        ),
        "- **Acknowledgement latency**: the fake Discord's record of when it dispatched the interaction "
        "and when the bot's interaction callback (the deferral) arrived.",
        "- **Delivery latency**: the fake provider's `finished_at` of the task → the fake Discord's creation "
        "time of the result message (the one with the video link and the Extend button), both on this "
        "process's clock.",
        "- **Provider requests per job**: creates + polls the fake provider received during the run, ÷ jobs.",
        "- **CPU per job**: user + system time of the bot process (`/proc/<pid>/stat`) from the first request "
        "to the last result posted, ÷ jobs. The fakes run in the harness process and are not counted"
        + (", nor is the PostgreSQL server." if results["database"].startswith("PostgreSQL") else "."),
        "- **Memory**: the bot's resident set (`VmRSS` in `/proc/<pid>/status`), read once it is steady.",
        f"- **Load**: {cfg['load_jobs']:,} `/luma generate` from {cfg['load_users']:,} members arriving at "
        f"{cfg['load_rate']:g} per second over {cfg['load_jobs'] / cfg['load_rate']:.0f} s, with "
        "`LUMA_MAX_CONCURRENT=1000`. The three load runs use the same seeded arrivals and users.",
        f"- **Baseline**: the same engine set up the way many bots poll: every job polls its own task every "
        f"{5 * scale:g} s{'' if scale == 1 else ' (5 s at full scale)'}, one request per task, no batching, "
        "no minimum gap. The fake "
        "provider answers every request; the real AceDataCloud asks for under 1 poll request per second and "
        "answers 429 above it, so the baseline's latency here is better than it could be in production"
        + (
            f" (its busiest second: {_get(results, 'baseline', 'peak_polls_per_s'):,} poll requests)."
            if _get(results, "baseline")
            else "."
        ),
        f"- **Waiting work**: `LUMA_MAX_CONCURRENT=5` and a provider that never finishes on its own, so jobs "
        f"queue. After a warm-up of {cfg['waiting_warmup']:,} jobs, {cfg['waiting_jobs']:,} more come through "
        f"`/luma generate` in waves of {cfg['waiting_wave']:,}; growth = (RSS after − RSS before) ÷ "
        f"{cfg['waiting_jobs']:,}. Then the bot is stopped (SIGTERM), the provider finishes the 5 tasks it "
        "had while the bot is down, and a new bot process starts on the same database. *Resume time* is "
        "from the new process being spawned until the provider receives the create of the next queued job: "
        "by then the bot has opened the database, the engine has polled the tasks that were running, found "
        "them finished and taken the next jobs from the queue.",
    ]
    if missed:
        parts += ["", "## Targets not met", ""]
        notes = _notes(results)
        parts += [f"- {n}" for n in notes] if notes else ["- See the details below."]
    readings = _readings(results)
    if readings:
        parts += ["", "## Reading the numbers", ""] + [f"- {n}" for n in readings]
    parts += ["", "## Details", ""]
    burst = _get(results, "burst")
    if burst:
        a = burst["ack_ms"]
        parts += [
            "### 1. Burst",
            "",
            _md_table(
                ("measure", "value"),
                [
                    ("requests / members", f"{burst['jobs']:,} / {burst['users']:,}, dispatched at once"),
                    (
                        "acknowledgement p50 / p99 / max / mean",
                        f"{ms(a['p50'])} / {ms(a['p99'])} / {ms(a['max'])} / {ms(a['mean'])}",
                    ),
                    ("over 3 s / not acknowledged", f"{burst['over_3s']} / {burst['rejected']}"),
                    (
                        "every member answered (job stored, status and thread posted)",
                        f"{burst['all_answered_s']:.2f} s",
                    ),
                ],
            ),
            "",
        ]
    for key, title in (
        ("load_polling", "2. Load, polling"),
        ("load_callbacks", "2. Load, callbacks"),
        ("baseline", "4. Baseline (each job polls its task every 5 s)"),
    ):
        r = _get(results, key)
        if r:
            parts += [_load_section(title, r), ""]
    w = _get(results, "waiting")
    if w:
        r = w["restart"]
        parts += [
            "### 3. Waiting work",
            "",
            _md_table(
                ("measure", "value"),
                [
                    (
                        "jobs queued (warm-up + measured)",
                        f"{w['warmup_jobs']:,} + {w['jobs']:,} = {w['queued_total']:,}",
                    ),
                    (
                        "bot resident memory: just started / after warm-up / after the measured jobs",
                        f"{w['rss_mb_idle']:.1f} / {w['rss_mb_before']:.1f} / {w['rss_mb_after']:.1f} MB",
                    ),
                    ("growth per queued job", f"{w['rss_growth_kb_per_job']:.2f} KB"),
                    (
                        "intake of the measured jobs",
                        f"{w['enqueue_s']:.1f} s, {w['enqueue_cpu_ms_per_job']:.1f} ms CPU per job",
                    ),
                    ("restart: spawn → connected to Discord, engine resumed", ms(r["ready_s"] * 1000)),
                    ("restart: spawn → first poll of the running tasks", ms(r["first_poll_s"] * 1000)),
                    (
                        "restart: spawn → next queued job submitted (resume time)",
                        ms(r["first_submit_s"] * 1000),
                    ),
                    (
                        f"restart: spawn → the {r['running_finished_while_down']} results finished while down posted",
                        ms(r["results_delivered_s"] * 1000),
                    ),
                    ("restart: spawn → all provider slots busy again", ms(r["slots_refilled_s"] * 1000)),
                    ("restarted bot's resident memory", f"{r['rss_mb']:.1f} MB"),
                    (
                        "job states in the database afterwards",
                        ", ".join(f"{k} {v:,}" for k, v in sorted(w["job_states_after"].items())) or "–",
                    ),
                ],
            ),
            "",
        ]
    parts += ["The raw numbers are in `bench/results/latest.json` after a run.", ""]
    return "\n".join(parts)
