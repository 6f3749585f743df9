"""The in-memory world behind the fake: entities, permissions, messages, change notification.

Everything that changes the world goes through :class:`World` so that (a) the
matching gateway event is emitted, exactly like Discord would send it, and (b)
waiters blocked in :meth:`Notifier.wait_for` re-check their predicates.
"""

from __future__ import annotations

import asyncio
import mimetypes
import re
import secrets
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from . import payloads
from .gateway import shard_for
from .models import (
    ALL_PERMISSIONS,
    DEFAULT_BOT_PERMISSIONS,
    DEFAULT_EVERYONE_PERMISSIONS,
    PRIVILEGED_INTENTS,
    AppCommand,
    Channel,
    ChannelType,
    Guild,
    Intent,
    Member,
    Message,
    MessageFlag,
    Overwrite,
    Permission,
    Role,
    UploadedFile,
    User,
)
from .snowflakes import SnowflakeGenerator

if TYPE_CHECKING:
    from .gateway import Session
    from .interactions import InteractionRecord

T = TypeVar("T")

# An event body, or a function building it per gateway session (for intent-dependent shapes).
EventData = dict[str, Any] | Callable[["Session"], dict[str, Any] | None]
Emitter = Callable[..., None]

_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")

# Application flags Discord reports when the privileged intents are toggled on in the portal.
_FLAG_FOR_PRIVILEGED = {
    Intent.GUILD_PRESENCES: 1 << 13,
    Intent.GUILD_MEMBERS: 1 << 15,
    Intent.MESSAGE_CONTENT: 1 << 19,
}
_APPLICATION_COMMAND_BADGE = 1 << 23

GuildLike = Guild | int
ChannelLike = Channel | int
UserLike = User | Member | int
MessageLike = Message | int


