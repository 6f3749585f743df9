"""The engine's DeliveryPort, in Discord: status edits and the result post, always with the bot token.

Interaction tokens expire after 15 minutes and a job may take longer, so nothing here uses one. Delivery is
idempotent: before posting, the target's recent messages are searched for a result of the job already there
(a crash between posting and recording it must not post twice). When the thread is gone or closed to the
bot, the result goes to the request's channel, then to the member's DMs.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord

from bot.discord_ui import texts
from bot.discord_ui.buttons import custom_ids, result_view, retry_view
from bot.discord_ui.embeds import can_retry, failure_embed, result_embed, status_embed
from bot.discord_ui.flow import message_link
from bot.jobs.ports import Delivery, Destination, JobEvent, JobView
from bot.store import jobs as store
from bot.store.models import FailureKind, JobState

if TYPE_CHECKING:
    from bot.app import LumaBot

log = logging.getLogger(__name__)

# How far back in a thread to look for a result already posted: the result follows its job's status message
# closely, and a thread rarely gets 50 messages between a crash and the restart.
IDEMPOTENCY_SCAN = 50
# Discord answers that mean "this place will not take the message", as opposed to a passing failure (429s are
# retried inside discord.py, 5xx are worth retrying): e.g. 10003 Unknown Channel, 50001 Missing Access,
# 50013 Missing Permissions, 50083 thread archived, 50007 cannot DM this user.
REFUSED_STATUSES = frozenset({400, 403, 404})
# After this many attempts that all ended in such refusals, the job is given up as undeliverable rather than
# retried forever (the engine's backoff reaches its 5-minute cap long before).
MAX_REFUSED_ATTEMPTS = 12


class DeliveryFailed(Exception):
    """No channel took the result this time; the engine will try again later."""


def _gone(exc: discord.HTTPException) -> bool:
    return exc.status in REFUSED_STATUSES


class DiscordDelivery:
    def __init__(self, bot: LumaBot) -> None:
        self.bot = bot
        self._balance_reported = False

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
        refusals: list[str] = []
        for channel_id in self._targets(job):
            channel = self.bot.get_partial_messageable(channel_id, guild_id=job.guild_id)
            try:
                message_id = await self._post_once(channel, job, self._payload(job))
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
            where = Destination.THREAD if channel_id == (job.thread_id or job.channel_id) else Destination.CHANNEL
            return Delivery(where, channel_id, message_id)
        try:
            channel_id, message_id = await self._deliver_by_dm(job)
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

    def _payload(self, job: JobView, prefix: str = "") -> dict[str, Any]:
        mention = f"<@{job.user_id}>"
        # Only the requester is pinged, and only by the bot: the prompt is never in the message content.
        mentions = discord.AllowedMentions(
            everyone=False, roles=False, users=[discord.Object(job.user_id)], replied_user=False
        )
        if job.state == JobState.COMPLETED:
            content = texts.result_message(mention, job.video_url)
            embed, view = result_embed(job), result_view(job)
        else:
            content = texts.failure_message(mention, job.failure_kind, job.failure_reason)
            embed = failure_embed(job)
            view = retry_view(job) if can_retry(job.failure_kind) else None
        if prefix:
            content = f"{prefix}\n{content}"
        if len(content) > 2000:  # a very long video URL: the embed's title links to it as well
            content = mention
        payload: dict[str, Any] = {"content": content, "embed": embed, "allowed_mentions": mentions}
        if view is not None:
            payload["view"] = view
        return payload

    async def _post_once(self, channel: Any, job: JobView, payload: dict[str, Any]) -> int:
        existing = await self._already_posted(channel, job)
        if existing is not None:
            log.info("job %s: result already in channel %s as message %s", job.id, channel.id, existing)
            return existing
        message = await channel.send(**payload)
        return message.id

    async def _already_posted(self, channel: Any, job: JobView) -> int | None:
        me = self.bot.user
        if me is None:
            return None
        footer = texts.job_footer(job.id)
        ids = {f"luma:extend:{job.id}", f"luma:regen:{job.id}", f"luma:retry:{job.id}"}
        try:
            async for message in channel.history(limit=IDEMPOTENCY_SCAN):
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

    async def _deliver_by_dm(self, job: JobView) -> tuple[int, int]:
        dm = await self.bot.create_dm(discord.Object(job.user_id))
        guild = self.bot.get_guild(job.guild_id)
        prefix = texts.dm_result_prefix(discord.utils.escape_markdown(guild.name) if guild else None)
        message_id = await self._post_once(dm, job, self._payload(job, prefix=prefix))
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
