"""`python -m bench`: run every scenario, print the table, write bench/results/latest.json, and with
`--write-results` regenerate bench/RESULTS.md from the same run."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report, scenarios
from bench.stats import machine, own_cpu_seconds, system_busy_seconds

HERE = Path(__file__).resolve().parent
RESULTS_JSON = HERE / "results" / "latest.json"
RESULTS_MD = HERE / "RESULTS.md"
# Run order: the cheap burst first, the long waiting-work scenario last.
SCENARIOS = ("burst", "load_polling", "load_callbacks", "baseline", "waiting")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a small smoke run (well under a minute)")
    parser.add_argument("--write-results", action="store_true", help="regenerate bench/RESULTS.md")
    parser.add_argument(
        "--scale",
        type=float,
        default=None,
        help="clock factor for generation time and poll schedule (default 1; --quick: 0.05)",
    )
    parser.add_argument(
        "--database",
        default=None,
        metavar="URL",
        help="postgres://user:pass@host/db to run on PostgreSQL (each scenario gets a fresh "
        "database on that server); default: a temporary SQLite file",
    )
    parser.add_argument(
        "--only", default=None, metavar="NAMES", help=f"comma-separated subset of {', '.join(SCENARIOS)}"
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=1,
        help="run a scenario again this many times if other processes used over "
        f"{report.CONTENTION_PERCENT:g} %% of a core meanwhile (default 1)",
    )
    parser.add_argument(
        "--json", type=Path, default=RESULTS_JSON, help=f"where to write the JSON ({RESULTS_JSON})"
    )
    args = parser.parse_args(argv)
    if args.only:
        unknown = set(args.only.split(",")) - set(SCENARIOS)
        if unknown:
            parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    if args.write_results and (args.quick or args.only):
        parser.error("--write-results needs the full run (without --quick or --only)")
    return args


def _command(args: argparse.Namespace) -> str:
    parts = ["python -m bench"]
    if args.quick:
        parts.append("--quick")
    if args.scale is not None:
        parts.append(f"--scale {args.scale:g}")
    if args.database:
        parts.append("--database " + _redact(args.database))
    if args.only:
        parts.append(f"--only {args.only}")
    if args.retries != 1:
        parts.append(f"--retries {args.retries}")
    parts.append("--write-results" if args.write_results else "")
    return " ".join(p for p in parts if p)


def _redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if at and ":" in creds:
        creds = creds.split(":", 1)[0] + ":***"
    return f"{scheme}{sep}{creds}{at}{host}"


async def _measured(name: str, run: Callable[[], Awaitable[dict[str, Any]]], retries: int) -> dict[str, Any]:
    """Run a scenario; if other processes on the machine took a large share of the CPU meanwhile, run it
    again (up to `retries` times) and keep the least disturbed attempt."""
    attempts: list[dict[str, Any]] = []
    for attempt in range(1 + retries):
        _log(f"{name} …" if attempt == 0 else f"{name} again (attempt {attempt + 1}) …")
        t, busy, own = time.time(), system_busy_seconds(), own_cpu_seconds()
        result = await run()
        wall = time.time() - t
        # Other processes on this machine compete for the same cores; say how much they took.
        other = max(0.0, (system_busy_seconds() - busy) - (own_cpu_seconds() - own)) * 100 / wall
        result["other_processes_cpu_percent"] = other
        attempts.append(result)
        _log(f"{name} done in {wall:.0f} s (other processes: {other:.0f} % of a core)")
        if other <= report.CONTENTION_PERCENT:
            break
    best = min(attempts, key=lambda r: r["other_processes_cpu_percent"])
    best["attempts_other_cpu_percent"] = [r["other_processes_cpu_percent"] for r in attempts]
    return best


def _log(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    scale = args.scale if args.scale is not None else (0.05 if args.quick else 1.0)
    cfg = (scenarios.Config.quick if args.quick else scenarios.Config)(scale=scale, database=args.database)
    chosen = args.only.split(",") if args.only else list(SCENARIOS)
    runs: dict[str, Callable[[], Awaitable[dict[str, Any]]]] = {
        "burst": lambda: scenarios.burst(cfg),
        "load_polling": lambda: scenarios.load(cfg),
        "load_callbacks": lambda: scenarios.load(cfg, callbacks=True),
        "baseline": lambda: scenarios.load(cfg, strategy="baseline"),
        "waiting": lambda: scenarios.waiting(cfg),
    }
    started = time.time()
    results: dict[str, Any] = {
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": _command(args),
        "quick": args.quick,
        "machine": machine(),
        "database": "PostgreSQL" if args.database else "SQLite (a temporary file)",
        "config": scenarios.config_dict(cfg)
        | {"database": _redact(args.database) if args.database else None},
        "scenarios": {},
    }
    try:
        for name in SCENARIOS:
            if name not in chosen:
                continue
            results["scenarios"][name] = await _measured(name, runs[name], args.retries)
    finally:
        if args.database:
            from bench.pg import drop_created

            await drop_created()
    results["duration_s"] = time.time() - started
    results["targets"] = [t.as_dict() for t in report.targets(results)]
    return results


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    results = asyncio.run(_run(args))
    print(report.table(results))
    if args.quick:
        print("\nSmoke run (--quick): small numbers; the targets apply to the full run.")
    if text := report.contention(results):
        print("\n" + text.replace("**", ""))
    missed = [t for t in report.targets(results) if t.met is False]
    print(
        f"\n{len(missed)} target(s) not met" + (": " + "; ".join(t.label for t in missed) if missed else "")
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"JSON: {args.json}")
    if args.write_results:
        RESULTS_MD.write_text(report.results_md(results))
        print(f"Wrote {RESULTS_MD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
