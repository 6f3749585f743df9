"""Per-member quotas and the server budget, in credits: effective limits, periods, and the reserve → charge |
refund ledger.

Amounts are integers in millicredits (1000 = one credit; a credit is the price of the provider's default video,
see bot/luma/prices.py). Reservation is two conditional UPDATEs in the job's transaction: the member's row
(`used + held + cost <= limit`) and the server's budget row (`used + held + cost <= budget`), so concurrent
requests, from any number of processes, can never over-reserve either, on SQLite and PostgreSQL alike.
Settlement flips a ledger entry out of `held` with a compare-and-set, so each reservation is charged or
refunded exactly once even if settlement runs twice.
"""

from __future__ import annotations

import calendar
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from bot.luma.options import VideoOptions
from bot.luma.prices import CREDIT, Cost, Pricing, ceil_div
from bot.metrics import METRICS
from bot.store.models import (
    BudgetUsage,
    Guild,
    Job,
    JobAction,
    LedgerState,
    QuotaEntry,
    QuotaPeriod,
    QuotaUsage,
    RoleLimit,
    User,
    UserLimit,
)

# A server without its own budget period counts its spend per month: the period owners budget in.
DEFAULT_BUDGET_PERIOD = QuotaPeriod.MONTH


class QuotaExceeded(Exception):
    def __init__(self, status: QuotaStatus, cost: int = CREDIT) -> None:
        super().__init__(f"quota of {status.limit} millicredits per {status.period} too small for {cost}")
        self.status = status
        self.cost = cost


class BudgetExceeded(Exception):
    """The server's budget for the period cannot cover this request, whatever the member's own allowance."""

    def __init__(self, status: BudgetStatus, cost: int) -> None:
        super().__init__(f"budget of {status.budget} millicredits per {status.period} too small for {cost}")
        self.status = status
        self.cost = cost


@dataclass(frozen=True, slots=True)
class QuotaDefaults:
    limit: int  # credits (QUOTA_DEFAULT_LIMIT)
    period: QuotaPeriod


@dataclass(frozen=True, slots=True)
class Reservation:
    usage_id: int
    limit: int
    period: QuotaPeriod
    period_start: datetime
    resets_at: datetime
    budget_usage_id: int | None = None
    budget: int | None = None
    budget_period: QuotaPeriod = DEFAULT_BUDGET_PERIOD
    budget_start: datetime | None = None
    budget_resets_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class QuotaStatus:
    """A member's allowance, in millicredits."""

    limit: int
    period: QuotaPeriod
    used: int
    held: int
    period_start: datetime
    resets_at: datetime

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used - self.held)


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """The server's spend this budget period, in millicredits; `budget` None: no cap."""

    budget: int | None
    period: QuotaPeriod
    used: int
    held: int
    period_start: datetime
    resets_at: datetime

    @property
    def remaining(self) -> int | None:
        return None if self.budget is None else max(0, self.budget - self.used - self.held)


@dataclass(frozen=True, slots=True)
class LedgerLine:
    """One ledger entry with its job's details: a row of the admins' CSV export."""

    entry_id: int
    job_id: int
    user_id: int
    created_at: datetime
    settled_at: datetime | None
    state: LedgerState
    action: str
    provider: str
    model: str | None
    resolution: str | None
    duration: str | None
    amount: int  # millicredits reserved
    charged: int | None  # millicredits charged (0 refunded, None still held)
    price: int | None  # micro-USD estimate
    actual_price: int | None  # micro-USD reported by the provider

    @property
    def spent(self) -> int | None:
        """Micro-USD the provider billed (charged entries only): its own figure, else the estimate."""
        if self.state != LedgerState.CHARGED:
            return 0
        return self.actual_price if self.actual_price is not None else self.price


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


async def video_options(guild_id: int) -> dict:
    """The server's limits on options and its defaults, as stored (bot.luma.options.ServerOptions JSON)."""
    row = await Guild.filter(id=guild_id).values_list("video_options", flat=True)
    value = row[0] if row else None
    if isinstance(value, str | bytes):
        value = json.loads(value)
    return value if isinstance(value, dict) else {}


