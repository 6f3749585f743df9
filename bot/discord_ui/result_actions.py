"""What the Original and Delete buttons under a result do: a working link to the provider's full-quality file
(fetched fresh where links are presigned), and removing the result post while the job stays in history."""

from __future__ import annotations

import logging
from datetime import datetime

import discord

from bot.discord_ui import texts
from bot.jobs.ports import JobView
from bot.luma.capabilities import SPECS
from bot.luma.errors import LumaError
from bot.luma.types import TaskState
from bot.luma.validation import InvalidInput
from bot.store import jobs as store
from bot.store.models import Job, JobState

log = logging.getLogger(__name__)


async def _job_for(interaction: discord.Interaction, job_id: int) -> Job:
    job = await store.get_job(job_id)
    if job is None or job.state != JobState.COMPLETED:
        raise InvalidInput(texts.UNKNOWN_JOB)
    # A button's id names a job; another server's job is never looked at, whatever id is sent. In a DM only
    # the requester has the result.
    if interaction.guild_id is None:
        if job.user_id != interaction.user.id:
            raise InvalidInput(texts.UNKNOWN_JOB)
    elif job.guild_id != interaction.guild_id:
        raise InvalidInput(texts.UNKNOWN_JOB)
    return job


def link_expires(job: Job | JobView) -> datetime | None:
    """When the stored link to the job's file stops working (None: the provider keeps it)."""
    spec = SPECS.get(job.provider)
    if spec is None or spec.link_lifetime is None or job.finished_at is None:
        return None
    return job.finished_at + spec.link_lifetime


def stored_link_works(job: Job | JobView) -> bool:
    expires = link_expires(job)
    return bool(job.video_url) and (expires is None or store.utcnow() < expires)


async def original(interaction: discord.Interaction, job_id: int) -> None:
    await interaction.response.defer(ephemeral=True, thinking=True)
    job = await _job_for(interaction, job_id)
    await interaction.followup.send(await _original_text(interaction, job), ephemeral=True)


async def _original_text(interaction: discord.Interaction, job: Job) -> str:
    spec = SPECS.get(job.provider)
    engine = getattr(interaction.client, "engine", None)
    key = engine.key_for(job) if engine is not None else None  # the key that made it: its account has it
    client = key.client if key is not None else None
    if spec is not None and spec.fresh_links and job.task_id:
        if client is None:
            raise InvalidInput(texts.ORIGINAL_UNAVAILABLE)
        # A presigned link lasts an hour: ask for a new one now rather than hand out the stored one.
        try:
            result = await client.get_task(job.task_id)
        except LumaError as exc:
            log.warning("job %s: no fresh link for Original: %s", job.id, exc)
            raise InvalidInput(texts.ORIGINAL_UNAVAILABLE) from None
        if result.state != TaskState.COMPLETED or not result.video_url:
            raise InvalidInput(texts.ORIGINAL_UNAVAILABLE)
        await store.refresh_video_url(job, result.video_url)
        expires = store.utcnow() + spec.link_lifetime if spec.link_lifetime else None
        return texts.original_link(result.video_url, expires)
    if not job.video_url:
        return texts.ORIGINAL_NONE
    expires = link_expires(job)
    if expires is not None and store.utcnow() >= expires:
        assert spec is not None and spec.link_lifetime is not None
        title = spec.title[:1].upper() + spec.title[1:]
        return texts.ORIGINAL_EXPIRED.format(
            provider=title, lifetime=texts.lifetime(spec.link_lifetime), expired=texts.ts_full(expires)
        )
    return texts.original_link(job.video_url, expires)


async def delete(interaction: discord.Interaction, job_id: int) -> None:
    await interaction.response.defer(ephemeral=True, thinking=True)
    job = await _job_for(interaction, job_id)
    permissions = interaction.permissions  # the presser's, in this channel
    if interaction.user.id != job.user_id and not permissions.manage_messages:
        raise InvalidInput(texts.DELETE_NOT_ALLOWED)
    if job.deleted_at is not None:
        raise InvalidInput(texts.ALREADY_DELETED)
    message = interaction.message
    if message is not None:
        try:
            await message.delete()  # our own message: no Manage Messages needed by the bot
        except discord.NotFound:
            pass
    await store.mark_result_deleted(job.id, interaction.user.id)
    log.info("job %s: result deleted by user %s", job.id, interaction.user.id)
    await interaction.followup.send(texts.DELETED, ephemeral=True)
    delivery = getattr(interaction.client, "delivery", None)
    if delivery is not None:
        fresh = await store.get_job(job.id)
        if fresh is not None:
            await delivery.result_deleted(JobView.of(fresh))
