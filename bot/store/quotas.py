"""Per-member quotas: effective limits, periods, and the reserve → charge | refund ledger.

Reservation is a single conditional UPDATE (`used + held < limit`) so concurrent requests can never
over-reserve, on SQLite and PostgreSQL alike. Settlement flips a ledger entry out of `held` with a
compare-and-set, so each unit is charged or refunded exactly once even if settlement runs twice.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from bot.metrics import METRICS
from bot.store.models import (
    Guild,
    Job,
    LedgerState,
    QuotaEntry,
    QuotaPeriod,
    QuotaUsage,
    RoleLimit,
    User,
    UserLimit,
)


class QuotaExceeded(Exception):
    def __init__(self, status: QuotaStatus) -> None:
        super().__init__(f"quota of {status.limit} per {status.period} used up")
        self.status = status


@dataclass(frozen=True, slots=True)
class QuotaDefaults:
    limit: int
    period: QuotaPeriod


@dataclass(frozen=True, slots=True)
class Reservation:
    usage_id: int
    limit: int
    period: QuotaPeriod
    period_start: datetime
    resets_at: datetime


@dataclass(frozen=True, slots=True)
class QuotaStatus:
    limit: int
    period: QuotaPeriod
    used: int
    held: int
    period_start: datetime
    resets_at: datetime

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used - self.held)


def period_bounds(period: QuotaPeriod, now: datetime | None = None) -> tuple[datetime, datetime]:
    """Start and end of the period containing `now`, in UTC: days at midnight, weeks on Monday, months on the 1st."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == QuotaPeriod.DAY:
        return day, day + timedelta(days=1)
    if period == QuotaPeriod.WEEK:
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=7)
    start = day.replace(day=1)
    days = calendar.monthrange(start.year, start.month)[1]
    return start, start + timedelta(days=days)


async def ensure_guild(guild_id: int) -> Guild:
    guild = await Guild.get_or_none(id=guild_id)
    if guild is None:
        try:
            guild = await Guild.create(id=guild_id)
        except IntegrityError:  # another request created it first
            guild = await Guild.get(id=guild_id)
    return guild


async def ensure_user(user_id: int) -> User:
    user = await User.get_or_none(id=user_id)
    if user is None:
        try:
            user = await User.create(id=user_id)
        except IntegrityError:
            user = await User.get(id=user_id)
    return user