async def set_video_options(guild_id: int, options: dict) -> None:
    await ensure_guild(guild_id)
    await Guild.filter(id=guild_id).update(video_options=options or None)


class QuotaBook:
    """Reads and changes quotas and budgets. `defaults` come from QUOTA_DEFAULT_LIMIT / QUOTA_DEFAULT_PERIOD;
    `pricing` prices each job (by default: the shipped prices, a credit being each provider's default video).
    Every amount it takes or returns is in millicredits."""

    def __init__(self, defaults: QuotaDefaults, pricing: Pricing | None = None) -> None:
        self.defaults = defaults
        self.pricing = pricing or Pricing()

    def cost_of(self, provider: str, action: JobAction | str, options: dict | VideoOptions) -> Cost:
        opts = options if isinstance(options, VideoOptions) else VideoOptions.from_json(options)
        return self.pricing.cost(provider, opts, extend=action == JobAction.EXTEND)

    # -- limits -------------------------------------------------------------------------------------------

    async def effective_limit(
        self, guild_id: int, user_id: int, role_ids: Iterable[int] = ()
    ) -> tuple[int, QuotaPeriod]:
        """A user override beats role limits, which beat the server's limit, which beats the defaults."""
        guild = await ensure_guild(guild_id)
        period = QuotaPeriod(guild.quota_period) if guild.quota_period else self.defaults.period
        override = await UserLimit.get_or_none(guild_id=guild_id, user_id=user_id)
        if override is not None:
            return override.limit, period
        role_ids = list(role_ids)
        if role_ids:
            # Tortoise types every values_list as tuples, but flat=True with one field gives the values.
            limits = cast(
                list[int],
                await RoleLimit.filter(guild_id=guild_id, role_id__in=role_ids).values_list(
                    "limit", flat=True
                ),
            )
            if limits:
                return max(limits), period
        limit = guild.quota_limit if guild.quota_limit is not None else self.defaults.limit * CREDIT
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

    # -- the server budget --------------------------------------------------------------------------------

    async def set_budget(self, guild_id: int, budget: int | None, period: QuotaPeriod | None = None) -> None:
        """`budget` None removes the cap; `period` None keeps the current one (a month by default)."""
        guild = await ensure_guild(guild_id)
        await Guild.filter(id=guild_id).update(budget=budget, budget_period=period or guild.budget_period)

    @staticmethod
    def _budget_period(guild: Guild) -> QuotaPeriod:
        return QuotaPeriod(guild.budget_period) if guild.budget_period else DEFAULT_BUDGET_PERIOD

    async def _budget_row(
        self, guild_id: int, period: QuotaPeriod, start: datetime, end: datetime
    ) -> BudgetUsage:
        row = await BudgetUsage.get_or_none(guild_id=guild_id, period=period, period_start=start)
        if row is None:
            # A row appears with the period's first request, or when a server changes its budget period: what
            # the ledger already charged in the period counts from the start.
            charged = await QuotaEntry.filter(
                job__guild_id=guild_id, state=LedgerState.CHARGED, created_at__gte=start, created_at__lt=end
            ).values_list("charged", flat=True)
            try:
                row = await BudgetUsage.create(
                    guild_id=guild_id, period=period, period_start=start, used=sum(c or 0 for c in charged)
                )
            except IntegrityError:  # a concurrent request created it first
                row = await BudgetUsage.get(guild_id=guild_id, period=period, period_start=start)
        return row

    async def budget_status(self, guild_id: int, *, now: datetime | None = None) -> BudgetStatus:
        guild = await ensure_guild(guild_id)
        period = self._budget_period(guild)
        start, end = period_bounds(period, now)
        row = await BudgetUsage.get_or_none(guild_id=guild_id, period=period, period_start=start)
        used, held = (row.used, row.held) if row else (0, 0)
        return BudgetStatus(
            budget=guild.budget, period=period, used=used, held=held, period_start=start, resets_at=end
        )

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

    async def status(
        self, guild_id: int, user_id: int, role_ids: Iterable[int] = (), *, now: datetime | None = None
    ) -> QuotaStatus:
        limit, period = await self.effective_limit(guild_id, user_id, role_ids)
        start, end = period_bounds(period, now)
        row = await QuotaUsage.get_or_none(guild_id=guild_id, user_id=user_id, period_start=start)
        used, held = (row.used, row.held) if row else (0, 0)
        return QuotaStatus(
            limit=limit, period=period, used=used, held=held, period_start=start, resets_at=end
        )

    async def prepare(
        self, guild_id: int, user_id: int, role_ids: Iterable[int] = (), *, now: datetime | None = None
    ) -> Reservation:
        """Work out the limit and budget and make sure the period's usage rows exist. Runs outside any
        transaction: on PostgreSQL a duplicate insert from a concurrent request would abort the transaction."""
        limit, period = await self.effective_limit(guild_id, user_id, role_ids)
        start, end = period_bounds(period, now)
        row = await self._usage_row(guild_id, user_id, start)
        guild = await Guild.get(id=guild_id)
        budget_period = self._budget_period(guild)
        budget_start, budget_end = period_bounds(budget_period, now)
        budget_row = await self._budget_row(guild_id, budget_period, budget_start, budget_end)
        return Reservation(
            usage_id=row.id,
            limit=limit,
            period=period,
            period_start=start,
            resets_at=end,
            budget_usage_id=budget_row.id,
            budget=guild.budget,
            budget_period=budget_period,
            budget_start=budget_start,
            budget_resets_at=budget_end,
        )

    async def hold(self, reservation: Reservation, amount: int = CREDIT) -> None:
        """Hold `amount` millicredits on the member and on the server budget, or raise QuotaExceeded /
        BudgetExceeded. Call inside the transaction that records the job: a refusal by the budget rolls back
        the member's hold with it."""
        # Each check and its increment are one statement: the database serialises concurrent ones (PostgreSQL
        # re-checks the condition on the row as the previous writer committed it).
        changed = await (
            QuotaUsage.filter(id=reservation.usage_id)
            .annotate(total=F("used") + F("held"))
            .filter(total__lte=reservation.limit - amount)
            .update(held=F("held") + amount)
        )
        if not changed:
            METRICS.quota_refused("quota")
            row = await QuotaUsage.get(id=reservation.usage_id)
            raise QuotaExceeded(
                QuotaStatus(
                    limit=reservation.limit,
                    period=reservation.period,
                    used=row.used,
                    held=row.held,
                    period_start=reservation.period_start,
                    resets_at=reservation.resets_at,
                ),
                amount,
            )
        if reservation.budget_usage_id is None:
            return
        budget = BudgetUsage.filter(id=reservation.budget_usage_id)
        if reservation.budget is not None:
            budget = budget.annotate(total=F("used") + F("held")).filter(
                total__lte=reservation.budget - amount
            )
        if not await budget.update(held=F("held") + amount):
            budget_row = await BudgetUsage.get(id=reservation.budget_usage_id)
            assert reservation.budget_start is not None and reservation.budget_resets_at is not None
            raise BudgetExceeded(
                BudgetStatus(
                    budget=reservation.budget,
                    period=reservation.budget_period,
                    used=budget_row.used,
                    held=budget_row.held,
                    period_start=reservation.budget_start,
                    resets_at=reservation.budget_resets_at,
                ),
                amount,
            )

    async def reserve(
        self,
        guild_id: int,
        user_id: int,
        role_ids: Iterable[int] = (),
        *,
        now: datetime | None = None,
        amount: int = CREDIT,
    ) -> Reservation:
        reservation = await self.prepare(guild_id, user_id, role_ids, now=now)
        async with in_transaction():
            await self.hold(reservation, amount)
        return reservation

    async def record_actual_price(self, job_id: int, micro_usd: int) -> bool:
        """The provider reported what it billed for this job: the charge will settle that instead of the
        estimate. Only while the entry is held; True if recorded."""
        return bool(
            await QuotaEntry.filter(job_id=job_id, state=LedgerState.HELD).update(actual_price=micro_usd)
        )

    async def charge(self, job_id: int) -> bool:
        """The job delivered a video: its held amount is released and its cost becomes used. True if this call
        did it."""
        return await self._settle(job_id, LedgerState.CHARGED)

    async def refund(self, job_id: int) -> bool:
        """The job ended without a video: exactly what it held is released. True if this call did it."""
        return await self._settle(job_id, LedgerState.REFUNDED)

    @staticmethod
    def _charge_for(entry: QuotaEntry) -> int:
        """The estimate, or the provider's own figure converted at the rate the job was priced at."""
        if entry.actual_price is None or not entry.price:
            return entry.amount
        return ceil_div(entry.actual_price * entry.amount, entry.price)

    async def _settle(self, job_id: int, to: LedgerState) -> bool:
        async with in_transaction():
            entry = await QuotaEntry.get_or_none(job_id=job_id)
            if entry is None:
                return False
            charged = self._charge_for(entry) if to == LedgerState.CHARGED else 0
            # The compare-and-set also pins the actual price read: one recorded meanwhile is not missed.
            flipped = await QuotaEntry.filter(
                id=entry.id,
                state=LedgerState.HELD,
                **(
                    {"actual_price__isnull": True}
                    if entry.actual_price is None
                    else {"actual_price": entry.actual_price}
                ),
            ).update(state=to, settled_at=datetime.now(UTC), charged=charged)
            if not flipped:
                fresh = await QuotaEntry.get(id=entry.id)
                if fresh.state != LedgerState.HELD:
                    return False
                return await self._settle(job_id, to)
            await QuotaUsage.filter(id=entry.usage_id).update(
                held=F("held") - entry.amount, used=F("used") + charged
            )
            if entry.budget_usage_id is not None:
                await BudgetUsage.filter(id=entry.budget_usage_id).update(
                    held=F("held") - entry.amount, used=F("used") + charged
                )
            return True

    async def reset_usage(self, guild_id: int, user_id: int, *, now: datetime | None = None) -> None:
        """Forget what a member used this period; amounts held by running jobs stay held. The server's budget
        keeps counting it: that money was spent."""
        _, period = await self.effective_limit(guild_id, user_id)
        start, _ = period_bounds(period, now)
        await QuotaUsage.filter(guild_id=guild_id, user_id=user_id, period_start=start).update(used=0)

    async def guild_usage(self, guild_id: int, *, now: datetime | None = None) -> list[QuotaUsage]:
        guild = await ensure_guild(guild_id)
        period = QuotaPeriod(guild.quota_period) if guild.quota_period else self.defaults.period
        start, _ = period_bounds(period, now)
        return await QuotaUsage.filter(guild_id=guild_id, period_start=start).order_by(
            "-used", "-held", "user_id"
        )

    async def period_ledger(
        self, guild_id: int, *, now: datetime | None = None
    ) -> tuple[BudgetStatus, list[LedgerLine]]:
        """The server's budget status and every ledger entry of its current budget period, oldest first."""
        status = await self.budget_status(guild_id, now=now)
        rows = (
            await QuotaEntry.filter(
                job__guild_id=guild_id, created_at__gte=status.period_start, created_at__lt=status.resets_at
            )
            .order_by("id")
            .values(
                "id",
                "job_id",
                "job__user_id",
                "created_at",
                "settled_at",
                "state",
                "job__action",
                "job__provider",
                "job__options",
                "amount",
                "charged",
                "price",
                "actual_price",
            )
        )
        lines = []
        for r in rows:
            raw = r["job__options"]
            opts = VideoOptions.from_json(json.loads(raw) if isinstance(raw, str | bytes) else raw)
            lines.append(
                LedgerLine(
                    entry_id=r["id"],
                    job_id=r["job_id"],
                    user_id=r["job__user_id"],
                    created_at=r["created_at"],
                    settled_at=r["settled_at"],
                    state=LedgerState(r["state"]),
                    action=str(r["job__action"]),
                    provider=r["job__provider"],
                    model=opts.model,
                    resolution=opts.resolution,
                    duration=opts.duration,
                    amount=r["amount"],
                    charged=r["charged"],
                    price=r["price"],
                    actual_price=r["actual_price"],
                )
            )
        return status, lines


async def held_entry(job: Job) -> QuotaEntry | None:
    return await QuotaEntry.get_or_none(job_id=job.id)
