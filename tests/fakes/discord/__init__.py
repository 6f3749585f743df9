"""A local fake of Discord (REST API v10 + gateway) for end-to-end tests of discord.py bots.

The bot runs unmodified; only ``discord.http.Route.BASE`` and
``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`` are pointed at the fake
(see :meth:`FakeDiscord.redirect_discord_py` / :meth:`FakeDiscord.run_client`).
"""

from .errors import APIError
from .gateway import GatewayConnection, Session
from .interactions import CallbackType, InteractionRecord, InteractionRejected, InteractionType
from .models import (
    DEFAULT_BOT_PERMISSIONS,
    DEFAULT_EVERYONE_PERMISSIONS,
    AppCommand,
    Channel,
    ChannelType,
    Guild,
    Intent,
    Member,
    Message,
    MessageFlag,
    MessageType,
    Permission,
    Rejection,
    RequestRecord,
    Role,
    UploadedFile,
    User,
)
from .rest import Injection
from .server import FakeDiscord

__all__ = [
    "DEFAULT_BOT_PERMISSIONS",
    "DEFAULT_EVERYONE_PERMISSIONS",
    "APIError",
    "AppCommand",
    "CallbackType",
    "Channel",
    "ChannelType",
    "FakeDiscord",
    "GatewayConnection",
    "Guild",
    "Injection",
    "Intent",
    "InteractionRecord",
    "InteractionRejected",
    "InteractionType",
    "Member",
    "Message",
    "MessageFlag",
    "MessageType",
    "Permission",
    "Rejection",
    "RequestRecord",
    "Role",
    "Session",
    "UploadedFile",
    "User",
]
