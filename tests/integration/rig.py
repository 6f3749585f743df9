"""The engine rig the integration tests share: the real engine on SQLite against the fake provider over
sockets, with a delivery port that records what it is told."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest

from bot.jobs import EngineConfig, JobEngine, JobEvent, JobRequest, PollPolicy
from bot.jobs.policy import Backoff
from bot.jobs.ports import Delivery, Destination
from bot.luma.http import RetryPolicy
from bot.luma.providers import make_client
from bot.store.models import Job, QuotaPeriod
from bot.store.quotas import QuotaBook, QuotaDefaults
from tests.fakes.luma_provider import FakeLumaProvider

GUILD, CHANNEL, USER = 10, 20, 30
TOKEN = "engine-test-token"
FAST_POLL = PollPolicy(first_poll=0.02, min_interval=0.02, max_interval=0.1, age_factor=0.1, coalesce=0.05)


class RecordingPort:
    """Implements the engine's delivery port and remembers what it was told."""

    def __init__(self) -> None:
        self.events: list[tuple[int, JobEvent, int, str | None]] = []
        self.delivered: list[Job] = []
        self.fail_next = 0
        self._changed = asyncio.Condition()

    async def job_updated(self, job, event, *, position=0, detail=None) -> None:
        self.events.append((job.id, event, position, detail))
        async with self._changed:
            self._changed.notify_all()

    async def deliver(self, job) -> Delivery:
        if self.fail_next:
            self.fail_next -= 1
            async with self._changed:
                self._changed.notify_all()
            raise RuntimeError("Discord is down")
        self.delivered.append(job)
        async with self._changed:
            self._changed.notify_all()
        return Delivery(Destination.THREAD, 800_000 + job.id, 900_000 + job.id)

    async def wait_for(self, predicate: Callable[[], bool], within: float = 5.0) -> None:
        async with asyncio.timeout(within):
            async with self._changed:
                await self._changed.wait_for(predicate)


class Rig:
    def __init__(self, fake: FakeLumaProvider, engine: JobEngine, port: RecordingPort, quotas: QuotaBook):
        self.fake, self.engine, self.port, self.quotas = fake, engine, port, quotas

    def request(self, prompt: str = "a red fox in snow", **kwargs) -> JobRequest:
        kwargs.setdefault("user_id", USER)
        return JobRequest(guild_id=GUILD, channel_id=CHANNEL, prompt=prompt, **kwargs)

    async def delivered(self, job: Job, within: float = 5.0) -> Job:
        # The engine announces DELIVERED once the delivery is recorded and the unit settled.
        await self.port.wait_for(
            lambda: any(e[0] == job.id and e[1] == JobEvent.DELIVERED for e in self.port.events), within)
        fresh = await Job.get(id=job.id)
        assert fresh.delivered_at is not None
        return fresh


@pytest.fixture
def rig_factory(sqlite_db) -> Callable:
    made: list[tuple[FakeLumaProvider, JobEngine, aiohttp.ClientSession]] = []

    async def make(*, limit: int = 10, provider: str = "acedatacloud", fake_kwargs: dict | None = None,
                   **config) -> Rig:
        fake = FakeLumaProvider(token=TOKEN, **(fake_kwargs or {}))
        await fake.start()
        session = aiohttp.ClientSession()
        client = make_client(provider, session, token=TOKEN, base_url=fake.url_for(provider),
                             retry=RetryPolicy(attempts=3, base=0.01, cap=0.05, jitter=0.0))
        config.setdefault("poll", FAST_POLL)
        config.setdefault("min_poll_interval", 0.01)
        config.setdefault("incident_backoff", Backoff(base=0.05, cap=0.2))
        config.setdefault("delivery_backoff", Backoff(base=0.05, cap=0.2))
        quotas = QuotaBook(QuotaDefaults(limit=limit, period=QuotaPeriod.DAY))
        port = RecordingPort()
        engine = JobEngine(client, quotas, EngineConfig(**config), port)
        await engine.start()
        made.append((fake, engine, session))
        return Rig(fake, engine, port, quotas)

    yield make
    # teardown runs in the test's loop via the async finalizer below


@pytest.fixture
async def rig(rig_factory) -> AsyncIterator[Callable]:
    rigs: list[Rig] = []

    async def make(**kwargs) -> Rig:
        r = await rig_factory(**kwargs)
        rigs.append(r)
        return r

    yield make
    for r in rigs:
        await r.engine.stop(grace=0.5)
        await r.engine.client._http._session.close() if hasattr(r.engine.client, "_http") else None
        await r.fake.stop()


