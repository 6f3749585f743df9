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
    if path and isinstance(node.get(path[0]), dict) and "error" in node[path[0]]:
        return None  # the scenario broke: see errors()
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
    for name in _names(results, "agents_"):
        r = _get(results, name)
        found += _latency_targets(name, r, f"Agents API, {r['running']} running", requests=False)
    for name in _names(results, "batch_"):
        r = _get(results, name)
        where = f"AceDataCloud (batch), {r['running']:,} running"
        found += _latency_targets(name, r, where, requests=r["running"] <= 50) if r["running"] <= 50 else []
        found.append(
            # On a faster clock (--scale) the bot's 1-second gap is scaled too, and so is the limit.
            Target(f"{name}_poll_rate", f"{where}: poll requests in the busiest second", r["peak_polls_per_s"],
                   max(1, round(1 / r["scale"])), "", strict=False)
        )
    fo = _get(results, "failover")
    if fo:
        found += [
            Target("failover_lost", "Failover: jobs lost", fo["jobs_lost"], 0, "", strict=False),
            Target("failover_creates", "Failover: creates per job", fo["creates_per_job"], 1.0, "", strict=False),
        ]
    for n in sorted({_get(results, k)["deliveries"] for k in _names(results, "media_")}):
        small = _get(results, f"media_5mb_{n}")
        large = _get(results, f"media_25mb_{n}")
        if small and large:
            found.append(
                Target(
                    f"media_{n}_peak",
                    f"Media, {n} at once: peak memory with 25 MB files over that with 5 MB",
                    max(large["rss_mb_peak_sampled"], large["rss_mb_peak_hwm"])
                    - max(small["rss_mb_peak_sampled"], small["rss_mb_peak_hwm"]),
                    20,
                    "MB",
                )
            )
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


def _names(results: dict[str, Any], prefix: str) -> list[str]:
    return [k for k in results.get("scenarios", {}) if k.startswith(prefix) and _get(results, k)]


def _latency_targets(name: str, r: dict[str, Any], where: str, *, requests: bool) -> list[Target]:
    out = [
        Target(f"{name}_p50", f"{where}: posted after the provider finished, p50", r["delivery_ms"]["p50"], 1000,
               "ms", strict=False),
        Target(f"{name}_p99", f"{where}: posted after the provider finished, p99", r["delivery_ms"]["p99"], 2500,
               "ms", strict=False),
    ]
    if requests:
        out.append(Target(f"{name}_requests", f"{where}: provider requests per job", r["requests_per_job"], 3, "",
                          strict=False))
    else:
        out.append(Target(f"{name}_polls", f"{where}: poll requests per job", r["polls_per_job"], 12, "",
                          strict=False))
    return out


