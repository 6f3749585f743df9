"""The one error handler: every error becomes a short sentence for the user and a log line for the operator.

Slash commands reach it through `tree.on_error`; buttons, modals and replies call `guarded` / `report_*`
themselves, because discord.py only logs errors raised there.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Mapping

import discord
from discord import app_commands

from bot.discord_ui import texts
from bot.luma.validation import InvalidInput
from bot.store.quotas import BudgetExceeded, QuotaExceeded

log = logging.getLogger(__name__)


class CannotPost(Exception):
    """The bot lacks the permissions to post a job's status in this channel; checked before anything is
    reserved."""


def unwrap(error: BaseException) -> BaseException:
    while isinstance(error, app_commands.CommandInvokeError | app_commands.TransformerError):
        inner = error.__cause__ if isinstance(error, app_commands.TransformerError) else error.original
        if inner is None:
            break
        error = inner
    return error


def describe(error: BaseException, *, shutting_down: bool = False) -> tuple[str, bool]:
    """(sentence for the user, whether the error was expected). Unexpected ones get a reference to log."""
    error = unwrap(error)
    if isinstance(error, InvalidInput):
        return str(error), True
    if isinstance(error, QuotaExceeded):
        s = error.status
        return texts.quota_exceeded(
            limit=s.limit,
            period=str(s.period),
            used=s.used,
            held=s.held,
            resets_at=s.resets_at,
            cost=error.cost,
        ), True
    if isinstance(error, BudgetExceeded):
        b = error.status
        assert b.budget is not None
        return texts.budget_exceeded(
            budget=b.budget,
            period=str(b.period),
            used=b.used,
            held=b.held,
            resets_at=b.resets_at,
            cost=error.cost,
        ), True
    if isinstance(error, CannotPost):
        return texts.CANNOT_POST, True
    if isinstance(error, app_commands.NoPrivateMessage):
        return texts.GUILD_ONLY, True
    if isinstance(error, app_commands.MissingPermissions):
        return texts.NEEDS_MANAGE_GUILD, True
    if isinstance(error, app_commands.CommandOnCooldown):
        return texts.RATE_LIMITED, True
    if isinstance(error, app_commands.CheckFailure):
        return texts.GUILD_ONLY, True
    if shutting_down:
        return texts.SHUTTING_DOWN, True
    if isinstance(error, discord.Forbidden):
        return texts.FORBIDDEN, False
    return "", False


def _is_shutting_down(client: discord.Client) -> bool:
    return bool(getattr(client, "shutting_down", False)) or client.is_closed()


def log_and_describe(
    error: BaseException, *, what: str, user_id: int | None, job_id: int | None, shutting_down: bool = False
) -> str:
    sentence, expected = describe(error, shutting_down=shutting_down)
    inner = unwrap(error)
    job = f"job {job_id}" if job_id else "no job"
    if expected:
        log.info("%s by user %s refused (%s): %s", what, user_id, job, sentence)
        return sentence
    ref = secrets.token_hex(4)
    log.error("%s by user %s failed (%s, ref %s)", what, user_id, job, ref, exc_info=inner)
    return sentence or texts.something_went_wrong(ref)


def _interaction_what(interaction: discord.Interaction) -> str:
    command = interaction.command
    if command is not None:
        return f"command /{command.qualified_name}"
    data: Mapping[str, object] = interaction.data or {}
    custom_id = data.get("custom_id") if isinstance(data, dict) else None
    return f"interaction {custom_id or interaction.type.name}"


async def report_interaction_error(
    interaction: discord.Interaction, error: BaseException, *, job_id: int | None = None
) -> None:
    sentence = log_and_describe(
        error,
        what=_interaction_what(interaction),
        user_id=interaction.user.id,
        job_id=job_id,
        shutting_down=_is_shutting_down(interaction.client),
    )
    if interaction.type == discord.InteractionType.autocomplete:
        return
    try:
        if interaction.response.is_done():
            if interaction.response.type == discord.InteractionResponseType.modal:
                return  # a modal is the whole answer; nothing to attach a sentence to
            await interaction.followup.send(
                sentence, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
            )
        else:
            await interaction.response.send_message(
                sentence, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
            )
    except discord.HTTPException as exc:
        # Usually the interaction expired (10062) or its token did; the log line above is what remains.
        log.warning("could not tell user %s about an error: %s", interaction.user.id, exc)


async def on_app_command_error(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
    """`tree.on_error`: the handler for every slash command and context menu."""
    await report_interaction_error(interaction, error)


async def guarded(
    interaction: discord.Interaction, work: Awaitable[object], *, job_id: int | None = None
) -> None:
    """Run a button's or modal's work, sending any error through the handler (discord.py would only log it)."""
    try:
        await work
    except Exception as exc:
        await report_interaction_error(interaction, exc, job_id=job_id)


async def report_message_error(
    client: discord.Client, message: discord.Message, error: BaseException, *, job_id: int | None = None
) -> None:
    """An error answering a member's message (a reply asking for an extension): answer with a reply."""
    sentence = log_and_describe(
        error, what="reply", user_id=message.author.id, job_id=job_id, shutting_down=_is_shutting_down(client)
    )
    try:
        await message.reply(sentence, mention_author=False, allowed_mentions=discord.AllowedMentions.none())
    except discord.HTTPException as exc:
        log.warning("could not tell user %s about an error: %s", message.author.id, exc)
