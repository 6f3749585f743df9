"""Builders for Discord's JSON shapes (API v10) from the fake's records.

Shapes follow discord-api-docs; where REST and gateway differ (e.g. messages
carry ``guild_id``/``member`` only over the gateway, GUILD_CREATE channels omit
``guild_id``) the builders take a flag.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .models import (
    AppCommand,
    Channel,
    ChannelType,
    Guild,
    Member,
    Message,
    MessageType,
    Overwrite,
    Role,
    User,
)
from .snowflakes import iso

if TYPE_CHECKING:
    from .state import World


def user(u: User) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(u.id),
        "username": u.username,
        "discriminator": u.discriminator,
        "global_name": u.global_name,
        "avatar": u.avatar,
        "avatar_decoration_data": None,
        "collectibles": None,
        "primary_guild": None,
        "public_flags": 0,
        "flags": 0,
        "banner": None,
        "accent_color": None,
    }
    if u.bot:
        data["bot"] = True
    return data


def self_user(u: User) -> dict[str, Any]:
    """``GET /users/@me`` and READY's ``user``: the user object plus private fields."""
    data = user(u)
    data.update({"verified": True, "mfa_enabled": False, "email": None, "locale": "en-US", "premium_type": 0})
    return data


def member(
    world: World, m: Member, *, with_user: bool = True, permissions: int | None = None
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "roles": [str(r) for r in m.roles],
        "nick": m.nick,
        "avatar": None,
        "banner": None,
        "joined_at": iso(m.joined_at),
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "pending": False,
        "flags": 0,
        "communication_disabled_until": None,
        "unusual_dm_activity_until": None,
    }
    if with_user:
        data["user"] = user(m.user)
    if permissions is not None:
        data["permissions"] = str(permissions)
    return data


def role(r: Role) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(r.id),
        "name": r.name,
        "color": r.color,
        "colors": {"primary_color": r.color, "secondary_color": None, "tertiary_color": None},
        "hoist": r.hoist,
        "icon": None,
        "unicode_emoji": None,
        "position": r.position,
        "permissions": str(r.permissions),
        "managed": r.managed,
        "mentionable": r.mentionable,
        "flags": 0,
    }
    if r.bot_id is not None:
        data["tags"] = {"bot_id": str(r.bot_id)}
    return data


def overwrite(o: Overwrite) -> dict[str, Any]:
    return {"id": str(o.id), "type": o.type, "allow": str(o.allow), "deny": str(o.deny)}


def thread_metadata(c: Channel) -> dict[str, Any]:
    data: dict[str, Any] = {
        "archived": c.archived,
        "auto_archive_duration": c.auto_archive_duration,
        "archive_timestamp": iso(c.archive_timestamp),
        "locked": c.locked,
        "create_timestamp": iso(c.create_timestamp),
    }
    if c.type == ChannelType.PRIVATE_THREAD:
        data["invitable"] = c.invitable
    return data


def thread_member(c: Channel, user_id: int) -> dict[str, Any]:
    return {"id": str(c.id), "user_id": str(user_id), "join_timestamp": iso(c.create_timestamp), "flags": 1}


def channel(world: World, c: Channel, *, in_guild_create: bool = False) -> dict[str, Any]:
    if c.type == ChannelType.DM:
        return {
            "id": str(c.id),
            "type": c.type,
            "last_message_id": _sid(c.last_message_id),
            "flags": 0,
            "recipients": [user(world.users[r]) for r in c.recipient_ids],
        }
    data: dict[str, Any] = {
        "id": str(c.id),
        "type": c.type,
        "name": c.name,
        "last_message_id": _sid(c.last_message_id),
        "rate_limit_per_user": c.rate_limit_per_user,
        "flags": 0,
    }
    if not in_guild_create:
        data["guild_id"] = str(c.guild_id)
    if c.is_thread:
        data.update(
            {
                "guild_id": str(c.guild_id),
                "parent_id": _sid(c.parent_id),
                "owner_id": _sid(c.owner_id),
                "message_count": c.message_count,
                "member_count": len(c.member_ids),
                "total_message_sent": c.total_message_sent,
                "thread_metadata": thread_metadata(c),
            }
        )
        if world.bot_user.id in c.member_ids:
            data["member"] = thread_member(c, world.bot_user.id)
        return data
    data.update(
        {
            "position": c.position,
            "permission_overwrites": [overwrite(o) for o in c.overwrites],
            "parent_id": _sid(c.parent_id),
            "nsfw": c.nsfw,
        }
    )
    if c.type in (ChannelType.GUILD_TEXT, ChannelType.GUILD_ANNOUNCEMENT, ChannelType.GUILD_FORUM):
        data["topic"] = c.topic
        data["default_auto_archive_duration"] = 4320
        data["default_thread_rate_limit_per_user"] = 0
    if c.type == ChannelType.GUILD_FORUM:
        data.update(
            {
                "available_tags": [],
                "default_reaction_emoji": None,
                "default_sort_order": None,
                "default_forum_layout": 0,
            }
        )
    return data


