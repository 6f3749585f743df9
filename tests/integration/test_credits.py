"""Credits and the server budget on SQLite and PostgreSQL: priced reservations, the budget under concurrency
(in one process and across processes), exact refunds, provider-reported costs, the migration to credits, and
the admins' CSV export."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import sys
import textwrap
from datetime import UTC, datetime, timedelta

import pytest
from tortoise import Tortoise
from tortoise.migrations.api import migrate as tortoise_migrate

from bot.discord_ui import texts
from bot.discord_ui.costs import CSV_COLUMNS, ledger_csv
from bot.luma.options import OptionDefaults
from bot.luma.prices import CREDIT, Pricing, load_prices
from bot.store import jobs as store
from bot.store.db import close_database, open_database, tortoise_config
from bot.store.models import BudgetUsage, FailureKind, Job, JobAction, LedgerState, QuotaEntry, QuotaPeriod
from bot.store.quotas import BudgetExceeded, QuotaBook, QuotaDefaults, QuotaExceeded, period_bounds

GUILD, USER = 111, 222
DEADLINE = timedelta(minutes=15)


def luma_book(limit: int = 100) -> QuotaBook:
    """Credits on the Luma Agents API: one credit = a 720p 5 s video = $0.30."""
    return QuotaBook(
        QuotaDefaults(limit=limit, period=QuotaPeriod.DAY),
        Pricing(load_prices(None), credit_provider="luma", credit_defaults=OptionDefaults()),
    )


def luma_job(resolution: str = "720p", duration: str = "5s", *, user: int = USER, action=JobAction.GENERATE) -> store.NewJob:
    options = {"aspect_ratio": "16:9", "model": "ray-3.2", "resolution": resolution}
    if action == JobAction.GENERATE:
        options["duration"] = duration
    return store.NewJob(
        guild_id=GUILD, channel_id=333, user_id=user, action=action, prompt="a cat", provider="luma", options=options
    )


async def deliver(job: Job, quotas: QuotaBook) -> None:
    await Job.filter(id=job.id).update(state="completed", finished_at=store.utcnow())
    assert await store.mark_delivered(await Job.get(id=job.id), quotas)


async def test_a_dear_request_is_charged_more_than_a_cheap_one(db):
    quotas = luma_book()
    dear = await store.create_job(luma_job("1080p", "10s", user=1), quotas, deadline=DEADLINE)
    cheap = await store.create_job(luma_job("540p", "5s", user=2), quotas, deadline=DEADLINE)
    # $3.60 and $0.15 against a credit of $0.30.
    assert (dear.cost, dear.price, cheap.cost, cheap.price) == (12 * CREDIT, 3_600_000, CREDIT // 2, 150_000)
    await deliver(dear, quotas)
    await deliver(cheap, quotas)
    assert (await quotas.status(GUILD, 1)).used == 12 * CREDIT
    assert (await quotas.status(GUILD, 2)).used == CREDIT // 2
    assert (await quotas.budget_status(GUILD)).used == 12 * CREDIT + CREDIT // 2


async def test_an_extension_on_the_agents_api_costs_one_5s_block(db):
    quotas = luma_book()
    job = await store.create_job(luma_job("1080p", action=JobAction.EXTEND), quotas, deadline=DEADLINE)
    assert (job.cost, job.price) == (4 * CREDIT, 1_200_000)


async def test_a_member_with_too_few_credits_for_a_dear_video_is_refused_and_nothing_is_held(db):
    quotas = luma_book(limit=3)
    with pytest.raises(QuotaExceeded) as err:
        await store.create_job(luma_job("1080p", "5s"), quotas, deadline=DEADLINE)
    assert err.value.cost == 4 * CREDIT
    assert await Job.all().count() == 0
    assert (await quotas.status(GUILD, USER)).held == 0 and (await quotas.budget_status(GUILD)).held == 0
    await store.create_job(luma_job("720p", "5s"), quotas, deadline=DEADLINE)  # one credit still fits


async def test_fifty_members_at_once_never_spend_more_than_a_budget_of_ten_credits(db):
    quotas = luma_book(limit=5)
    await quotas.set_budget(GUILD, 10 * CREDIT, QuotaPeriod.MONTH)

    async def attempt(member: int) -> bool:
        try:
            await store.create_job(luma_job(user=1000 + member), quotas, deadline=DEADLINE)
        except BudgetExceeded:
            return False
        return True

    accepted = sum(await asyncio.gather(*(attempt(m) for m in range(50))))
    assert accepted == 10
    assert (await quotas.budget_status(GUILD)).held == 10 * CREDIT
    for job in await Job.all():
        await deliver(job, quotas)
    budget = await quotas.budget_status(GUILD)
    assert (budget.used, budget.held, budget.remaining) == (10 * CREDIT, 0, 0)
    with pytest.raises(BudgetExceeded):
        await store.create_job(luma_job(user=9999), quotas, deadline=DEADLINE)


async def test_concurrent_requests_of_mixed_prices_never_overspend_the_budget(db):
    quotas = luma_book(limit=100)
    await quotas.set_budget(GUILD, 10 * CREDIT)
    sizes = [("1080p", "10s"), ("1080p", "5s"), ("720p", "10s"), ("720p", "5s"), ("540p", "5s")] * 8
    refused: list[int] = []

    async def attempt(member: int, resolution: str, duration: str) -> None:
        try:
            await store.create_job(luma_job(resolution, duration, user=1000 + member), quotas, deadline=DEADLINE)
        except BudgetExceeded as exc:
            refused.append(exc.cost)

    await asyncio.gather(*(attempt(i, r, d) for i, (r, d) in enumerate(sizes)))
    held = sum(e.amount for e in await QuotaEntry.all())
    budget = await quotas.budget_status(GUILD)
    assert held == budget.held <= 10 * CREDIT
    # Every refusal was right: what was left could not cover it (and what is left only shrank).
    assert refused and all(cost > 10 * CREDIT - held for cost in refused)


async def test_the_budget_refusal_names_when_it_resets(db):
    quotas = luma_book()
    await quotas.set_budget(GUILD, CREDIT // 2, QuotaPeriod.WEEK)
    with pytest.raises(BudgetExceeded) as err:
        await store.create_job(luma_job("720p"), quotas, deadline=DEADLINE)
    status = err.value.status
    assert status.resets_at == period_bounds(QuotaPeriod.WEEK)[1]
    sentence = texts.budget_exceeded(
        budget=status.budget, period=str(status.period), used=status.used, held=status.held,
        resets_at=status.resets_at, cost=err.value.cost,
    )
    assert f"<t:{int(status.resets_at.timestamp())}:f>" in sentence and "this week" in sentence


async def test_a_refund_gives_back_exactly_what_was_held(db):
    quotas = luma_book(limit=20)
    await quotas.set_budget(GUILD, 50 * CREDIT)
    kept = await store.create_job(luma_job("540p", "5s"), quotas, deadline=DEADLINE)
    failed = await store.create_job(luma_job("1080p", "10s"), quotas, deadline=DEADLINE)
    assert (await quotas.status(GUILD, USER)).held == 12 * CREDIT + CREDIT // 2
    assert await store.mark_failed(failed, FailureKind.FAILED, "boom", quotas)
    assert not await quotas.refund(failed.id)  # exactly once
    member, budget = await quotas.status(GUILD, USER), await quotas.budget_status(GUILD)
    assert (member.used, member.held) == (0, CREDIT // 2) == (budget.used, budget.held)
    entry = await QuotaEntry.get(job_id=failed.id)
    assert (entry.state, entry.amount, entry.charged) == (LedgerState.REFUNDED, 12 * CREDIT, 0)
    await deliver(kept, quotas)
    assert (await quotas.status(GUILD, USER)).used == CREDIT // 2


async def test_a_provider_reported_cost_replaces_the_estimate(db):
    quotas = luma_book()
    job = await store.create_job(luma_job("1080p", "10s"), quotas, deadline=DEADLINE)  # estimated $3.60
    assert await quotas.record_actual_price(job.id, 2_400_000)  # the provider says it billed $2.40
    await deliver(job, quotas)
    assert not await quotas.charge(job.id)
    entry = await QuotaEntry.get(job_id=job.id)
    assert (entry.amount, entry.charged, entry.actual_price) == (12 * CREDIT, 8 * CREDIT, 2_400_000)
    member, budget = await quotas.status(GUILD, USER), await quotas.budget_status(GUILD)
    assert (member.used, member.held) == (8 * CREDIT, 0) == (budget.used, budget.held)
    assert not await quotas.record_actual_price(job.id, 1)  # a settled entry keeps its figure


async def test_the_csv_export_matches_the_ledger(db):
    quotas = luma_book()
    charged = await store.create_job(luma_job("1080p", "5s", user=1), quotas, deadline=DEADLINE)
    refunded = await store.create_job(luma_job("540p", "10s", user=2), quotas, deadline=DEADLINE)
    await store.create_job(luma_job("720p", "5s", user=1), quotas, deadline=DEADLINE)  # still held
    await quotas.record_actual_price(charged.id, 1_100_000)
    await deliver(charged, quotas)
    await store.mark_failed(refunded, FailureKind.MODERATION, None, quotas)

    _, lines = await quotas.period_ledger(GUILD)
    rows = list(csv.DictReader(io.StringIO(ledger_csv(lines).decode())))
    assert tuple(rows[0]) == CSV_COLUMNS
    entries = await QuotaEntry.all().order_by("id").prefetch_related("job")
    assert [int(r["entry_id"]) for r in rows] == [e.id for e in entries]
    for row, entry in zip(rows, entries, strict=True):
        assert int(row["job_id"]) == entry.job_id and int(row["user_id"]) == entry.job.user_id
        assert row["state"] == entry.state
        assert row["resolution"] == entry.job.options["resolution"]
        assert round(float(row["credits_reserved"]) * CREDIT) == entry.amount
        assert row["credits_charged"] == ("" if entry.charged is None else texts.credits(entry.charged).replace(",", ""))
        assert round(float(row["price_usd"]) * 1_000_000) == entry.price
        assert (row["actual_usd"] or None) == (None if entry.actual_price is None else "1.1")
        assert datetime.fromisoformat(row["created_at"]) == entry.created_at


async def test_entries_of_earlier_periods_are_not_in_this_periods_export(db):
    quotas = luma_book()
    job = await store.create_job(luma_job(), quotas, deadline=DEADLINE)
    await QuotaEntry.filter(job_id=job.id).update(created_at=datetime.now(UTC) - timedelta(days=40))
    _, lines = await quotas.period_ledger(GUILD)
    assert lines == []


# -- across processes --------------------------------------------------------------------------------

# Each process opens the database, says it is ready, waits for "go" and then fires its requests at once.
WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from datetime import timedelta
    from bot.luma.prices import Pricing
    from bot.store import jobs as store
    from bot.store.db import open_database, close_database
    from bot.store.models import JobAction, QuotaPeriod
    from bot.store.quotas import BudgetExceeded, QuotaBook, QuotaDefaults

    async def main(url, first):
        await open_database(url, run_migrations=False)
        quotas = QuotaBook(QuotaDefaults(5, QuotaPeriod.DAY), Pricing(credit_provider="luma"))
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)

        async def attempt(member):
            new = store.NewJob(guild_id=111, channel_id=3, user_id=member, action=JobAction.GENERATE,
                               prompt="p", provider="luma",
                               options={"model": "ray-3.2", "resolution": "720p", "duration": "5s"})
            try:
                await store.create_job(new, quotas, deadline=timedelta(minutes=5))
                return 1
            except BudgetExceeded:
                return 0

        print("accepted", sum(await asyncio.gather(*(attempt(first + i) for i in range(25)))), flush=True)
        await close_database()

    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
    """
)


