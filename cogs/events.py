"""Listeners: a member's reply to a result extends that video, and the extend modal's submissions (matched by
custom_id, so a modal opened before a restart still works after it)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
from discord.ext import commands

from bot.discord_ui import flow, modals, texts
from bot.discord_ui.buttons import job_id_of
from bot.discord_ui.errors import guarded, report_message_error
from bot.luma.validation import InvalidInput
from bot.store import jobs as store

if TYPE_CHECKING:
    from bot.app import LumaBot

log = logging.getLogger(__name__)


class EventsCog(commands.Cog):
    def __init__(self, bot: LumaBot) -> None:
        self.bot = bot

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction) -> None:
        if interaction.type != discord.InteractionType.modal_submit:
            return
        job_id = modals.modal_job_id(interaction)
        if job_id is None:
            return
        data: Any = interaction.data or {}
        prompt = modals.submitted_value(data.get("components"))
        await guarded(interaction, flow.extend_from_modal(interaction, job_id, prompt), job_id=job_id)

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        me = self.bot.user
        reference = message.reference
        if me is None or message.author.bot or message.guild is None or reference is None:
            return
        if reference.message_id is None or reference.channel_id != message.channel.id:
            return  # a forward or a cross-channel reference, not a reply
        resolved = reference.resolved
        if isinstance(resolved, discord.DeletedReferencedMessage):
            return
        if isinstance(resolved, discord.Message) and resolved.author.id != me.id:
            return  # a reply to someone else: ordinary conversation
        job = await store.find_by_message(reference.message_id)
        if job is None and isinstance(resolved, discord.Message):
            job_id = job_id_of(resolved)
            job = await store.get_job(job_id) if job_id else None
        if job is None:
            if isinstance(resolved, discord.Message):  # one of our messages, but not a result
                await report_message_error(self.bot, message, InvalidInput(texts.NOT_A_RESULT))
            return
        if job.guild_id != message.guild.id:
            return
        if not message.content.strip() and not self._can_read(message):
            await report_message_error(self.bot, message, InvalidInput(texts.REPLY_UNREADABLE), job_id=job.id)
            return
        try:
            await flow.extend_from_reply(self.bot, message, job)
        except Exception as exc:
            await report_message_error(self.bot, message, exc, job_id=job.id)

    def _can_read(self, message: discord.Message) -> bool:
        """Without the message-content intent Discord blanks a message's text unless it pings the bot."""
        me = self.bot.user
        return self.bot.intents.message_content or any(user.id == me.id for user in message.mentions if me)


async def setup(bot: LumaBot) -> None:
    await bot.add_cog(EventsCog(bot))
