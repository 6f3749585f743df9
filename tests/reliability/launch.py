"""`python -m tests.reliability.launch`: the real bot process (`bot.app.run`, signals and all), with the
engine's timings shortened the way the end-to-end tests shorten them, so kill tests finish in seconds.

LUMA_TEST_LEASE_SECONDS (default 20) sets the submit and delivery leases: how long a dead process's claims
hold before another process may take its jobs over. LUMA_TEST_WORKDIR, if set, is the process's working
directory (where it reads .env and, on PostgreSQL, keeps ./data), so tests leave nothing in the repository."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import timedelta

from bot.app import run
from bot.jobs.engine import engine_config_from_settings
from bot.logging_setup import configure_logging
from bot.settings import SettingsError, load_settings
from tests.e2e.harness import FAST_ENGINE


def main() -> int:
    workdir = os.environ.get("LUMA_TEST_WORKDIR")
    if workdir:
        os.chdir(workdir)  # modules still load from the repository: `-m` put its absolute path on sys.path
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(
        "INFO", settings.secrets(), fmt=settings.log_format, provider=settings.luma_provider,
    )
    # Everything from the settings, as in production, but the clocks of the end-to-end tests.
    lease = timedelta(seconds=float(os.environ.get("LUMA_TEST_LEASE_SECONDS", "20")))
    config = engine_config_from_settings(
        settings,
        poll=FAST_ENGINE.poll,
        incident_backoff=FAST_ENGINE.incident_backoff,
        delivery_backoff=FAST_ENGINE.delivery_backoff,
        min_poll_interval=FAST_ENGINE.min_poll_interval,
        submit_lease=lease,
        delivery_lease=lease,
    )
    return asyncio.run(run(settings, engine_config=config, bot_options={"guild_ready_timeout": 0.05}))


if __name__ == "__main__":
    sys.exit(main())
