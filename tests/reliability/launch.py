"""`python -m tests.reliability.launch`: the real bot process (`bot.app.run`, signals and all), with the
engine's timings shortened the way the end-to-end tests shorten them, so kill tests finish in seconds."""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta

from bot.app import run
from bot.jobs.engine import engine_config_from_settings
from bot.logging_setup import configure_logging
from bot.settings import SettingsError, load_settings
from tests.e2e.harness import FAST_ENGINE


def main() -> int:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging("INFO", [settings.discord_token.get_secret_value(), settings.luma_api_token.get_secret_value()])
    # Everything from the settings, as in production, but the clocks of the end-to-end tests.
    config = engine_config_from_settings(
        settings, poll=FAST_ENGINE.poll, incident_backoff=FAST_ENGINE.incident_backoff,
        delivery_backoff=FAST_ENGINE.delivery_backoff, min_poll_interval=FAST_ENGINE.min_poll_interval,
        submit_lease=timedelta(seconds=20), delivery_lease=timedelta(seconds=20),
    )
    return asyncio.run(run(settings, engine_config=config, bot_options={"guild_ready_timeout": 0.05}))


if __name__ == "__main__":
    sys.exit(main())
