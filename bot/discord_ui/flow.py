"""From a member's request to a job on screen: accept it through the engine, post its public status message,
open its thread, record where it lives, and answer the member. Shared by slash commands, buttons, the
extend modal and replies, so every way of asking behaves the same.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from bot.discord_ui import texts
from bot.discord_ui.embeds import status_embed, thread_name
from bot.discord_ui.errors import CannotPost
from bot.discord_ui.permissions import missing_to_post
from bot.jobs.ports import JobEvent, JobView
from bot.jobs.requests import JobRequest
from bot.luma.options import VideoOptions
from bot.luma.validation import InvalidInput
from bot.store import jobs as store
from bot.store.models import Job, JobAction

if TYPE_CHECKING:
    from bot.app import LumaBot

log = logging.getLogger(__name__)

THREAD_TYPES = frozenset(
    {discord.ChannelType.public_thread, discord.ChannelType.private_thread, discord.ChannelType.news_thread}
)
# A link to a message: https://discord.com/channels/<guild>/<channel>/<message> (also ptb./canary. and the
# old discordapp.com host).
MESSAGE_LINK = re.compile(
    r"https?://(?:(?:ptb|canary|www)\.)?discord(?:app)?\.com/channels/(\d{1,20}|@me)/(\d{1,20})/(\d{1,20})/?"
)


# Any link into Discord's web app or CDN: never a video a provider could extend.
DISCORD_LINK = re.compile(
    r"https?://(?:[\w-]+\.)*(?:discord(?:app)?\.com|discord\.gg|discordapp\.net)(?:[/:?#]|$)", re.IGNORECASE
)
# Discord's epoch (2015-01-01) in Unix milliseconds; a snowflake's top 42 bits count from it.
DISCORD_EPOCH_MS = 1420070400000


def is_snowflake(value: int, *, now: float | None = None) -> bool:
    """A real Discord id: a positive 63-bit number whose timestamp lies between Discord's epoch and now."""
    if not 0 < value < 2**63:
        return False
    created_ms = (value >> 22) + DISCORD_EPOCH_MS
    return created_ms <= ((now if now is not None else time.time()) + 3600) * 1000


def message_link(guild_id: int | None, channel_id: int, message_id: int) -> str:
    return f"https://discord.com/channels/{guild_id or '@me'}/{channel_id}/{message_id}"


def parse_message_link(text: str) -> tuple[int | None, int, int] | None:
    """(guild id, channel id, message id) of a Discord message link, or None when `text` is not one."""
    match = MESSAGE_LINK.fullmatch(text.strip())
    if match is None:
        return None
    guild, channel, message = match.groups()
    return (None if guild == "@me" else int(guild)), int(channel), int(message)


@dataclass(frozen=True, slots=True)
class Placement:
    job: Job
    status_message: discord.Message | None
    thread_id: int | None
    position: int

    def link(self) -> str | None:
        if self.thread_id:
            return f"<#{self.thread_id}>"
        if self.status_message is not None:
            return self.status_message.jump_url
        return None


def is_thread(channel: Any) -> bool:
    return getattr(channel, "type", None) in THREAD_TYPES


def role_ids(user: discord.abc.User) -> tuple[int, ...]:
    return tuple(role.id for role in getattr(user, "roles", ()))


def interaction_channel(interaction: discord.Interaction) -> Any:
    channel = interaction.channel
    if channel is not None:
        return channel
    return interaction.client.get_partial_messageable(
        interaction.channel_id or 0, guild_id=interaction.guild_id
    )


def base_request(interaction: discord.Interaction, prompt: str, **fields: Any) -> JobRequest:
    """A request from this member, answered in this channel (in place when it is a thread)."""
    if interaction.guild_id is None:
        raise app_commands.NoPrivateMessage()
    channel = interaction_channel(interaction)
    return JobRequest(
        guild_id=interaction.guild_id,
        channel_id=channel.id,
        user_id=interaction.user.id,
        prompt=prompt,
        role_ids=role_ids(interaction.user),
        thread_id=channel.id if is_thread(channel) else None,
        **fields,
    )


def check_can_post(interaction: discord.Interaction) -> None:
    """Refuse before anything is reserved when the bot could not even post the job's status here."""
    missing = missing_to_post(interaction.app_permissions, in_thread=is_thread(interaction.channel))
    if missing:
        log.info("cannot post in channel %s: missing %s", interaction.channel_id, ", ".join(missing))
        raise CannotPost(missing)


async def start_job(
    bot: LumaBot, request: JobRequest, channel: Any, *, reply_to: discord.Message | None = None
) -> Placement:
    """Accept the request (InvalidInput / QuotaExceeded leave nothing behind), then show it in `channel`."""
    job = await bot.engine.accept(request, shown_later=True)
    # The job's result waits until its placement is recorded, in the database (see store.set_location).
    thread_id = status_id = None
    try:
        placement = await _place(bot, job, channel, reply_to)
        thread_id = placement.thread_id
        status_id = placement.status_message.id if placement.status_message else None
        return placement
    finally:
        await bot.engine.placed(job.id, thread_id=thread_id, status_message_id=status_id)
        await _catch_up(bot, job, status_id)


async def _catch_up(bot: LumaBot, job: Job, status_id: int | None) -> None:
    """A job sent to the provider while its status message was being posted missed that update: show it."""
    fresh = await store.get_job(job.id)
    if status_id is None or fresh is None or fresh.state == job.state or fresh.is_finished:
        return
    await bot.delivery.job_updated(JobView.of(fresh), JobEvent.STARTED)


