"""Tortoise models: servers and their quota settings, users, jobs, and the quota ledger.

A *job* is our record of one video request; a *task* is the provider's. A job row holds everything needed
to finish it after a restart, so no state lives only in memory.

Each foreign key `x` also gives an instance the attribute `x_id`; the models declare those as bare annotations
(`guild_id: int`) for the type checker. Tortoise makes fields only of `Field` values, so they add no columns.
"""

from __future__ import annotations

import enum

from tortoise import fields
from tortoise.models import Model


class JobState(enum.StrEnum):
    QUEUED = "queued"  # accepted and stored, waiting for a free provider slot
    SUBMITTING = "submitting"  # claimed; the create request may be on the wire (task id not known yet)
    RUNNING = "running"  # the provider has the task; we poll it or wait for its callback
    COMPLETED = "completed"  # the provider produced a video
    FAILED = "failed"  # ended without a video; the unit is refunded

    @property
    def finished(self) -> bool:
        return self in (JobState.COMPLETED, JobState.FAILED)


UNFINISHED_STATES = (JobState.QUEUED, JobState.SUBMITTING, JobState.RUNNING)
ACTIVE_STATES = (JobState.SUBMITTING, JobState.RUNNING)


class JobAction(enum.StrEnum):
    GENERATE = "generate"
    EXTEND = "extend"


class FailureKind(enum.StrEnum):
    """Why a job ended without a video; the Discord layer turns each into one sentence."""

    MODERATION = "moderation"
    BALANCE = "balance"
    AUTH = "auth"
    INVALID = "invalid"
    PROVIDER = "provider"
    TIMEOUT = "timeout"
    QUEUE_TIMEOUT = "queue_timeout"  # it waited in the queue past its allowance and was never sent
    INTERRUPTED = "interrupted"  # the process died while the create request was in flight
    UNCONFIRMED = "unconfirmed"  # the provider never confirmed the create: a task may or may not exist
    FAILED = "failed"  # the provider's task failed for another reason


class QuotaPeriod(enum.StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class LedgerState(enum.StrEnum):
    HELD = "held"
    CHARGED = "charged"
    REFUNDED = "refunded"


class Guild(Model):
    """A Discord server. Null quota fields mean: use the defaults from the environment. Every amount of
    credits in the store is in millicredits (1000 = one credit), so dear and cheap videos add up exactly."""

    id = fields.BigIntField(primary_key=True, generated=False)
    quota_limit = fields.IntField(null=True)  # millicredits per member per period
    quota_period = fields.CharEnumField(QuotaPeriod, max_length=8, null=True)
    # The whole server's spend cap in millicredits per `budget_period` (null: none; the period: a month).
    budget = fields.BigIntField(null=True)
    budget_period = fields.CharEnumField(QuotaPeriod, max_length=8, null=True)
    # The admin's limits on options and the server's defaults (bot.luma.options.ServerOptions as JSON).
    video_options: dict | None = fields.JSONField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "guilds"


class User(Model):
    id = fields.BigIntField(primary_key=True, generated=False)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "users"


class RoleLimit(Model):
    """A per-role limit. A member gets the highest limit among their roles."""

    id = fields.IntField(primary_key=True)
    guild: fields.ForeignKeyRelation[Guild] = fields.ForeignKeyField(
        "models.Guild", related_name="role_limits", on_delete=fields.CASCADE
    )
    # The ids Tortoise sets from the keys above (annotations only, no columns: see the module docstring).
    guild_id: int
    role_id = fields.BigIntField()
    limit = fields.IntField()  # millicredits

    class Meta:
        table = "role_limits"
        unique_together = (("guild", "role_id"),)


class UserLimit(Model):
    """A per-member override, which beats role and server limits."""

    id = fields.IntField(primary_key=True)
    guild: fields.ForeignKeyRelation[Guild] = fields.ForeignKeyField(
        "models.Guild", related_name="user_limits", on_delete=fields.CASCADE
    )
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="limits", on_delete=fields.CASCADE
    )
    # The ids Tortoise sets from the keys above (annotations only, no columns: see the module docstring).
    guild_id: int
    user_id: int
    limit = fields.IntField()  # millicredits

    class Meta:
        table = "user_limits"
        unique_together = (("guild", "user"),)


