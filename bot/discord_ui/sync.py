"""Syncing slash commands only when they changed.

Discord allows 200 command creations a day per scope, and a sync at every restart is wasted requests and a
window where commands flicker. The hash of the payloads last synced to each scope is kept in a small JSON file
beside the SQLite database (or in ./data for PostgreSQL); a missing or unreadable file just means "sync".
Delete the file to force a sync.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import discord
from discord import app_commands

log = logging.getLogger(__name__)

STATE_FILE = "command-sync.json"


def state_dir_for(database_url: str) -> Path:
    if database_url.startswith("sqlite://") and database_url != "sqlite://:memory:":
        path = Path(database_url.removeprefix("sqlite://").split("?", 1)[0])
        return path.parent if str(path.parent) not in ("", ".") else Path(".")
    return Path("data")


def commands_hash(tree: app_commands.CommandTree, guild: discord.abc.Snowflake | None) -> str:
    payload = [command.to_dict(tree) for command in tree._get_all_commands(guild=guild)]
    payload.sort(key=lambda c: (c.get("type", 1), c["name"]))
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


class SyncState:
    def __init__(self, directory: Path) -> None:
        self.path = directory / STATE_FILE

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, key: str) -> str | None:
        return self._read().get(key)

    def put(self, key: str, value: str) -> None:
        data = self._read()
        data[key] = value
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
            tmp.replace(self.path)
        except OSError as exc:
            log.warning(
                "could not remember the synced commands in %s (%s); the next start syncs again",
                self.path,
                exc,
            )


async def sync_commands(
    tree: app_commands.CommandTree, application_id: int, guild_ids: list[int], state: SyncState
) -> list[str]:
    """Sync to each of `guild_ids` (global commands copied there), or globally when it is empty; skip every
    scope whose commands are unchanged since its last sync. Returns the scopes synced."""
    scopes: list[discord.Object | None] = [discord.Object(g) for g in guild_ids] or [None]
    synced: list[str] = []
    for guild in scopes:
        if guild is not None:
            tree.copy_global_to(guild=guild)
        name = f"guild {guild.id}" if guild is not None else "global"
        key = f"{application_id}:{guild.id if guild is not None else 'global'}"
        digest = commands_hash(tree, guild)
        if state.get(key) == digest:
            log.info("commands unchanged (%s): not syncing", name)
            continue
        commands = await tree.sync(guild=guild)
        state.put(key, digest)
        synced.append(name)
        log.info("synced %d commands (%s)", len(commands), name)
    return synced
