"""Two bot processes, one PostgreSQL: the sharded deployment (SHARD_COUNT=2, one shard per process) against one
fake Discord that sends each guild's events only to the process of its shard, as Discord does. Every job is
submitted once, delivered once and settled once, and when one process dies the other finishes its jobs."""

from __future__ import annotations

import asyncio
import re
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import discord
import pytest

from bot.discord_ui.permissions import BOT_PERMISSIONS
from bot.luma.prices import CREDIT
from bot.store.db import open_database
from bot.store.models import FailureKind, Job, JobState, LedgerState, QuotaEntry, QuotaUsage
from tests.e2e.harness import PROVIDER_TOKEN, WAIT, Run, job_id_from_footer
from tests.fakes.discord import Channel, FakeDiscord, Guild, Member, Message
from tests.fakes.luma_provider import FakeLumaProvider
from tests.reliability.botproc import BotProcess
from tests.reliability.conftest import ProcessHarness

SHARDS = 2
# Submit and delivery leases in the kill test (the launcher's default is 20 s).
LEASE = 4
_FOLLOW_LINK = re.compile(r"Follow it here: <#(\d+)>")
_FOOTER = re.compile(r"Job #(\d+)")
# What the engine logs, once per job, when the step is really done (its compare-and-set won).
ACCEPTED = re.compile(r"job (\d+): accepted \(\w+\) for user \d+ in guild (\d+)")
SUBMITTED = re.compile(r"job (\d+): submitted as task ")
DELIVERED = re.compile(r"job (\d+): delivered \(")
INTERRUPTED = re.compile(r"job (\d+): interrupted while being submitted")
MODERATED = re.compile(r"job (\d+): failed \(moderation\)")


@dataclass
class Place:
    """A guild on one shard, the channel members ask in, and the members who ask."""

    shard: int
    guild: Guild
    channel: Channel
    members: list[Member]


class ShardedDeployment(ProcessHarness):
    """ProcessHarness's world with one guild on each of two shards, and one bot process per shard (same
    database, same provider): `start_shard(n)` runs the process with SHARD_COUNT=2, SHARD_IDS=n."""

    def __init__(
        self,
        fake: FakeDiscord,
        provider: FakeLumaProvider,
        tmp_path: Any,
        database_url: str,
        **overrides: Any,
    ) -> None:
        assert fake.shard_count == SHARDS
        super().__init__(fake, provider, tmp_path, database_url, **overrides)
        home = self.scene.guild
        home_shard = fake.shard_of(home)
        other = fake.add_guild("Luma Annex", bot_permissions=BOT_PERMISSIONS.value, shard=1 - home_shard)
        places = [
            Place(
                home_shard,
                home,
                self.scene.channel,
                [self.scene.alice, self.scene.bob, *(fake.add_member(home, f"home{i}") for i in range(2))],
            ),
            Place(
                1 - home_shard,
                other,
                fake.add_channel(other, name="videos"),
                [fake.add_member(other, f"annex{i}") for i in range(4)],
            ),
        ]
        self.places = sorted(places, key=lambda p: p.shard)  # places[n] is on shard n
        self.processes = [BotProcess({}, tmp_path / f"bot-shard{n}.log") for n in range(SHARDS)]

    def env(self, **overrides: Any) -> dict[str, str]:
        values = super().env(**overrides)
        values["DISCORD_GUILD_IDS"] = ",".join(str(g) for g in self.fake.world.guilds)
        return values

    async def start_shard(self, shard: int, **overrides: Any) -> None:
        before = {id(s) for s in self.fake.gateway.live_sessions}
        process = self.processes[shard]
        process.env = self.env(
            shard_count=SHARDS, shard_ids=shard, luma_test_workdir=self.tmp_path, **overrides
        )
        process.argv = ("-m", "tests.reliability.launch")
        await process.start()

        def connected() -> bool:
            return any(
                id(s) not in before and s.ready and s.connected and s.shard == (shard, SHARDS)
                for s in self.fake.gateway.live_sessions
            )

        try:
            await self.fake.wait_for(connected, WAIT * 2, f"shard {shard}'s process to connect")
        except TimeoutError:
            raise AssertionError(f"shard {shard} did not connect:\n" + process.log()[-4000:]) from None
        if not self._db_open:
            await self.db(open_database(self.database_url))  # the first process has migrated it
            self._db_open = True

    async def kill_shard(self, shard: int) -> None:
        await self.processes[shard].kill()

    async def close(self) -> None:
        for process in self.processes:
            await process.kill()
        await super().close()

    def logs(self) -> list[str]:
        return [p.log() for p in self.processes]

    # -- driving ------------------------------------------------------------------------------------------

    async def generate_in(self, place: Place, member: Member, prompt: str) -> Run:
        """`/luma generate` in `place`, up to the member's answer. Safe to run many at once in one channel:
        the status message is found through the thread the answer links to (a thread started from a
        message shares its id), not by position."""
        record = await self.fake.invoke_slash(
            place.guild, place.channel, member, "luma", subcommand="generate", options={"prompt": prompt}
        )
        answer = await self.answer(record)
        match = _FOLLOW_LINK.search(answer.content)
        assert answer.ephemeral and match, answer.content
        thread_id = int(match.group(1))
        status = self.fake.world.messages[thread_id]
        assert status.channel_id == place.channel.id and self.fake.world.channels[thread_id].is_thread
        return Run(record, status, thread_id, job_id_from_footer(status), answer)

    async def until_final(self, runs: list[Run], within: float, what: str) -> None:
        """Until the status message of every run shows its outcome (the bot edits it only once the job is
        recorded as delivered and its unit settled)."""
        pending = list(runs)

        def done() -> bool:
            pending[:] = [r for r in pending if not status_final(r.status)]
            return not pending

        try:
            await self.fake.wait_for(done, within, what)
        except TimeoutError:
            tails = "\n".join(f"--- shard {n}:\n{log[-3000:]}" for n, log in enumerate(self.logs()))
            raise AssertionError(
                f"{len(pending)} jobs not finished (e.g. {[r.job_id for r in pending[:10]]}):\n{tails}"
            ) from None


