"""The engine's DeliveryPort, in Discord: status edits and the result post, always with the bot token.

Interaction tokens expire after 15 minutes and a job may take longer, so nothing here uses one. A result
carries its video as an attachment, so it plays inline (see media.py for files over the upload limit).

Delivery is idempotent, however busy the thread: the first attempt to post is recorded in the job's row
before anything is sent; every post carries the job as its `nonce` with `enforce_nonce`, so Discord itself
returns the earlier message for a repeat within minutes; and a job with an earlier attempt has its target
searched from the status message onward (not the last N messages) for a post a crash kept us from
recording. When the thread is gone or closed to the bot, the result goes to the request's channel, then to
the member's DMs.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import discord

from bot.discord_ui import texts
from bot.discord_ui.buttons import custom_ids, result_view, retry_view
from bot.discord_ui.embeds import can_retry, failure_embed, result_embed, status_embed
from bot.discord_ui.flow import message_link
from bot.discord_ui.media import (
    DEFAULT_LIMIT,
    Attachment,
    Kind,
    MediaService,
    ResultMedia,
    provider_base_url,
    thumbnail_filename,
)
from bot.jobs.ports import Delivery, Destination, JobEvent, JobView
from bot.store import jobs as store
from bot.store.models import FailureKind, JobState

if TYPE_CHECKING:
    from bot.app import LumaBot

log = logging.getLogger(__name__)

# Where a DM has no status message to search from, the search starts this long before the first attempt
# (a margin for the difference between our clock and Discord's).
SEARCH_MARGIN = timedelta(hours=1)
# Discord answers that mean "this place will not take the message", as opposed to a passing failure (429s are
# retried inside discord.py, 5xx are worth retrying): e.g. 10003 Unknown Channel, 50001 Missing Access,
# 50013 Missing Permissions, 50083 thread archived, 50007 cannot DM this user.
REFUSED_STATUSES = frozenset({400, 403, 404})
# Refusals of a post with files that a post without them may not get: 413 / 40005 the file is over the limit
# (then a smaller copy), 403 no Attach Files, 400 a file Discord will not take (then the bare link).
FILE_REFUSALS = frozenset({400, 403, 413})
# After this many attempts that all ended in such refusals, the job is given up as undeliverable rather than
# retried forever (the engine's backoff reaches its 5-minute cap long before).
MAX_REFUSED_ATTEMPTS = 12


def nonce(job_id: int) -> str:
    """The nonce of a job's result post (Discord allows 25 characters)."""
    return f"job-{job_id}"


class DeliveryFailed(Exception):
    """No channel took the result this time; the engine will try again later."""


def _gone(exc: discord.HTTPException) -> bool:
    return exc.status in REFUSED_STATUSES