class Notifier:
    """Wakes every waiter whenever the fake's state changes.

    Works like an ``asyncio.Condition`` that is notified on each REST call and
    each gateway event, but :meth:`notify` is synchronous so it can be called
    from ``loop.call_later`` callbacks (ack deadlines) and sync code paths.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.version = 0

    def notify(self) -> None:
        self.version += 1
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait_for(self, predicate: Callable[[], T], timeout: float, what: str = "") -> T:  # noqa: ASYNC109
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what or predicate!r}")
            event = self._event
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                pass


class World:
    """All state of the fake Discord: who exists, what was said, what was registered."""

    def __init__(
        self, *, token: str, bot_username: str, privileged_intents: Iterable[str], shard_count: int = 1
    ) -> None:
        self.ids = SnowflakeGenerator()
        self.token = token
        # How many shards GET /gateway/bot advertises; a guild's events go to shard (id >> 22) % shard_count.
        self.shard_count = shard_count
        self.bot_user = User(id=self.ids.next(), username=bot_username, bot=True)
        # Modern applications share their id with their bot user.
        self.application_id = self.bot_user.id
        self.application_owner = User(id=self.ids.next(), username=f"{bot_username.lower()}-owner")
        self.privileged_intents = 0
        for name in privileged_intents:
            self.privileged_intents |= int(PRIVILEGED_INTENTS[name])
        self.users: dict[int, User] = {u.id: u for u in (self.bot_user, self.application_owner)}
        self.guilds: dict[int, Guild] = {}
        self.channels: dict[int, Channel] = {}
        self.deleted_channel_ids: set[int] = set()
        self.messages: dict[int, Message] = {}
        self.channel_messages: dict[int, list[int]] = {}
        self.commands: dict[int, AppCommand] = {}
        self.interactions: dict[int, InteractionRecord] = {}
        self.interactions_by_token: dict[str, InteractionRecord] = {}
        self.attachment_data: dict[int, bytes] = {}
        self.blocked_dm_user_ids: set[int] = set()
        self.notifier = Notifier()
        self.cdn_base = "https://cdn.discordapp.com"
        self.media_base = "https://media.discordapp.net"
        self.attachment_size_limit = 10 * 1024 * 1024
        # enforce_nonce: (author id, nonce) → (message id, monotonic time it was created). Discord documents
        # "the past few minutes" without a number; tests that must outlive it set `nonce_window` to 0.
        self.nonces: dict[tuple[int, str], tuple[int, float]] = {}
        self.nonce_window = 300.0
        # Replaced by the gateway's dispatcher once the server runs.
        self.emit: Emitter = lambda *args, **kwargs: None

    # ------------------------------------------------------------------ lookups

    @property
    def application_flags(self) -> int:
        flags = _APPLICATION_COMMAND_BADGE
        for intent, flag in _FLAG_FOR_PRIVILEGED.items():
            if self.privileged_intents & intent:
                flags |= flag
        return flags

    def shard_of(self, guild: GuildLike) -> int:
        """The shard whose sessions receive this guild's events."""
        return shard_for(guild.id if isinstance(guild, Guild) else int(guild), self.shard_count)

    def guild(self, ref: GuildLike) -> Guild:
        gid = ref.id if isinstance(ref, Guild) else int(ref)
        return self.guilds[gid]

    def channel(self, ref: ChannelLike) -> Channel:
        cid = ref.id if isinstance(ref, Channel) else int(ref)
        return self.channels[cid]

    def user(self, ref: UserLike) -> User:
        if isinstance(ref, Member):
            return ref.user
        if isinstance(ref, User):
            return ref
        return self.users[int(ref)]

    def message(self, ref: MessageLike) -> Message:
        mid = ref.id if isinstance(ref, Message) else int(ref)
        return self.messages[mid]

    def member(self, guild: Guild, user: UserLike) -> Member:
        return guild.members[self.user(user).id]

    def guild_of(self, channel: Channel) -> Guild | None:
        return self.guilds.get(channel.guild_id) if channel.guild_id is not None else None

    def channel_message_list(self, channel_id: int, *, include_deleted: bool = False) -> list[Message]:
        ids = self.channel_messages.get(channel_id, [])
        return [self.messages[i] for i in ids if include_deleted or not self.messages[i].deleted]

    def position_in_channel(self, message: Message) -> int:
        ids = self.channel_messages.get(message.channel_id, [])
        return ids.index(message.id) if message.id in ids else 0

    def commands_in_scope(self, guild_id: int | None) -> list[AppCommand]:
        return [c for c in self.commands.values() if c.guild_id == guild_id]

    # ------------------------------------------------------------------ factories

    def add_user(self, username: str, *, global_name: str | None = None, bot: bool = False) -> User:
        user = User(id=self.ids.next(), username=username, global_name=global_name, bot=bot)
        self.users[user.id] = user
        self.notifier.notify()
        return user

    def add_guild(
        self,
        name: str = "Test Guild",
        *,
        owner: UserLike | None = None,
        bot_permissions: int = DEFAULT_BOT_PERMISSIONS,
        everyone_permissions: int = DEFAULT_EVERYONE_PERMISSIONS,
        locale: str = "en-US",
        features: Iterable[str] = (),
        shard: int | None = None,
    ) -> Guild:
        gid = self._guild_id(shard)
        owner_user = (
            self.user(owner)
            if owner is not None
            else self.add_user(f"owner-of-{name.lower().replace(' ', '-')}")
        )
        guild = Guild(
            id=gid, name=name, owner_id=owner_user.id, preferred_locale=locale, features=list(features)
        )
        guild.roles[gid] = Role(
            id=gid, guild_id=gid, name="@everyone", permissions=everyone_permissions, position=0
        )
        bot_role = Role(
            id=self.ids.next(),
            guild_id=gid,
            name=self.bot_user.username,
            permissions=bot_permissions,
            position=1,
            managed=True,
            bot_id=self.bot_user.id,
        )
        guild.roles[bot_role.id] = bot_role
        guild.bot_role_id = bot_role.id
        guild.members[self.bot_user.id] = Member(user=self.bot_user, guild_id=gid, roles=[bot_role.id])
        guild.members[owner_user.id] = Member(user=owner_user, guild_id=gid)
        self.guilds[gid] = guild
        self.emit("GUILD_CREATE", lambda s: self.guild_create_payload(guild, s), intent=None)
        self.notifier.notify()
        return guild

    def _guild_id(self, shard: int | None) -> int:
        """A fresh snowflake, on ``shard`` if given: ids carry the time in milliseconds above bit 22, so
        the next id on a shard is at most ``shard_count - 1`` milliseconds away."""
        if shard is not None and not 0 <= shard < self.shard_count:
            raise ValueError(f"shard {shard} is not below the shard count {self.shard_count}")
        gid = self.ids.next()
        while shard is not None and shard_for(gid, self.shard_count) != shard:
            gid = self.ids.next()
        return gid

    def guild_create_payload(self, guild: Guild, session: Session) -> dict[str, Any]:
        return payloads.guild_create(self, guild, all_members=session.has_intent(Intent.GUILD_MEMBERS))

    def add_channel(
        self,
        guild: GuildLike,
        name: str = "general",
        *,
        type: int = ChannelType.GUILD_TEXT,
        topic: str | None = None,
        parent: ChannelLike | None = None,
        nsfw: bool = False,
        rate_limit_per_user: int = 0,
    ) -> Channel:
        g = self.guild(guild)
        channel = Channel(
            id=self.ids.next(),
            type=int(type),
            name=name,
            guild_id=g.id,
            parent_id=self.channel(parent).id if parent is not None else None,
            position=sum(1 for c in g.channel_ids if not self.channels[c].is_thread),
            topic=topic,
            nsfw=nsfw,
            rate_limit_per_user=rate_limit_per_user,
        )
        self.channels[channel.id] = channel
        g.channel_ids.append(channel.id)
        if g.system_channel_id is None and channel.type == ChannelType.GUILD_TEXT:
            g.system_channel_id = channel.id
        self.emit("CHANNEL_CREATE", payloads.channel(self, channel), intent=Intent.GUILDS)
        self.notifier.notify()
        return channel

    def add_role(
        self,
        guild: GuildLike,
        name: str,
        permissions: int = 0,
        *,
        color: int = 0,
        mentionable: bool = False,
        hoist: bool = False,
    ) -> Role:
        g = self.guild(guild)
        role = Role(
            id=self.ids.next(),
            guild_id=g.id,
            name=name,
            permissions=int(permissions),
            position=len(g.roles),
            color=color,
            mentionable=mentionable,
            hoist=hoist,
        )
        g.roles[role.id] = role
        self.emit(
            "GUILD_ROLE_CREATE", {"guild_id": str(g.id), "role": payloads.role(role)}, intent=Intent.GUILDS
        )
        self.notifier.notify()
        return role

    def add_member(
        self,
        guild: GuildLike,
        username: str | None = None,
        *,
        user: UserLike | None = None,
        roles: Iterable[Role | int] = (),
        nick: str | None = None,
        global_name: str | None = None,
        bot: bool = False,
    ) -> Member:
        g = self.guild(guild)
        if user is None:
            u = self.add_user(username or f"user{len(self.users)}", global_name=global_name, bot=bot)
        else:
            u = self.user(user)
        role_ids = [r.id if isinstance(r, Role) else int(r) for r in roles]
        unknown = [r for r in role_ids if r not in g.roles]
        if unknown:
            raise KeyError(f"roles {unknown} are not in guild {g.id}")
        member = Member(user=u, guild_id=g.id, roles=role_ids, nick=nick)
        g.members[u.id] = member
        data = payloads.member(self, member)
        data["guild_id"] = str(g.id)
        self.emit("GUILD_MEMBER_ADD", data, intent=Intent.GUILD_MEMBERS)
        self.notifier.notify()
        return member

    def add_thread(
        self,
        channel: ChannelLike,
        name: str,
        *,
        owner: UserLike | None = None,
        type: int = ChannelType.PUBLIC_THREAD,
        message: MessageLike | None = None,
        archived: bool = False,
        locked: bool = False,
        auto_archive_duration: int = 4320,
        join_bot: bool = False,
    ) -> Channel:
        """A thread in ``channel``; started from ``message`` it shares the message's id, like on Discord."""
        parent = self.channel(channel)
        starter = self.message(message) if message is not None else None
        owner_user = self.user(owner) if owner is not None else self.bot_user
        thread = Channel(
            id=starter.id if starter is not None else self.ids.next(),
            type=int(type),
            name=name,
            guild_id=parent.guild_id,
            parent_id=parent.id,
            owner_id=owner_user.id,
            archived=archived,
            locked=locked,
            auto_archive_duration=auto_archive_duration,
            member_ids={owner_user.id} | ({self.bot_user.id} if join_bot else set()),
        )
        self.register_thread(thread, starter)
        return thread

    def register_thread(self, thread: Channel, starter: Message | None) -> None:
        self.channels[thread.id] = thread
        guild = self.guilds[thread.guild_id] if thread.guild_id is not None else None
        if guild is not None:
            guild.channel_ids.append(thread.id)
        data = payloads.channel(self, thread)
        data["newly_created"] = True
        self.emit(
            "THREAD_CREATE",
            lambda s: data if self.can_see_thread(thread, self.bot_user.id) else None,
            intent=Intent.GUILDS,
        )
        if starter is not None:
            starter.thread_id = thread.id
            starter.flags |= MessageFlag.HAS_THREAD
            self.emit_message("MESSAGE_UPDATE", starter)
        self.notifier.notify()

    def dm_channel(self, user: UserLike) -> Channel:
        """The DM channel between the bot and ``user`` (created on first use)."""
        u = self.user(user)
        for channel in self.channels.values():
            if channel.type == ChannelType.DM and channel.recipient_ids == [u.id]:
                return channel
        channel = Channel(id=self.ids.next(), type=ChannelType.DM, recipient_ids=[u.id])
        self.channels[channel.id] = channel
        self.notifier.notify()
        return channel

    # ------------------------------------------------------------------ removals & permission changes

    def delete_channel(self, channel: ChannelLike) -> Channel:
        ch = self.channel(channel)
        del self.channels[ch.id]
        self.deleted_channel_ids.add(ch.id)
        guild = self.guild_of(ch)
        if guild is not None and ch.id in guild.channel_ids:
            guild.channel_ids.remove(ch.id)
        if ch.is_thread:
            data = {
                "id": str(ch.id),
                "guild_id": str(ch.guild_id),
                "parent_id": str(ch.parent_id),
                "type": ch.type,
            }
            self.emit("THREAD_DELETE", data, intent=Intent.GUILDS)
        else:
            self.emit("CHANNEL_DELETE", payloads.channel(self, ch), intent=Intent.GUILDS)
        self.notifier.notify()
        return ch

    def delete_message(self, message: Message) -> None:
        message.deleted = True
        if not message.ephemeral:
            data: dict[str, Any] = {"id": str(message.id), "channel_id": str(message.channel_id)}
            if message.guild_id is not None:
                data["guild_id"] = str(message.guild_id)
            self.emit("MESSAGE_DELETE", data, intent=self._message_intent(message))
        self.notifier.notify()

    def set_channel_permissions(
        self, channel: ChannelLike, target: Role | Member | User | int, *, allow: int = 0, deny: int = 0
    ) -> Overwrite:
        ch = self.channel(channel)
        if isinstance(target, Role):
            target_id, kind = target.id, 0
        elif isinstance(target, Member | User):
            target_id, kind = target.id, 1
        else:
            guild = self.guild_of(ch)
            target_id = int(target)
            kind = 0 if guild is not None and target_id in guild.roles else 1
        ch.overwrites = [o for o in ch.overwrites if o.id != target_id]
        overwrite = Overwrite(id=target_id, type=kind, allow=int(allow), deny=int(deny))
        ch.overwrites.append(overwrite)
        event = "THREAD_UPDATE" if ch.is_thread else "CHANNEL_UPDATE"
        self.emit(event, payloads.channel(self, ch), intent=Intent.GUILDS)
        self.notifier.notify()
        return overwrite

    # ------------------------------------------------------------------ permissions

    def base_permissions(self, guild: Guild, user_id: int) -> int:
        if user_id == guild.owner_id:
            return ALL_PERMISSIONS
        member = guild.members.get(user_id)
        perms = guild.everyone_role.permissions
        if member is not None:
            for rid in member.roles:
                role = guild.roles.get(rid)
                if role is not None:
                    perms |= role.permissions
        if perms & Permission.ADMINISTRATOR:
            return ALL_PERMISSIONS
        return perms

    def channel_permissions(self, channel: Channel, user_id: int) -> int:
        """Discord's permission algorithm: base roles, then @everyone/role/member overwrites."""
        guild = self.guild_of(channel)
        if guild is None:
            # DMs: what Discord reports as app_permissions for the bot's DM.
            return int(
                Permission.VIEW_CHANNEL
                | Permission.SEND_MESSAGES
                | Permission.EMBED_LINKS
                | Permission.ATTACH_FILES
                | Permission.READ_MESSAGE_HISTORY
                | Permission.ADD_REACTIONS
                | Permission.USE_EXTERNAL_EMOJIS
                | Permission.MENTION_EVERYONE
            )
        perms = self.base_permissions(guild, user_id)
        if perms == ALL_PERMISSIONS:
            return perms
        source = self.channels.get(channel.parent_id) if channel.is_thread and channel.parent_id else channel
        overwrites = {o.id: o for o in (source.overwrites if source else [])}
        everyone = overwrites.get(guild.id)
        if everyone is not None:
            perms = (perms & ~everyone.deny) | everyone.allow
        member = guild.members.get(user_id)
        role_ids = member.roles if member is not None else []
        allow = deny = 0
        for rid in role_ids:
            o = overwrites.get(rid)
            if o is not None and o.type == 0:
                allow |= o.allow
                deny |= o.deny
        perms = (perms & ~deny) | allow
        own = overwrites.get(user_id)
        if own is not None and own.type == 1:
            perms = (perms & ~own.deny) | own.allow
        if not perms & Permission.VIEW_CHANNEL:
            return 0
        return perms

    def bot_permissions(self, channel: Channel) -> int:
        return self.channel_permissions(channel, self.bot_user.id)

    def can_see_thread(self, thread: Channel, user_id: int) -> bool:
        perms = self.channel_permissions(thread, user_id)
        if not perms & Permission.VIEW_CHANNEL:
            return False
        if thread.type == ChannelType.PRIVATE_THREAD:
            return user_id in thread.member_ids or bool(perms & Permission.MANAGE_THREADS)
        return True

    # ------------------------------------------------------------------ messages

    def compute_mentions(
        self,
        content: str,
        allowed: dict[str, Any] | None,
        *,
        guild: Guild | None,
        replied_to: Message | None,
        author_id: int,
        default_replied_user: bool = True,
    ) -> tuple[list[int], list[int], bool]:
        """Who actually gets pinged: parsed mentions filtered by ``allowed_mentions``.

        With no ``allowed_mentions`` everything in the content pings and a reply
        pings the replied-to author; with an object, only what it allows does
        (``replied_user`` defaults to false then).
        """
        users_in_text = [int(u) for u in _USER_MENTION.findall(content)]
        roles_in_text = [int(r) for r in _ROLE_MENTION.findall(content)]
        everyone_in_text = "@everyone" in content or "@here" in content
        if allowed is None:
            users, roles, everyone = users_in_text, roles_in_text, everyone_in_text
            replied_user = default_replied_user
        else:
            parse = allowed.get("parse") or []
            allowed_users = {int(u) for u in allowed.get("users") or []}
            allowed_roles = {int(r) for r in allowed.get("roles") or []}
            users = [u for u in users_in_text if "users" in parse or u in allowed_users]
            roles = [r for r in roles_in_text if "roles" in parse or r in allowed_roles]
            everyone = everyone_in_text and "everyone" in parse
            replied_user = bool(allowed.get("replied_user", False))
        if replied_to is not None and replied_user and replied_to.author.id != author_id:
            users.append(replied_to.author.id)
        known_users = list(dict.fromkeys(u for u in users if u in self.users))
        known_roles = list(dict.fromkeys(r for r in roles if guild is not None and r in guild.roles))
        return known_users, known_roles, everyone

    def store_message(self, message: Message) -> Message:
        self.messages[message.id] = message
        self.channel_messages.setdefault(message.channel_id, []).append(message.id)
        channel = self.channels.get(message.channel_id)
        if channel is not None and not message.ephemeral:
            channel.last_message_id = message.id
            if channel.is_thread:
                channel.message_count += 1
                channel.total_message_sent += 1
        return message

    def _message_intent(self, message: Message) -> int:
        return int(Intent.GUILD_MESSAGES if message.guild_id is not None else Intent.DIRECT_MESSAGES)

    def emit_message(self, event: str, message: Message) -> None:
        """MESSAGE_CREATE/UPDATE, honouring the MESSAGE_CONTENT intent per session."""
        if message.ephemeral:
            # Ephemeral messages only exist for the invoking user; bots never get gateway events for them.
            return

        def build(session: Session) -> dict[str, Any]:
            data = payloads.message(self, message, gateway=True)
            if not self.session_sees_content(session, message):
                _strip_content(data)
            ref = data.get("referenced_message")
            if ref and message.referenced_message_id in self.messages:
                if not self.session_sees_content(session, self.messages[message.referenced_message_id]):
                    _strip_content(ref)
            return data

        self.emit(event, build, intent=self._message_intent(message))

    def session_sees_content(self, session: Session, message: Message) -> bool:
        return (
            session.has_intent(Intent.MESSAGE_CONTENT)
            or message.author.id == self.bot_user.id
            or message.guild_id is None
            or self.bot_user.id in message.mentions
        )

    # ------------------------------------------------------------------ attachments

    def upload_limit(self, channel_id: int | None) -> int:
        channel = self.channels.get(channel_id) if channel_id is not None else None
        guild = self.guilds.get(channel.guild_id) if channel is not None and channel.guild_id else None
        return guild.filesize_limit if guild is not None else self.attachment_size_limit

    def set_premium_tier(self, guild: GuildLike, tier: int) -> None:
        """Boost a guild (GUILD_UPDATE is dispatched): its upload limit follows."""
        g = self.guild(guild)
        g.premium_tier = tier
        self.emit("GUILD_UPDATE", payloads.guild(self, g), intent=Intent.GUILDS)
        self.notifier.notify()

    def make_attachment(
        self,
        filename: str,
        content_type: str | None = None,
        size: int | None = None,
        url: str | None = None,
        *,
        data: bytes | None = None,
        width: int | None = None,
        height: int | None = None,
        channel_id: int | None = None,
        description: str | None = None,
        ephemeral: bool = False,
        attachment_id: int | None = None,
    ) -> dict[str, Any]:
        aid = attachment_id if attachment_id is not None else self.ids.next()
        content_type = content_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        if size is None:
            size = len(data) if data is not None else 1024
        if data is not None:
            self.attachment_data[aid] = data
        cid = channel_id if channel_id is not None else self.ids.next()
        # Discord signs CDN links with ex/is/hm query parameters; shaped alike so URL parsing code is exercised.
        signature = f"?ex={secrets.token_hex(4)}&is={secrets.token_hex(4)}&hm={secrets.token_hex(32)}&"
        path = f"/attachments/{cid}/{aid}/{filename}"
        att: dict[str, Any] = {
            "id": str(aid),
            "filename": filename,
            "size": size,
            "url": url or f"{self.cdn_base}{path}{signature}",
            "proxy_url": f"{self.media_base}{path}{signature}",
            "content_type": content_type,
            "content_scan_version": 0,
        }
        if content_type.startswith(("image/", "video/")):
            att["width"] = width if width is not None else 1024
            att["height"] = height if height is not None else 1024
            att["placeholder_version"] = 1
        if description is not None:
            att["description"] = description
        if ephemeral:
            att["ephemeral"] = True
        return att

    def attachments_from_upload(
        self,
        body: dict[str, Any],
        files: list[tuple[str, str, str, bytes]],
        channel_id: int,
        existing: list[dict[str, Any]] | None = None,
        *,
        ephemeral: bool = False,
    ) -> tuple[list[dict[str, Any]], list[UploadedFile]] | None:
        """Resolve ``attachments`` + ``files[n]`` into stored attachments.

        ``files`` items are ``(field_name, filename, content_type, data)``.
        Returns ``None`` when the body doesn't touch attachments (edits keep theirs).
        """
        spec = body.get("attachments")
        if spec is None and not files:
            return None
        by_field = {name: (filename, ctype, data) for name, filename, ctype, data in files}
        existing_by_id = {a["id"]: a for a in existing or []}
        result: list[dict[str, Any]] = []
        uploaded: list[UploadedFile] = []
        used_fields: set[str] = set()
        for item in spec or []:
            ref = str(item.get("id"))
            field_name = f"files[{ref}]"
            if field_name in by_field:
                filename, ctype, data = by_field[field_name]
                used_fields.add(field_name)
                att = self._stored_upload(
                    item.get("filename") or filename, ctype, data, channel_id, item, ephemeral
                )
                result.append(att)
                uploaded.append(UploadedFile(att["filename"], att["content_type"], data, int(att["id"])))
            elif ref in existing_by_id:
                result.append(existing_by_id[ref])
        # Files sent without an attachments entry are still attached, in field order.
        for name, (filename, ctype, data) in by_field.items():
            if name not in used_fields:
                att = self._stored_upload(filename, ctype, data, channel_id, {}, ephemeral)
                result.append(att)
                uploaded.append(UploadedFile(att["filename"], att["content_type"], data, int(att["id"])))
        return result, uploaded

    def _stored_upload(
        self, filename: str, ctype: str, data: bytes, channel_id: int, item: dict[str, Any], ephemeral: bool
    ) -> dict[str, Any]:
        # discord.py sends every file as application/octet-stream; Discord sniffs the real type from the name.
        if not ctype or ctype == "application/octet-stream":
            ctype = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        width, height = _image_size(data)
        return self.make_attachment(
            filename,
            ctype,
            len(data),
            data=data,
            channel_id=channel_id,
            width=width,
            height=height,
            description=item.get("description"),
            ephemeral=ephemeral,
        )


def _strip_content(data: dict[str, Any]) -> None:
    # What a bot without the MESSAGE_CONTENT intent receives for other people's guild messages.
    data["content"] = ""
    data["embeds"] = []
    data["attachments"] = []
    data["components"] = []
    data.pop("poll", None)


def _image_size(data: bytes) -> tuple[int | None, int | None]:
    """Width/height for PNG and GIF uploads (Discord reports them); None for anything else."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    return None, None
