"""What /healthz reports: whether the Discord gateway session is live right now, whether the database takes a
write, and what the last request to each provider said.

discord.py's `is_ready()` stays set across reconnects, so the gateway is followed through its events instead:
a connection is up from READY or RESUMED until its next disconnect.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

# A write that takes longer than this means the database is not usable (locked, stalled disk, dead server).
DATABASE_PROBE_TIMEOUT = 3.0


class GatewayWatch:
    """Follows the bot's gateway connections (one per shard) through discord.py's events."""

    def __init__(self) -> None:
        self._up: dict[int | None, bool] = {}
        self._changed = time.time()

    def attach(self, bot: Any, *, sharded: bool) -> None:
        # A sharded client also sends the plain events for every shard; counting both would let one shard's
        # RESUMED hide another's disconnect, so each kind of client is followed through its own events.
        if sharded:
            bot.add_listener(self._shard_up, "on_shard_ready")
            bot.add_listener(self._shard_up, "on_shard_resumed")
            bot.add_listener(self._shard_down, "on_shard_disconnect")
        else:
            bot.add_listener(self._up_event, "on_ready")
            bot.add_listener(self._up_event, "on_resumed")
            bot.add_listener(self._down_event, "on_disconnect")

    # discord.py wants coroutine listeners.
    async def _up_event(self) -> None:
        self._set(None, True)

    async def _down_event(self) -> None:
        self._set(None, False)

    async def _shard_up(self, shard_id: int) -> None:
        self._set(shard_id, True)

    async def _shard_down(self, shard_id: int) -> None:
        self._set(shard_id, False)

    def _set(self, key: int | None, up: bool) -> None:
        if self._up.get(key) != up:
            self._changed = time.time()
        self._up[key] = up

    def status(self) -> dict[str, Any]:
        ok = bool(self._up) and all(self._up.values())
        if not self._up:
            detail = "not connected yet"
        elif ok:
            detail = "connected"
        else:
            down = sorted(str(k) for k, v in self._up.items() if not v and k is not None)
            detail = "disconnected" + (f" (shards {', '.join(down)})" if down else "")
        return {"ok": ok, "detail": detail, "since": round(self._changed, 3)}


async def _write_probe() -> None:
    from tortoise import connections

    for conn in connections.all():
        if conn.capabilities.dialect == "sqlite":
            # Rewriting the header's user_version (unused by the bot and by Tortoise) is a real write: it
            # fails while the file is locked by another writer, read-only or out of space.
            _, rows = await conn.execute_query("PRAGMA user_version")
            version = int(rows[0][0]) if rows else 0
            await conn.execute_script(f"PRAGMA user_version = {version}")
        else:
            # Fails in a read-only transaction or on a standby, and waits on a table someone has locked.
            from tortoise.transactions import in_transaction

            async with in_transaction(conn.connection_name) as tx:
                await tx.execute_query("UPDATE jobs SET id = id WHERE false")
                await tx.execute_query("SELECT txid_current()")


async def database_status(limit: float = DATABASE_PROBE_TIMEOUT) -> dict[str, Any]:
    try:
        async with asyncio.timeout(limit):
            await _write_probe()
    except TimeoutError:
        return {"ok": False, "detail": f"a write took over {limit:g}s"}
    except Exception as exc:
        return {"ok": False, "detail": f"cannot write: {type(exc).__name__}: {exc}"[:300]}
    return {"ok": True, "detail": "writable"}


async def health_report(gateway: GatewayWatch, providers: list[dict[str, Any]]) -> dict[str, Any]:
    """The /healthz body. `ok` (and so the status code) follows Discord and the database only: a provider in
    trouble holds the queue (or its jobs go to the next provider), and restarting the bot would not help it.
    `providers` is the engine's report (JobEngine.provider_report): health, keys, slots, last error, rates."""
    discord_part = gateway.status()
    database_part = await database_status()
    return {
        "ok": discord_part["ok"] and database_part["ok"],
        "discord": discord_part,
        "database": database_part,
        "providers": {report["provider"]: report for report in providers},
    }
