"""How a job looks in Discord: its status embed, its result and failure embeds, its thread name.

User text is always shown through `show_prompt`, which escapes markdown and mentions, so a prompt can neither
break the message's formatting nor look like a ping.
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING

import discord

from bot.discord_ui import texts
from bot.luma.capabilities import SPECS
from bot.luma.options import VideoOptions
from bot.store.models import FailureKind, Job, JobAction, JobState

if TYPE_CHECKING:  # for annotations only: the Discord layer draws both a stored job and the engine's view
    from bot.jobs.ports import JobView

# Embed descriptions hold 4096 characters and prompts up to 5000: the full prompt is in the job record.
PROMPT_DISPLAY_LIMIT = 1500
# Discord's limit for thread names.
THREAD_NAME_LIMIT = 100

COLOR_PENDING = discord.Colour.blurple()
COLOR_DONE = discord.Colour.green()
COLOR_FAILED = discord.Colour.red()
COLOR_WAITING = discord.Colour.orange()


def show_prompt(text: str, limit: int = PROMPT_DISPLAY_LIMIT) -> str:
    """The prompt escaped for display: no markdown, no mentions, cut to `limit` characters."""
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return discord.utils.escape_markdown(discord.utils.escape_mentions(text))


def thread_name(prompt: str) -> str:
    """A one-line thread name from the prompt: control characters and markdown dropped, at most 100 chars."""
    cleaned = "".join(" " if unicodedata.category(ch)[0] in "CZ" else ch for ch in prompt)
    cleaned = re.sub(r"[*_`~|>#\[\]<@]+", "", cleaned)
    cleaned = re.sub(r"\s+", " ", cleaned).strip()
    if len(cleaned) > THREAD_NAME_LIMIT:
        cleaned = cleaned[: THREAD_NAME_LIMIT - 1].rstrip() + "…"
    return cleaned or texts.DEFAULT_THREAD_NAME


def options_text(job: Job | JobView) -> str:
    """The options the video was (or will be) made with, as stored once checked: model, resolution and
    duration are the values used, defaults included."""
    opts = VideoOptions.from_json(job.options)
    if job.action == JobAction.EXTEND:
        return texts.extend_options_line(
            parent_job_id=job.parent_id,
            video=job.parent_video_id,
            end=bool(opts.end_image_url),
            model=opts.model,
            resolution=opts.resolution,
        )
    has_enhancement = job.provider in SPECS and SPECS[job.provider].enhancement
    return texts.options_line(
        aspect_ratio=opts.aspect_ratio,
        loop=opts.loop,
        enhancement=opts.enhancement if has_enhancement else None,
        start=bool(opts.start_image_url),
        end=bool(opts.end_image_url),
        model=opts.model,
        resolution=opts.resolution,
        duration=opts.duration,
    )


def status_line(
    job: Job | JobView,
    *,
    position: int = 0,
    held_up: str | None = None,
    result_link: str | None = None,
    deleted: bool = False,
) -> str:
    state = JobState(job.state)
    if state == JobState.COMPLETED:
        if deleted:
            return texts.status_deleted(job.finished_at)
        return texts.status_done(job.finished_at, result_link)
    if state == JobState.FAILED:
        return texts.status_failed(job.failure_kind, job.failure_reason)
    if held_up:
        return texts.status_held_up(held_up)
    if state == JobState.QUEUED:
        return texts.status_queued(position)
    return texts.status_generating(job.submitted_at)


def status_embed(
    job: Job | JobView,
    *,
    position: int = 0,
    held_up: str | None = None,
    result_link: str | None = None,
    deleted: bool = False,
) -> discord.Embed:
    state = JobState(job.state)
    colour = COLOR_PENDING
    if state == JobState.COMPLETED:
        colour = COLOR_DONE
    elif state == JobState.FAILED:
        colour = COLOR_FAILED
    elif held_up:
        colour = COLOR_WAITING
    title = texts.STATUS_TITLE_EXTEND if job.action == JobAction.EXTEND else texts.STATUS_TITLE_GENERATE
    embed = discord.Embed(title=title, description=show_prompt(job.prompt), colour=colour)
    embed.add_field(name=texts.FIELD_OPTIONS, value=options_text(job), inline=False)
    embed.add_field(name=texts.FIELD_REQUESTED_BY, value=f"<@{job.user_id}>", inline=True)
    embed.add_field(
        name=texts.FIELD_STATUS,
        value=status_line(job, position=position, held_up=held_up, result_link=result_link, deleted=deleted),
        inline=True,
    )
    if job.cost is not None:  # jobs from before prices have none
        embed.add_field(name=texts.FIELD_COST, value=texts.cost(job.cost, job.price), inline=True)
    embed.set_footer(text=texts.job_footer(job.id))
    return embed


def result_embed(job: Job | JobView) -> discord.Embed:
    title = texts.RESULT_TITLE_EXTEND if job.action == JobAction.EXTEND else texts.RESULT_TITLE_GENERATE
    embed = discord.Embed(title=title, description=show_prompt(job.prompt), colour=COLOR_DONE)
    if job.video_url and len(job.video_url) <= 2000:
        embed.url = job.video_url
    if job.thumbnail_url:
        embed.set_thumbnail(url=job.thumbnail_url)
    embed.add_field(name=texts.FIELD_OPTIONS, value=options_text(job), inline=False)
    if job.video_width and job.video_height:  # the Agents API reports no size: the options say it
        embed.add_field(
            name=texts.FIELD_SIZE, value=texts.size(job.video_width, job.video_height), inline=True
        )
    embed.add_field(name=texts.FIELD_IDS, value=texts.ids(job.id, job.video_id), inline=True)
    if job.parent_id:
        embed.add_field(name=texts.FIELD_EXTENDS, value=f"job #{job.parent_id}", inline=True)
    embed.set_footer(text=texts.job_footer(job.id))
    return embed


def failure_embed(job: Job | JobView) -> discord.Embed:
    embed = discord.Embed(title=texts.FAILURE_TITLE, description=show_prompt(job.prompt), colour=COLOR_FAILED)
    embed.set_footer(text=texts.job_footer(job.id))
    return embed


def can_retry(kind: str | None) -> bool:
    """Failures where the same request may well work later (a refusal of the prompt will not)."""
    return kind not in (FailureKind.MODERATION, FailureKind.INVALID)