async def _place(bot: LumaBot, job: Job, channel: Any, reply_to: discord.Message | None) -> Placement:
    position = await bot.engine.queue_position(job)
    try:
        status = await channel.send(
            embed=status_embed(job, position=position),
            reference=reply_to.to_reference(fail_if_not_exists=False) if reply_to else None,
            mention_author=False,
            allowed_mentions=discord.AllowedMentions.none(),
        )
    except discord.HTTPException as exc:
        # The job stands: its result will find the member through the delivery fallbacks.
        log.warning("job %s: could not post its status message in %s: %s", job.id, request_channel(job), exc)
        return Placement(job, None, None, position)
    thread_id = None
    if not is_thread(channel):
        try:
            thread = await status.create_thread(name=thread_name(job.prompt), auto_archive_duration=1440)
            thread_id = thread.id
        except (discord.HTTPException, ValueError) as exc:
            log.info("job %s: no thread in channel %s (%s); answering in place", job.id, channel.id, exc)
    job.thread_id = thread_id or job.thread_id
    job.status_message_id = status.id
    log.info("job %s: status message %s, thread %s", job.id, status.id, thread_id or "none (in place)")
    return Placement(job, status, thread_id, position)


def request_channel(job: Job) -> int:
    return job.thread_id or job.channel_id


async def submit_from_interaction(interaction: discord.Interaction, request: JobRequest) -> Placement:
    """For an interaction already deferred (ephemeral): start the job and tell the member where to follow it."""
    check_can_post(interaction)
    placement = await start_job(interaction.client, request, interaction_channel(interaction))  # type: ignore[arg-type]
    link = placement.link()
    job = placement.job
    price = texts.cost(job.cost, job.price) if job.cost is not None else None
    text = (
        texts.queued_here(link, placement.position, price)
        if link
        else texts.queued_ephemeral_no_status(price)
    )
    try:
        await interaction.edit_original_response(
            content=text, allowed_mentions=discord.AllowedMentions.none()
        )
    except discord.HTTPException as exc:
        log.info("job %s: could not answer the member ephemerally: %s", placement.job.id, exc)
    return placement


async def resolve_extend_target(guild_id: int, text: str) -> tuple[int | None, str | None]:
    """(parent job id, raw target) for `/luma extend video:`: a link to one of our messages names its job;
    anything else (an id, a video link) goes to the engine, which checks it. A Discord link is never sent to
    a provider as if it were a video."""
    link = parse_message_link(text)
    if link is None:
        if DISCORD_LINK.match(text.strip()):
            raise InvalidInput(texts.NOT_A_MESSAGE_LINK)
        return None, text
    guild, channel, message_id = link
    if not all(is_snowflake(i) for i in (channel, message_id)) or (
        guild is not None and not is_snowflake(guild)
    ):
        raise InvalidInput(texts.NOT_A_MESSAGE_LINK)
    job = await store.find_by_message(message_id)
    if job is None or job.guild_id != guild_id or (guild is not None and guild != guild_id):
        raise InvalidInput(texts.NOT_A_RESULT_HERE)
    return job.id, None


def same_request(job: Job, interaction: discord.Interaction) -> JobRequest:
    """The request that made `job`, again, as the pressing member's own."""
    opts = VideoOptions.from_json(job.options)
    if job.action == JobAction.EXTEND:
        fields: dict[str, Any] = {
            "action": JobAction.EXTEND,
            "end_image_url": opts.end_image_url,
        }
        if job.parent_id:
            fields["parent_job_id"] = job.parent_id
        else:
            fields["extend_target"] = job.parent_video_id or job.parent_video_url
        return base_request(interaction, job.prompt, **fields)
    return base_request(
        interaction,
        job.prompt,
        aspect_ratio=opts.aspect_ratio,
        loop=opts.loop,
        enhancement=opts.enhancement,
        start_image_url=opts.start_image_url,
        end_image_url=opts.end_image_url,
        # The same video again: the values it was made with, whatever the defaults are now.
        model=opts.model,
        resolution=opts.resolution,
        duration=opts.duration,
    )


async def regenerate(interaction: discord.Interaction, job_id: int, *, retry: bool = False) -> None:
    """The Regenerate (anyone, on their quota) and Try again (the requester only) buttons."""
    await interaction.response.defer(ephemeral=True, thinking=True)
    job = await store.get_job(job_id)
    if job is None or job.guild_id != interaction.guild_id:
        # A button's id names a job; another server's job is never looked at, whatever id is sent.
        raise InvalidInput(texts.UNKNOWN_JOB)
    if retry and job.user_id != interaction.user.id:
        raise InvalidInput(texts.RETRY_ONLY_REQUESTER)
    await submit_from_interaction(interaction, same_request(job, interaction))


async def extend_from_modal(interaction: discord.Interaction, job_id: int, prompt: str) -> None:
    await interaction.response.defer(ephemeral=True, thinking=True)
    request = base_request(interaction, prompt, action=JobAction.EXTEND, parent_job_id=job_id)
    await submit_from_interaction(interaction, request)


def strip_bot_mention(content: str, bot_id: int) -> str:
    return re.sub(rf"<@!?{bot_id}>", "", content).strip()


async def extend_from_reply(bot: LumaBot, message: discord.Message, job: Job) -> Placement:
    """A member replied to a result with text: extend that video with the text as the prompt, in place."""
    assert message.guild is not None and bot.user is not None
    channel = message.channel
    request = JobRequest(
        guild_id=message.guild.id,
        channel_id=channel.id,
        user_id=message.author.id,
        prompt=strip_bot_mention(message.content, bot.user.id),
        action=JobAction.EXTEND,
        role_ids=role_ids(message.author),
        parent_job_id=job.id,
        thread_id=channel.id if is_thread(channel) else None,
        source_message_id=message.id,
    )
    return await start_job(bot, request, channel, reply_to=message)
