"""The store on SQLite and PostgreSQL: migrations, atomic quota reservation, exactly-once settlement."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from bot.luma.prices import CREDIT
from bot.store import jobs as store
from bot.store.db import close_database, migrate, open_database
from bot.store.models import FailureKind, Job, JobAction, JobState, QuotaEntry, QuotaPeriod, QuotaUsage
from bot.store.quotas import QuotaBook, QuotaDefaults, QuotaExceeded, period_bounds

GUILD, USER = 111, 222


def book(limit: int = 3, period: QuotaPeriod = QuotaPeriod.DAY) -> QuotaBook:
    return QuotaBook(QuotaDefaults(limit=limit, period=period))


def new_job(user: int = USER, guild: int = GUILD, roles: tuple[int, ...] = ()) -> store.NewJob:
    return store.NewJob(guild_id=guild, channel_id=333, user_id=user, action=JobAction.GENERATE,
                        prompt="a cat", provider="acedatacloud", role_ids=roles)


async def test_migrations_are_idempotent_and_keep_data(db):
    await store.create_job(new_job(), book(), deadline=timedelta(minutes=15))
    await close_database()
    await migrate(db)  # every start runs migrations: a second run must be a no-op, not an error
    await open_database(db)
    assert await Job.all().count() == 1


async def test_fifty_simultaneous_requests_with_three_units_left_accept_exactly_three(db):
    quotas = book(limit=3)

    async def attempt() -> bool:
        try:
            await store.create_job(new_job(), quotas, deadline=timedelta(minutes=15))
        except QuotaExceeded:
            return False
        return True

    results = await asyncio.gather(*(attempt() for _ in range(50)))
    assert sum(results) == 3
    assert await Job.all().count() == 3
    status = await quotas.status(GUILD, USER)
    assert (status.held, status.used, status.remaining) == (3 * CREDIT, 0, 0)


async def test_refused_request_leaves_no_job_and_no_hold(db):
    quotas = book(limit=0)
    with pytest.raises(QuotaExceeded):
        await store.create_job(new_job(), quotas, deadline=timedelta(minutes=15))
    assert await Job.all().count() == 0
    assert await QuotaEntry.all().count() == 0


async def test_delivered_video_charges_the_unit_once(db):
    quotas = book(limit=2)
    job = await store.create_job(new_job(), quotas, deadline=timedelta(minutes=15))
    from bot.luma.types import TaskResult, TaskState

    assert await claim(job)
    await store.mark_running(job, "t1", first_poll_at=store.utcnow())
    await store.mark_completed(job, TaskResult(task_id="t1", state=TaskState.COMPLETED, video_url="https://x/v.mp4"))
    job = await Job.get(id=job.id)
    assert await store.mark_delivered(job, quotas) is True
    assert await store.mark_delivered(job, quotas) is False  # a second delivery record changes nothing
    assert await quotas.charge(job.id) is False
    status = await quotas.status(GUILD, USER)
    assert (status.used, status.held, status.remaining) == (CREDIT, 0, CREDIT)


async def test_failed_job_refunds_the_unit_once(db):
    quotas = book(limit=1)
    job = await store.create_job(new_job(), quotas, deadline=timedelta(minutes=15))
    assert await store.mark_failed(job, FailureKind.FAILED, "boom", quotas) is True
    assert await store.mark_failed(job, FailureKind.FAILED, "boom", quotas) is False
    assert await quotas.refund(job.id) is False
    status = await quotas.status(GUILD, USER)
    assert (status.used, status.held, status.remaining) == (0, 0, CREDIT)
    # The refunded unit can be used again.
    await store.create_job(new_job(), quotas, deadline=timedelta(minutes=15))


async def test_role_limit_overrides_server_default_and_user_override_beats_roles(db):
    quotas = book(limit=1)
    await quotas.set_role_limit(GUILD, role_id=7, limit=5 * CREDIT)
    await quotas.set_role_limit(GUILD, role_id=8, limit=3 * CREDIT)
    assert (await quotas.effective_limit(GUILD, USER, [7, 8]))[0] == 5 * CREDIT  # the highest of the member's roles
    assert (await quotas.effective_limit(GUILD, USER, []))[0] == CREDIT  # QUOTA_DEFAULT_LIMIT is in credits
    await quotas.set_user_limit(GUILD, USER, 0)
    assert (await quotas.effective_limit(GUILD, USER, [7, 8]))[0] == 0
    await quotas.set_guild_limit(GUILD, 4 * CREDIT, QuotaPeriod.WEEK)
    assert await quotas.effective_limit(GUILD, 999, []) == (4 * CREDIT, QuotaPeriod.WEEK)


async def test_usage_resets_with_the_period(db):
    quotas = book(limit=1)
    day1 = datetime(2026, 3, 10, 23, 0, tzinfo=UTC)
    await quotas.reserve(GUILD, USER, now=day1)
    with pytest.raises(QuotaExceeded):
        await quotas.reserve(GUILD, USER, now=day1)
    await quotas.reserve(GUILD, USER, now=day1 + timedelta(hours=2))  # the next day has its own unit
    assert await QuotaUsage.all().count() == 2


async def test_admin_reset_clears_used_units_but_keeps_held_ones(db):
    quotas = book(limit=2)
    done = await store.create_job(new_job(), quotas, deadline=timedelta(minutes=15))
    await store.create_job(new_job(), quotas, deadline=timedelta(minutes=15))
    await quotas.charge(done.id)
    await quotas.reset_usage(GUILD, USER)
    status = await quotas.status(GUILD, USER)
    assert (status.used, status.held) == (0, CREDIT)


def test_period_bounds_are_utc_day_monday_week_and_calendar_month():
    now = datetime(2026, 2, 18, 15, 30, tzinfo=UTC)  # a Wednesday
    assert period_bounds(QuotaPeriod.DAY, now) == (datetime(2026, 2, 18, tzinfo=UTC), datetime(2026, 2, 19, tzinfo=UTC))
    assert period_bounds(QuotaPeriod.WEEK, now) == (datetime(2026, 2, 16, tzinfo=UTC), datetime(2026, 2, 23, tzinfo=UTC))
    assert period_bounds(QuotaPeriod.MONTH, now) == (datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))


async def claim(job: Job, *, key_id: str = "acedatacloud:k1", slot: int = 0) -> bool:
    return await store.claim_slot(
        job, provider="acedatacloud", key_id=key_id, slot=slot, options={}, owner="main",
        lease=timedelta(minutes=2),
    )


async def test_a_key_slot_has_one_holder_however_many_claim_it_at_once(db):
    """The per-key limit lives in the database: claimers racing for a key's 3 slots (as several processes
    would) never put more than 3 jobs at the provider, and never two on one slot."""
    quotas = book(limit=20)
    made = [await store.create_job(new_job(), quotas, deadline=timedelta(minutes=15)) for _ in range(12)]

    async def claimer(job: Job) -> bool:
        for slot in range(3):
            try:
                if await claim(job, slot=slot):
                    return True
            except store.SlotTaken:
                continue
        return False

    won = await asyncio.gather(*(claimer(job) for job in made))
    active = await Job.filter(state__in=(JobState.SUBMITTING, JobState.RUNNING)).values_list("slot", flat=True)
    assert sum(won) == 3 and sorted(active) == [0, 1, 2]
    # A slot frees when its job leaves the provider, and only then can another job take it.
    holder = await Job.get(state=JobState.SUBMITTING, slot=1)
    with pytest.raises(store.SlotTaken):
        await claim(next(j for j, w in zip(made, won, strict=True) if not w), slot=1)
    await store.mark_failed(holder, FailureKind.FAILED, "gone", quotas)
    assert await claim(next(j for j, w in zip(made, won, strict=True) if not w), slot=1)


async def test_another_key_has_slots_of_its_own(db):
    quotas = book(limit=5)
    first, second = [await store.create_job(new_job(), quotas, deadline=timedelta(minutes=15)) for _ in range(2)]
    assert await claim(first, key_id="acedatacloud:k1", slot=0)
    assert await claim(second, key_id="acedatacloud:k2", slot=0)


@pytest.mark.postgres
async def test_processes_starting_together_migrate_a_fresh_postgres_once(postgres_url, tmp_path):
    """Shards start at the same moment: their migrations must not race on a fresh database."""
    import sys

    code = "import asyncio, sys; from bot.store.db import migrate; asyncio.run(migrate(sys.argv[1]))"
    procs = [await asyncio.create_subprocess_exec(sys.executable, "-c", code, postgres_url,
                                                  stderr=asyncio.subprocess.PIPE) for _ in range(3)]
    errors = [(await p.communicate())[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    await open_database(postgres_url, run_migrations=False)
    assert await Job.all().count() == 0
    await close_database()


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"video_id": "v" * 200}, "video_id"),  # longer than its column
        ({"video_url": "https://cdn.example.com/a\x00b.mp4"}, "video_url"),  # NUL: PostgreSQL text refuses it
        ({"thumbnail_url": "https://cdn.example.com/\ud800.jpg"}, "thumbnail_url"),  # a lone surrogate
        ({"video_width": 2**40}, "video_width"),  # beyond the integer column
    ],
)
async def test_a_result_the_database_cannot_hold_is_refused_and_changes_nothing(db, values, field):
    from bot.luma.types import TaskResult, TaskState

    quotas = book()
    job = await store.create_job(new_job(), quotas, deadline=timedelta(minutes=15))
    assert await claim(job)
    await store.mark_running(job, "t1", first_poll_at=store.utcnow())
    result = TaskResult(
        task_id="t1", state=TaskState.COMPLETED, **{"video_url": "https://cdn.example.com/v.mp4", **values}
    )
    with pytest.raises(store.UnstorableValue, match=field):
        await store.mark_completed(job, result)
    assert (await Job.get(id=job.id)).state == JobState.RUNNING
    # The one way on for such a job: it fails, and its reason is stored whatever text it carries.
    assert await store.mark_failed(job, FailureKind.FAILED, "reason with a NUL \x00 and \ud800", quotas)
    stored = await Job.get(id=job.id)
    assert stored.state == JobState.FAILED and "\x00" not in stored.failure_reason
    assert (await quotas.status(GUILD, USER)).held == 0
