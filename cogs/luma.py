"""`/luma generate | extend | quota | history` and the "Extend video" message menu: thin handlers that defer,
turn options into a JobRequest or a query, and answer. Errors go to the tree's one error handler."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_ui import costs, flow, modals, texts
from bot.discord_ui.attachments import frame_url
from bot.discord_ui.buttons import job_id_of
from bot.discord_ui.choices import offer_provider_options
from bot.discord_ui.embeds import show_prompt
from bot.discord_ui.result_actions import stored_link_works
from bot.luma.capabilities import spec_for
from bot.luma.options import ServerOptions
from bot.luma.types import ASPECT_RATIOS, DEFAULT_ASPECT_RATIO
from bot.luma.validation import InvalidInput
from bot.store import jobs as store
from bot.store.models import Job, JobAction
from bot.store.quotas import video_options

if TYPE_CHECKING:
    from bot.app import LumaBot

HISTORY_SIZE = 10
# Discord shows at most 25 autocomplete choices, each name and value at most 100 characters.
AUTOCOMPLETE_SIZE = 25
CHOICE_LIMIT = 100

ASPECT_CHOICES = [
    app_commands.Choice(name=f"{r} (default)" if r == DEFAULT_ASPECT_RATIO else r, value=r)
    for r in ASPECT_RATIOS
]


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _choice_value(job: Job) -> str | None:
    """What to put in `video` for this job: its id, else its link, else a link to its result message."""
    if job.video_id and len(job.video_id) <= CHOICE_LIMIT:
        return job.video_id
    if job.video_url and len(job.video_url) <= CHOICE_LIMIT:
        return job.video_url
    if job.result_message_id:
        return flow.message_link(job.guild_id, job.thread_id or job.channel_id, job.result_message_id)
    return None


@app_commands.guild_only()
class LumaCog(commands.GroupCog, group_name="luma", group_description=texts.LUMA_GROUP):
    def __init__(self, bot: LumaBot) -> None:
        self.bot = bot
        self.extend_menu = app_commands.ContextMenu(name=texts.EXTEND_MENU, callback=self.extend_video_menu)
        app_commands.guild_only()(self.extend_menu)
        super().__init__()
        specs = [spec_for(c.name) for c in bot.settings.provider_configs()]
        offer_provider_options(self.generate, specs, bot.settings.option_defaults)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.extend_menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.extend_menu.name, type=self.extend_menu.type)

    @app_commands.command(name="generate", description=texts.GENERATE)
    @app_commands.describe(
        prompt=texts.OPT_PROMPT,
        aspect_ratio=texts.OPT_ASPECT_RATIO,
        loop=texts.OPT_LOOP,
        enhancement=texts.OPT_ENHANCEMENT,
        start_image=texts.OPT_START_IMAGE,
        end_image=texts.OPT_END_IMAGE,
        start_image_url=texts.OPT_START_IMAGE_URL,
        end_image_url=texts.OPT_END_IMAGE_URL,
        resolution=texts.OPT_RESOLUTION,
        duration=texts.OPT_DURATION,
        model=texts.OPT_MODEL,
    )
    @app_commands.choices(aspect_ratio=ASPECT_CHOICES)
    async def generate(
        self,
        interaction: discord.Interaction,
        prompt: str,
        aspect_ratio: str = DEFAULT_ASPECT_RATIO,
        loop: bool = False,
        enhancement: bool = True,
        start_image: discord.Attachment | None = None,
        end_image: discord.Attachment | None = None,
        start_image_url: str | None = None,
        end_image_url: str | None = None,
        resolution: str | None = None,
        duration: str | None = None,
        model: str | None = None,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        request = flow.base_request(
            interaction,
            prompt,
            aspect_ratio=aspect_ratio,
            loop=loop,
            enhancement=enhancement,
            resolution=resolution,
            duration=duration,
            model=model,
            start_image_url=frame_url(start_image, start_image_url, "start frame"),
            end_image_url=frame_url(end_image, end_image_url, "end frame"),
        )
        await flow.submit_from_interaction(interaction, request)

    @app_commands.command(name="extend", description=texts.EXTEND)
    @app_commands.describe(
        video=texts.OPT_VIDEO,
        prompt=texts.OPT_EXTEND_PROMPT,
        end_image=texts.OPT_END_IMAGE,
        end_image_url=texts.OPT_END_IMAGE_URL,
    )
    async def extend(
        self,
        interaction: discord.Interaction,
        video: str,
        prompt: str,
        end_image: discord.Attachment | None = None,
        end_image_url: str | None = None,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.guild_id is not None
        end = frame_url(end_image, end_image_url, "end frame")
        parent_job_id, target = await flow.resolve_extend_target(interaction.guild_id, video)
        request = flow.base_request(
            interaction,
            prompt,
            action=JobAction.EXTEND,
            parent_job_id=parent_job_id,
            extend_target=target,
            end_image_url=end,
        )
        await flow.submit_from_interaction(interaction, request)

    @extend.autocomplete("video")
    async def video_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        if interaction.guild_id is None:
            return []
        jobs = await store.recent_jobs(
            interaction.guild_id, interaction.user.id, limit=AUTOCOMPLETE_SIZE, completed_only=True
        )
        needle = current.strip().lower()
        choices = []
        for job in jobs:
            value = _choice_value(job)
            name = _cut(f"#{job.id} · {job.prompt}", CHOICE_LIMIT)
            if value is None or (needle and needle not in name.lower() and needle not in value.lower()):
                continue
            choices.append(app_commands.Choice(name=name, value=value))
        return choices

    @app_commands.command(name="quota", description=texts.QUOTA)
    async def quota(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.guild_id is not None
        status = await self.bot.quotas.status(
            interaction.guild_id, interaction.user.id, flow.role_ids(interaction.user)
        )
        budget = await self.bot.quotas.budget_status(interaction.guild_id)
        settings = self.bot.settings
        spec = spec_for(settings.luma_provider)
        server = ServerOptions.from_json(await video_options(interaction.guild_id))
        parts = [
            texts.quota(
                used=status.used,
                remaining=status.remaining,
                held=status.held,
                limit=status.limit,
                period=str(status.period),
                resets_at=status.resets_at,
            )
        ]
        if budget.budget is not None and budget.remaining is not None:
            parts.append(
                texts.quota_budget(
                    remaining=budget.remaining, budget=budget.budget, period=str(budget.period)
                )
            )
        parts.append(costs.credit_line(spec, self.bot.quotas.pricing, settings.option_defaults))
        parts.append(costs.price_list(spec, self.bot.quotas.pricing, server, settings.option_defaults))
        await interaction.followup.send("\n".join(parts)[:2000], ephemeral=True)

    @app_commands.command(name="history", description=texts.HISTORY)
    async def history(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        assert interaction.guild_id is not None
        jobs = await store.recent_jobs(interaction.guild_id, interaction.user.id, limit=HISTORY_SIZE)
        if not jobs:
            await interaction.followup.send(texts.HISTORY_EMPTY, ephemeral=True)
            return
        lines = []
        for job in jobs:
            result_link = (
                flow.message_link(job.guild_id, job.thread_id or job.channel_id, job.result_message_id)
                if job.result_message_id and job.deleted_at is None
                else None
            )
            lines.append(
                texts.history_line(
                    job_id=job.id,
                    state=str(job.state),
                    prompt=show_prompt(_cut(job.prompt, 80), 80),
                    created=job.created_at,
                    result_link=result_link,
                    # A link the provider no longer serves is left out (Original explains why).
                    video_url=job.video_url if stored_link_works(job) else None,
                    parent_id=job.parent_id,
                    deleted=job.deleted_at is not None,
                )
            )
        embed = discord.Embed(title=texts.HISTORY_TITLE, description="\n".join(lines)[:4096])
        await interaction.followup.send(embed=embed, ephemeral=True)

    async def extend_video_menu(self, interaction: discord.Interaction, message: discord.Message) -> None:
        # The job id is read from the message's own buttons: no database work before the modal, which must
        # be the first answer.
        me = self.bot.user
        job_id = job_id_of(message) if me is not None and message.author.id == me.id else None
        if job_id is None:
            raise InvalidInput(texts.NOT_A_RESULT)
        await interaction.response.send_modal(modals.extend_modal(job_id))


async def setup(bot: LumaBot) -> None:
    await bot.add_cog(LumaCog(bot))
