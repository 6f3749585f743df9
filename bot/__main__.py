"""`python -m bot` (or `luma-bot`): settings → logging → database → bot.

Subcommands: `run` (the default) starts the bot; `migrate` applies database migrations and exits (it needs only
the database settings); `check` validates the settings, the database and the provider token and changes
nothing. Every failure to start is one line on stderr and an exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from bot.logging_setup import configure_logging
from bot.settings import DatabaseSettings, Settings, SettingsError, load_settings

# Exit codes: 2 = bad settings (fix .env), 1 = something outside refused (database, Discord, provider).
EXIT_SETTINGS = 2
EXIT_FAILED = 1


def bot_version() -> str:
    try:
        return version("luma-bot")
    except PackageNotFoundError:  # running from a checkout that was never pip-installed
        return "unknown (not installed)"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="luma-bot", description="Discord bot for Luma Dream Machine videos."
    )
    parser.add_argument("command", nargs="?", default="run", choices=["run", "migrate", "check"])
    parser.add_argument("--version", action="version", version=f"luma-bot {bot_version()}")
    return parser.parse_args(argv)


async def _migrate(settings: DatabaseSettings) -> int:
    from bot.store.db import describe, migrate

    await migrate(settings.database_url)
    print(f"Database is up to date ({describe(settings.database_url)}).")
    return 0


async def _check(settings: Settings) -> int:
    """Each part on its own line, "ok" or what is wrong; nothing is created or migrated."""
    from bot.checks import check_database, check_provider_tokens

    print("settings: ok")
    failures = 0
    results = [("database", *await check_database(settings.database_url))]
    results += await check_provider_tokens(settings)
    for name, ok, detail in results:
        failures += not ok
        print(f"{name}: {'ok' if ok else 'PROBLEM'}: {detail}")
    return EXIT_FAILED if failures else 0


async def _run(settings: Settings) -> int:
    from bot.app import run

    return await run(settings)


def _startup_error(exc: BaseException) -> str | None:
    """One line for a failure we can explain, None for a bug (which keeps its traceback)."""
    import asyncpg

    from bot.store.db import DatabaseUnusable

    if isinstance(exc, DatabaseUnusable):
        return f"database: {exc}"
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return f"database: {exc} (create it first: see the README, 'Creating the PostgreSQL database')"
    if isinstance(exc, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError):
        return f"database refused the role: {exc} (check the user and password in DATABASE_URL)"
    if isinstance(exc, asyncpg.PostgresError):
        return f"database error: {exc}"
    if isinstance(exc, TimeoutError):
        return "cannot start: the database did not answer in time"
    if isinstance(exc, OSError):  # e.g. the database server is unreachable, the HTTP port is taken
        return f"cannot start: {exc}"
    if type(exc).__module__.startswith(("tortoise", "sqlite3", "aiosqlite")):
        return f"database error: {exc}"
    return None


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    # migrate needs no token: an admin can prepare the database before the bot exists in Discord.
    try:
        settings: DatabaseSettings = load_settings(
            DatabaseSettings if args.command == "migrate" else Settings
        )
    except SettingsError as exc:
        print(f"luma-bot: {exc}", file=sys.stderr)
        return EXIT_SETTINGS
    secrets: list[str] = []
    provider = None
    if isinstance(settings, Settings):
        secrets = settings.secrets()
        provider = ",".join(c.name for c in settings.provider_configs())
    # The database password never reaches the log either (the URL is described without it, and just in case).
    from urllib.parse import urlsplit

    password = urlsplit(settings.database_url).password if "://" in settings.database_url else None
    configure_logging(
        settings.log_level, [*secrets, password or ""], fmt=settings.log_format, provider=provider
    )
    commands: dict[str, Callable[[Any], Coroutine[Any, Any, int]]] = {
        "run": _run,
        "migrate": _migrate,
        "check": _check,
    }
    try:
        return asyncio.run(commands[args.command](settings))
    except KeyboardInterrupt:
        return 0
    except Exception as exc:
        line = _startup_error(exc)
        if line is None:
            raise
        for secret in (*secrets, password):
            if secret:
                line = line.replace(secret, "***")
        print(f"luma-bot: {line}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