class QuotaUsage(Model):
    """One member's counters for one period, in millicredits: `used` is charged, `held` is reserved by live
    jobs.

    Reservation is one conditional UPDATE on this row (used + held + cost <= limit), which is atomic on SQLite
    and PostgreSQL alike without explicit locks.
    """

    id = fields.IntField(primary_key=True)
    guild: fields.ForeignKeyRelation[Guild] = fields.ForeignKeyField(
        "models.Guild", related_name="usage", on_delete=fields.CASCADE
    )
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="usage", on_delete=fields.CASCADE
    )
    # The ids Tortoise sets from the keys above (annotations only, no columns: see the module docstring).
    guild_id: int
    user_id: int
    period_start = fields.DatetimeField()
    used = fields.IntField(default=0)
    held = fields.IntField(default=0)

    class Meta:
        table = "quota_usage"
        unique_together = (("guild", "user", "period_start"),)


class BudgetUsage(Model):
    """The whole server's counters for one budget period, in millicredits, kept whether or not a budget is
    set (so a budget set mid-period counts what was already spent). Reservation adds to it with a second
    conditional UPDATE (used + held + cost <= budget) in the same transaction as the member's."""

    id = fields.IntField(primary_key=True)
    guild: fields.ForeignKeyRelation[Guild] = fields.ForeignKeyField(
        "models.Guild", related_name="budget_usage", on_delete=fields.CASCADE
    )
    # The ids Tortoise sets from the keys above (annotations only, no columns: see the module docstring).
    guild_id: int
    period = fields.CharEnumField(QuotaPeriod, max_length=8)
    period_start = fields.DatetimeField()
    used = fields.BigIntField(default=0)
    held = fields.BigIntField(default=0)

    class Meta:
        table = "budget_usage"
        unique_together = (("guild", "period", "period_start"),)


