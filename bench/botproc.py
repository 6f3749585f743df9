"""The bot process of a benchmark: the real bot (`bot.app.App`), configured from the environment like
`python -m bot`, with only the engine's clock and polling strategy overridden.

`python -m bench.botproc --scale 0.05 --strategy ours` runs it. The scale shortens every timer of the poll
schedule by the same factor as the fake provider's generation time, so the number of provider requests per
job stays what it would be at full scale. `--strategy baseline` is the naive polling of many bots: every job
polls its own task every 5 s, one request per task, with no batching and no rate limit.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys

from bot.app import run
from bot.jobs.engine import EngineConfig, engine_config_from_settings
from bot.jobs.policy import PollPolicy
from bot.logging_setup import configure_logging
from bot.settings import Settings, SettingsError, load_settings

STRATEGIES = ("ours", "baseline")
# Set to a file name to write a cProfile of the bot process there (bench-only; results are never profiled).
PROFILE_VARIABLE = "BENCH_PROFILE"
# The baseline's fixed poll period, in seconds at full scale.
BASELINE_PERIOD = 5.0


def engine_config(settings: Settings, *, scale: float, strategy: str) -> EngineConfig:
    """The production engine configuration for these settings, on a clock `scale` times as fast."""
    callbacks = bool(settings.callback_public_url)
    config = engine_config_from_settings(settings)
    if strategy == "baseline":
        period = BASELINE_PERIOD * scale
        poll = PollPolicy(first_poll=period, min_interval=period, max_interval=period, coalesce=0.0)
        return dataclasses.replace(
            config, poll=poll, poll_batch=1, min_poll_interval=0.0, callback_base_url=None
        )
    policy = PollPolicy.safety_net() if callbacks else PollPolicy()
    if scale == 1:
        # Each provider client's own minimum gap between poll requests (AceDataCloud's 1 s, none for the
        # Agents API's one GET per task), exactly as in production.
        return dataclasses.replace(config, poll=policy.scaled(scale))
    # On a faster clock, AceDataCloud's 1 s gap scaled with it (the scaled scenarios all use AceDataCloud).
    return dataclasses.replace(config, poll=policy.scaled(scale), min_poll_interval=1.0 * scale)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.botproc")
    parser.add_argument("--scale", type=float, default=1.0, help="clock factor of the poll schedule")
    parser.add_argument("--strategy", choices=STRATEGIES, default="ours")
    return parser.parse_args(argv)


async def _run(settings: Settings, config: EngineConfig) -> int:
    return await run(settings, engine_config=config)  # the product's own run: signals, shutdown and all


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"bench.botproc: {exc}", file=sys.stderr)
        return 2
    configure_logging(
        settings.log_level,
        settings.secrets(),
    )
    config = engine_config(settings, scale=args.scale, strategy=args.strategy)
    profile = os.environ.get(PROFILE_VARIABLE)
    if not profile:
        return asyncio.run(_run(settings, config))
    import cProfile

    # Where the bot's CPU goes, for whoever wants to bring the per-job figure down (not used for results).
    profiler = cProfile.Profile()
    try:
        return profiler.runcall(asyncio.run, _run(settings, config))
    finally:
        profiler.dump_stats(profile)


if __name__ == "__main__":
    sys.exit(main())