@pytest.mark.postgres
async def test_processes_sharing_postgres_never_overspend_the_budget(postgres_url):
    await open_database(postgres_url)
    try:
        quotas = luma_book()
        await quotas.set_budget(GUILD, 10 * CREDIT)
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable, "-c", WORKER, postgres_url, str(5000 + 100 * n),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
            )
            for n in range(2)
        ]
        for proc in procs:
            assert (await asyncio.wait_for(proc.stdout.readline(), 60)).strip() == b"ready"
        for proc in procs:
            proc.stdin.write(b"go\n")
            await proc.stdin.drain()
        outputs = [await asyncio.wait_for(proc.communicate(), 60) for proc in procs]
        accepted = [int(out.split()[-1]) for out, _ in outputs]
        assert all(proc.returncode == 0 for proc in procs)
        assert sum(accepted) == 10
        assert await Job.all().count() == 10
        row = await BudgetUsage.get(guild_id=GUILD)
        assert row.held == 10 * CREDIT
    finally:
        await close_database()


# -- the migration to credits ---------------------------------------------------------------------------


async def test_the_migration_keeps_every_members_used_and_held_amounts_and_limits(database_url):
    """A database at 0002 (units) with data in it moves to credits: 1 unit = 1 credit."""
    try:
        await tortoise_migrate(config=tortoise_config(database_url), target="models.0002_provider_options")
        await Tortoise.close_connections()
        await Tortoise._reset_apps()
        start, _ = period_bounds(QuotaPeriod.DAY)
        now = datetime.now(UTC)
        await Tortoise.init(config=tortoise_config(database_url))
        conn = Tortoise.get_connection(database_url.split("://", 1)[0])
        pg = database_url.startswith("postgres")

        def sql(text: str) -> str:
            if not pg:
                return text
            n = 0
            out = ""
            for ch in text:
                if ch == "?":
                    n += 1
                    out += f"${n}"
                else:
                    out += ch
            return out

        await conn.execute_query(sql("INSERT INTO guilds (id, quota_limit, quota_period, created_at) VALUES (?, 5, 'day', ?)"), [GUILD, now])
        for user in (USER, 333):
            await conn.execute_query(sql("INSERT INTO users (id, created_at) VALUES (?, ?)"), [user, now])
        await conn.execute_query(sql('INSERT INTO role_limits (guild_id, role_id, "limit") VALUES (?, 77, 8)'), [GUILD])
        await conn.execute_query(sql('INSERT INTO user_limits (guild_id, user_id, "limit") VALUES (?, ?, 2)'), [GUILD, 333])
        await conn.execute_query(
            sql("INSERT INTO quota_usage (guild_id, user_id, period_start, used, held) VALUES (?, ?, ?, 2, 1)"),
            [GUILD, USER, start],
        )
        usage_id = (await conn.execute_query_dict("SELECT id FROM quota_usage"))[0]["id"]
        for n, (state, ledger) in enumerate([("completed", "charged"), ("completed", "charged"), ("failed", "refunded"), ("running", "held")]):
            await conn.execute_query(
                sql(
                    "INSERT INTO jobs (guild_id, user_id, channel_id, action, prompt, options, provider, state, "
                    "callback_secret, created_at, deadline_at, delivery_attempts, resubmits) "
                    "VALUES (?, ?, 5, 'generate', ?, '{}', 'acedatacloud', ?, 's', ?, ?, 0, 0)"
                ),
                [GUILD, USER, f"old {n}", state, now, now + timedelta(minutes=15)],
            )
            job_id = (await conn.execute_query_dict("SELECT max(id) AS id FROM jobs"))[0]["id"]
            await conn.execute_query(
                sql("INSERT INTO quota_ledger (job_id, usage_id, state, created_at) VALUES (?, ?, ?, ?)"),
                [job_id, usage_id, ledger, now],
            )
        await close_database()

        await open_database(database_url)  # applies 0004
        quotas = QuotaBook(QuotaDefaults(limit=10, period=QuotaPeriod.DAY))
        status = await quotas.status(GUILD, USER)
        assert (status.limit, status.used, status.held, status.remaining) == (5 * CREDIT, 2 * CREDIT, CREDIT, 2 * CREDIT)
        assert (await quotas.effective_limit(GUILD, USER, [77]))[0] == 8 * CREDIT
        assert (await quotas.effective_limit(GUILD, 333))[0] == 2 * CREDIT
        entries = {e.state: e for e in await QuotaEntry.all()}
        assert entries[LedgerState.HELD].amount == CREDIT and entries[LedgerState.REFUNDED].charged == 0
        # The job still running when the bot was upgraded settles exactly the one credit it held.
        running = await Job.get(state="running")
        assert await quotas.charge(running.id)
        status = await quotas.status(GUILD, USER)
        assert (status.used, status.held) == (3 * CREDIT, 0)
        # And the month's budget row, created now, counts what the old ledger charged this month.
        assert (await quotas.budget_status(GUILD)).used == 0  # no row yet: nothing reserved since
        await quotas.prepare(GUILD, USER)
        assert (await quotas.budget_status(GUILD)).used == 3 * CREDIT
        await close_database()
    finally:
        await close_database()
