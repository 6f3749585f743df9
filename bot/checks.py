"""`python -m bot check`: look at the database and the provider token without changing anything (no
migration, no file or directory created), and say in one line per part what is wrong."""

from __future__ import annotations

import os
import sqlite3

import aiohttp

from bot.settings import Settings
from bot.store.db import describe, sqlite_path


async def check_database(url: str) -> tuple[bool, str]:
    what = describe(url)
    path = sqlite_path(url)
    if path is not None:
        return _check_sqlite(path, what)
    if url.startswith("sqlite://"):
        return True, what
    return await _check_postgres(url, what)


def _check_sqlite(path: os.PathLike[str] | str, what: str) -> tuple[bool, str]:
    from pathlib import Path

    path = Path(path)
    if not path.exists():
        existing = path.parent
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not os.access(existing, os.W_OK | os.X_OK):
            return False, f"{what} does not exist and cannot be created: {existing} is not writable"
        return True, f"{what} does not exist yet; the bot creates it at its first start"
    if not os.access(path, os.R_OK | os.W_OK):
        return False, f"{what} is read-only for this user"
    if not os.access(path.parent, os.W_OK | os.X_OK):
        return False, f"the directory of {what} is read-only for this user (SQLite writes its journal there)"
    try:
        # mode=ro: opening must not create or change anything, not even a journal.
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return False, f"{what} cannot be read: {exc}"
    if "jobs" not in tables:
        return True, f"{what} opens; its tables are created at the bot's first start"
    return True, f"{what} opens and is writable"


async def _check_postgres(url: str, what: str) -> tuple[bool, str]:
    import asyncpg

    try:
        conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1), timeout=10)
    except asyncpg.InvalidCatalogNameError as exc:
        return False, f"{what}: {exc} (create it: see the README)"
    except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError) as exc:
        return False, f"{what}: the server refused the role: {exc}"
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        return False, f"{what}: cannot connect: {exc or type(exc).__name__}"
    try:
        read_only = await conn.fetchval(
            "SELECT current_setting('transaction_read_only') = 'on' OR pg_is_in_recovery()"
        )
        can_create = await conn.fetchval("SELECT has_schema_privilege(current_user, 'public', 'CREATE')")
    finally:
        await conn.close()
    if read_only:
        return False, f"{what} is read-only (a standby, or default_transaction_read_only is on)"
    if not can_create:
        return False, f"{what}: the role may not create tables in schema public (GRANT it, see the README)"
    return True, f"{what} connects and is writable"


async def check_provider_tokens(settings: Settings) -> list[tuple[str, bool, str]]:
    """Each configured provider key, asked with one request that costs nothing: (name, ok, what it said)."""
    from bot.jobs.providers import mask
    from bot.luma.errors import AuthenticationFailed, LumaError
    from bot.luma.http import RetryPolicy
    from bot.luma.providers import make_client

    results = []
    single = not settings.luma_providers
    async with aiohttp.ClientSession() as session:
        for config in settings.provider_configs():
            setting = (
                "LUMA_API_TOKEN" if single else f"PROVIDER_{config.name.upper().replace('-', '_')}_TOKENS"
            )
            for index, token in enumerate(config.tokens):
                # Several keys are told apart by their last 4 characters, as /luma-admin providers shows them.
                name = f"provider token ({config.name})"
                if len(config.tokens) > 1:
                    name = f"provider token ({config.name}, key {index + 1} {mask(token)})"
                client = make_client(
                    config.name,
                    session,
                    token=token,
                    base_url=config.base_url,
                    retry=RetryPolicy(attempts=2, base=0.5, cap=1.0),
                    timeout=15,
                )
                try:
                    await client.verify_token()
                except AuthenticationFailed as exc:
                    results.append(
                        (
                            name,
                            False,
                            f"{setting} was rejected ({exc}); copy it again from the provider's dashboard",
                        )
                    )
                except (TimeoutError, LumaError) as exc:
                    results.append((name, False, f"could not ask the provider: {exc}"))
                else:
                    results.append((name, True, "accepted"))
    return results