def errors(results: dict[str, Any]) -> list[str]:
    return [
        f"{name}: {r['error']}"
        for name, r in results.get("scenarios", {}).items()
        if isinstance(r, dict) and "error" in r
    ]


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
    for name in _names(results, "agents_") + _names(results, "batch_"):
        r = _get(results, name)
        title = (
            f"5. Agents API, {r['running']:,} running" if name.startswith("agents_")
            else f"6. AceDataCloud batch, {r['running']:,} running"
        )
        d = r["delivery_ms"]
        out += [
            (title, "posted after the provider finished p50 / p99", f"{ms(d['p50'])} / {ms(d['p99'])}",
             " · ".join(x for x in (check(f"{name}_p50"), check(f"{name}_p99")) if x)),
            (title, "poll requests per job / all provider requests per job",
             f"{r['polls_per_job']:.2f} / {r['requests_per_job']:.2f}",
             check(f"{name}_polls") or check(f"{name}_requests")),
            (title, "poll requests in the busiest second (sliding window)", fmt(r["peak_polls_per_s"]),
             check(f"{name}_poll_rate")),
        ]
    fo = _get(results, "failover")
    if fo:
        out += [
            ("7. Failover", "first provider answers 502 → first create at the second",
             "–" if fo["collapse_to_second_provider_s"] is None else ms(fo["collapse_to_second_provider_s"] * 1000),
             ""),
            ("7. Failover", f"jobs lost ({fo['jobs']} jobs; {fo['accounting']['failed_refunded']} failed with "
             "their unit back)", fmt(fo["jobs_lost"]), check("failover_lost")),
            ("7. Failover", "creates per job", fmt(fo["creates_per_job"], 2), check("failover_creates")),
        ]
    for name in _names(results, "media_"):
        r = _get(results, name)
        title = f"8. Media, {r['size_bytes'] / 1e6:g} MB × {r['deliveries']}"
        d = r["delivery_ms"]
        out += [
            (title, "posted after the provider finished p50 / p99", f"{ms(d['p50'])} / {ms(d['p99'])}", ""),
            (title, "bot CPU per job / peak memory (growth over idle)",
             f"{ms(r['cpu_ms_per_job'])} / {max(r['rss_mb_peak_sampled'], r['rss_mb_peak_hwm']):.0f} MB "
             f"(+{r['peak_growth_mb']:.0f} MB)",
             check(f"media_{r['deliveries']}_peak") if name.startswith("media_25mb_") else ""),
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
    notes += _latency_notes(results, by_key)
    fo = _get(results, "failover")
    if fo and (by_key["failover_lost"].met is False or by_key["failover_creates"].met is False):
        a = fo["accounting"]
        notes.append(
            f"**Failover: {fo['jobs_lost']} jobs lost, {fo['creates_per_job']:.2f} creates per job.** "
            f"{a['lost']} jobs did not end exactly once (ids {a['lost_ids']}), {a['posted_twice']} were posted "
            f"twice, {a['tasks_without_job']} tasks have no job."
        )
    for key, t in by_key.items():
        if key.startswith("media_") and key.endswith("_peak") and t.met is False:
            notes.append(
                f"**{t.label}: +{t.value:.0f} MB.** Only the 25 MB runs re-encode: the encoder's own buffers "
                "(x264 look-ahead and reference frames for a 720p picture, decoder frames) come on top of what "
                "the 5 MB runs hold; compare the peak growth per delivery at 5 and at 50 at once in the media "
                "table to see whether memory follows the number of encodes at once or the files."
            )
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
    parts += _new_scenarios_how(results)
    runs = _runs(results)
    if runs:
        parts += ["", "Runs these figures come from:", ""] + runs
    errs = errors(results)
    if errs:
        parts += ["", "## Scenarios that did not run to the end", ""] + [f"- {e}" for e in errs]
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
    parts += _new_details(results)
    parts += [
        "The raw numbers are in `bench/RESULTS.json` (these figures) and `bench/results/latest.json` (the last "
        "run).",
        "",
    ]
    return "\n".join(parts)


# -- the scenarios of issues 8, 9 and 10 ----------------------------------------------------------------------


def _runs(results: dict[str, Any]) -> list[str]:
    """One line per command that produced some of these figures (a partial run keeps earlier figures)."""
    by_command: dict[tuple[str, str], list[str]] = {}
    for name, r in results.get("scenarios", {}).items():
        run = r.get("run") if isinstance(r, dict) else None
        if run:
            by_command.setdefault((run["command"], run["at"][:10] + (f", bot {run['bot']}" if run.get("bot") else "")), []).append(
                f"{name.replace('_', ' ')} ({run['duration_s']:.0f} s)"
            )
    if len(by_command) <= 1 and not any("--only" in c for c, _ in by_command):
        return []
    return [f"- `{c}` on {day}: {', '.join(names)}" for (c, day), names in by_command.items()]


def _new_scenarios_how(results: dict[str, Any]) -> list[str]:
    out = []
    if _names(results, "agents_") or _names(results, "batch_"):
        out.append(
            "- **Polling latency** (5, 6): `/luma generate` requests (all at once; 1,000 at the load rate) with "
            "the bot's concurrency limit set to the number of tasks *running*, so that many are at the provider "
            "at once and the next queued job goes as each ends. Each task takes its own time, uniformly "
            f"{GENERATION_SPREAD[0]:g}–{GENERATION_SPREAD[1]:g} s (seeded). *Posted after the provider "
            "finished*: the fake's `finished_at` → the result message's creation in the fake Discord. The "
            "Agents API (`luma`) has no batch lookup and no callbacks: one GET per task per look; AceDataCloud "
            "asks for up to 50 tasks per POST and allows one poll request a second. Busiest second: the most "
            "poll requests the fake received within any sliding one-second window."
        )
    if _get(results, "failover"):
        fo = _get(results, "failover")
        out.append(
            f"- **Failover** (7): `LUMA_PROVIDERS=luma,dream-machine` (one key each, on the fake's Agents and "
            f"Dream Machine APIs); {fo['arrival_rate_per_s']:g} `/luma generate` a second for "
            f"{fo['jobs_before_collapse'] / fo['arrival_rate_per_s']:.0f} s, then every create at the Agents "
            f"API is answered 502 (`inject(502, path=\"/agents/v1/generations\", times=None)`) while requests "
            f"go on for {fo['jobs_after_collapse'] / fo['arrival_rate_per_s']:.0f} s more; the run ends when "
            "every job has its post. *Jobs lost* counts jobs that did not end exactly once as either delivered "
            "with its unit charged or failed with its unit refunded (from the database afterwards), with one "
            "post each, plus tasks at the provider that no job owns. A create answered 5xx may have started a "
            "task, so by design that job fails as *unconfirmed* with its unit back and is never re-sent: those "
            "jobs count as ended, not lost."
        )
    if _names(results, "media_"):
        out.append(
            "- **Result media** (8): the fake provider serves one cached mp4 (`python -m bench.media` makes it "
            "once under `bench/results/`: 5 s of 1280×720 at 24 fps, every frame fresh noise so no encoder "
            "can shrink it for free, with an AAC track, grown to the exact size by a `free` box). The bot "
            "(callbacks on, so the result is fetched at once) has all its tasks finish at the same moment: it "
            "downloads each file (`MEDIA_CONCURRENT_DOWNLOADS=4`), attaches the 5 MB one as it is and "
            "re-encodes the 25 MB one below the server's 10 MiB limit (`MEDIA_CONCURRENT_ENCODES=1`), then "
            "posts. CPU from the moment the tasks finish to the last post, ÷ deliveries; memory: the bot's "
            "resident set sampled every 50 ms and its `VmHWM`; growth is over the idle bot just before. The "
            "target for *peak memory must not grow with the file size* is read as: at the same number of "
            "deliveries, peak with 25 MB files is less than 20 MB (the difference of one file) above peak "
            "with 5 MB files."
        )
    return out


def _latency_section(name: str, r: dict[str, Any]) -> str:
    d, split, g = r["delivery_ms"], r["delivery_split_ms"], r["generation_s"]
    title = (
        f"5. Agents API (one GET per task), {r['running']:,} running"
        if name.startswith("agents_")
        else f"6. AceDataCloud (batch polling), {r['running']:,} running"
    )
    pt, pa = r["polls_per_task"], r["polls_after_finish_per_task"]
    data = [
        ("jobs / running at once (most seen at the provider)",
         f"{r['jobs']:,} / {r['running']:,} ({r['max_concurrent_tasks']:,}); requests {r['arrivals']}"),
        ("generation time per task", f"p50 {g['p50']:.1f} s, min–max {g['min']:.1f}–{g['max']:.1f} s"),
        ("posted after the provider finished p50 / p99 / max",
         f"{ms(d['p50'])} / {ms(d['p99'])} / {ms(d['max'])} ({r['delivery_over_2_5s']} over 2.5 s)"),
        ("… finished → the poll that saw it, p50 / p99",
         f"{ms(split['finished_to_poll']['p50'])} / {ms(split['finished_to_poll']['p99'])}"),
        ("… that poll → result posted, p50 / p99",
         f"{ms(split['poll_to_posted']['p50'])} / {ms(split['poll_to_posted']['p99'])}"),
        ("provider requests",
         f"{r['creates']:,} creates + {r['polls']:,} polls = {r['requests_per_job']:.2f} per job "
         f"({r['polls_per_job']:.2f} polls)"),
        ("looks at one task p50 / max (of them after it finished: max)",
         f"{pt['p50']:.0f} / {pt['max']:.0f} ({pa['max']:.0f})" if pt["p50"] is not None else "–"),
        ("poll requests: busiest second / mean per second / shortest gap",
         f"{r['peak_polls_per_s']:,} / {r['mean_polls_per_s']:.2f} / "
         + ("–" if r["min_poll_gap_s"] is None else f"{r['min_poll_gap_s'] * 1000:,.0f} ms")),
        ("first look at a task after its creation p50 / p99",
         "–" if r["first_poll_s"]["p50"] is None
         else f"{r['first_poll_s']['p50']:.1f} s / {r['first_poll_s']['p99']:.1f} s"),
        ("gap between two looks at one task p50 / p99",
         "–" if r["poll_gap_s"]["p50"] is None
         else f"{r['poll_gap_s']['p50']:.1f} s / {r['poll_gap_s']['p99']:.1f} s"),
        ("results posted (failure notices) / unmatched", f"{r['results']:,} ({r['failed_posts']}) / "
         f"{r['results_unmatched']}"),
        ("bot CPU per job / resident memory after", f"{r['cpu_ms_per_job']:.1f} ms / {r['rss_mb_after']:.0f} MB"),
        ("first request → last result posted", f"{r['elapsed_s']:.0f} s"),
    ]
    return f"### {title}\n\n" + _md_table(("measure", "value"), data)


def _failover_section(fo: dict[str, Any]) -> str:
    a = fo["accounting"]
    before, after = fo["creates_before_collapse"], fo["creates_after_collapse"]
    d = fo["delivery_ms"]
    data = [
        ("jobs (before / after the collapse)",
         f"{fo['jobs']} ({fo['jobs_before_collapse']} / {fo['jobs_after_collapse']}), "
         f"{fo['arrival_rate_per_s']:g} a second"),
        ("collapse → first create at the second provider",
         "–" if fo["collapse_to_second_provider_s"] is None else ms(fo["collapse_to_second_provider_s"] * 1000)),
        ("creates before the collapse: luma / dream-machine", f"{before['luma']} / {before['dream-machine']}"),
        ("creates after it: luma (all answered 502) / dream-machine", f"{after['luma']} / {after['dream-machine']}"),
        ("of the 502s, after the switch (probes of the first provider)",
         f"{fo['refused_after_switch']} (at {', '.join(f'{t:g}' for t in fo['refused_at_s'])} s after the collapse)"
         if fo["refused_at_s"] else "0"),
        ("creates per job / tasks made per job", f"{fo['creates_per_job']:.2f} / {fo['tasks_per_job']:.2f}"),
        ("delivered, unit charged (by provider)",
         f"{a['delivered_charged']} ({', '.join(f'{k} {v}' for k, v in a['delivered_by_provider'].items())})"),
        ("failed, unit refunded (by reason)",
         f"{a['failed_refunded']} ({', '.join(f'{k} {v}' for k, v in a['failures_by_kind'].items()) or '–'})"),
        ("jobs lost / posted twice / tasks no job owns",
         f"{a['lost']} / {a['posted_twice']} / {a['tasks_without_job']}"),
        ("delivered results: posted after the provider finished p50 / p99",
         f"{ms(d['p50'])} / {ms(d['p99'])}"),
    ]
    return "### 7. Failover (luma → dream-machine)\n\n" + _md_table(("measure", "value"), data)


def _media_table(results: dict[str, Any]) -> str:
    names = _names(results, "media_")
    heads = ["measure"] + [
        f"{_get(results, n)['size_bytes'] / 1e6:g} MB × {_get(results, n)['deliveries']}" for n in names
    ]
    rs = [_get(results, n) for n in names]

    def row(label: str, f: Any) -> tuple[str, ...]:
        return (label, *(f(r) for r in rs))

    data = [
        row("re-encoded to fit 10 MiB", lambda r: "yes" if r["reencoded"] else "no (attached as is)"),
        row("results with the video attached / as a link",
            lambda r: f"{r['results_with_video']} / {r['results_link_only']}"),
        row("attached file size (max)", lambda r: fmt((r["attached_bytes"]["max"] or 0) / 2**20, 2, "MiB")),
        row("posted after the provider finished p50", lambda r: ms(r["delivery_ms"]["p50"])),
        row("… p99 / max", lambda r: f"{ms(r['delivery_ms']['p99'])} / {ms(r['delivery_ms']['max'])}"),
        row("all posted after", lambda r: f"{r['elapsed_s']:.1f} s"),
        row("bot CPU per job", lambda r: ms(r["cpu_ms_per_job"])),
        row("bot memory idle → peak (sampled / VmHWM)",
            lambda r: f"{r['rss_mb_before']:.0f} → {r['rss_mb_peak_sampled']:.0f} / {r['rss_mb_peak_hwm']:.0f} MB"),
        row("peak growth per delivery at once", lambda r: f"{r['peak_growth_mb_per_job']:.1f} MB"),
        row("memory after (settled)", lambda r: f"{r['rss_mb_after']:.0f} MB"),
        row("temporary files left", lambda r: fmt(r["temp_files_left"])),
    ]
    return "### 8. Result media\n\n" + _md_table(tuple(heads), data)


def _new_details(results: dict[str, Any]) -> list[str]:
    parts: list[str] = []
    for name in _names(results, "agents_") + _names(results, "batch_"):
        parts += [_latency_section(name, _get(results, name)), ""]
    fo = _get(results, "failover")
    if fo:
        parts += [_failover_section(fo), ""]
    if _names(results, "media_"):
        parts += [_media_table(results), ""]
    return parts


def _latency_notes(results: dict[str, Any], by_key: dict[str, Target]) -> list[str]:
    """Why a polling-latency target is missed, from the run's own figures and the bot's poll policy."""
    notes = []
    try:
        from bot.jobs.policy import PollPolicy

        policy = PollPolicy()
    except Exception:  # the report must not depend on the bot's internals to be written
        policy = None
    for name in _names(results, "agents_") + _names(results, "batch_"):
        r = _get(results, name)
        missed = [t for k, t in by_key.items() if k.startswith(name + "_") and t.met is False]
        if not missed:
            continue
        split, gap = r["delivery_split_ms"], r["poll_gap_s"]
        where = "Agents API" if name.startswith("agents_") else "AceDataCloud"
        text = (
            f"**{where}, {r['running']:,} running: " + "; ".join(f"{t.label.split(': ', 1)[1]} "
            f"{fmt(t.value, 2 if t.unit == '' else 0, t.unit)} (target {'<' if t.strict else '≤'} {t.limit:g}"
            f"{' ' + t.unit if t.unit else ''})" for t in missed) + ".** "
            f"Each task was looked at {r['polls_per_task']['p50']:.0f} times (p50; max "
            f"{r['polls_per_task']['max']:.0f}), {gap['p50'] * 1000:,.0f} ms apart (p50); the busiest second "
            f"had {r['peak_polls_per_s']:,} poll requests. Finished → the poll that saw it: p50 "
            f"{ms(split['finished_to_poll']['p50'])}, p99 {ms(split['finished_to_poll']['p99'])}; that poll → "
            f"posted: p50 {ms(split['poll_to_posted']['p50'])}, p99 {ms(split['poll_to_posted']['p99'])}."
        )
        fine = getattr(policy, "fine_interval", None)
        coalesce = getattr(policy, "coalesce", None)
        if gap["p50"] is not None and gap["p50"] < 0.2 and fine is not None and coalesce is not None:
            text += (
                f" The looks come back to back: the poller takes every task due within its coalescing window "
                f"({coalesce:g} s) and schedules the next look at a task near its expected finish "
                f"{fine:g} s later"
                + (", inside that window, so the task is due again at once" if fine <= coalesce else "")
                + "; AceDataCloud's client waits 1 s between requests, but the Agents API's client has no "
                "minimum gap, so nothing paces the loop."
            )
        elif split["finished_to_poll"]["p99"] and split["finished_to_poll"]["p99"] > 2500:
            text += (
                " The slow ones are tasks that finished before the bot expected them to (it starts looking "
                "closely only near the shortest time it expects; until it has timed a few videos of its own "
                "that comes from the provider's documented typical time) and waited for a far look."
            )
        notes.append(text)
    return notes
