"""The gateway: Discord's websocket protocol (v10, JSON encoding) on an aiohttp server.

Implements HELLO / IDENTIFY / READY + GUILD_CREATE / heartbeats / RESUME with
replay / RECONNECT / INVALID_SESSION, per-session sequence numbers, intent
filtering, sharding (a guild's events go only to the sessions of its shard,
``(guild_id >> 22) % num_shards``; DMs and other guild-less events to shard 0),
and transport compression: ``zlib-stream`` (one zlib context per
connection, every message ending in a Z_SYNC_FLUSH ``00 00 ff ff``) and
``zstd-stream`` (one zstd stream per connection, one flushed block per message).

Each connection has a single writer task so frames leave in sequence order
and the shared compression context sees them in that order.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from . import payloads
from .models import ALL_INTENTS, PRIVILEGED_INTENTS, Intent

try:
    import zstandard
except ImportError:  # pragma: no cover - zstandard is a dev dependency
    zstandard = None

if TYPE_CHECKING:
    from .state import EventData, World

log = logging.getLogger("fake_discord.gateway")

OP_DISPATCH = 0
OP_HEARTBEAT = 1
OP_IDENTIFY = 2
OP_PRESENCE_UPDATE = 3
OP_VOICE_STATE_UPDATE = 4
OP_RESUME = 6
OP_RECONNECT = 7
OP_REQUEST_GUILD_MEMBERS = 8
OP_INVALID_SESSION = 9
OP_HELLO = 10
OP_HEARTBEAT_ACK = 11
OP_REQUEST_SOUNDBOARD_SOUNDS = 31

# Close codes after which Discord does not let the session be resumed.
_SESSION_ENDING_CLOSES = {1000, 1001}
_PRIVILEGED_MASK = int(sum(PRIVILEGED_INTENTS.values()))


# Events whose payload is the guild itself (its id is ``id``, not ``guild_id``).
_GUILD_OBJECT_EVENTS = {"GUILD_CREATE", "GUILD_UPDATE", "GUILD_DELETE"}


def shard_for(guild_id: int | None, num_shards: int) -> int:
    """The shard that receives a guild's events (Discord's formula); guild-less events (DMs) go to shard 0."""
    return 0 if guild_id is None else (guild_id >> 22) % num_shards


def event_guild_id(event: str, data: dict[str, Any]) -> int | None:
    """The guild an event belongs to, as read from its payload (None: a DM or a guild-less event)."""
    raw = data.get("id") if event in _GUILD_OBJECT_EVENTS else data.get("guild_id")
    return int(raw) if raw is not None else None


def _dumps(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


class _Compressor:
    """Transport compression context shared by every message of one connection."""

    def __init__(self, kind: str | None) -> None:
        self.kind = kind
        if kind == "zlib-stream":
            self._zlib = zlib.compressobj()
        elif kind == "zstd-stream":
            assert zstandard is not None
            self._zstd = zstandard.ZstdCompressor().compressobj()

    def encode(self, text: str) -> str | bytes:
        if self.kind is None:
            return text
        raw = text.encode()
        if self.kind == "zlib-stream":
            return self._zlib.compress(raw) + self._zlib.flush(zlib.Z_SYNC_FLUSH)
        return self._zstd.compress(raw) + self._zstd.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)


@dataclass
class GatewayConnection:
    """One websocket connection (a session may span several after resumes)."""

    ws: web.WebSocketResponse = field(repr=False)
    path: str
    query: dict[str, str]
    compress: str | None
    session: Session | None = field(default=None, repr=False)
    frames_sent: int = 0
    binary_frames_sent: int = 0
    bytes_sent: int = 0
    replayed: int = 0
    ops_received: list[int] = field(default_factory=list)
    heartbeats: list[int | None] = field(default_factory=list, repr=False)
    close_code: int | None = None
    closed_by_server: bool = False
    _queue: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue, repr=False)

    def __post_init__(self) -> None:
        self._compressor = _Compressor(self.compress)

    @property
    def open(self) -> bool:
        return self.close_code is None and not self.ws.closed

    def send(self, payload: dict[str, Any] | str) -> None:
        self._queue.put_nowait(payload if isinstance(payload, str) else _dumps(payload))

    async def writer(self) -> None:
        while True:
            text = await self._queue.get()
            if text is None or self.ws.closed:
                return
            frame = self._compressor.encode(text)
            try:
                if isinstance(frame, bytes):
                    await self.ws.send_bytes(frame)
                    self.binary_frames_sent += 1
                else:
                    await self.ws.send_str(frame)
            except (ConnectionError, RuntimeError):
                return
            self.frames_sent += 1
            self.bytes_sent += len(frame)

    async def close(self, code: int, reason: str = "") -> None:
        if self.ws.closed:
            return
        self.closed_by_server = True
        self.close_code = code
        self._queue.put_nowait(None)
        await self.ws.close(code=code, message=reason.encode())


@dataclass
class Session:
    """A gateway session: survives disconnects until resumed, invalidated or closed with 1000."""

    session_id: str
    intents: int
    identify: dict[str, Any] = field(repr=False)
    seq: int = 0
    events: list[tuple[int, str, str]] = field(default_factory=list, repr=False)
    connection: GatewayConnection | None = field(default=None, repr=False)
    connections: list[GatewayConnection] = field(default_factory=list, repr=False)
    ready: bool = False
    ready_seq: int = 0
    acked_seq: int = -1
    resumes: int = 0
    resumed_from: list[int] = field(default_factory=list)
    invalid: bool = False
    presence: dict[str, Any] | None = field(default=None, repr=False)
    # ``(shard_id, num_shards)`` from IDENTIFY; None for an unsharded session (it receives every guild).
    shard: tuple[int, int] | None = None

    def has_intent(self, intent: int) -> bool:
        return bool(self.intents & intent)

    def receives(self, guild_id: int | None) -> bool:
        """Whether this session gets the events of ``guild_id`` (None: DMs and guild-less events)."""
        if self.shard is None:
            return True
        shard_id, num_shards = self.shard
        return shard_for(guild_id, num_shards) == shard_id

    @property
    def connected(self) -> bool:
        return self.connection is not None and self.connection.open

    def event_names(self) -> list[str]:
        return [name for _, name, _ in self.events]

    def events_named(self, name: str) -> list[dict[str, Any]]:
        """Decoded dispatch payloads (``{"op", "t", "s", "d"}``) of one event type, in order."""
        return [json.loads(text) for _, event, text in self.events if event == name]

    def dispatch(self, event: str, data: dict[str, Any]) -> int:
        self.seq += 1
        text = _dumps({"op": OP_DISPATCH, "t": event, "s": self.seq, "d": data})
        # Buffered whether or not a connection is attached: RESUME replays from here.
        self.events.append((self.seq, event, text))
        if self.connection is not None and self.connection.open:
            self.connection.send(text)
        return self.seq


class Gateway:
    """Accepts gateway websockets and fans world events out to sessions."""

    def __init__(self, world: World, *, heartbeat_interval: int) -> None:
        self.world = world
        self.heartbeat_interval = heartbeat_interval
        self.sessions: dict[str, Session] = {}
        self.connections: list[GatewayConnection] = []
        self.resume_gateway_url = ""
        self._tasks: set[asyncio.Task[Any]] = set()
        # Cleared during a simulated outage: new connections wait before HELLO.
        self.accepting = asyncio.Event()
        self.accepting.set()
        # Set to a close code to refuse every IDENTIFY and RESUME with it (e.g. 4004 while REST accepts the token).
        self.refuse_sessions: int | None = None

    # ------------------------------------------------------------------ fan-out

    def dispatch(self, event: str, data: EventData, *, intent: int | None = None) -> None:
        """Send ``event`` to every live session that has ``intent`` (``None`` = always) and whose shard
        holds the event's guild (read from the payload: ``guild_id``, or ``id`` for GUILD_CREATE & co.)."""
        for session in list(self.sessions.values()):
            if session.invalid or not session.ready_seq:
                # Sessions still inside IDENTIFY get the world as of their READY instead.
                continue
            if intent is not None and not session.has_intent(intent):
                continue
            body = data(session) if callable(data) else data
            if body is not None and session.receives(event_guild_id(event, body)):
                session.dispatch(event, body)
        self.world.notifier.notify()

    def sessions_for(self, guild_id: int | None) -> list[Session]:
        """Live sessions that receive ``guild_id``'s events (None: DMs)."""
        return [s for s in self.live_sessions if s.receives(guild_id)]

    @property
    def live_sessions(self) -> list[Session]:
        return [s for s in self.sessions.values() if not s.invalid]

    # ------------------------------------------------------------------ test controls

    async def disconnect(self, code: int = 4000, reason: str = "", *, invalidate: bool = False) -> None:
        for session in self.live_sessions:
            conn = session.connection
            if invalidate or code in (4007, 4009):
                session.invalid = True
            if conn is not None:
                await conn.close(code, reason)
        self.world.notifier.notify()

    def send_op(self, op: int, d: Any = None) -> None:
        for session in self.live_sessions:
            if session.connected:
                session.connection.send({"op": op, "d": d, "s": None, "t": None})

    def request_heartbeats(self) -> list[tuple[Session, int]]:
        targets = [(s, s.seq) for s in self.live_sessions if s.connected and s.ready]
        for session, _ in targets:
            session.connection.send({"op": OP_HEARTBEAT, "d": None, "s": None, "t": None})
        return targets

    def invalidate(self, *, resumable: bool) -> None:
        for session in self.live_sessions:
            if not resumable:
                session.invalid = True
            if session.connected:
                session.connection.send({"op": OP_INVALID_SESSION, "d": resumable, "s": None, "t": None})

    async def close_all(self) -> None:
        self.accepting.set()
        for conn in list(self.connections):
            if conn.open:
                await conn.close(1001, "fake discord shutting down")
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # ------------------------------------------------------------------ websocket handler

    async def handle(self, request: web.Request) -> web.StreamResponse:
        query = dict(request.query)
        ws = web.WebSocketResponse(max_msg_size=0, autoping=True, compress=False, timeout=5.0)
        await ws.prepare(request)
        compress = query.get("compress")
        conn = GatewayConnection(ws=ws, path=request.path, query=query, compress=compress)
        self.connections.append(conn)
        writer = asyncio.create_task(conn.writer(), name="fake-discord-gateway-writer")
        self._tasks.add(writer)
        writer.add_done_callback(self._tasks.discard)
        try:
            if query.get("v") != "10":
                await conn.close(4012, "Invalid API version")
            elif query.get("encoding", "json") != "json":
                await conn.close(4002, "Error while decoding payload.")
            elif compress not in (None, "zlib-stream", "zstd-stream") or (
                compress == "zstd-stream" and zstandard is None
            ):
                await conn.close(4000, f"Unsupported compression {compress!r}")
            else:
                await self.accepting.wait()
                conn.send(
                    {
                        "op": OP_HELLO,
                        "d": {"heartbeat_interval": self.heartbeat_interval},
                        "s": None,
                        "t": None,
                    }
                )
                await self._read_loop(conn)
        finally:
            if conn.close_code is None:
                conn.close_code = ws.close_code if ws.close_code is not None else 1006
            session = conn.session
            if session is not None and session.connection is conn:
                session.connection = None
                if not conn.closed_by_server and conn.close_code in _SESSION_ENDING_CLOSES:
                    session.invalid = True
            conn._queue.put_nowait(None)
            self.world.notifier.notify()
        return ws

    async def _read_loop(self, conn: GatewayConnection) -> None:
        async for msg in conn.ws:
            if msg.type != WSMsgType.TEXT:
                if msg.type == WSMsgType.BINARY:
                    await conn.close(4002, "Error while decoding payload.")
                break
            try:
                payload = json.loads(msg.data)
                op = payload["op"]
            except (ValueError, KeyError, TypeError):
                await conn.close(4002, "Error while decoding payload.")
                break
            conn.ops_received.append(op)
            await self._handle_op(conn, op, payload.get("d"))
            self.world.notifier.notify()
            if conn.ws.closed:
                break

    async def _handle_op(self, conn: GatewayConnection, op: int, d: Any) -> None:
        if op == OP_HEARTBEAT:
            conn.heartbeats.append(d)
            if conn.session is not None and isinstance(d, int):
                session = conn.session
                session.acked_seq = max(session.acked_seq, d)
                # The client answers a heartbeat request only after handling every earlier frame,
                # so a heartbeat carrying READY's last sequence means discord.py parsed the guilds.
                if not session.ready and session.ready_seq and d >= session.ready_seq:
                    session.ready = True
            conn.send({"op": OP_HEARTBEAT_ACK, "d": None, "s": None, "t": None})
        elif op == OP_IDENTIFY:
            await self._identify(conn, d or {})
        elif op == OP_RESUME:
            await self._resume(conn, d or {})
        elif conn.session is None:
            await conn.close(4003, "Not authenticated.")
        elif op == OP_PRESENCE_UPDATE:
            conn.session.presence = d
        elif op == OP_REQUEST_GUILD_MEMBERS:
            self._members_chunk(conn.session, d or {})
        elif op in (OP_VOICE_STATE_UPDATE, OP_REQUEST_SOUNDBOARD_SOUNDS):
            pass
        else:
            await conn.close(4001, "Unknown opcode.")

    def _token_ok(self, token: Any) -> bool:
        if not isinstance(token, str):
            return False
        return token.removeprefix("Bot ").strip() == self.world.token

    async def _identify(self, conn: GatewayConnection, d: dict[str, Any]) -> None:
        if conn.session is not None:
            await conn.close(4005, "Already authenticated.")
            return
        if self.refuse_sessions is not None:
            await conn.close(self.refuse_sessions, "Refused by the test.")
            return
        if not self._token_ok(d.get("token")):
            await conn.close(4004, "Authentication failed.")
            return
        intents = d.get("intents")
        if not isinstance(intents, int) or intents & ~ALL_INTENTS:
            await conn.close(4013, "Invalid intent(s).")
            return
        if intents & _PRIVILEGED_MASK & ~self.world.privileged_intents:
            await conn.close(4014, "Disallowed intent(s).")
            return
        shard = d.get("shard")
        if shard is not None and not self._valid_shard(shard):
            await conn.close(4010, "Invalid shard.")
            return
        session = Session(session_id=secrets.token_hex(16), intents=intents, identify=d)
        session.shard = (shard[0], shard[1]) if shard is not None else None
        session.presence = d.get("presence")
        self.sessions[session.session_id] = session
        self._attach(session, conn)
        world = self.world
        ready = {
            "v": 10,
            "user": payloads.self_user(world.bot_user),
            "guilds": [{"id": str(g), "unavailable": True} for g in world.guilds if session.receives(g)],
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": self.resume_gateway_url,
            "application": {"id": str(world.application_id), "flags": world.application_flags},
            "user_settings": {},
            "relationships": [],
            "private_channels": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": ["fake-local"],
            "auth": {},
            "_trace": ['["fake-discord-gateway",{"micros":0}]'],
        }
        if shard is not None:
            ready["shard"] = list(shard)
        session.dispatch("READY", ready)
        for guild in world.guilds.values():
            if session.receives(guild.id):
                session.dispatch("GUILD_CREATE", world.guild_create_payload(guild, session))
        session.ready_seq = session.seq
        # Ask for a heartbeat: its answer proves READY and every GUILD_CREATE were processed.
        conn.send({"op": OP_HEARTBEAT, "d": None, "s": None, "t": None})

    def _valid_shard(self, shard: Any) -> bool:
        """``[shard_id, num_shards]`` with num_shards as advertised by GET /gateway/bot (Discord: 4010)."""
        if not isinstance(shard, list | tuple) or len(shard) != 2:
            return False
        shard_id, num_shards = shard
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in shard):
            return False
        return num_shards == self.world.shard_count and 0 <= shard_id < num_shards

    async def _resume(self, conn: GatewayConnection, d: dict[str, Any]) -> None:
        if self.refuse_sessions is not None:
            await conn.close(self.refuse_sessions, "Refused by the test.")
            return
        if not self._token_ok(d.get("token")):
            await conn.close(4004, "Authentication failed.")
            return
        session = self.sessions.get(str(d.get("session_id")))
        if session is None or session.invalid:
            conn.send({"op": OP_INVALID_SESSION, "d": False, "s": None, "t": None})
            return
        seq = d.get("seq")
        if not isinstance(seq, int) or seq > session.seq:
            await conn.close(4007, "Invalid seq.")
            return
        previous = session.connection
        if previous is not None and previous is not conn and previous.open:
            await previous.close(4000, "Session resumed elsewhere")
        self._attach(session, conn)
        # Replay synchronously (no await) so no new dispatch can slip in between.
        for event_seq, _, text in session.events:
            if event_seq > seq:
                conn.send(text)
                conn.replayed += 1
        session.resumes += 1
        session.resumed_from.append(seq)
        session.dispatch("RESUMED", {"_trace": ['["fake-discord-gateway",{"micros":0}]']})

    def _attach(self, session: Session, conn: GatewayConnection) -> None:
        conn.session = session
        session.connection = conn
        session.connections.append(conn)

    def _members_chunk(self, session: Session, d: dict[str, Any]) -> None:
        if not session.has_intent(Intent.GUILD_MEMBERS):
            return
        guild = self.world.guilds.get(int(d.get("guild_id", 0)))
        if guild is None or not session.receives(guild.id):
            return
        members = list(guild.members.values())
        user_ids = d.get("user_ids")
        if user_ids:
            wanted = {int(u) for u in (user_ids if isinstance(user_ids, list) else [user_ids])}
            members = [m for m in members if m.user.id in wanted]
        query = d.get("query")
        if query:
            members = [m for m in members if m.user.username.lower().startswith(str(query).lower())]
        limit = d.get("limit") or 0
        if limit:
            members = members[:limit]
        chunk: dict[str, Any] = {
            "guild_id": str(guild.id),
            "members": [payloads.member(self.world, m) for m in members],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if d.get("nonce") is not None:
            chunk["nonce"] = d["nonce"]
        session.dispatch("GUILD_MEMBERS_CHUNK", chunk)


def heartbeat_barrier(targets: list[tuple[Session, int]]) -> Callable[[], bool]:
    """Predicate: every targeted session has heartbeated with at least the sequence it had."""
    return lambda: all(s.acked_seq >= seq or s.invalid for s, seq in targets)