def partial_guild(g: Guild) -> dict[str, Any]:
    """The ``guild`` object embedded in interactions."""
    return {"id": str(g.id), "locale": g.preferred_locale, "features": list(g.features)}


def guild(world: World, g: Guild) -> dict[str, Any]:
    """The REST guild object (``GET /guilds/{id}``)."""
    return {
        "id": str(g.id),
        "name": g.name,
        "icon": None,
        "icon_hash": None,
        "splash": None,
        "discovery_splash": None,
        "owner_id": str(g.owner_id),
        "region": None,
        "afk_channel_id": None,
        "afk_timeout": 300,
        "widget_enabled": False,
        "widget_channel_id": None,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "roles": [role(r) for r in sorted(g.roles.values(), key=lambda r: r.position)],
        "emojis": [],
        "stickers": [],
        "features": list(g.features),
        "mfa_level": 0,
        "application_id": None,
        "system_channel_id": _sid(g.system_channel_id),
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "max_presences": None,
        "max_members": 500000,
        "vanity_url_code": None,
        "description": None,
        "banner": None,
        "premium_tier": g.premium_tier,
        "premium_subscription_count": 0,
        "preferred_locale": g.preferred_locale,
        "public_updates_channel_id": None,
        "max_video_channel_users": 25,
        "max_stage_video_channel_users": 50,
        "nsfw_level": 0,
        "premium_progress_bar_enabled": False,
        "safety_alerts_channel_id": None,
        "incidents_data": None,
    }


def guild_create(world: World, g: Guild, *, all_members: bool) -> dict[str, Any]:
    """GUILD_CREATE: the guild plus channels, threads, members and the rest of the gateway-only fields.

    Without the GUILD_MEMBERS intent Discord only sends the bot's own member.
    """
    data = guild(world, g)
    members = [m for m in g.members.values() if all_members or m.user.id == world.bot_user.id]
    channels = [world.channels[c] for c in g.channel_ids if c in world.channels]
    data.update(
        {
            "joined_at": iso(g.joined_at),
            "large": False,
            "lazy": True,
            "unavailable": False,
            "member_count": len(g.members),
            "members": [member(world, m) for m in members],
            "channels": [channel(world, c, in_guild_create=True) for c in channels if not c.is_thread],
            "threads": [
                channel(world, c)
                for c in channels
                if c.is_thread and not c.archived and world.can_see_thread(c, world.bot_user.id)
            ],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "embedded_activities": [],
            "activity_instances": [],
            "application_command_counts": {},
            "hub_type": None,
            "latest_onboarding_question_id": None,
            "home_header": None,
            "version": 0,
        }
    )
    return data


def attachment_public(att: dict[str, Any]) -> dict[str, Any]:
    """Attachment dicts are stored ready to serve; copy so callers can't mutate state."""
    return dict(att)


