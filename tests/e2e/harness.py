"""Runs the real bot (bot.app.App) in-process against the fake Discord and the fake Luma provider.

Both fakes listen on loopback; the bot's settings point at them and nothing in the bot is patched. Tests
drive it only as members would (slash commands, buttons, modals, messages) and wait on events, never on
fixed sleeps. Timings are shortened through the same knobs production uses: an EngineConfig with short
poll intervals and the provider client's minimum poll gap.
"""

from __future__ import annotations

import asyncio
import contextvars
import re
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from bot.app import App
from bot.discord_ui.permissions import BOT_PERMISSIONS
from bot.discord_ui.sync import SyncState
from bot.jobs.engine import EngineConfig
from bot.jobs.policy import Backoff, PollPolicy
from bot.settings import Settings
from bot.store import jobs as store
from bot.store.models import Job
from bot.store.quotas import QuotaStatus
from tests.fakes.discord import (
    Channel,
    FakeDiscord,
    Guild,
    InteractionRecord,
    Member,
    Message,
    Permission,
    Role,
)
from tests.fakes.luma_provider import FakeLumaProvider

T = TypeVar("T")
PROVIDER_TOKEN = "provider-test-token"
WAIT = 10.0

FAST_ENGINE = EngineConfig(
    max_concurrent=5,
    deadline=timedelta(seconds=30),
    poll=PollPolicy(first_poll=0.05, min_interval=0.05, max_interval=0.2, age_factor=0.1, coalesce=0.02),
    incident_backoff=Backoff(base=0.2, cap=1.0, jitter=0.0),
    delivery_backoff=Backoff(base=0.1, cap=0.5, jitter=0.0),
    # The real 1 request/second guard would make every test wait a second per poll.
    min_poll_interval=0.02,
)

_FOLLOW_LINK = re.compile(r"<#(\d+)>")


@dataclass
class Run:
    """One request as a member saw it: the interaction, the public status message, the thread, the job."""

    record: InteractionRecord | None
    status: Message | None
    thread_id: int | None
    job_id: int | None
    answer: Message | None = None


@dataclass
class Scene:
    guild: Guild
    channel: Channel
    alice: Member
    bob: Member
    admin: Member
    admin_role: Role
    extra: dict[str, Any] = field(default_factory=dict)