def status_final(status: Message | None) -> bool:
    assert status is not None
    fields = status.embeds[0].get("fields", []) if status.embeds else []
    return any(f["value"].startswith(("✅ Done", "❌ Failed")) for f in fields)


def status_generating(status: Message | None) -> bool:
    assert status is not None
    fields = status.embeds[0].get("fields", []) if status.embeds else []
    return any(f["value"].startswith("🎬 Generating") for f in fields)


def result_posts(fake: FakeDiscord) -> dict[int, list[Message]]:
    """Every result or failure message of the bot, by the job its footer names (status messages have no
    content; results and failures always do)."""
    posts: dict[int, list[Message]] = defaultdict(list)
    for message in fake.world.messages.values():
        if (
            message.deleted
            or message.ephemeral
            or message.author.id != fake.bot_user.id
            or not message.content
        ):
            continue
        for embed in message.embeds:
            match = _FOOTER.fullmatch((embed.get("footer") or {}).get("text", ""))
            if match:
                posts[int(match.group(1))].append(message)
    return posts


def logged(pattern: re.Pattern[str], log: str) -> list[int]:
    return [int(m.group(1)) for m in pattern.finditer(log)]


async def everything() -> tuple[list[Job], list[QuotaEntry], list[QuotaUsage]]:
    return (
        await Job.all().order_by("id"),
        await QuotaEntry.all(),
        await QuotaUsage.all(),
    )


@pytest.fixture
def provider_options() -> dict[str, Any]:
    """The fake provider's mode: timed (tasks finish on their own) unless a test parametrises this."""
    return {"run_time": 0.3}


@pytest.fixture
async def deployment(
    postgres_url: str, tmp_path: Any, provider_options: dict[str, Any]
) -> AsyncIterator[ShardedDeployment]:
    """A fresh PostgreSQL database (skips without LUMA_TEST_POSTGRES_URL), a fake Discord with two shards and
    the fake provider."""
    async with (
        FakeDiscord(shard_count=SHARDS) as fake,
        FakeLumaProvider(token=PROVIDER_TOKEN, **provider_options) as provider,
    ):
        harness = ShardedDeployment(
            fake,
            provider,
            tmp_path,
            postgres_url,
            quota_default_limit=1000,
            luma_max_concurrent=500,
        )
        try:
            yield harness
        finally:
            await harness.close()


# -- the fake's sharding, as discord.py sees it ---------------------------------------------------------------