class DiscordDelivery:
    def __init__(self, bot: LumaBot, media: MediaService | None = None) -> None:
        self.bot = bot
        self.media = media or MediaService(getattr(bot, "settings", None))
        self._balance_reported = False

    async def close(self) -> None:
        await self.media.close()

    # -- status -------------------------------------------------------------------------------------------

    async def job_updated(
        self, job: JobView, event: JobEvent, *, position: int = 0, detail: str | None = None
    ) -> None:
        if event == JobEvent.DELIVERED:
            # The outcome is recorded (and the unit settled): now the status message may say how it ended,
            # with a link to wherever the result went.
            await self._edit_status(job, status_embed(job, result_link=self._result_link(job)))
            return
        row = await store.get_job(job.id)  # the view may predate its placement: the row has it
        if row is None or not row.status_message_id or row.is_finished:
            return
        fresh = JobView.of(row)
        if event == JobEvent.HELD_UP and detail == FailureKind.BALANCE:
            self._report_balance()
        held_up = detail if event == JobEvent.HELD_UP else None
        await self._edit_status(fresh, status_embed(fresh, position=position, held_up=held_up))

    async def result_deleted(self, job: JobView) -> None:
        """The result post was deleted: the status message no longer links to it."""
        await self._edit_status(job, status_embed(job, deleted=True))

    async def _edit_status(self, job: JobView, embed: discord.Embed) -> None:
        if not job.status_message_id:
            return
        channel = self.bot.get_partial_messageable(job.channel_id, guild_id=job.guild_id)
        try:
            await channel.get_partial_message(job.status_message_id).edit(
                embed=embed, allowed_mentions=discord.AllowedMentions.none()
            )
        except discord.HTTPException as exc:
            log.info("job %s: status message %s not updated: %s", job.id, job.status_message_id, exc)

    # -- result -------------------------------------------------------------------------------------------

    async def deliver(self, job: JobView) -> Delivery:
        if job.state == JobState.FAILED and job.failure_kind == FailureKind.BALANCE:
            self._report_balance()
        engine = getattr(self.bot, "engine", None)
        key = engine.pool.for_task(job.provider, job.key_id) if engine is not None else None
        client = key.client if key is not None else None
        media = (
            self.media.for_job(job, provider_base_url(job, client))
            if job.state == JobState.COMPLETED
            else None
        )
        try:
            return await self._deliver(job, media)
        finally:
            if media is not None:
                media.close()

    async def _deliver(self, job: JobView, media: ResultMedia | None) -> Delivery:
        # Read once: an attempt recorded by an earlier process (or an earlier try of this one) means a post may
        # be out there unrecorded, so the targets are searched before anything is sent.
        earlier = await store.get_job(job.id)
        attempted = earlier.post_attempted_at if earlier is not None else None
        refusals: list[str] = []
        for channel_id in self._targets(job):
            channel = self.bot.get_partial_messageable(channel_id, guild_id=job.guild_id)
            try:
                posted = await self._post_once(channel, job, media, attempted, limit=self._limit(job))
            except discord.HTTPException as exc:
                if not _gone(exc):
                    raise
                refusals.append(f"channel {channel_id}: {exc.status} {exc.code}")
                log.info(
                    "job %s: channel %s refused the result (%s %s); trying the next place",
                    job.id,
                    channel_id,
                    exc.status,
                    exc.code,
                )
                continue
            attempted = attempted or store.utcnow()
            where_id, message_id = posted
            home = job.thread_id or job.channel_id
            where = Destination.THREAD if where_id == home else Destination.CHANNEL
            return Delivery(where, where_id, message_id)
        try:
            channel_id, message_id = await self._deliver_by_dm(job, media, attempted)
        except discord.HTTPException as exc:
            if not _gone(exc):
                raise
            refusals.append(f"DM: {exc.status} {exc.code}")
            if job.delivery_attempts + 1 >= MAX_REFUSED_ATTEMPTS:
                log.warning(
                    "job %s: no channel or DM takes the result after %d attempts (%s); giving up",
                    job.id,
                    job.delivery_attempts + 1,
                    "; ".join(refusals),
                )
                return Delivery.nowhere()
            raise DeliveryFailed("; ".join(refusals)) from None
        return Delivery(Destination.DM, channel_id, message_id)

    def _targets(self, job: JobView) -> list[int]:
        targets = [job.thread_id or job.channel_id, job.channel_id]
        return list(dict.fromkeys(targets))

    def _limit(self, job: JobView, *, dm: bool = False) -> int:
        """The upload limit per file where the result goes: the server's (by boost level), 10 MiB in DMs."""
        guild = None if dm else self.bot.get_guild(job.guild_id)
        return guild.filesize_limit if guild is not None else DEFAULT_LIMIT

    def _payload(self, job: JobView, attachment: Attachment | None, prefix: str = "") -> dict[str, Any]:
        mention = f"<@{job.user_id}>"
        # Only the requester is pinged, and only by the bot: the prompt is never in the message content.
        mentions = discord.AllowedMentions(
            everyone=False, roles=False, users=[discord.Object(job.user_id)], replied_user=False
        )
        files: list[discord.File] = []
        view: discord.ui.View | None
        if job.state == JobState.COMPLETED:
            embed, view = result_embed(job), result_view(job)
            kind = attachment.kind if attachment is not None else Kind.LINK
            if kind == Kind.ORIGINAL:
                content = texts.result_attached(mention)
            elif kind == Kind.REENCODED:
                assert attachment is not None
                content = texts.result_reencoded(mention, attachment.limit)
            elif attachment is not None and attachment.too_large:
                content = texts.result_too_large(mention, job.video_url, attachment.limit)
            else:
                content = texts.result_message(mention, job.video_url)
            if attachment is not None:
                files = attachment.files(job.id)
                if attachment.thumbnail is not None:
                    embed.set_thumbnail(url=f"attachment://{thumbnail_filename(job.id)}")
        else:
            content = texts.failure_message(mention, job.failure_kind, job.failure_reason)
            embed = failure_embed(job)
            view = retry_view(job) if can_retry(job.failure_kind) else None
        if prefix:
            content = f"{prefix}\n{content}"
        if len(content) > 2000:  # a very long video URL: the embed's title links to it as well
            content = mention
        payload: dict[str, Any] = {
            "content": content,
            "embed": embed,
            "allowed_mentions": mentions,
            # Discord answers a repeat of this nonce (within minutes) with the message already made.
            "nonce": nonce(job.id),
        }
        if view is not None:
            payload["view"] = view
        if files:
            payload["files"] = files
        return payload

    async def _post_once(
        self,
        channel: Any,
        job: JobView,
        media: ResultMedia | None,
        attempted: datetime | None,
        *,
        limit: int,
        prefix: str = "",
    ) -> tuple[int, int]:
        """(channel id, message id) of the job's one post in `channel`: found there, or sent now."""
        if attempted is not None or job.delivery_attempts:
            existing = await self._already_posted(channel, job, attempted)
            if existing is not None:
                log.info("job %s: result already in channel %s as message %s", job.id, channel.id, existing)
                return channel.id, existing
        attachment = await media.first(limit) if media is not None else None
        await store.note_post_attempt(job.id)
        while True:
            try:
                message = await channel.send(**self._payload(job, attachment, prefix))
            except discord.HTTPException as exc:
                if attachment is None or media is None or attachment.kind == Kind.LINK:
                    raise
                if exc.status not in FILE_REFUSALS:
                    raise
                log.info(
                    "job %s: channel %s refused the %s video (%s %s); trying the next way",
                    job.id,
                    channel.id,
                    attachment.kind,
                    exc.status,
                    exc.code,
                )
                attachment = await media.after_refusal(attachment, too_large=exc.status == 413)
                continue
            # With a repeated nonce Discord may answer with the earlier message, wherever it was posted.
            return message.channel.id, message.id

    async def _already_posted(self, channel: Any, job: JobView, attempted: datetime | None) -> int | None:
        me = self.bot.user
        if me is None:
            return None
        footer = texts.job_footer(job.id)
        ids = {f"luma:extend:{job.id}", f"luma:regen:{job.id}", f"luma:retry:{job.id}"}
        # Everything after the status message (the thread opens on it, so the whole thread), however many
        # messages came after the post; in a DM, from a margin before the first attempt.
        if job.status_message_id and channel.id in (job.thread_id, job.channel_id):
            after = discord.Object(job.status_message_id)
        else:
            since = (attempted or job.finished_at or job.created_at) - SEARCH_MARGIN
            after = discord.Object(discord.utils.time_snowflake(since))
        try:
            async for message in channel.history(limit=None, after=after, oldest_first=True):
                # A result always has text; a status message (the same footer) never does.
                if message.author.id != me.id or message.id == job.status_message_id or not message.content:
                    continue
                if ids.intersection(custom_ids(message.components)):
                    return message.id
                if any(embed.footer and embed.footer.text == footer for embed in message.embeds):
                    return message.id
        except discord.Forbidden:
            # Without Read Message History we cannot look; posting is still better than not delivering.
            log.info("job %s: cannot read history of channel %s", job.id, channel.id)
        return None

    async def _deliver_by_dm(
        self, job: JobView, media: ResultMedia | None, attempted: datetime | None
    ) -> tuple[int, int]:
        dm = await self.bot.create_dm(discord.Object(job.user_id))
        guild = self.bot.get_guild(job.guild_id)
        prefix = texts.dm_result_prefix(discord.utils.escape_markdown(guild.name) if guild else None)
        _, message_id = await self._post_once(
            dm, job, media, attempted, limit=self._limit(job, dm=True), prefix=prefix
        )
        log.info("job %s: result sent to the requester by DM", job.id)
        return dm.id, message_id

    @staticmethod
    def _result_link(job: JobView) -> str | None:
        """A link to the result where it went; none for a DM (the server's members cannot open it)."""
        if not job.result_message_id or not job.result_channel_id:
            return None
        if job.result_channel_id not in (job.thread_id, job.channel_id):
            return None  # a DM
        return message_link(job.guild_id, job.result_channel_id, job.result_message_id)

    def _report_balance(self) -> None:
        if not self._balance_reported:
            self._balance_reported = True
            log.error(
                "the Luma provider's account balance is used up: top it up; jobs fail or wait until then"
            )
