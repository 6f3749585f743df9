"""`/luma-admin ...`: quotas, the server budget, limits on options and spend, for server managers. Discord hides the group from members without Manage
Server by default, but server admins can change who sees it, so the bot checks the permission again."""

from __future__ import annotations

import io
from collections import defaultdict
from dataclasses import replace
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_ui import costs, texts
from bot.luma.capabilities import ALL_DURATIONS, ALL_MODELS, ALL_RESOLUTIONS, spec_for
from bot.luma.options import ServerOptions, check_server_options
from bot.luma.prices import CREDIT
from bot.store import queries_ui
from bot.store.models import LedgerState, QuotaPeriod
from bot.store.quotas import set_video_options, video_options

if TYPE_CHECKING:
    from bot.app import LumaBot

# Far above any sensible use; keeps a typo from turning into a limit of millions.
MAX_LIMIT = 10_000
USAGE_LINES = 50
Limit = app_commands.Range[int, 0, MAX_LIMIT]
# A million credits: far above any server's month, and a typo's ceiling.
MAX_BUDGET = 1_000_000
Budget = app_commands.Range[int, 0, MAX_BUDGET]
PERIOD_CHOICES = [app_commands.Choice(name=p.value, value=p.value) for p in QuotaPeriod]
ANY = "any"
DEFAULT = "default"