class BotHarness:
    def __init__(
        self, fake: FakeDiscord, provider: FakeLumaProvider, tmp_path: Path, **overrides: Any
    ) -> None:
        self.fake = fake
        self.provider = provider
        self.tmp_path = tmp_path
        self.overrides = overrides
        self.engine_config = FAST_ENGINE
        self.app: App | None = None
        self.task: asyncio.Task[int] | None = None
        self.context = contextvars.copy_context()
        guild = fake.add_guild("Luma Lab", bot_permissions=BOT_PERMISSIONS.value)
        channel = fake.add_channel(guild, name="videos")
        admin_role = fake.add_role(guild, "Mods", permissions=int(Permission.MANAGE_GUILD))
        self.scene = Scene(
            guild=guild,
            channel=channel,
            alice=fake.add_member(guild, "alice"),
            bob=fake.add_member(guild, "bob"),
            admin=fake.add_member(guild, "mod", roles=[admin_role]),
            admin_role=admin_role,
        )

    # -- lifecycle ----------------------------------------------------------------------------------------

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "discord_token": self.fake.token,
            "discord_api_base_url": self.fake.api_base,
            "discord_gateway_url": self.fake.gateway_url,
            "discord_guild_ids": [self.scene.guild.id],
            "luma_provider": "acedatacloud",
            "luma_api_base_url": self.provider.base_url,
            "luma_api_token": PROVIDER_TOKEN,
            "database_url": f"sqlite://{self.tmp_path}/luma-bot.sqlite3",
            "quota_default_limit": 3,
            "quota_default_period": "day",
            # A free port for /healthz and /metrics: tests (and other checkouts) run bots side by side.
            "http_listen": "127.0.0.1:0",
        }
        values.update(self.overrides)
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    def make_app(self, **overrides: Any) -> App:
        return App(
            self.settings(**overrides),
            engine_config=self.engine_config,
            # The command-sync record goes to the test's directory whatever the database.
            bot_options={"guild_ready_timeout": 0.05, "sync_state": SyncState(self.tmp_path)},
        )

    async def start(self, **overrides: Any) -> App:
        self.app = app = self.make_app(**overrides)
        # The database connection lives in the bot task's context (Tortoise keeps it in a contextvar); the
        # test reads the database through the same context (see `db`).
        self.context = contextvars.copy_context()
        self.task = task = asyncio.create_task(app.run(), name="luma-bot", context=self.context)
        await _race(task, app.built.wait())
        assert app.bot is not None
        await _race(task, self.fake.wait_until_ready(timeout=WAIT))
        await _race(task, asyncio.wait_for(app.bot.wait_until_ready(), WAIT))
        return app

    async def stop(self) -> int | None:
        if self.app is None or self.task is None:
            return None
        await self.app.stop()
        code = await asyncio.wait_for(self.task, WAIT)
        self.app = self.task = None
        return code

    async def restart(self) -> App:
        await self.stop()
        return await self.start()

    @property
    def bot(self) -> Any:
        assert self.app is not None and self.app.bot is not None
        return self.app.bot

    # -- driving ------------------------------------------------------------------------------------------

    async def slash(
        self,
        user: Member,
        subcommand: str,
        options: dict[str, Any] | None = None,
        *,
        channel: Channel | int | None = None,
        name: str = "luma",
        attachments: Any = (),
    ) -> InteractionRecord:
        return await self.fake.invoke_slash(
            self.scene.guild,
            channel or self.scene.channel,
            user,
            name,
            subcommand=subcommand,
            options=options or {},
            attachments=attachments,
        )

    async def answer(self, record: InteractionRecord) -> Message:
        """The ephemeral answer of a deferred command, once it is no longer "thinking"."""
        response = await record.wait_response(WAIT)
        assert response["type"] in (4, 5), response
        return await record.wait_original(lambda m: not m.loading, timeout=WAIT)

    async def accepted(self, record: InteractionRecord, channel: Channel | int | None = None) -> Run:
        """After a job-making interaction: the status message the bot posted and the thread it opened."""
        answer = await self.answer(record)
        assert answer.ephemeral, answer
        assert "Follow it here" in answer.content, answer.content
        match = _FOLLOW_LINK.search(answer.content)
        status = await self.status_after(channel or self.scene.channel, record.id)
        thread_id = int(match.group(1)) if match else None
        return Run(record, status, thread_id, job_id_from_footer(status), answer)

    async def status_after(self, channel: Channel | int, after: int) -> Message:
        """The first status message the bot posted in `channel` after the snowflake `after`."""
        cid = channel.id if isinstance(channel, Channel) else int(channel)
        me = self.fake.bot_user.id

        def find() -> Message | None:
            for message in self.fake.messages(cid):
                if message.id <= after or message.author.id != me or message.ephemeral:
                    continue
                if message.embeds and not message.buttons() and not message.content:
                    return message
            return None

        return await self.fake.wait_for(find, WAIT, f"a status message in channel {cid}")

    async def generate(self, user: Member, prompt: str, **options: Any) -> Run:
        attachments = options.pop("attachments", ())
        channel = options.pop("channel", None)
        record = await self.slash(
            user, "generate", {"prompt": prompt, **options}, channel=channel, attachments=attachments
        )
        return await self.accepted(record, channel)

    def result_posts(self, job_id: int) -> list[Message]:
        """Every live result (or failure) post of job `job_id`: exactly-once checks count these."""
        footer = f"Job #{job_id}"
        return [
            m for m in self.fake.world.messages.values()
            if not m.deleted and m.author.id == self.fake.bot_user.id and not m.ephemeral and m.content
            and any((e.get("footer") or {}).get("text") == footer for e in m.embeds)
        ]

    async def result(self, run: Run | int, *, channel: int | None = None) -> Message:
        """The result (or failure) message of a job, posted with the bot token in its thread."""
        job_id = run if isinstance(run, int) else run.job_id
        assert job_id is not None
        where = channel if channel is not None else (run.thread_id if isinstance(run, Run) else None)
        footer = f"Job #{job_id}"

        def find() -> Message | None:
            for message in self.fake.world.messages.values():
                if message.deleted or message.author.id != self.fake.bot_user.id or message.ephemeral:
                    continue
                if where is not None and message.channel_id != where:
                    continue
                if message.content and any(
                    (e.get("footer") or {}).get("text") == footer for e in message.embeds
                ):
                    return message
            return None

        return await self.fake.wait_for(find, WAIT, f"the result of job {job_id}")

    async def db(self, work: Awaitable[T]) -> T:
        """Run a database read in the bot's context, where its connection is."""
        return await asyncio.create_task(_awaited(work), context=self.context)

    async def job(self, job_id: int) -> Job:
        job = await self.db(store.get_job(job_id))
        assert job is not None
        return job

    async def delivered(self, job_id: int) -> Job:
        """Wait until the engine recorded the job as delivered (its unit charged or refunded): the bot edits
        the status message to its final state only then."""
        job = await self.job(job_id)
        if job.status_message_id:
            status = self.fake.world.messages[job.status_message_id]

            def final() -> bool:
                fields = status.embeds[0].get("fields", []) if status.embeds else []
                return any(f["value"].startswith(("✅ Done", "❌ Failed")) for f in fields)

            await self.fake.wait_for(final, WAIT, f"job {job_id}'s status message to show its outcome")
        job = await self.job(job_id)
        assert job.delivered_at is not None, f"job {job_id} is not recorded as delivered"
        return job

    async def quota(self, user: Member) -> QuotaStatus:
        return await self.db(self.bot.quotas.status(self.scene.guild.id, user.id))

    def creates(self) -> list[dict[str, Any]]:
        """Bodies of the create requests the provider received."""
        return [r.json for r in self.provider.request_log if r.kind == "create"]


def job_id_from_footer(message: Message) -> int | None:
    for embed in message.embeds:
        text = (embed.get("footer") or {}).get("text", "")
        match = re.fullmatch(r"Job #(\d+)", text)
        if match:
            return int(match.group(1))
    return None


async def _awaited(work: Awaitable[T]) -> T:
    return await work


async def _race(task: asyncio.Task[Any], waiter: Any) -> Any:
    """Await `waiter` unless the bot's task ends first (then surface its result as a failure)."""
    wait_task = asyncio.ensure_future(waiter)
    done, _ = await asyncio.wait({task, wait_task}, return_when=asyncio.FIRST_COMPLETED)
    if wait_task in done:
        return wait_task.result()
    wait_task.cancel()
    await asyncio.gather(wait_task, return_exceptions=True)
    raise AssertionError(f"the bot stopped before it was ready (exit code {task.result()})")
