"""Fixtures for end-to-end tests: the two fakes, and the bot running against them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import discord.gateway
import discord.http
import pytest

from tests.e2e.harness import PROVIDER_TOKEN, BotHarness
from tests.fakes.discord import FakeDiscord
from tests.fakes.luma_provider import FakeLumaProvider


@pytest.fixture(autouse=True)
def restore_discord_py() -> Any:
    """The bot points discord.py at the fake; put the real URLs back for whatever runs next."""
    base, gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    yield
    discord.http.Route.BASE = base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = gateway


@pytest.fixture
def discord_options() -> dict[str, Any]:
    """Override in a test module (or with indirect parametrisation) to configure the fake Discord."""
    return {}


@pytest.fixture
def provider_options() -> dict[str, Any]:
    return {}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
async def fake(discord_options: dict[str, Any]) -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(**discord_options) as fake:
        yield fake


@pytest.fixture
async def provider(provider_options: dict[str, Any]) -> AsyncIterator[FakeLumaProvider]:
    async with FakeLumaProvider(token=PROVIDER_TOKEN, **provider_options) as provider:
        yield provider


@pytest.fixture
async def harness(
    fake: FakeDiscord, provider: FakeLumaProvider, tmp_path: Any, settings_overrides: dict[str, Any]
) -> AsyncIterator[BotHarness]:
    """The harness, not yet started (for tests of start-up itself)."""
    harness = BotHarness(fake, provider, tmp_path, **settings_overrides)
    yield harness
    await harness.stop()
    assert fake.unknown_routes == []
    assert fake.internal_errors == []


@pytest.fixture
async def bot(harness: BotHarness) -> AsyncIterator[BotHarness]:
    """The bot, connected and with its commands synced."""
    await harness.start()
    yield harness
    await harness.stop()
    current = asyncio.current_task()
    leftovers = [
        t for t in asyncio.all_tasks() if t is not current and not t.done() and "luma" in t.get_name()
    ]
    assert not leftovers, f"leaked tasks: {leftovers}"
