"""`--database postgres://...`: every scenario gets a fresh database on that server, dropped afterwards."""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

_created: list[tuple[str, str]] = []  # (admin url, database name)


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def _asyncpg_url(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


async def fresh_database(admin_url: str, label: str) -> str:
    import asyncpg

    name = f"luma_bench_{label.replace('-', '_')}_{os.getpid()}"
    conn = await asyncpg.connect(_asyncpg_url(admin_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    _created.append((admin_url, name))
    return _with_database(admin_url, name)


async def drop_created() -> None:
    import asyncpg

    while _created:
        admin_url, name = _created.pop()
        conn = await asyncpg.connect(_asyncpg_url(admin_url))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
