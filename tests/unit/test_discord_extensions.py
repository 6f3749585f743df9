"""Smoke test of the Discord layer without a connection: every extension loads, command names do not clash,
descriptions fit Discord's limits, and command sync is skipped when nothing changed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands

from bot.app import EXTENSIONS, LumaBot, ShardedLumaBot, bot_intents, make_bot
from bot.discord_ui.sync import SyncState, commands_hash, state_dir_for, sync_commands
from bot.jobs.engine import JobEngine
from bot.jobs.providers import ProviderPool
from bot.settings import Settings
from bot.store.models import QuotaPeriod
from bot.store.quotas import QuotaBook, QuotaDefaults


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, discord_token="t", luma_api_token="p", **values)  # type: ignore[call-arg]


@pytest.fixture
async def bot(tmp_path) -> AsyncIterator[LumaBot]:
    quotas = QuotaBook(QuotaDefaults(3, QuotaPeriod.DAY))
    async with aiohttp.ClientSession() as session:  # never used: nothing is sent
        engine = JobEngine(ProviderPool.from_configs(settings().provider_configs(), session), quotas)
        bot = make_bot(settings(), engine=engine, quotas=quotas, sync_state=SyncState(tmp_path))
        for extension in EXTENSIONS:
            await bot.load_extension(extension)
        yield bot
        await bot.close()


async def test_every_extension_loads_without_clashing_command_names(bot: LumaBot) -> None:
    commands = bot.tree.get_commands()
    names = [(c.name, type(c).__name__) for c in commands]
    assert len(names) == len(set(names))
    assert {c.name for c in commands} == {"luma", "luma-admin", "Extend video"}


def _walk(command: Any) -> list[Any]:
    found = [command]
    for child in getattr(command, "commands", []):
        found.extend(_walk(child))
    return found


async def test_every_command_works_in_servers_only_and_fits_discords_limits(bot: LumaBot) -> None:
    for command in bot.tree.get_commands():
        payload = command.to_dict(bot.tree)
        assert payload["contexts"] == [0], command.name  # guild only
        for item in _walk(command):
            if isinstance(item, app_commands.ContextMenu):
                continue
            assert 1 <= len(item.description) <= 100, item.qualified_name
            for parameter in getattr(item, "parameters", []):
                assert 1 <= len(parameter.description) <= 100, (item.qualified_name, parameter.name)


async def test_admin_commands_default_to_manage_server(bot: LumaBot) -> None:
    admin = bot.tree.get_command("luma-admin")
    assert admin.default_permissions == discord.Permissions(manage_guild=True)
    assert bot.tree.get_command("luma").default_permissions is None


async def test_the_bot_never_pings_unless_told_to(bot: LumaBot) -> None:
    mentions = bot.allowed_mentions
    assert mentions is not None and mentions.to_dict() == {"parse": []}
    assert mentions.replied_user is False


def test_intents_are_minimal_and_message_content_only_on_request() -> None:
    plain = bot_intents(settings())
    assert plain.guilds and plain.guild_messages and not plain.message_content and not plain.members
    assert bot_intents(settings(discord_message_content=True)).message_content


async def test_sharded_settings_make_a_sharded_bot() -> None:
    quotas = QuotaBook(QuotaDefaults(3, QuotaPeriod.DAY))
    chosen = settings(shard_count=4, shard_ids="2,3")
    async with aiohttp.ClientSession() as session:
        engine = JobEngine(ProviderPool.from_configs(chosen.provider_configs(), session), quotas)
        bot = make_bot(chosen, engine=engine, quotas=quotas)
    assert isinstance(bot, ShardedLumaBot) and (bot.shard_count, bot.shard_ids) == (4, [2, 3])


def test_the_sync_state_lives_beside_the_sqlite_database() -> None:
    assert str(state_dir_for("sqlite:///srv/bot/data/luma.sqlite3")) == "/srv/bot/data"
    assert str(state_dir_for("sqlite://data/luma-bot.sqlite3")) == "data"
    assert str(state_dir_for("postgres://u@h/db")) == "data"


class _RecordingTree:
    """Stands in for discord.py's HTTP side of CommandTree.sync: records which scopes were synced."""

    def __init__(self, tree: app_commands.CommandTree) -> None:
        self.tree = tree
        self.synced: list[int | None] = []

    async def sync(self, *, guild: discord.abc.Snowflake | None = None) -> list[Any]:
        self.synced.append(guild.id if guild else None)
        return []


async def test_commands_are_synced_only_when_they_changed(bot: LumaBot, tmp_path, monkeypatch) -> None:
    recorder = _RecordingTree(bot.tree)
    monkeypatch.setattr(bot.tree, "sync", recorder.sync)
    state = SyncState(tmp_path)
    assert await sync_commands(bot.tree, 1, [10, 20], state) == ["guild 10", "guild 20"]
    assert await sync_commands(bot.tree, 1, [10, 20], state) == []
    assert await sync_commands(bot.tree, 2, [10], state) == ["guild 10"]  # another application

    @app_commands.command(name="ping", description="A new command")
    async def ping(interaction: discord.Interaction) -> None:
        pass

    bot.tree.add_command(ping)
    assert await sync_commands(bot.tree, 1, [10, 20], state) == ["guild 10", "guild 20"]
    assert recorder.synced == [10, 20, 10, 10, 20]


async def test_command_hash_is_stable(bot: LumaBot) -> None:
    assert commands_hash(bot.tree, None) == commands_hash(bot.tree, None)


def test_an_unreadable_sync_state_means_sync(tmp_path) -> None:
    (tmp_path / "command-sync.json").write_text("{not json")
    state = SyncState(tmp_path)
    assert state.get("x") is None
    state.put("x", "y")
    assert SyncState(tmp_path).get("x") == "y"