def message(world: World, m: Message, *, gateway: bool = False, nested: bool = False) -> dict[str, Any]:
    guild_obj = world.guilds.get(m.guild_id) if m.guild_id else None
    mentions = []
    for uid in m.mentions:
        u = world.users.get(uid)
        if u is None:
            continue
        entry = user(u)
        if gateway and guild_obj is not None and uid in guild_obj.members:
            entry["member"] = member(world, guild_obj.members[uid], with_user=False)
        mentions.append(entry)
    data: dict[str, Any] = {
        "id": str(m.id),
        "channel_id": str(m.channel_id),
        "type": int(m.type),
        "author": user(m.author),
        "content": m.content,
        "timestamp": iso(m.timestamp),
        "edited_timestamp": iso(m.edited_timestamp),
        "tts": m.tts,
        "mention_everyone": m.mention_everyone,
        "mentions": mentions,
        "mention_roles": [str(r) for r in m.mention_roles],
        "mention_channels": [],
        "attachments": [attachment_public(a) for a in m.attachments],
        "embeds": [dict(e) for e in m.embeds],
        "pinned": m.pinned,
        "flags": m.flags,
        "components": m.components,
    }
    if m.nonce is not None:
        data["nonce"] = m.nonce
    if m.webhook_id is not None:
        data["webhook_id"] = str(m.webhook_id)
    if m.application_id is not None:
        data["application_id"] = str(m.application_id)
    if m.interaction_metadata is not None:
        data["interaction_metadata"] = m.interaction_metadata
    if m.interaction_legacy is not None:
        data["interaction"] = m.interaction_legacy
    if m.message_reference is not None:
        data["message_reference"] = m.message_reference
        if m.type == MessageType.REPLY and not nested:
            ref = world.messages.get(m.referenced_message_id or 0)
            # A deleted referenced message is sent as an explicit null.
            data["referenced_message"] = (
                message(world, ref, gateway=gateway, nested=True)
                if ref is not None and not ref.deleted
                else None
            )
    if m.thread_id is not None and m.thread_id in world.channels and not nested:
        data["thread"] = channel(world, world.channels[m.thread_id])
    ch = world.channels.get(m.channel_id)
    if ch is not None and ch.is_thread:
        data["position"] = world.position_in_channel(m)
    if m.reactions:
        data["reactions"] = [
            {
                "emoji": _emoji_payload(key),
                "count": len(users),
                "count_details": {"burst": 0, "normal": len(users)},
                "me": world.bot_user.id in users,
                "me_burst": False,
                "burst_colors": [],
            }
            for key, users in m.reactions.items()
            if users
        ]
    if m.poll is not None:
        data["poll"] = m.poll
    if gateway and m.guild_id is not None:
        data["guild_id"] = str(m.guild_id)
        if guild_obj is not None and m.author.id in guild_obj.members and m.webhook_id is None:
            data["member"] = member(world, guild_obj.members[m.author.id], with_user=False)
    return data


def _emoji_payload(key: str) -> dict[str, Any]:
    # Keys are either a unicode emoji or "name:id" for custom emojis.
    if ":" in key:
        name, _, emoji_id = key.rpartition(":")
        return {"id": emoji_id, "name": name}
    return {"id": None, "name": key}


def application(world: World) -> dict[str, Any]:
    owner = world.application_owner
    return {
        "id": str(world.application_id),
        "name": world.bot_user.username,
        "icon": None,
        "description": "",
        "summary": "",
        "type": None,
        "hook": True,
        "bot_public": True,
        "bot_require_code_grant": False,
        "verify_key": "0" * 64,
        "flags": world.application_flags,
        "owner": user(owner),
        "team": None,
        "bot": user(world.bot_user),
        "guild_id": None,
        "redirect_uris": [],
        "interactions_endpoint_url": None,
        "role_connections_verification_url": None,
        "tags": [],
        "install_params": None,
        "integration_types_config": {"0": {}},
        "approximate_guild_count": len(world.guilds),
        "approximate_user_install_count": 0,
        "is_monetized": False,
        "storefront_available": False,
    }


def command(cmd: AppCommand) -> dict[str, Any]:
    data = dict(cmd.payload)
    data.update(
        {
            "id": str(cmd.id),
            "application_id": str(cmd.application_id),
            "version": str(cmd.version),
            "type": cmd.type,
            "name": cmd.name,
            "description": data.get("description") or "",
            "default_member_permissions": data.get("default_member_permissions"),
            "nsfw": data.get("nsfw", False),
            "name_localizations": data.get("name_localizations"),
            "description_localizations": data.get("description_localizations"),
        }
    )
    if cmd.guild_id is not None:
        data["guild_id"] = str(cmd.guild_id)
    else:
        data.setdefault("contexts", None)
        data.setdefault("integration_types", [0])
    return data


def _sid(value: int | None) -> str | None:
    return None if value is None else str(value)
