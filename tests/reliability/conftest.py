"""Fixtures for reliability tests: the fakes in this process, the bot in another one that tests may kill."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.store.db import close_database, open_database
from bot.store.models import QuotaPeriod
from bot.store.quotas import QuotaBook, QuotaDefaults, QuotaStatus
from tests.e2e.harness import PROVIDER_TOKEN, WAIT, BotHarness
from tests.fakes.discord import FakeDiscord, Member
from tests.fakes.luma_provider import FakeLumaProvider
from tests.reliability.botproc import BotProcess


class ProcessHarness(BotHarness):
    """BotHarness's world and drivers, with the bot as a separate `python -m` process."""

    def __init__(self, fake: FakeDiscord, provider: FakeLumaProvider, tmp_path: Any, database_url: str,
                 **overrides: Any) -> None:
        super().__init__(fake, provider, tmp_path, **overrides)
        self.database_url = database_url
        self.process = BotProcess(self.env(), tmp_path / "bot.log", args=())
        self._db_open = False

    def env(self, **overrides: Any) -> dict[str, str]:
        values = {
            "DISCORD_TOKEN": self.fake.token,
            "DISCORD_API_BASE_URL": self.fake.api_base,
            "DISCORD_GATEWAY_URL": self.fake.gateway_url,
            "DISCORD_GUILD_IDS": str(self.scene.guild.id),
            "LUMA_PROVIDER": "acedatacloud",
            "LUMA_API_BASE_URL": self.provider.base_url,
            "LUMA_API_TOKEN": PROVIDER_TOKEN,
            "DATABASE_URL": self.database_url,
            "QUOTA_DEFAULT_LIMIT": "5",
            "QUOTA_DEFAULT_PERIOD": "day",
            "LOG_LEVEL": "INFO",
            "HTTP_LISTEN": "127.0.0.1:0",
        }
        values.update({k.upper(): str(v) for k, v in self.overrides.items()})
        values.update({k.upper(): str(v) for k, v in overrides.items()})
        return values

    async def start(self, **overrides: Any) -> None:  # type: ignore[override]
        before = {id(s) for s in self.fake.gateway.live_sessions}
        self.process.env = self.env(**overrides)
        self.process.argv = ("-m", "tests.reliability.launch")
        await self.process.start()

        def fresh_session() -> bool:
            return any(id(s) not in before and s.ready and s.connected for s in self.fake.gateway.live_sessions)

        try:
            await self.fake.wait_for(fresh_session, WAIT * 2, "the bot process to connect")
        except TimeoutError:
            raise AssertionError("the bot did not connect:\n" + self.process.log()[-4000:]) from None
        if not self._db_open:
            await self.db(open_database(self.database_url))  # the bot has migrated it by now
            self._db_open = True

    async def kill(self) -> None:
        await self.process.kill()

    async def stop(self) -> int | None:  # type: ignore[override]
        return await self.process.terminate() if self.process.running else None

    async def close(self) -> None:
        await self.process.kill()
        if self._db_open:
            await self.db(close_database())

    # `db` (inherited) runs database work in `self.context`: Tortoise keeps its connections in a context
    # variable, so opening, reading and closing must all happen in the same one.

    async def quota(self, user: Member) -> QuotaStatus:  # type: ignore[override]
        return await self.db(QuotaBook(QuotaDefaults(5, QuotaPeriod.DAY)).status(self.scene.guild.id, user.id))


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeDiscord, FakeLumaProvider]]:
    async with FakeDiscord() as fake, FakeLumaProvider(token=PROVIDER_TOKEN, manual=True) as provider:
        yield fake, provider


@pytest.fixture
async def proc(fakes, tmp_path) -> AsyncIterator[ProcessHarness]:
    fake, provider = fakes
    harness = ProcessHarness(fake, provider, tmp_path, f"sqlite://{tmp_path}/luma-bot.sqlite3")
    yield harness
    await harness.close()