async def test_the_fake_sends_each_guild_only_to_its_shard() -> None:
    async with FakeDiscord(shard_count=SHARDS) as fake:
        guilds = [fake.add_guild(f"guild on shard {n}", shard=n) for n in range(SHARDS)]
        assert [fake.shard_of(g) for g in guilds] == [0, 1]
        assert [(g.id >> 22) % SHARDS for g in guilds] == [0, 1]
        channels = [fake.add_channel(g, "general") for g in guilds]
        members = [fake.add_member(g, f"member{n}") for n, g in enumerate(guilds)]
        seen: list[list[tuple[int | None, str]]] = [[], []]
        clients = []
        for n in range(SHARDS):
            client = discord.AutoShardedClient(
                intents=discord.Intents.default(), shard_count=SHARDS, shard_ids=[n], guild_ready_timeout=0.05
            )

            async def on_message(message: discord.Message, _seen: list = seen[n]) -> None:
                _seen.append((message.guild.id if message.guild else None, message.channel.type.name))

            client.event(on_message)
            clients.append(client)

        async with fake.run_client(clients[0]), fake.run_client(clients[1]):
            assert [[g.id for g in c.guilds] for c in clients] == [[guilds[0].id], [guilds[1].id]]
            for n, session in enumerate(sorted(fake.gateway.live_sessions, key=lambda s: s.shard or (0, 0))):
                assert session.shard == (n, SHARDS)
                assert session.events_named("READY")[0]["d"]["shard"] == [n, SHARDS]
                assert [e["d"]["id"] for e in session.events_named("GUILD_CREATE")] == [str(guilds[n].id)]

            for n in range(SHARDS):
                await fake.post_message(guilds[n], channels[n], members[n], f"hello shard {n}")
            await fake.post_message(None, fake.dm_channel(members[1]), members[1], "a DM")
            # A guild added later reaches only its shard too.
            late = fake.add_guild("late guild", shard=1)
            await fake.sync()
            assert seen == [[(guilds[0].id, "text"), (None, "private")], [(guilds[1].id, "text")]]
            assert [g.id for g in clients[1].guilds] == [guilds[1].id, late.id]
            assert [g.id for g in clients[0].guilds] == [guilds[0].id]

        # GET /gateway/bot advertises the shards; an IDENTIFY with another shard count is refused (4010).
        async with aiohttp.ClientSession() as session:
            async with session.get(
                f"{fake.api_base}/gateway/bot", headers={"Authorization": f"Bot {fake.token}"}
            ) as response:
                body = await response.json()
            assert body["shards"] == SHARDS and body["session_start_limit"]["max_concurrency"] >= SHARDS
            for shard in ([0, 3], [2, 2]):
                async with session.ws_connect(fake.gateway_url + "?v=10&encoding=json") as ws:
                    assert (await ws.receive_json())["op"] == 10
                    identify = {"token": fake.token, "intents": 513, "properties": {}, "shard": shard}
                    await ws.send_json({"op": 2, "d": identify})
                    closing = await ws.receive()
                    assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, 4010), shard


# -- two bot processes on one PostgreSQL ---------------------------------------------------------------------


