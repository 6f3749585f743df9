"""`python -m bot` (or `luma-bot`): settings → logging → database → bot.

Subcommands: `run` (the default) starts the bot; `migrate` applies database migrations and exits;
`check` validates the settings and that the database opens, without contacting Discord.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from bot.logging_setup import configure_logging
from bot.settings import Settings, SettingsError, load_settings


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="luma-bot", description="Discord bot for Luma Dream Machine videos.")
    parser.add_argument("command", nargs="?", default="run", choices=["run", "migrate", "check"])
    return parser.parse_args(argv)


async def _migrate(settings: Settings) -> int:
    from bot.store.db import migrate

    await migrate(settings.database_url)
    print(f"Database is up to date ({settings.database_url.split('://', 1)[0]}).")
    return 0


async def _check(settings: Settings) -> int:
    from bot.store.db import close_database, open_database

    await open_database(settings.database_url)
    await close_database()
    print("Settings are valid and the database opens.")
    return 0


async def _run(settings: Settings) -> int:
    from bot.app import run

    return await run(settings)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"luma-bot: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.secrets())
    command = {"run": _run, "migrate": _migrate, "check": _check}[args.command]
    try:
        return asyncio.run(command(settings))
    except KeyboardInterrupt:
        return 0
    except OSError as exc:  # e.g. the database server is unreachable
        print(f"luma-bot: cannot start: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        if type(exc).__module__.startswith("tortoise"):
            print(f"luma-bot: database error: {exc}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
