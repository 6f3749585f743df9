"""`/luma-admin ...`: quota settings for server managers. Discord hides the group from members without Manage
Server by default, but server admins can change who sees it, so the bot checks the permission again."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_ui import texts
from bot.store import queries_ui
from bot.store.models import QuotaPeriod

if TYPE_CHECKING:
    from bot.app import LumaBot

# Far above any sensible use; keeps a typo from turning into a limit of millions.
MAX_LIMIT = 10_000
USAGE_LINES = 50
Limit = app_commands.Range[int, 0, MAX_LIMIT]
PERIOD_CHOICES = [app_commands.Choice(name=p.value, value=p.value) for p in QuotaPeriod]


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class AdminCog(commands.GroupCog, group_name="luma-admin", group_description=texts.ADMIN_GROUP):
    def __init__(self, bot: LumaBot) -> None:
        self.bot = bot
        super().__init__()

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        if interaction.guild_id is None:
            raise app_commands.NoPrivateMessage()
        if not interaction.permissions.manage_guild:
            raise app_commands.MissingPermissions(["manage_guild"])
        return True

    async def _answer(self, interaction: discord.Interaction, text: str) -> None:
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=discord.AllowedMentions.none())

    @app_commands.command(name="limit", description=texts.ADMIN_LIMIT)
    @app_commands.describe(limit=texts.OPT_LIMIT, period=texts.OPT_PERIOD)
    @app_commands.choices(period=PERIOD_CHOICES)
    async def limit(self, interaction: discord.Interaction, limit: Limit, period: str | None = None) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.guild_id is not None
        if period is None:
            _, current = await queries_ui.guild_quota(interaction.guild_id)
            chosen = current
        else:
            chosen = QuotaPeriod(period)
        await self.bot.quotas.set_guild_limit(interaction.guild_id, limit, chosen)
        shown = chosen or self.bot.quotas.defaults.period
        await self._answer(interaction, texts.admin_limit_set(limit, str(shown)))

    @app_commands.command(name="role-limit", description=texts.ADMIN_ROLE_LIMIT)
    @app_commands.describe(role=texts.OPT_ROLE, limit=texts.OPT_ROLE_LIMIT)
    async def role_limit(
        self, interaction: discord.Interaction, role: discord.Role, limit: Limit | None = None
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.guild_id is not None
        await self.bot.quotas.set_role_limit(interaction.guild_id, role.id, limit)
        await self._answer(interaction, texts.admin_role_limit_set(role.mention, limit))

    @app_commands.command(name="user-limit", description=texts.ADMIN_USER_LIMIT)
    @app_commands.describe(member=texts.OPT_MEMBER, limit=texts.OPT_USER_LIMIT)
    async def user_limit(
        self, interaction: discord.Interaction, member: discord.Member, limit: Limit | None = None
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.guild_id is not None
        await self.bot.quotas.set_user_limit(interaction.guild_id, member.id, limit)
        await self._answer(interaction, texts.admin_user_limit_set(member.mention, limit))

    @app_commands.command(name="reset", description=texts.ADMIN_RESET)
    @app_commands.describe(member=texts.OPT_MEMBER)
    async def reset(self, interaction: discord.Interaction, member: discord.Member) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.guild_id is not None
        await self.bot.quotas.reset_usage(interaction.guild_id, member.id)
        await self._answer(interaction, texts.admin_reset(member.mention))

    @app_commands.command(name="usage", description=texts.ADMIN_USAGE)
    async def usage(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.guild_id is not None
        rows = await self.bot.quotas.guild_usage(interaction.guild_id)
        rows = [r for r in rows if r.used or r.held]
        if not rows:
            await self._answer(interaction, texts.ADMIN_USAGE_EMPTY)
            return
        _, period = await queries_ui.guild_quota(interaction.guild_id)
        lines = [texts.admin_usage_line(f"<@{r.user_id}>", r.used, r.held) for r in rows[:USAGE_LINES]]
        embed = discord.Embed(
            title=texts.admin_usage_title(str(period or self.bot.quotas.defaults.period)),
            description="\n".join(lines),
        )
        await interaction.followup.send(
            embed=embed, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )

    @app_commands.command(name="providers", description=texts.ADMIN_PROVIDERS)
    async def providers(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        report = await self.bot.engine.provider_report()
        embed = discord.Embed(title=texts.ADMIN_PROVIDERS_TITLE, description=texts.ADMIN_PROVIDERS_NOTE)
        for position, provider in enumerate(report, start=1):
            embed.add_field(
                name=texts.provider_heading(position, provider["provider"]),
                value=texts.provider_report(provider)[:1024],
                inline=False,
            )
        await interaction.followup.send(embed=embed, ephemeral=True, allowed_mentions=discord.AllowedMentions.none())


async def setup(bot: LumaBot) -> None:
    await bot.add_cog(AdminCog(bot))