class Job(Model):
    id = fields.BigIntField(primary_key=True, generated=True)
    guild: fields.ForeignKeyRelation[Guild] = fields.ForeignKeyField("models.Guild", related_name="jobs")
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField("models.User", related_name="jobs")
    # The ids Tortoise sets from the keys above (annotations only, no columns: see the module docstring).
    guild_id: int
    user_id: int
    # Where the request came from and where the answer goes (Discord snowflakes, stored as plain ints so the
    # store knows nothing of Discord).
    channel_id = fields.BigIntField()
    thread_id = fields.BigIntField(null=True)
    status_message_id = fields.BigIntField(null=True)
    source_message_id = fields.BigIntField(null=True)  # the member's reply that asked for an extension
    result_message_id = fields.BigIntField(null=True)
    result_channel_id = fields.BigIntField(null=True)  # where the result went (thread, channel or DM)
    # When the status message and thread were recorded (or given up on): delivery waits for it.
    placed_at = fields.DatetimeField(null=True)

    action = fields.CharEnumField(JobAction, max_length=16)
    prompt = fields.TextField()
    options: dict = fields.JSONField(default=dict)  # aspect_ratio, loop, enhancement, start/end image URLs
    parent: fields.ForeignKeyNullableRelation[Job] = fields.ForeignKeyField(
        "models.Job", related_name="children", null=True, on_delete=fields.SET_NULL
    )
    parent_id: int | None
    parent_video_id = fields.CharField(max_length=128, null=True)
    parent_video_url = fields.TextField(null=True)

    provider = fields.CharField(max_length=32)
    # The provider key (bot.jobs.providers.key_id_for) and its slot while the job is with the provider: a
    # unique index over (key_id, slot) of submitting and running jobs holds each key's limit (migration 0006).
    key_id = fields.CharField(max_length=64, null=True)
    slot = fields.IntField(null=True)
    task_id = fields.CharField(max_length=128, null=True, db_index=True)
    state = fields.CharEnumField(JobState, max_length=16, default=JobState.QUEUED, db_index=True)

    video_id = fields.CharField(max_length=128, null=True, db_index=True)
    video_url = fields.TextField(null=True)
    video_width = fields.IntField(null=True)
    video_height = fields.IntField(null=True)
    thumbnail_url = fields.TextField(null=True)
    thumbnail_width = fields.IntField(null=True)
    thumbnail_height = fields.IntField(null=True)
    failure_kind = fields.CharEnumField(FailureKind, max_length=16, null=True)
    failure_reason = fields.TextField(null=True)

    # Which process holds the job while it is submitting, and until when. A process that dies lets its lease
    # run out; the job is then failed as interrupted by whichever process notices, never sent twice.
    claimed_by = fields.CharField(max_length=64, null=True)
    lease_until = fields.DatetimeField(null=True)

    # Secret part of this job's callback URL; a callback without it is ignored.
    callback_secret = fields.CharField(max_length=64)

    created_at = fields.DatetimeField(auto_now_add=True)
    deadline_at = fields.DatetimeField()
    submitted_at = fields.DatetimeField(null=True)
    finished_at = fields.DatetimeField(null=True)
    next_poll_at = fields.DatetimeField(null=True, db_index=True)
    # Set when the requester has been told the outcome (result posted or failure explained).
    delivered_at = fields.DatetimeField(null=True)
    delivery_attempts = fields.IntField(default=0)
    next_delivery_at = fields.DatetimeField(null=True)
    # Set just before the first post of the outcome is sent: a job without it was never posted anywhere, so
    # only a job with it needs its thread searched for a post a crash kept us from recording.
    post_attempted_at = fields.DatetimeField(null=True)
    # The member (or a moderator) deleted the result post; the job stays in history.
    deleted_at = fields.DatetimeField(null=True)
    deleted_by = fields.BigIntField(null=True)
    # Times the job went back to the queue after its task failed in a way worth one more try (Luma's
    # generation_failed / output_not_found); a failed task is not billed, so resending it is safe.
    resubmits = fields.IntField(default=0, db_default=0)
    # What the job was priced at when accepted: millicredits reserved, and the provider's price in micro-USD
    # (null: unknown, or a job from before prices).
    cost = fields.BigIntField(null=True)
    price = fields.BigIntField(null=True)

    class Meta:
        table = "jobs"
        indexes = (("guild_id", "user_id", "created_at"), ("state", "delivered_at"))

    @property
    def is_finished(self) -> bool:
        return JobState(self.state).finished


class QuotaEntry(Model):
    """What one job reserved, in millicredits. It moves held → charged or held → refunded exactly once; a
    charge settles `amount`, or the provider-reported `actual_price` converted at the job's own rate."""

    id = fields.IntField(primary_key=True)
    job: fields.OneToOneRelation[Job] = fields.OneToOneField(
        "models.Job", related_name="quota_entry", on_delete=fields.CASCADE
    )
    usage: fields.ForeignKeyRelation[QuotaUsage] = fields.ForeignKeyField(
        "models.QuotaUsage", related_name="entries", on_delete=fields.CASCADE
    )
    # The server's budget row this amount also counts against (null: an entry from before budgets).
    budget_usage: fields.ForeignKeyNullableRelation[BudgetUsage] = fields.ForeignKeyField(
        "models.BudgetUsage", related_name="entries", null=True, on_delete=fields.SET_NULL
    )
    # The ids Tortoise sets from the keys above (annotations only, no columns: see the module docstring).
    job_id: int
    usage_id: int
    budget_usage_id: int | None
    state = fields.CharEnumField(LedgerState, max_length=16, default=LedgerState.HELD)
    # Millicredits held. The database default (one credit) is what every entry from before credits held.
    amount = fields.BigIntField(default=1000, db_default=1000)
    charged = fields.BigIntField(null=True)  # millicredits charged once settled (0 when refunded)
    price = fields.BigIntField(null=True)  # the estimate, micro-USD (null: the provider publishes none)
    actual_price = fields.BigIntField(null=True)  # what the provider reported it billed, micro-USD
    created_at = fields.DatetimeField(auto_now_add=True)
    settled_at = fields.DatetimeField(null=True)

    class Meta:
        table = "quota_ledger"