def _with(values: tuple[str, ...], extra: str) -> list[app_commands.Choice[str]]:
    return [app_commands.Choice(name=v, value=v) for v in (*values, extra)]


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
        await self.bot.quotas.set_guild_limit(interaction.guild_id, limit * CREDIT, chosen)
        shown = chosen or self.bot.quotas.defaults.period
        await self._answer(interaction, texts.admin_limit_set(limit, str(shown)))

    @app_commands.command(name="role-limit", description=texts.ADMIN_ROLE_LIMIT)
    @app_commands.describe(role=texts.OPT_ROLE, limit=texts.OPT_ROLE_LIMIT)
    async def role_limit(
        self, interaction: discord.Interaction, role: discord.Role, limit: Limit | None = None
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.guild_id is not None
        await self.bot.quotas.set_role_limit(
            interaction.guild_id, role.id, None if limit is None else limit * CREDIT
        )
        await self._answer(interaction, texts.admin_role_limit_set(role.mention, limit))

    @app_commands.command(name="user-limit", description=texts.ADMIN_USER_LIMIT)
    @app_commands.describe(member=texts.OPT_MEMBER, limit=texts.OPT_USER_LIMIT)
    async def user_limit(
        self, interaction: discord.Interaction, member: discord.Member, limit: Limit | None = None
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.guild_id is not None
        await self.bot.quotas.set_user_limit(
            interaction.guild_id, member.id, None if limit is None else limit * CREDIT
        )
        await self._answer(interaction, texts.admin_user_limit_set(member.mention, limit))

    @app_commands.command(name="reset", description=texts.ADMIN_RESET)
    @app_commands.describe(member=texts.OPT_MEMBER)
    async def reset(self, interaction: discord.Interaction, member: discord.Member) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.guild_id is not None
        await self.bot.quotas.reset_usage(interaction.guild_id, member.id)
        await self._answer(interaction, texts.admin_reset(member.mention))

    @app_commands.command(name="budget", description=texts.ADMIN_BUDGET)
    @app_commands.describe(credits=texts.OPT_BUDGET, period=texts.OPT_BUDGET_PERIOD)
    @app_commands.choices(period=PERIOD_CHOICES)
    async def budget(
        self, interaction: discord.Interaction, credits: Budget | None = None, period: str | None = None
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.guild_id is not None
        await self.bot.quotas.set_budget(
            interaction.guild_id,
            None if credits is None else credits * CREDIT,
            QuotaPeriod(period) if period else None,
        )
        status = await self.bot.quotas.budget_status(interaction.guild_id)
        credit_price = self.bot.quotas.pricing.credit_price(self.bot.settings.luma_provider)
        await self._answer(interaction, texts.admin_budget_set(credits, str(status.period), credit_price))

    @app_commands.command(name="options", description=texts.ADMIN_OPTIONS)
    @app_commands.describe(
        max_resolution=texts.OPT_MAX_RESOLUTION,
        max_duration=texts.OPT_MAX_DURATION,
        models=texts.OPT_MODELS,
        default_model=texts.OPT_DEFAULT_MODEL,
        default_resolution=texts.OPT_DEFAULT_RESOLUTION,
        default_duration=texts.OPT_DEFAULT_DURATION,
    )
    @app_commands.choices(
        max_resolution=_with(ALL_RESOLUTIONS, ANY),
        max_duration=_with(ALL_DURATIONS, ANY),
        default_model=_with(ALL_MODELS, DEFAULT),
        default_resolution=_with(ALL_RESOLUTIONS, DEFAULT),
        default_duration=_with(ALL_DURATIONS, DEFAULT),
    )
    async def options(
        self,
        interaction: discord.Interaction,
        max_resolution: str | None = None,
        max_duration: str | None = None,
        models: str | None = None,
        default_model: str | None = None,
        default_resolution: str | None = None,
        default_duration: str | None = None,
    ) -> None:
        """Each option given replaces that setting (`any` / `default` clears it); the others stay."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.guild_id is not None
        spec = spec_for(self.bot.settings.luma_provider)
        if not spec.models:
            await self._answer(interaction, texts.admin_no_options(spec.title[:1].upper() + spec.title[1:]))
            return
        current = ServerOptions.from_json(await video_options(interaction.guild_id))
        changes: dict = {}
        if max_resolution is not None:
            changes["max_resolution"] = None if max_resolution == ANY else max_resolution
        if max_duration is not None:
            changes["max_duration"] = None if max_duration == ANY else max_duration
        if models is not None:
            names = tuple(m for m in (p.strip() for p in models.replace(" ", ",").split(",")) if m)
            changes["models"] = () if not names or names == (ANY,) else names
        for name, value in (
            ("model", default_model),
            ("resolution", default_resolution),
            ("duration", default_duration),
        ):
            if value is not None:
                changes[name] = None if value == DEFAULT else value
        wanted = replace(current, **changes)
        if changes:
            check_server_options(spec, wanted)  # InvalidInput names what is possible
            await set_video_options(interaction.guild_id, wanted.to_json())
        summary = costs.options_summary(spec, wanted, self.bot.settings.option_defaults)
        await self._answer(interaction, texts.admin_options(summary))

    @app_commands.command(name="usage", description=texts.ADMIN_USAGE)
    async def usage(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.guild_id is not None
        status, lines = await self.bot.quotas.period_ledger(interaction.guild_id)
        if not lines:
            await self._answer(interaction, texts.ADMIN_USAGE_EMPTY)
            return
        used: defaultdict[int, int] = defaultdict(int)
        held: defaultdict[int, int] = defaultdict(int)
        spent: defaultdict[int, int] = defaultdict(int)
        priced = True  # the money is shown only when every charged job has a price
        for line in lines:
            if line.state == LedgerState.CHARGED:
                used[line.user_id] += line.charged or 0
                if line.spent is None:
                    priced = False
                else:
                    spent[line.user_id] += line.spent
            elif line.state == LedgerState.HELD:
                held[line.user_id] += line.amount
        members = sorted(set(used) | set(held), key=lambda u: (-used[u], -held[u], u))
        rows = [
            texts.admin_usage_line(f"<@{u}>", used[u], held[u], spent[u] if priced else None)
            for u in members[:USAGE_LINES]
        ]
        total = texts.admin_usage_total(
            used=sum(used.values()),
            held=sum(held.values()),
            spent=sum(spent.values()) if priced else None,
            budget=status.budget,
            period=str(status.period),
        )
        embed = discord.Embed(
            title=texts.admin_usage_title(str(status.period)),
            description=(total + "\n" + "\n".join(rows))[:4096],
        )
        embed.set_footer(text=texts.ADMIN_USAGE_CSV_NOTE)
        name = f"luma-ledger-{status.period_start:%Y-%m-%d}.csv"
        await interaction.followup.send(
            embed=embed,
            file=discord.File(io.BytesIO(costs.ledger_csv(lines)), filename=name),
            ephemeral=True,
            allowed_mentions=discord.AllowedMentions.none(),
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
        await interaction.followup.send(
            embed=embed, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )


async def setup(bot: LumaBot) -> None:
    await bot.add_cog(AdminCog(bot))
