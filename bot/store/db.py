"""Database connection and schema migrations (Tortoise's built-in migration framework)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncpg
from tortoise import Tortoise
from tortoise.migrations.api import migrate as tortoise_migrate

log = logging.getLogger(__name__)

MODELS_MODULE = "bot.store.models"
MIGRATIONS_MODULE = "bot.store.migrations"


class DatabaseUnusable(Exception):
    """The database cannot be used as configured; the message is one line for the operator."""


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for PostgreSQL and for an in-memory database)."""
    if not url.startswith("sqlite://") or url == "sqlite://:memory:":
        return None
    return Path(url.removeprefix("sqlite://").split("?", 1)[0]).absolute()


def describe(url: str) -> str:
    """Which database a URL opens, for the log: never the password."""
    path = sqlite_path(url)
    if path is not None:
        return f"SQLite file {path}"
    if url.startswith("sqlite://"):
        return "SQLite in memory"
    parts = urlsplit(url)
    return f"PostgreSQL database {unquote(parts.path.lstrip('/'))!r} on {parts.hostname}:{parts.port or 5432} as {parts.username or '(default role)'}"


def ensure_writable(url: str) -> None:
    """Refuse a SQLite file this process cannot write. SQLite keeps a journal next to the file, so its
    directory must be writable too; on a read-only file or directory aiosqlite hangs forever instead of failing."""
    path = sqlite_path(url)
    if path is None:
        return
    if path.exists():
        if not os.access(path, os.R_OK | os.W_OK):
            raise DatabaseUnusable(f"the SQLite file {path} is read-only for this user; make it writable")
        if not os.access(path.parent, os.W_OK | os.X_OK):
            raise DatabaseUnusable(
                f"the directory {path.parent} of the SQLite file is read-only for this user "
                "(SQLite writes its journal there); make it writable"
            )
        return
    existing = path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise DatabaseUnusable(
            f"cannot create the SQLite file {path}: {existing} is not a writable directory"
        )


def normalise_url(url: str) -> str:
    """Accept the URL spellings admins use (postgresql://) and make SQLite's directory exist."""
    if url.startswith("postgresql://"):
        url = "postgres://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite://") and url != "sqlite://:memory:":
        path = Path(url.removeprefix("sqlite://").split("?", 1)[0])
        if path.parent and str(path.parent) not in ("", "."):
            path.parent.mkdir(parents=True, exist_ok=True)
    return url


def tortoise_config(url: str) -> dict[str, Any]:
    url = normalise_url(url)
    # Tortoise caches compiled queries per connection *name*: naming it after the dialect keeps SQLite's
    # placeholders from leaking into PostgreSQL queries when one process (the tests) opens both.
    name = url.split("://", 1)[0]
    return {
        "connections": {name: url},
        "apps": {
            "models": {
                "models": [MODELS_MODULE],
                "migrations": MIGRATIONS_MODULE,
                "default_connection": name,
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


# Any constant works: it names the lock that serialises migrations across processes sharing one PostgreSQL.
MIGRATION_LOCK_KEY = 0x4C554D41  # "LUMA"


async def migrate(url: str) -> None:
    """Apply every pending migration; safe to run on every start, and from several processes at once."""
    ensure_writable(url)
    url = normalise_url(url)
    if not url.startswith("postgres://"):
        await _migrate(url)
        return
    # Shards start together: without the lock two of them create the same tables and one crashes.
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        try:
            await _migrate(url)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
    finally:
        await conn.close()


async def _migrate(url: str) -> None:
    await tortoise_migrate(config=tortoise_config(url))
    await close_database()


async def open_database(url: str, *, run_migrations: bool = True) -> None:
    ensure_writable(url)
    if run_migrations:
        await migrate(url)
    await Tortoise.init(config=tortoise_config(url))
    log.info("database: %s", describe(url))


async def close_database() -> None:
    """Close connections and forget the model registry, so the next open may use another database
    (the query builders are bound to a dialect at init)."""
    await Tortoise.close_connections()
    await Tortoise._reset_apps()
