"""Read-only queries the Discord layer needs beyond bot/store/jobs.py and quotas.py."""

from __future__ import annotations

from bot.store.models import Guild, QuotaPeriod


async def guild_quota(guild_id: int) -> tuple[int | None, QuotaPeriod | None]:
    """The server's own limit and period (None where it uses the defaults)."""
    guild = await Guild.get_or_none(id=guild_id)
    if guild is None:
        return None, None
    return guild.quota_limit, QuotaPeriod(guild.quota_period) if guild.quota_period else None