class QuotaBook:
    """Reads and changes quotas. `defaults` come from QUOTA_DEFAULT_LIMIT / QUOTA_DEFAULT_PERIOD."""

    def __init__(self, defaults: QuotaDefaults) -> None:
        self.defaults = defaults

    # -- limits -------------------------------------------------------------------------------------------

    async def effective_limit(self, guild_id: int, user_id: int, role_ids: Iterable[int] = ()) -> tuple[int, QuotaPeriod]:
        """A user override beats role limits, which beat the server's limit, which beats the defaults."""
        guild = await ensure_guild(guild_id)
        period = QuotaPeriod(guild.quota_period) if guild.quota_period else self.defaults.period
        override = await UserLimit.get_or_none(guild_id=guild_id, user_id=user_id)
        if override is not None:
            return override.limit, period
        role_ids = list(role_ids)
        if role_ids:
            limits = await RoleLimit.filter(guild_id=guild_id, role_id__in=role_ids).values_list("limit", flat=True)
            if limits:
                return max(limits), period
        limit = guild.quota_limit if guild.quota_limit is not None else self.defaults.limit
        return limit, period

    async def set_guild_limit(self, guild_id: int, limit: int | None, period: QuotaPeriod | None) -> None:
        await ensure_guild(guild_id)
        await Guild.filter(id=guild_id).update(quota_limit=limit, quota_period=period)

    async def set_role_limit(self, guild_id: int, role_id: int, limit: int | None) -> None:
        await ensure_guild(guild_id)
        if limit is None:
            await RoleLimit.filter(guild_id=guild_id, role_id=role_id).delete()
        else:
            await RoleLimit.update_or_create({"limit": limit}, guild_id=guild_id, role_id=role_id)

    async def set_user_limit(self, guild_id: int, user_id: int, limit: int | None) -> None:
        await ensure_guild(guild_id)
        await ensure_user(user_id)
        if limit is None:
            await UserLimit.filter(guild_id=guild_id, user_id=user_id).delete()
        else:
            await UserLimit.update_or_create({"limit": limit}, guild_id=guild_id, user_id=user_id)

    # -- usage --------------------------------------------------------------------------------------------

    async def _usage_row(self, guild_id: int, user_id: int, period_start: datetime) -> QuotaUsage:
        row = await QuotaUsage.get_or_none(guild_id=guild_id, user_id=user_id, period_start=period_start)
        if row is None:
            await ensure_guild(guild_id)
            await ensure_user(user_id)
            try:
                row = await QuotaUsage.create(guild_id=guild_id, user_id=user_id, period_start=period_start)
            except IntegrityError:  # a concurrent reservation created the row first
                row = await QuotaUsage.get(guild_id=guild_id, user_id=user_id, period_start=period_start)
        return row

    async def status(self, guild_id: int, user_id: int, role_ids: Iterable[int] = (), *, now: datetime | None = None) -> QuotaStatus:
        limit, period = await self.effective_limit(guild_id, user_id, role_ids)
        start, end = period_bounds(period, now)
        row = await QuotaUsage.get_or_none(guild_id=guild_id, user_id=user_id, period_start=start)
        used, held = (row.used, row.held) if row else (0, 0)
        return QuotaStatus(limit=limit, period=period, used=used, held=held, period_start=start, resets_at=end)

    async def prepare(
        self, guild_id: int, user_id: int, role_ids: Iterable[int] = (), *, now: datetime | None = None
    ) -> Reservation:
        """Work out the limit and make sure the period's usage row exists. Runs outside any transaction:
        on PostgreSQL a duplicate insert from a concurrent request would abort the transaction it ran in."""
        limit, period = await self.effective_limit(guild_id, user_id, role_ids)
        start, end = period_bounds(period, now)
        row = await self._usage_row(guild_id, user_id, start)
        return Reservation(usage_id=row.id, limit=limit, period=period, period_start=start, resets_at=end)

    async def hold(self, reservation: Reservation) -> None:
        """Hold one unit or raise QuotaExceeded; call inside the transaction that records the job."""
        # The limit check and the increment are one statement: the database serialises concurrent ones.
        changed = await (
            QuotaUsage.filter(id=reservation.usage_id)
            .annotate(total=F("used") + F("held"))
            .filter(total__lt=reservation.limit)
            .update(held=F("held") + 1)
        )
        if not changed:
            METRICS.quota_refused("quota")
            row = await QuotaUsage.get(id=reservation.usage_id)
            raise QuotaExceeded(QuotaStatus(
                limit=reservation.limit, period=reservation.period, used=row.used, held=row.held,
                period_start=reservation.period_start, resets_at=reservation.resets_at,
            ))

    async def reserve(
        self, guild_id: int, user_id: int, role_ids: Iterable[int] = (), *, now: datetime | None = None
    ) -> Reservation:
        reservation = await self.prepare(guild_id, user_id, role_ids, now=now)
        await self.hold(reservation)
        return reservation

    async def charge(self, job_id: int) -> bool:
        """The job delivered a video: its held unit becomes used. True if this call did it."""
        return await self._settle(job_id, LedgerState.CHARGED)

    async def refund(self, job_id: int) -> bool:
        """The job ended without a video: its held unit is released. True if this call did it."""
        return await self._settle(job_id, LedgerState.REFUNDED)

    async def _settle(self, job_id: int, to: LedgerState) -> bool:
        async with in_transaction():
            entry = await QuotaEntry.get_or_none(job_id=job_id)
            if entry is None:
                return False
            flipped = await QuotaEntry.filter(id=entry.id, state=LedgerState.HELD).update(
                state=to, settled_at=datetime.now(UTC)
            )
            if not flipped:
                return False
            if to == LedgerState.CHARGED:
                await QuotaUsage.filter(id=entry.usage_id).update(held=F("held") - 1, used=F("used") + 1)
            else:
                await QuotaUsage.filter(id=entry.usage_id).update(held=F("held") - 1)
            return True

    async def reset_usage(self, guild_id: int, user_id: int, *, now: datetime | None = None) -> None:
        """Forget what a member used this period; units held by running jobs stay held."""
        _, period = await self.effective_limit(guild_id, user_id)
        start, _ = period_bounds(period, now)
        await QuotaUsage.filter(guild_id=guild_id, user_id=user_id, period_start=start).update(used=0)

    async def guild_usage(self, guild_id: int, *, now: datetime | None = None) -> list[QuotaUsage]:
        guild = await ensure_guild(guild_id)
        period = QuotaPeriod(guild.quota_period) if guild.quota_period else self.defaults.period
        start, _ = period_bounds(period, now)
        return await QuotaUsage.filter(guild_id=guild_id, period_start=start).order_by("-used", "-held", "user_id")


async def held_entry(job: Job) -> QuotaEntry | None:
    return await QuotaEntry.get_or_none(job_id=job.id)
