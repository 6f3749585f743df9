"""``FakeDiscord``: one local aiohttp server speaking Discord's REST API and gateway.

Typical use::

    async with FakeDiscord() as fake:
        guild = fake.add_guild("Luma Lab")
        channel = fake.add_channel(guild, name="videos")
        alice = fake.add_member(guild, username="alice")
        async with fake.run_client(bot):          # real discord.py, real socket
            await bot.tree.sync(guild=discord.Object(guild.id))
            record = await fake.invoke_slash(guild, channel, alice, "luma", subcommand="generate",
                                             options={"prompt": "a cat"})
            body = await record.wait_response()

All waiting goes through :meth:`FakeDiscord.wait_for`, which re-checks its
predicate on every REST call, gateway frame and state change, so tests never
sleep on a fixed clock.  Waiting helpers take ``timeout=`` (hence the
``noqa: ASYNC109`` markers): a failing wait then names what it waited for.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from aiohttp import web

from .drivers import Drivers
from .gateway import Gateway, GatewayConnection, Session, heartbeat_barrier
from .interactions import InteractionRecord, InteractionService
from .models import (
    DEFAULT_BOT_PERMISSIONS,
    DEFAULT_EVERYONE_PERMISSIONS,
    AppCommand,
    Channel,
    ChannelType,
    Guild,
    Member,
    Message,
    Overwrite,
    Permission,
    RequestRecord,
    Role,
    User,
)
from .rest import Injection, RestAPI
from .state import ChannelLike, GuildLike, MessageLike, UserLike, World

T = TypeVar("T")
log = logging.getLogger("fake_discord")

# What forbid_channel() takes away from the bot: everything that writes to the channel.
_WRITE_PERMISSIONS = int(
    Permission.SEND_MESSAGES
    | Permission.SEND_MESSAGES_IN_THREADS
    | Permission.CREATE_PUBLIC_THREADS
    | Permission.CREATE_PRIVATE_THREADS
    | Permission.ATTACH_FILES
    | Permission.EMBED_LINKS
    | Permission.ADD_REACTIONS
)


def _make_token(user_id: int) -> str:
    # Shaped like a real bot token: base64(user id) . timestamp-ish . HMAC-ish.
    head = base64.urlsafe_b64encode(str(user_id).encode()).decode().rstrip("=")
    return f"{head}.{secrets.token_urlsafe(4)}.{secrets.token_urlsafe(27)}"


class FakeDiscord:
    """A fake Discord (REST v10 + gateway) on ``127.0.0.1`` for end-to-end tests of a discord.py bot.

    Parameters mirror what tests need to tune: ``heartbeat_interval`` (ms, sent in
    HELLO), ``ack_deadline`` (seconds to answer an interaction, Discord: 3),
    ``token_ttl`` (seconds an interaction token works, Discord: 900) and the
    ``privileged_intents`` the application has enabled in the developer portal.

    Sharding: GET /gateway/bot advertises ``shard_count`` shards (and
    ``max_concurrency``, default ``shard_count``: every shard its own IDENTIFY
    bucket); IDENTIFY must name ``[shard_id, shard_count]``.  A guild's events go
    only to the sessions of shard ``(guild_id >> 22) % shard_count`` (see
    :meth:`shard_of`; ``add_guild(shard=...)`` places a guild), DMs to shard 0.
    Sessions that IDENTIFY without ``shard`` receive everything.
    """

    def __init__(
        self,
        *,
        token: str | None = None,
        bot_username: str = "Luma",
        heartbeat_interval: int = 41250,
        ack_deadline: float = 3.0,
        token_ttl: float = 900.0,
        privileged_intents: Iterable[str] = ("members", "presences", "message_content"),
        host: str = "127.0.0.1",
        shard_count: int = 1,
        max_concurrency: int | None = None,
    ) -> None:
        if shard_count < 1:
            raise ValueError("shard_count must be at least 1")
        self.world = World(
            token="pending",
            bot_username=bot_username,
            privileged_intents=privileged_intents,
            shard_count=shard_count,
        )
        self.world.token = token or _make_token(self.world.bot_user.id)
        self.gateway = Gateway(self.world, heartbeat_interval=heartbeat_interval)
        self.world.emit = self.gateway.dispatch
        self.interaction_service = InteractionService(
            self.world, self.gateway, ack_deadline=ack_deadline, token_ttl=token_ttl
        )
        self.drivers = Drivers(self.world, self.interaction_service)
        self.rest = RestAPI(self)
        self.max_concurrency = max_concurrency if max_concurrency is not None else shard_count
        self._advertise_shards()
        self.host = host
        self.port: int | None = None
        self._runner: web.AppRunner | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> FakeDiscord:
        """Start listening on an ephemeral port; URLs are valid afterwards."""
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_route("GET", "/", self._root)
        app.router.add_route("GET", "/resume", self._root)
        app.router.add_route("*", "/{tail:.*}", self.rest.handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        self.port = server.sockets[0].getsockname()[1]
        self.gateway.resume_gateway_url = f"ws://{self.host}:{self.port}/resume"
        return self

    async def stop(self) -> None:
        """Close gateway connections (code 1001) and the server. Close bots first, or they will try to reconnect."""
        self.interaction_service.cancel_timers()
        await self.gateway.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _advertise_shards(self) -> None:
        """GET /gateway/bot answers with this fake's shard count and identify concurrency."""
        for route in self.rest.routes:
            if route.method == "GET" and route.template == "/gateway/bot":
                base = route.handler

                async def gateway_bot(req: Any, _base: Any = base) -> Any:
                    body = await _base(req)
                    body["shards"] = self.shard_count
                    body["session_start_limit"]["max_concurrency"] = self.max_concurrency
                    return body

                route.handler = gateway_bot

    async def _root(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self.gateway.handle(request)
        return await self.rest.handle(request)

    # ------------------------------------------------------------------ addresses & credentials

    @property
    def http_base(self) -> str:
        if self.port is None:
            raise RuntimeError("FakeDiscord is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def api_base(self) -> str:
        """Value for ``discord.http.Route.BASE``."""
        return f"{self.http_base}/api/v10"

    @property
    def gateway_url(self) -> str:
        """Value for ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY``."""
        return f"ws://{self.host}:{self.port}/"

    @property
    def resume_gateway_url(self) -> str:
        """What READY tells clients to RESUME against (same server, distinct path)."""
        return self.gateway.resume_gateway_url

    @property
    def token(self) -> str:
        return self.world.token

    @property
    def shard_count(self) -> int:
        return self.world.shard_count

    def shard_of(self, guild: GuildLike) -> int:
        """The shard whose sessions receive ``guild``'s events: ``(guild_id >> 22) % shard_count``."""
        return self.world.shard_of(guild)

    @property
    def bot_user(self) -> User:
        return self.world.bot_user

    @property
    def application_id(self) -> int:
        return self.world.application_id

    @property
    def ack_deadline(self) -> float:
        return self.interaction_service.ack_deadline

    @ack_deadline.setter
    def ack_deadline(self, value: float) -> None:
        self.interaction_service.ack_deadline = value

    @property
    def token_ttl(self) -> float:
        return self.interaction_service.token_ttl

    @token_ttl.setter
    def token_ttl(self, value: float) -> None:
        self.interaction_service.token_ttl = value

    @property
    def cdn_base(self) -> str:
        """Prefix of attachment URLs (default ``https://cdn.discordapp.com``).

        Set it to :attr:`http_base` to make attachment URLs downloadable from
        the fake (it serves ``/attachments/...`` for every stored attachment).
        """
        return self.world.cdn_base

    @cdn_base.setter
    def cdn_base(self, value: str) -> None:
        self.world.cdn_base = value.rstrip("/")

    # ------------------------------------------------------------------ pointing discord.py here

    @contextlib.contextmanager
    def redirect_discord_py(self) -> Iterator[None]:
        """Set ``Route.BASE`` and ``DEFAULT_GATEWAY`` to this fake; restore them on exit."""
        import discord.gateway
        import discord.http
        import yarl

        old_base = discord.http.Route.BASE
        old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        discord.http.Route.BASE = self.api_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        try:
            yield
        finally:
            discord.http.Route.BASE = old_base
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway

    @contextlib.asynccontextmanager
    async def run_client(
        self,
        client: Any,
        *,
        timeout: float = 10.0,  # noqa: ASYNC109 - bounds both startup and shutdown
        wait_for_client_ready: bool = True,
    ) -> AsyncIterator[Any]:
        """Run ``client.start(token)`` against the fake for the duration of the block, then close it.

        Entering waits until the client finished IDENTIFY and processed READY and
        every GUILD_CREATE, and (``wait_for_client_ready``) until discord.py
        dispatched ``on_ready``.  discord.py holds ``on_ready`` back for
        ``guild_ready_timeout`` (a Client option, default 2 s) after the last
        GUILD_CREATE, so test bots should pass e.g. ``guild_ready_timeout=0.1``;
        closing a client before that leaves its ``_delay_ready`` task running.
        Failures of the client task (e.g. ``LoginFailure``) are raised instead of hanging.
        """
        with self.redirect_discord_py():
            task = asyncio.create_task(client.start(self.token), name="fake-discord-client")
            try:
                await self._race(task, self.wait_until_ready(timeout=timeout))
                if wait_for_client_ready:
                    await self._race(task, asyncio.wait_for(client.wait_until_ready(), timeout))
                yield client
            finally:
                if not client.is_closed():
                    await client.close()
                try:
                    await asyncio.wait_for(task, timeout)
                except asyncio.CancelledError:
                    pass

    @staticmethod
    async def _race(client_task: asyncio.Task[Any], waiter: Any) -> None:
        """Await ``waiter`` unless the client task ends first (then surface its error)."""
        wait_task = asyncio.ensure_future(waiter)
        done, _ = await asyncio.wait({client_task, wait_task}, return_when=asyncio.FIRST_COMPLETED)
        if wait_task in done:
            wait_task.result()
            return
        wait_task.cancel()
        await asyncio.gather(wait_task, return_exceptions=True)
        client_task.result()
        raise RuntimeError("client.start() returned before the client was ready")

    # ------------------------------------------------------------------ world building

    def add_user(self, username: str, *, global_name: str | None = None, bot: bool = False) -> User:
        """A user that exists on Discord (not necessarily in any guild)."""
        return self.world.add_user(username, global_name=global_name, bot=bot)

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
        """A guild the bot is in: @everyone role (id = guild id), the bot's managed role, the bot and an owner member.

        ``shard`` picks its id so that it belongs to that shard (of :attr:`shard_count`).
        """
        return self.world.add_guild(
            name,
            owner=owner,
            bot_permissions=bot_permissions,
            everyone_permissions=everyone_permissions,
            locale=locale,
            features=features,
            shard=shard,
        )

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
        """A guild channel (text by default; pass ``type=ChannelType.GUILD_FORUM`` etc.)."""
        return self.world.add_channel(
            guild,
            name,
            type=type,
            topic=topic,
            parent=parent,
            nsfw=nsfw,
            rate_limit_per_user=rate_limit_per_user,
        )

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
        """A role with a permissions bitfield."""
        return self.world.add_role(
            guild, name, permissions, color=color, mentionable=mentionable, hoist=hoist
        )

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
        """A member (new user unless ``user`` is given) holding ``roles``."""
        return self.world.add_member(
            guild, username, user=user, roles=roles, nick=nick, global_name=global_name, bot=bot
        )

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
        join_bot: bool = False,
    ) -> Channel:
        """A thread under ``channel`` (sharing ``message``'s id if started from it)."""
        return self.world.add_thread(
            channel,
            name,
            owner=owner,
            type=type,
            message=message,
            archived=archived,
            locked=locked,
            join_bot=join_bot,
        )

    def dm_channel(self, user: UserLike) -> Channel:
        """The DM channel between the bot and ``user``."""
        return self.world.dm_channel(user)

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
        description: str | None = None,
    ) -> dict[str, Any]:
        """An attachment object as Discord sends it (CDN-style URL, width/height for images/videos).

        With ``data`` the fake keeps the bytes and serves them at ``/attachments/...``
        (downloadable when :attr:`cdn_base` points at the fake).
        """
        return self.world.make_attachment(
            filename, content_type, size, url, data=data, width=width, height=height, description=description
        )

    # ------------------------------------------------------------------ fault injection & permissions

    def on_handled(
        self, method: str, path_regex: str, hook: Callable[[], Awaitable[None]], *, times: int | None = 1
    ) -> Injection:
        """Handle the next ``times`` matching requests for real, then await ``hook()`` before answering: the
        way to stop a bot between Discord doing something and the bot hearing that it was done."""
        injection = Injection(
            method=method.upper() if method != "*" else "*",
            path_regex=path_regex,
            status=0,
            times=times,
            after_handled=hook,
        )
        self.rest.injections.append(injection)
        return injection

    def inject_rest_error(
        self,
        method: str,
        path_regex: str,
        status: int,
        *,
        times: int | None = 1,
        retry_after: float | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        is_global: bool = False,
        delay: float = 0.0,
    ) -> Injection:
        """Fail the next ``times`` (``None`` = all) requests whose path (after ``/api/v10``, no query) fullmatches ``path_regex``.

        ``method`` may be ``"*"``. 429s carry Discord's body and ``Retry-After`` /
        ``X-RateLimit-*`` / ``Via`` headers; other statuses default to Discord's
        generic body for that status. ``delay`` holds the answer back that long.
        """
        injection = Injection(
            method=method.upper() if method != "*" else "*",
            path_regex=path_regex,
            status=status,
            times=times,
            retry_after=retry_after,
            body=body,
            headers=dict(headers or {}),
            is_global=is_global,
            delay=delay,
        )
        self.rest.injections.append(injection)
        return injection

    def clear_injections(self) -> None:
        self.rest.injections.clear()

    def delete_channel(self, channel: ChannelLike) -> Channel:
        """Delete a channel/thread (CHANNEL_DELETE/THREAD_DELETE); later use gets 10003 Unknown Channel."""
        return self.world.delete_channel(channel)

    def delete_message(self, channel: ChannelLike, message: MessageLike) -> Message:
        """Delete a message (MESSAGE_DELETE); later edits get 10008 Unknown Message."""
        msg = self.world.message(message)
        if msg.channel_id != self.world.channel(channel).id:
            raise LookupError(f"message {msg.id} is not in channel {channel}")
        self.world.delete_message(msg)
        return msg

    def set_premium_tier(self, guild: GuildLike, tier: int) -> None:
        """Boost a guild to `tier` (0-3): its upload limit becomes 10, 10, 50 or 100 MiB."""
        self.world.set_premium_tier(guild, tier)

    def set_channel_permissions(
        self, channel: ChannelLike, target: Role | Member | User | int, *, allow: int = 0, deny: int = 0
    ) -> Overwrite:
        """Set a permission overwrite on a channel (CHANNEL_UPDATE is dispatched)."""
        return self.world.set_channel_permissions(channel, target, allow=allow, deny=deny)

    def forbid_channel(self, channel: ChannelLike) -> Overwrite:
        """Deny the bot every write permission in ``channel``: posting there gets 403 50013 Missing Permissions."""
        ch = self.world.channel(channel)
        target = self.world.channels[ch.parent_id] if ch.is_thread and ch.parent_id else ch
        return self.world.set_channel_permissions(target, self.bot_user, deny=_WRITE_PERMISSIONS)

    def block_dms(self, user: UserLike) -> None:
        """``user`` doesn't accept DMs from the bot: sending gets 403 50007."""
        self.world.blocked_dm_user_ids.add(self.world.user(user).id)

    # ------------------------------------------------------------------ gateway control

    @property
    def sessions(self) -> list[Session]:
        return list(self.gateway.sessions.values())

    @property
    def session(self) -> Session | None:
        """The most recent live gateway session, if any."""
        live = self.gateway.live_sessions
        return live[-1] if live else None

    @property
    def connections(self) -> list[GatewayConnection]:
        return list(self.gateway.connections)

    async def wait_until_ready(self, timeout: float = 10.0, *, shard: int | None = None) -> Session:  # noqa: ASYNC109
        """Until a bot has IDENTIFYed and processed READY plus every GUILD_CREATE (on ``shard``, if given:
        a session that IDENTIFYed as that shard)."""

        def ready() -> Session | None:
            for s in self.gateway.live_sessions:
                if (
                    s.ready
                    and s.connected
                    and (shard is None or (s.shard is not None and s.shard[0] == shard))
                ):
                    return s
            return None

        what = "a gateway session to become ready" + (f" on shard {shard}" if shard is not None else "")
        return await self.wait_for(ready, timeout, what)

    def sessions_for(self, guild: GuildLike | None) -> list[Session]:
        """Live sessions that receive ``guild``'s events (``None``: DMs)."""
        gid = None if guild is None else (guild.id if isinstance(guild, Guild) else int(guild))
        return self.gateway.sessions_for(gid)

    async def sync(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Barrier: returns once every connected bot has processed all gateway events sent so far.

        Sends a heartbeat request (op 1); discord.py answers it only after
        handling every earlier frame, carrying the last sequence it saw.
        """
        targets = self.gateway.request_heartbeats()
        await self.wait_for(heartbeat_barrier(targets), timeout, "the bot to process pending gateway events")

    async def disconnect_gateway(
        self, code: int = 4000, reason: str = "", *, invalidate: bool = False
    ) -> None:
        """Close every gateway connection with ``code`` (client should reconnect and RESUME).

        ``invalidate=True`` (implied for 4007/4009) drops the session so the RESUME
        gets INVALID_SESSION and the client must IDENTIFY again.
        """
        await self.gateway.disconnect(code, reason, invalidate=invalidate)

    @contextlib.asynccontextmanager
    async def gateway_outage(self, code: int = 4000) -> AsyncIterator[None]:
        """Drop every gateway connection and hold new ones (before HELLO) until the block exits.

        Events dispatched inside the block are buffered in the session and must
        reach the bot through RESUME's replay.
        """
        self.gateway.accepting.clear()
        try:
            await self.gateway.disconnect(code, "simulated outage")
            yield
        finally:
            self.gateway.accepting.set()

    def send_reconnect(self) -> None:
        """Send op 7 RECONNECT (client closes and resumes)."""
        self.gateway.send_op(7)

    def invalidate_session(self, *, resumable: bool = False) -> None:
        """Send op 9 INVALID_SESSION."""
        self.gateway.invalidate(resumable=resumable)

    def dispatch(self, event: str, data: dict[str, Any], *, intent: int | None = None) -> None:
        """Send an arbitrary gateway event to connected bots."""
        self.gateway.dispatch(event, data, intent=intent)

    # ------------------------------------------------------------------ drivers

    async def invoke_slash(
        self,
        guild: GuildLike | None,
        channel: ChannelLike,
        user: UserLike,
        name: str,
        subcommand: str | Sequence[str] | None = None,
        options: Mapping[str, Any] | None = None,
        *,
        attachments: Iterable[dict[str, Any]] = (),
        locale: str = "en-US",
    ) -> InteractionRecord:
        """Dispatch a slash-command INTERACTION_CREATE built from the registered command.

        ``subcommand`` is ``"generate"`` or ``"group generate"``; option values are
        Python values (str/int/float/bool, ``User``/``Member``, ``Channel``, ``Role``,
        attachment dicts from :meth:`make_attachment`).
        """
        return self.drivers.slash(
            guild, channel, user, name, subcommand, options, attachments=attachments, locale=locale
        )

    async def autocomplete(
        self,
        guild: GuildLike | None,
        channel: ChannelLike,
        user: UserLike,
        name: str,
        subcommand: str | Sequence[str] | None = None,
        *,
        focused: str,
        value: str = "",
        options: Mapping[str, Any] | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[dict[str, Any]]:
        """Dispatch an autocomplete interaction for option ``focused`` typed as ``value``; return the bot's choices."""
        record = self.drivers.slash(
            guild, channel, user, name, subcommand, options, autocomplete=(focused, value)
        )
        body = await record.wait_response(timeout)
        return list(body.get("data", {}).get("choices", []))

    async def invoke_message_context_menu(
        self,
        guild: GuildLike | None,
        channel: ChannelLike,
        user: UserLike,
        name: str,
        target_message: MessageLike,
    ) -> InteractionRecord:
        """Dispatch a message context-menu command (data.type 3) on ``target_message``."""
        return self.drivers.message_context_menu(guild, channel, user, name, target_message)

    async def invoke_user_context_menu(
        self, guild: GuildLike | None, channel: ChannelLike, user: UserLike, name: str, target_user: UserLike
    ) -> InteractionRecord:
        """Dispatch a user context-menu command (data.type 2) on ``target_user``."""
        return self.drivers.user_context_menu(guild, channel, user, name, target_user)

    async def press_button(
        self,
        guild: GuildLike | None,
        channel: ChannelLike,
        user: UserLike,
        message: MessageLike,
        custom_id: str,
    ) -> InteractionRecord:
        """Dispatch a MESSAGE_COMPONENT interaction for the button ``custom_id`` on ``message``."""
        return self.drivers.component(guild, channel, user, message, custom_id)

    async def select_menu(
        self,
        guild: GuildLike | None,
        channel: ChannelLike,
        user: UserLike,
        message: MessageLike,
        custom_id: str,
        values: Sequence[Any],
    ) -> InteractionRecord:
        """Dispatch a select-menu interaction choosing ``values`` (strings, or users/roles/channels)."""
        return self.drivers.component(guild, channel, user, message, custom_id, values)

    async def submit_modal(
        self,
        guild: GuildLike | None,
        channel: ChannelLike,
        user: UserLike,
        custom_id: str,
        values: Mapping[str, Any],
        message: MessageLike | None = None,
        *,
        source: InteractionRecord | None = None,
    ) -> InteractionRecord:
        """Dispatch MODAL_SUBMIT for the modal ``custom_id`` the bot opened (shaped from that modal).

        ``values`` maps input custom_ids to text (or lists for selects / attachment
        dicts for file uploads). Without a known modal, plain text inputs are sent.
        """
        return self.drivers.modal_submit(guild, channel, user, custom_id, values, message, source=source)

    def last_modal(self, custom_id: str | None = None) -> dict[str, Any] | None:
        """The most recent modal the bot opened (callback type 9), optionally by custom_id."""
        for record in reversed(list(self.world.interactions.values())):
            if record.modal is not None and (custom_id is None or record.modal.get("custom_id") == custom_id):
                return record.modal
        return None

    async def post_message(
        self,
        guild: GuildLike | None,
        channel: ChannelLike,
        user: UserLike,
        content: str = "",
        *,
        reply_to: MessageLike | None = None,
        mention_bot: bool = False,
        mention_reply: bool = True,
        attachments: Iterable[dict[str, Any]] = (),
        embeds: Iterable[dict[str, Any]] = (),
    ) -> Message:
        """A user posts a message (MESSAGE_CREATE). Replies ping the replied-to author like the Discord client."""
        return self.drivers.post_message(
            guild,
            channel,
            user,
            content,
            reply_to=reply_to,
            mention_bot=mention_bot,
            mention_reply=mention_reply,
            attachments=attachments,
            embeds=embeds,
        )

    # ------------------------------------------------------------------ observation

    def messages(self, channel: ChannelLike, *, include_deleted: bool = False) -> list[Message]:
        """Messages in ``channel`` oldest first (ephemeral interaction responses included)."""
        cid = channel.id if isinstance(channel, Channel) else int(channel)
        return self.world.channel_message_list(cid, include_deleted=include_deleted)

    def get_message(self, message_id: int) -> Message:
        return self.world.messages[message_id]

    @property
    def threads(self) -> list[Channel]:
        """Every existing thread (any guild)."""
        return [c for c in self.world.channels.values() if c.is_thread]

    @property
    def requests(self) -> list[RequestRecord]:
        """Every REST request so far (method, path, query, json, files, status)."""
        return self.rest.requests

    def requests_to(self, method: str, path_regex: str) -> list[RequestRecord]:
        """Logged requests with this method whose path (after ``/api/v10``) fullmatches ``path_regex``."""
        return [r for r in self.rest.requests if r.method == method and re.fullmatch(path_regex, r.path)]

    @property
    def unknown_routes(self) -> list[tuple[str, str]]:
        return self.rest.unknown_routes

    @property
    def internal_errors(self) -> list[Exception]:
        """Exceptions raised by the fake's own handlers (answered with 503); should stay empty."""
        return self.rest.internal_errors

    @property
    def allowed_mentions_log(self) -> list[dict[str, Any]]:
        """``{"method", "path", "message_id", "allowed_mentions"}`` for every message create/edit request."""
        return self.rest.allowed_mentions_log

    @property
    def interactions(self) -> list[InteractionRecord]:
        return list(self.world.interactions.values())

    def commands(self, guild: GuildLike | None = None) -> list[AppCommand]:
        """Registered application commands in a scope (``None`` = global)."""
        scope = None if guild is None else (guild.id if isinstance(guild, Guild) else int(guild))
        return self.world.commands_in_scope(scope)

    def command(self, name: str, guild: GuildLike | None = None, *, type: int = 1) -> AppCommand:
        g = self.world.guild(guild) if guild is not None else None
        return self.drivers.find_command(name, g, type)

    async def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0, what: str = "") -> T:  # noqa: ASYNC109
        """Wait until ``predicate()`` is truthy (re-checked on every state change); return its value."""
        return await self.world.notifier.wait_for(predicate, timeout, what)

    async def wait_for_message(
        self,
        channel: ChannelLike | None = None,
        predicate: Callable[[Message], bool] | None = None,
        *,
        author: UserLike | None = None,
        after: MessageLike | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> Message:
        """The first (non-deleted) message matching the filters, waiting for it if needed."""
        cid = None if channel is None else (channel.id if isinstance(channel, Channel) else int(channel))
        author_id = None if author is None else self.world.user(author).id
        after_id = None if after is None else (after.id if isinstance(after, Message) else int(after))

        def find() -> Message | None:
            for message in self.world.messages.values():
                if message.deleted or (cid is not None and message.channel_id != cid):
                    continue
                if author_id is not None and message.author.id != author_id:
                    continue
                if after_id is not None and message.id <= after_id:
                    continue
                if predicate is None or predicate(message):
                    return message
            return None

        return await self.wait_for(find, timeout, "a matching message")
