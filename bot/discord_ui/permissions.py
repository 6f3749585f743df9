"""The permissions the bot needs in a server, and the invite link that asks for exactly those."""

from __future__ import annotations

import discord

# Each one is used: read the channel, post the status message, post results in its thread, open that thread,
# show embeds (status, result), attach the video so it plays inline, and read the thread's messages so a
# result is never posted twice.
BOT_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    create_public_threads=True,
    embed_links=True,
    attach_files=True,
    read_message_history=True,
)
SCOPES = ("bot", "applications.commands")


def invite_url(application_id: int) -> str:
    return discord.utils.oauth_url(application_id, permissions=BOT_PERMISSIONS, scopes=SCOPES)


def missing_to_post(permissions: discord.Permissions, *, in_thread: bool) -> list[str]:
    """Names of the permissions the bot lacks to post a job's status message in a channel."""
    needed = ["view_channel", "embed_links", "send_messages_in_threads" if in_thread else "send_messages"]
    return [name for name in needed if not getattr(permissions, name)]