@pytest.mark.postgres
async def test_two_processes_take_200_jobs_each_submitted_and_delivered_once(deployment: ShardedDeployment):
    d = deployment
    for shard in range(SHARDS):
        await d.start_shard(shard)

    asks = []
    for i in range(200):
        place = d.places[i % SHARDS]
        asks.append((place, place.members[(i // SHARDS) % len(place.members)], f"sunrise number {i:03d}"))
    runs: list[Run] = []
    for start in range(0, len(asks), 20):
        runs += await asyncio.gather(*(d.generate_in(*ask) for ask in asks[start : start + 20]))
    await d.until_final(runs, 45, "all 200 jobs to be delivered")

    # The provider saw each request exactly once.
    prompts = Counter(body["prompt"] for body in d.creates())
    assert sorted(prompts) == sorted(prompt for *_, prompt in asks)
    assert set(prompts.values()) == {1}

    jobs, entries, usage = await d.db(everything())
    assert len(jobs) == 200 and len({r.job_id for r in runs}) == 200
    by_id = {job.id: job for job in jobs}
    posts = result_posts(d.fake)
    for run, (place, member, prompt) in zip(runs, asks, strict=True):
        job = by_id[run.job_id]
        assert (job.prompt, job.guild_id, job.user_id) == (prompt, place.guild.id, member.id)
        assert job.state == JobState.COMPLETED and job.delivered_at is not None, (job.id, job.state)
        # Exactly one result, in the job's thread, and it is the one recorded.
        assert [(m.channel_id, m.id) for m in posts[job.id]] == [(run.thread_id, job.result_message_id)]
    assert set(posts) == set(by_id)

    # Every unit settled exactly once: one ledger entry per job, charged; nothing left held.
    assert sorted(e.job_id for e in entries) == sorted(by_id)
    assert {e.state for e in entries} == {LedgerState.CHARGED}
    asked = Counter((place.guild.id, member.id) for place, member, _ in asks)
    used, held = Counter(), Counter()  # summed over periods, should the test straddle midnight
    for row in usage:
        used[row.guild_id, row.user_id] += row.used
        held[row.guild_id, row.user_id] += row.held
    assert used == Counter({k: n * CREDIT for k, n in asked.items()}) and not any(held.values())

    # Each process took the commands of its own shard's guild, and both submitted and delivered jobs;
    # across the two, every job was submitted once and delivered once.
    logs = d.logs()
    for shard, log in enumerate(logs):
        assert "Traceback" not in log, log[-3000:]
        accepted_in = {guild for _, guild in (m.groups() for m in ACCEPTED.finditer(log))}
        assert accepted_in == {str(d.places[shard].guild.id)}, shard
        assert len(logged(ACCEPTED, log)) == 100
        assert logged(SUBMITTED, log) and logged(DELIVERED, log), f"shard {shard} did no work:\n{log[-3000:]}"
    for step in (ACCEPTED, SUBMITTED, DELIVERED):
        assert sorted(logged(step, logs[0]) + logged(step, logs[1])) == sorted(by_id), step.pattern
    assert {job.claimed_by for job in jobs} == {"shards-0", "shards-1"}
    # The fake sent every interaction only to the process of its guild's shard.
    for session in d.fake.gateway.live_sessions:
        guild_ids = {int(e["d"]["guild_id"]) for e in session.events_named("INTERACTION_CREATE")}
        assert guild_ids == {d.places[session.shard[0]].guild.id}
    assert all(p.running for p in d.processes)
    assert d.fake.internal_errors == []


@pytest.mark.postgres
async def test_a_job_refused_at_once_by_the_other_process_is_answered_in_its_thread(deployment):
    """The process that receives a command posts the job's status message and thread; either process may
    submit the job, and a refusal is known at once, maybe before Discord has made the thread. The answer
    waits for the thread and is posted there, once."""
    d = deployment
    for shard in range(SHARDS):
        await d.start_shard(shard)

    async def discord_is_slow() -> None:
        await asyncio.sleep(0.5)  # Discord's latency: the thread exists, the bot hears of it late

    d.fake.on_handled("POST", r"/channels/\d+/messages/\d+/threads", discord_is_slow, times=None)
    asks = []
    for i in range(30):
        place = d.places[i % SHARDS]
        asks.append((place, place.members[i % len(place.members)], f"[moderate] refused {i:02d}"))
    runs = list(await asyncio.gather(*(d.generate_in(*ask) for ask in asks)))
    await d.until_final(runs, WAIT, "every refusal to be delivered")

    jobs, entries, _ = await d.db(everything())
    by_id = {job.id: job for job in jobs}
    posts = result_posts(d.fake)
    for run in runs:
        job = by_id[run.job_id]
        assert (job.state, job.failure_kind) == (JobState.FAILED, FailureKind.MODERATION)
        assert [(m.channel_id, m.id) for m in posts[run.job_id]] == [(run.thread_id, job.result_message_id)]
    assert {e.job_id: e.state for e in entries} == {job_id: LedgerState.REFUNDED for job_id in by_id}
    # The case at stake happened: some jobs were refused in the process that had not received the command.
    logs = d.logs()
    received = {job_id: shard for shard, log in enumerate(logs) for job_id in logged(ACCEPTED, log)}
    refused = {job_id: shard for shard, log in enumerate(logs) for job_id in logged(MODERATED, log)}
    assert sorted(refused) == sorted(by_id)
    assert any(refused[job_id] != received[job_id] for job_id in by_id)


@pytest.mark.postgres
@pytest.mark.parametrize("provider_options", [{"manual": True}])
async def test_a_killed_process_leaves_its_jobs_to_the_survivor(deployment: ShardedDeployment):
    d = deployment
    # Short leases, so the survivor may take over the dead process's claims within seconds.
    for shard in range(SHARDS):
        await d.start_shard(shard, luma_test_lease_seconds=LEASE)

    # All the work comes from one shard's guild: the other process has had nothing to do when it must
    # take over, so nothing but its own clock can tell it that jobs need it.
    busy = d.places[1]
    asks = [(busy, busy.members[i % 2], f"in flight {i}") for i in range(8)]
    runs = list(await asyncio.gather(*(d.generate_in(*ask) for ask in asks)))
    await d.fake.wait_for(
        lambda: all(status_generating(r.status) for r in runs), WAIT, "every job to be with the provider"
    )
    task_of = {task.prompt: task.id for task in d.provider.tasks.values()}

    # One job finishes. Whichever process delivers it is the one that dies: Discord takes its post, and
    # the process never hears back.
    delivering, posted, held = runs[0], asyncio.Event(), asyncio.Event()

    async def hold_the_answer() -> None:
        posted.set()
        await held.wait()

    d.fake.on_handled("POST", rf"/channels/{delivering.thread_id}/messages", hold_the_answer)
    d.provider.finish(task_of[asks[0][2]])
    await asyncio.wait_for(posted.wait(), WAIT)
    owner = (await d.job(delivering.job_id)).claimed_by
    assert owner in ("shards-0", "shards-1")
    victim = int(owner.removeprefix("shards-"))
    survivor = 1 - victim

    # It also takes a new job from its own guild; the provider gets that request but never answers. (The
    # other process may, rarely, claim such a job first: its own submission then times out. Try again.)
    cut_offs: list[Run] = []
    while len(cut_offs) < 3:
        d.provider.inject(None, path="create", delay=60)
        place = d.places[victim]
        cut_offs.append(await d.generate_in(place, place.members[0], f"cut off mid-air {len(cut_offs)}"))
        await d.provider.wait_until(lambda: len(d.provider.tasks) == len(runs) + len(cut_offs))
        claimed = await d.job(cut_offs[-1].job_id)
        assert claimed.state == JobState.SUBMITTING
        if claimed.claimed_by == owner:
            break
    cut_off = cut_offs[-1]
    assert (await d.job(cut_off.job_id)).claimed_by == owner, "the dying process never held a submission"

    await d.kill_shard(victim)
    held.set()
    d.provider.clear_faults()

    # Once the leases run out, the survivor records the posted result (without posting it again) and fails
    # the cut-off submission (without sending it again).
    await d.until_final(
        [delivering, *cut_offs], LEASE + WAIT, "the survivor to take over the dead one's claims"
    )
    # It also polls the jobs the dead process had submitted, and delivers them.
    for *_, prompt in asks[1:]:
        d.provider.finish(task_of[prompt])
    await d.until_final(runs, WAIT, "the survivor to deliver every job")

    jobs, entries, _ = await d.db(everything())
    by_id = {job.id: job for job in jobs}
    assert sorted(by_id) == sorted(r.job_id for r in [*runs, *cut_offs])
    posts = result_posts(d.fake)
    for run in [*runs, *cut_offs]:
        assert [m.channel_id for m in posts[run.job_id]] == [run.thread_id], run.job_id
        assert by_id[run.job_id].result_message_id == posts[run.job_id][0].id
    assert all(by_id[r.job_id].state == JobState.COMPLETED for r in runs)
    for run in cut_offs:
        assert (by_id[run.job_id].state, by_id[run.job_id].failure_kind) == (
            JobState.FAILED,
            FailureKind.INTERRUPTED,
        )
    assert len(entries) == len(by_id)
    assert {e.job_id: e.state for e in entries} == {
        **{r.job_id: LedgerState.CHARGED for r in runs},
        **{r.job_id: LedgerState.REFUNDED for r in cut_offs},
    }
    # Nothing was sent to the provider twice.
    prompts = Counter(body["prompt"] for body in d.creates())
    assert prompts == Counter(
        [*(prompt for *_, prompt in asks), *(f"cut off mid-air {n}" for n in range(len(cut_offs)))]
    )

    survivor_log = d.logs()[survivor]
    assert delivering.job_id in logged(DELIVERED, survivor_log)
    assert cut_off.job_id in logged(INTERRUPTED, survivor_log)
    assert d.processes[survivor].running and not d.processes[victim].running
    assert "Traceback" not in survivor_log
