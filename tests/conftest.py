"""Shared fixtures: a migrated database (SQLite always; PostgreSQL when LUMA_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from bot.settings import Settings
from bot.store.db import close_database, open_database

# The suite must never read the developer's own settings: neither the checkout's .env (found through
# LUMA_BOT_HOME, which defaults to the checkout) nor variables exported in their shell. Every bot the tests
# start, in this process or as a child process, inherits this environment.
ISOLATED_HOME = tempfile.mkdtemp(prefix="luma-bot-test-home-")
os.environ["LUMA_BOT_HOME"] = ISOLATED_HOME
for _name in [*Settings.model_fields, "callback_listen"]:
    os.environ.pop(_name.upper(), None)

# e.g. postgres://postgres@127.0.0.1:5432/test — each test gets a fresh database created next to this one.
POSTGRES_URL = os.environ.get("LUMA_TEST_POSTGRES_URL", "")
POSTGRES_SKIP_REASON = "PostgreSQL tests need LUMA_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test)"


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


class PostgresDatabase:
    """A throwaway database on the server of LUMA_TEST_POSTGRES_URL, dropped afterwards."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url.replace("postgres://", "postgresql://", 1)
        self.name = f"lumabot_test_{uuid.uuid4().hex[:12]}"
        self.url = _with_database(admin_url, self.name)

    async def create(self) -> str:
        conn = await asyncpg.connect(self.admin_url)
        try:
            await conn.execute(f'CREATE DATABASE "{self.name}"')
        finally:
            await conn.close()
        return self.url

    async def drop(self) -> None:
        conn = await asyncpg.connect(self.admin_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        finally:
            await conn.close()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite://{tmp_path}/luma-bot.sqlite3"


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    if not POSTGRES_URL:
        pytest.skip(POSTGRES_SKIP_REASON)
    db = PostgresDatabase(POSTGRES_URL)
    yield await db.create()
    await db.drop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request, tmp_path) -> AsyncIterator[str]:
    """Runs the test once per database the bot supports."""
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path}/luma-bot.sqlite3"
        return
    if not POSTGRES_URL:
        pytest.skip(POSTGRES_SKIP_REASON)
    pg = PostgresDatabase(POSTGRES_URL)
    yield await pg.create()
    await pg.drop()


@pytest.fixture
async def db(database_url) -> AsyncIterator[str]:
    """An open, migrated database (parametrised over SQLite and PostgreSQL)."""
    await open_database(database_url)
    yield database_url
    await close_database()


@pytest.fixture
async def sqlite_db(sqlite_url) -> AsyncIterator[str]:
    """An open, migrated SQLite database, for tests whose subject is not the database."""
    await open_database(sqlite_url)
    yield sqlite_url
    await close_database()
