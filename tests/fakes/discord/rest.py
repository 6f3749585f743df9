"""REST API v10: routing, auth, body parsing, fault injection and the endpoint handlers.

Every request is logged in :attr:`RestAPI.requests` (method, path, parsed JSON
or ``payload_json``, uploaded files, final status).  Unknown routes answer
``404 {"message": "404: Not Found", "code": 0}`` and are collected in
:attr:`RestAPI.unknown_routes` (and logged) so gaps in the fake are obvious.

Responses carry the ``X-RateLimit-*`` headers and ``Via`` header real Discord
sends: discord.py only treats a 429 as a Discord rate limit (and retries it)
when ``Via`` is present; without it, it assumes a Cloudflare ban and raises.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import payloads
from .errors import (
    APIError,
    FormErrors,
    cannot_edit_others_message,
    cannot_send_to_user,
    invalid_form_body,
    missing_access,
    missing_permissions,
    not_found,
    thread_already_created,
    thread_archived,
    unauthorized,
    unknown_application_command,
    unknown_channel,
    unknown_guild,
    unknown_member,
    unknown_message,
    unknown_user,
)
from .interactions import InteractionRecord
from .messages import File, create_message, edit_message
from .models import (
    AppCommand,
    Channel,
    ChannelType,
    Message,
    MessageType,
    Permission,
    Rejection,
    RequestRecord,
    UploadedFile,
)
from .snowflakes import utcnow
from .validation import validate_command

if TYPE_CHECKING:
    from .server import FakeDiscord

log = logging.getLogger("fake_discord.rest")

API_PREFIX = "/api/v10"
Handler = Callable[..., Awaitable[Any]]


@dataclass
class Injection:
    """A scripted failure: the next ``times`` matching requests get ``status`` instead of being handled."""

    method: str
    path_regex: str
    status: int
    times: int | None = 1
    retry_after: float | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    is_global: bool = False
    delay: float = 0.0
    hits: int = 0
    # Set by `FakeDiscord.on_handled`: handle the request for real, then await this before answering.
    after_handled: Callable[[], Awaitable[None]] | None = None

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        return self.method in ("*", method) and re.fullmatch(self.path_regex, path) is not None

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.hits >= self.times


@dataclass
class Route:
    method: str
    template: str
    regex: re.Pattern[str]
    handler: Handler
    auth: bool


@dataclass
class ApiRequest:
    method: str
    path: str
    query: dict[str, str]
    json: Any
    files: list[File]
    record: RequestRecord


class _NoContent:
    pass


NO_CONTENT = _NoContent()


class RestAPI:
    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.world = fake.world
        self.service = fake.interaction_service
        self.requests: list[RequestRecord] = []
        self.unknown_routes: list[tuple[str, str]] = []
        self.internal_errors: list[Exception] = []
        self.injections: list[Injection] = []
        self.allowed_mentions_log: list[dict[str, Any]] = []
        self.routes: list[Route] = []
        self._register_routes()

    # ------------------------------------------------------------------ routing

    def route(self, method: str, template: str, handler: Handler, *, auth: bool = True) -> None:
        pattern = re.sub(
            r"\{(\w+)\}",
            lambda m: (
                f"(?P<{m.group(1)}>{'[^/]+' if m.group(1) in ('token', 'emoji', 'message_ref') else '[0-9]+'})"
            ),
            template,
        )
        self.routes.append(Route(method, template, re.compile(pattern), handler, auth))

    def _register_routes(self) -> None:
        r = self.route
        r("GET", "/gateway", self.get_gateway, auth=False)
        r("GET", "/gateway/bot", self.get_gateway_bot)
        r("GET", "/users/@me", self.get_me)
        r("PATCH", "/users/@me", self.get_me)
        r("GET", "/users/@me/guilds", self.get_my_guilds)
        r("POST", "/users/@me/channels", self.create_dm)
        r("GET", "/users/{user_id}", self.get_user)
        r("GET", "/oauth2/applications/@me", self.get_application)
        r("GET", "/applications/@me", self.get_application)
        r("PATCH", "/applications/@me", self.get_application)
        r("GET", "/applications/{app_id}/emojis", self.empty_items)
        r("GET", "/applications/{app_id}/entitlements", self.empty_list)
        r("GET", "/applications/{app_id}/skus", self.empty_list)
        for prefix in ("/applications/{app_id}", "/applications/{app_id}/guilds/{guild_id}"):
            r("GET", f"{prefix}/commands", self.list_commands)
            r("PUT", f"{prefix}/commands", self.bulk_commands)
            r("POST", f"{prefix}/commands", self.upsert_command)
            r("GET", f"{prefix}/commands/{{command_id}}", self.get_command)
            r("PATCH", f"{prefix}/commands/{{command_id}}", self.edit_command)
            r("DELETE", f"{prefix}/commands/{{command_id}}", self.delete_command)
        r("GET", "/applications/{app_id}/guilds/{guild_id}/commands/permissions", self.empty_list)
        r("POST", "/interactions/{interaction_id}/{token}/callback", self.interaction_callback, auth=False)
        r("POST", "/webhooks/{app_id}/{token}", self.webhook_execute, auth=False)
        r("GET", "/webhooks/{app_id}/{token}/messages/{message_ref}", self.webhook_get, auth=False)
        r("PATCH", "/webhooks/{app_id}/{token}/messages/{message_ref}", self.webhook_edit, auth=False)
        r("DELETE", "/webhooks/{app_id}/{token}/messages/{message_ref}", self.webhook_delete, auth=False)
        r("GET", "/channels/{channel_id}", self.get_channel)
        r("PATCH", "/channels/{channel_id}", self.edit_channel)
        r("DELETE", "/channels/{channel_id}", self.delete_channel)
        r("POST", "/channels/{channel_id}/typing", self.typing)
        r("GET", "/channels/{channel_id}/messages", self.list_messages)
        r("POST", "/channels/{channel_id}/messages", self.post_message)
        r("POST", "/channels/{channel_id}/messages/bulk-delete", self.bulk_delete)
        r("GET", "/channels/{channel_id}/messages/pins", self.list_pins)
        r("PUT", "/channels/{channel_id}/messages/pins/{message_id}", self.pin)
        r("DELETE", "/channels/{channel_id}/messages/pins/{message_id}", self.unpin)
        r("GET", "/channels/{channel_id}/messages/{message_id}", self.get_message)
        r("PATCH", "/channels/{channel_id}/messages/{message_id}", self.edit_message)
        r("DELETE", "/channels/{channel_id}/messages/{message_id}", self.delete_message)
        r("POST", "/channels/{channel_id}/messages/{message_id}/threads", self.thread_from_message)
        r("POST", "/channels/{channel_id}/threads", self.thread_without_message)
        r("GET", "/channels/{channel_id}/threads/archived/public", self.archived_threads)
        r("GET", "/channels/{channel_id}/threads/archived/private", self.archived_threads)
        r("PUT", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me", self.add_reaction)
        r(
            "DELETE",
            "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me",
            self.remove_reaction,
        )
        r("DELETE", "/channels/{channel_id}/messages/{message_id}/reactions", self.clear_reactions)
        r("PUT", "/channels/{channel_id}/thread-members/@me", self.join_thread)
        r("DELETE", "/channels/{channel_id}/thread-members/@me", self.leave_thread)
        r("PUT", "/channels/{channel_id}/thread-members/{user_id}", self.add_thread_member)
        r("DELETE", "/channels/{channel_id}/thread-members/{user_id}", self.remove_thread_member)
        r("GET", "/channels/{channel_id}/thread-members", self.list_thread_members)
        r("GET", "/guilds/{guild_id}", self.get_guild)
        r("GET", "/guilds/{guild_id}/channels", self.get_guild_channels)
        r("GET", "/guilds/{guild_id}/roles", self.get_guild_roles)
        r("GET", "/guilds/{guild_id}/members", self.list_members)
        r("GET", "/guilds/{guild_id}/members/{user_id}", self.get_member)
        r("GET", "/guilds/{guild_id}/threads/active", self.active_threads)

    # ------------------------------------------------------------------ entry point

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if request.method == "GET" and path.startswith("/attachments/"):
            return self._serve_attachment(path)
        rel = path[len(API_PREFIX) :] if path.startswith(API_PREFIX + "/") else None
        record = RequestRecord(
            method=request.method, path=rel or path, query=dict(request.query), json=None, files=[]
        )
        self.requests.append(record)
        try:
            body, files = await self._parse_body(request)
            record.json = body
            record.files = [UploadedFile(filename, ctype, data, 0) for _, filename, ctype, data in files]
            if rel is None:
                raise self._unknown(request.method, path)
            injection = next((i for i in self.injections if i.matches(request.method, rel)), None)
            if injection is not None:
                injection.hits += 1
                record.injected = True
                if injection.delay:
                    await asyncio.sleep(injection.delay)
                if injection.after_handled is not None:
                    response = await self._dispatch(request, rel, body, files, record)
                    self.world.notifier.notify()
                    await injection.after_handled()
                else:
                    response = self._injected_response(injection, request.method, rel)
            else:
                response = await self._dispatch(request, rel, body, files, record)
        except APIError as exc:
            response = self._error_response(exc)
        except Exception as exc:
            # A bug in the fake. Answer 503: discord.py raises DiscordServerError at once for it
            # (500/502/504 would be retried with back-off for ~25 s before failing).
            log.exception("fake discord: internal error on %s %s", request.method, path)
            self.internal_errors.append(exc)
            response = self._error_response(APIError(503, 0, f"fake discord internal error: {exc!r}"))
        record.status = response.status
        self.world.notifier.notify()
        return response

    async def _dispatch(
        self, request: web.Request, rel: str, body: Any, files: list[File], record: RequestRecord
    ) -> web.StreamResponse:
        route, params = self._match(request.method, rel)
        record.route = f"{route.method} {route.template}"
        if route.auth:
            self._check_auth(request)
        api_request = ApiRequest(request.method, rel, dict(request.query), body, files, record)
        try:
            result = await route.handler(api_request, **params)
        except APIError as exc:
            self._note_rejection(params, request.method, rel, exc)
            raise
        return self._ok_response(route, result)

    def _match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        path_matched = False
        for route in self.routes:
            m = route.regex.fullmatch(path)
            if m is None:
                continue
            path_matched = True
            if route.method == method:
                return route, m.groupdict()
        unknown = self._unknown(method, path)
        if path_matched:
            raise APIError(405, 0, "405: Method Not Allowed")
        raise unknown

    def _unknown(self, method: str, path: str) -> APIError:
        self.unknown_routes.append((method, path))
        log.warning("fake discord: unknown route %s %s", method, path)
        return not_found()

    def _check_auth(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        if header != f"Bot {self.world.token}":
            raise unauthorized()

    async def _parse_body(self, request: web.Request) -> tuple[Any, list[File]]:
        if not request.body_exists:
            return None, []
        ctype = request.content_type
        if ctype == "multipart/form-data":
            body: Any = None
            files: list[File] = []
            reader = await request.multipart()
            async for part in reader:
                name = part.name or ""
                if name == "payload_json":
                    body = _loads(await part.text())
                elif part.filename is not None:
                    data = await part.read(decode=False)
                    files.append((name, part.filename, part.headers.get("Content-Type", ""), bytes(data)))
            return body, files
        raw = await request.read()
        if not raw:
            return None, []
        return _loads(raw.decode()), []

    def _note_rejection(self, params: dict[str, str], method: str, path: str, exc: APIError) -> None:
        token = params.get("token")
        record = self.world.interactions_by_token.get(token) if token else None
        if record is not None:
            record.rejections.append(Rejection(method, path, exc.status, exc.code, exc.message))

    # ------------------------------------------------------------------ responses

    def _ratelimit_headers(self, route_key: str, *, remaining: int, reset_after: float) -> dict[str, str]:
        # A roomy static bucket: discord.py parses these headers, but would pre-emptively sleep
        # if `remaining` minus its in-flight requests reached 0, slowing tests for no reason.
        return {
            "X-RateLimit-Bucket": hashlib.md5(route_key.encode()).hexdigest()[:16],
            "X-RateLimit-Limit": "50",
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "Via": "1.1 google",
        }

    def _ok_response(self, route: Route, result: Any) -> web.StreamResponse:
        headers = self._ratelimit_headers(f"{route.method} {route.template}", remaining=49, reset_after=1.0)
        if result is NO_CONTENT or result is None:
            return web.Response(status=204, headers=headers)
        return _json_response(result, headers=headers)

    def _error_response(self, exc: APIError) -> web.StreamResponse:
        headers = {"Via": "1.1 google", **exc.headers}
        return _json_response(exc.body(), status=exc.status, headers=headers)

    def _injected_response(self, injection: Injection, method: str, path: str) -> web.StreamResponse:
        status = injection.status
        if status == 429:
            retry_after = injection.retry_after if injection.retry_after is not None else 0.05
            headers = self._ratelimit_headers(f"{method} {path}", remaining=0, reset_after=retry_after)
            headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
            headers["X-RateLimit-Scope"] = "global" if injection.is_global else "user"
            if injection.is_global:
                headers["X-RateLimit-Global"] = "true"
            body = injection.body or {
                "message": "You are being rate limited.",
                "retry_after": retry_after,
                "global": injection.is_global,
            }
        else:
            headers = {"Via": "1.1 google"}
            body = injection.body or _default_error_body(status)
        headers.update(injection.headers)
        if isinstance(body, str | bytes):
            return web.Response(status=status, body=body, headers=headers, content_type="text/html")
        return _json_response(body, status=status, headers=headers)

    def _serve_attachment(self, path: str) -> web.StreamResponse:
        parts = path.split("/")
        if len(parts) >= 4 and parts[3].isdigit() and int(parts[3]) in self.world.attachment_data:
            return web.Response(body=self.world.attachment_data[int(parts[3])])
        return web.Response(status=404, text="Not Found")

    # ------------------------------------------------------------------ lookups & permission checks

    def _channel(self, channel_id: str) -> Channel:
        channel = self.world.channels.get(int(channel_id))
        if channel is None:
            raise unknown_channel()
        guild = self.world.guild_of(channel)
        if channel.guild_id is not None and guild is None:
            raise unknown_channel()
        if channel.guild_id is not None and not self.world.bot_permissions(channel) & Permission.VIEW_CHANNEL:
            raise missing_access()
        return channel

    def _require(self, channel: Channel, *perms: int) -> None:
        have = self.world.bot_permissions(channel)
        for perm in perms:
            if not have & perm:
                raise missing_permissions()

    def _message(self, channel: Channel, message_id: str) -> Message:
        message = self.world.messages.get(int(message_id))
        if message is None or message.deleted or message.channel_id != channel.id or message.ephemeral:
            raise unknown_message()
        return message

    def _check_can_post(self, channel: Channel, files: list[File]) -> None:
        if channel.type == ChannelType.DM:
            if any(uid in self.world.blocked_dm_user_ids for uid in channel.recipient_ids):
                raise cannot_send_to_user()
            return
        if channel.is_thread:
            self._require(channel, Permission.SEND_MESSAGES_IN_THREADS)
            if channel.archived:
                if channel.locked:
                    raise thread_archived()
                # Sending to an archived, unlocked thread un-archives it.
                channel.archived = False
                self.world.emit("THREAD_UPDATE", payloads.channel(self.world, channel), intent=1)
        else:
            self._require(channel, Permission.SEND_MESSAGES)
        if files:
            self._require(channel, Permission.ATTACH_FILES)

    def _log_mentions(self, req: ApiRequest, message: Message | None, body: Any) -> None:
        if isinstance(body, dict):
            self.allowed_mentions_log.append(
                {
                    "method": req.method,
                    "path": req.path,
                    "message_id": message.id if message is not None else None,
                    "allowed_mentions": body.get("allowed_mentions"),
                }
            )

    # ------------------------------------------------------------------ users, gateway, application

    async def get_gateway(self, req: ApiRequest) -> Any:
        return {"url": self.fake.gateway_url.rstrip("/")}

    async def get_gateway_bot(self, req: ApiRequest) -> Any:
        return {
            "url": self.fake.gateway_url.rstrip("/"),
            "shards": 1,
            "session_start_limit": {
                "total": 1000,
                "remaining": 999,
                "reset_after": 14400000,
                "max_concurrency": 1,
            },
        }

    async def get_me(self, req: ApiRequest) -> Any:
        return payloads.self_user(self.world.bot_user)

    async def get_my_guilds(self, req: ApiRequest) -> Any:
        return [
            {
                "id": str(g.id),
                "name": g.name,
                "icon": None,
                "banner": None,
                "owner": False,
                "permissions": str(self.world.base_permissions(g, self.world.bot_user.id)),
                "features": list(g.features),
            }
            for g in self.world.guilds.values()
        ]

    async def get_user(self, req: ApiRequest, user_id: str) -> Any:
        user = self.world.users.get(int(user_id))
        if user is None:
            raise unknown_user()
        return payloads.user(user)

    async def create_dm(self, req: ApiRequest) -> Any:
        recipient = (req.json or {}).get("recipient_id")
        user = self.world.users.get(int(recipient)) if recipient is not None else None
        if user is None:
            raise invalid_form_body(
                {"recipient_id": {"_errors": [{"code": "NUMBER_TYPE_COERCE", "message": "Unknown user"}]}}
            )
        return payloads.channel(self.world, self.world.dm_channel(user))

    async def get_application(self, req: ApiRequest) -> Any:
        return payloads.application(self.world)

    async def empty_list(self, req: ApiRequest, **_: str) -> Any:
        return []

    async def empty_items(self, req: ApiRequest, **_: str) -> Any:
        return {"items": []}

    # ------------------------------------------------------------------ application commands

    def _command_scope(self, app_id: str, guild_id: str | None) -> int | None:
        if int(app_id) != self.world.application_id:
            raise missing_access()
        if guild_id is None:
            return None
        if int(guild_id) not in self.world.guilds:
            raise missing_access()
        return int(guild_id)

    def _store_command(self, data: dict[str, Any], scope: int | None) -> AppCommand:
        ctype = int(data.get("type", 1))
        existing = next(
            (
                c
                for c in self.world.commands_in_scope(scope)
                if c.name == data.get("name") and c.type == ctype
            ),
            None,
        )
        if existing is not None:
            if existing.payload != data:
                existing.payload = data
                existing.version = self.world.ids.next()
            return existing
        cmd = AppCommand(
            id=self.world.ids.next(),
            application_id=self.world.application_id,
            name=data["name"],
            type=ctype,
            guild_id=scope,
            payload=data,
            version=self.world.ids.next(),
        )
        self.world.commands[cmd.id] = cmd
        return cmd

    def _find_command(self, scope: int | None, command_id: str) -> AppCommand:
        cmd = self.world.commands.get(int(command_id))
        if cmd is None or cmd.guild_id != scope:
            raise unknown_application_command()
        return cmd

    async def list_commands(self, req: ApiRequest, app_id: str, guild_id: str | None = None) -> Any:
        scope = self._command_scope(app_id, guild_id)
        return [payloads.command(c) for c in self.world.commands_in_scope(scope)]

    async def bulk_commands(self, req: ApiRequest, app_id: str, guild_id: str | None = None) -> Any:
        scope = self._command_scope(app_id, guild_id)
        commands = req.json
        if not isinstance(commands, list):
            raise invalid_form_body({"_errors": [{"code": "BASE_TYPE_ARRAY", "message": "Must be an array"}]})
        errors = FormErrors()
        seen: set[tuple[str, int]] = set()
        for i, cmd in enumerate(commands):
            validate_command(cmd, errors, (i,))
            key = (cmd.get("name"), int(cmd.get("type", 1)))
            if key in seen:
                errors.add(
                    (i, "name"),
                    "APPLICATION_COMMANDS_DUPLICATE_NAME",
                    "Application command names must be unique",
                )
            seen.add(key)
        errors.raise_if_any()
        limits = {1: 100, 2: 15, 3: 15}
        for ctype, limit in limits.items():
            if sum(1 for c in commands if int(c.get("type", 1)) == ctype) > limit:
                raise APIError(400, 30032, f"Maximum number of application commands reached ({limit})")
        kept = [self._store_command(c, scope) for c in commands]
        kept_ids = {c.id for c in kept}
        # A bulk overwrite replaces the whole scope: anything not sent is deleted.
        for cmd in self.world.commands_in_scope(scope):
            if cmd.id not in kept_ids:
                del self.world.commands[cmd.id]
        return [payloads.command(c) for c in kept]

    async def upsert_command(self, req: ApiRequest, app_id: str, guild_id: str | None = None) -> Any:
        scope = self._command_scope(app_id, guild_id)
        errors = FormErrors()
        validate_command(req.json or {}, errors)
        errors.raise_if_any()
        return payloads.command(self._store_command(req.json, scope))

    async def get_command(
        self, req: ApiRequest, app_id: str, command_id: str, guild_id: str | None = None
    ) -> Any:
        return payloads.command(self._find_command(self._command_scope(app_id, guild_id), command_id))

    async def edit_command(
        self, req: ApiRequest, app_id: str, command_id: str, guild_id: str | None = None
    ) -> Any:
        cmd = self._find_command(self._command_scope(app_id, guild_id), command_id)
        merged = {**cmd.payload, **(req.json or {})}
        errors = FormErrors()
        validate_command(merged, errors)
        errors.raise_if_any()
        cmd.payload = merged
        cmd.name = merged["name"]
        cmd.version = self.world.ids.next()
        return payloads.command(cmd)

    async def delete_command(
        self, req: ApiRequest, app_id: str, command_id: str, guild_id: str | None = None
    ) -> Any:
        cmd = self._find_command(self._command_scope(app_id, guild_id), command_id)
        del self.world.commands[cmd.id]
        return NO_CONTENT

    # ------------------------------------------------------------------ interactions

    async def interaction_callback(self, req: ApiRequest, interaction_id: str, token: str) -> Any:
        record = self.world.interactions.get(int(interaction_id))
        if record is None or record.token != token:
            raise APIError(404, 10062, "Unknown interaction")
        body = req.json if isinstance(req.json, dict) else {}
        response = self.service.callback(record, body, req.files)
        if body.get("type") in (4, 7):
            self._log_mentions(req, record.original, body.get("data"))
        if req.query.get("with_response") in ("1", "true", "True"):
            return response
        return NO_CONTENT

    def _token_record(self, app_id: str, token: str) -> InteractionRecord:
        return self.service.resolve_token(int(app_id), token)

    async def webhook_execute(self, req: ApiRequest, app_id: str, token: str) -> Any:
        record = self._token_record(app_id, token)
        body = req.json if isinstance(req.json, dict) else {}
        message = self.service.followup(record, body, req.files)
        self._log_mentions(req, message, body)
        # Interaction follow-ups always behave as wait=true.
        return payloads.message(self.world, message)

    async def webhook_get(self, req: ApiRequest, app_id: str, token: str, message_ref: str) -> Any:
        record = self._token_record(app_id, token)
        return payloads.message(self.world, self.service.webhook_message(record, message_ref))

    async def webhook_edit(self, req: ApiRequest, app_id: str, token: str, message_ref: str) -> Any:
        record = self._token_record(app_id, token)
        message = self.service.webhook_message(record, message_ref)
        body = req.json if isinstance(req.json, dict) else {}
        self.service.edit(record, message, body, req.files)
        self._log_mentions(req, message, body)
        return payloads.message(self.world, message)

    async def webhook_delete(self, req: ApiRequest, app_id: str, token: str, message_ref: str) -> Any:
        record = self._token_record(app_id, token)
        self.world.delete_message(self.service.webhook_message(record, message_ref))
        return NO_CONTENT

    # ------------------------------------------------------------------ channels

    async def get_channel(self, req: ApiRequest, channel_id: str) -> Any:
        return payloads.channel(self.world, self._channel(channel_id))

    async def edit_channel(self, req: ApiRequest, channel_id: str) -> Any:
        channel = self._channel(channel_id)
        body = req.json or {}
        if channel.is_thread:
            if channel.owner_id != self.world.bot_user.id:
                self._require(channel, Permission.MANAGE_THREADS)
            for key in (
                "name",
                "archived",
                "locked",
                "auto_archive_duration",
                "invitable",
                "rate_limit_per_user",
            ):
                if key in body:
                    setattr(channel, key, body[key])
            if "archived" in body:
                channel.archive_timestamp = utcnow()
            event = "THREAD_UPDATE"
        else:
            self._require(channel, Permission.MANAGE_CHANNELS)
            for key in ("name", "topic", "nsfw", "rate_limit_per_user", "position"):
                if key in body:
                    setattr(channel, key, body[key])
            event = "CHANNEL_UPDATE"
        data = payloads.channel(self.world, channel)
        self.world.emit(event, data, intent=1)
        return data

    async def delete_channel(self, req: ApiRequest, channel_id: str) -> Any:
        channel = self._channel(channel_id)
        if channel.type != ChannelType.DM:
            self._require(
                channel, Permission.MANAGE_THREADS if channel.is_thread else Permission.MANAGE_CHANNELS
            )
        data = payloads.channel(self.world, channel)
        self.world.delete_channel(channel)
        return data

    async def typing(self, req: ApiRequest, channel_id: str) -> Any:
        channel = self._channel(channel_id)
        if channel.guild_id is not None:
            self._require(
                channel,
                Permission.SEND_MESSAGES_IN_THREADS if channel.is_thread else Permission.SEND_MESSAGES,
            )
        return NO_CONTENT

    async def list_messages(self, req: ApiRequest, channel_id: str) -> Any:
        channel = self._channel(channel_id)
        if (
            channel.guild_id is not None
            and not self.world.bot_permissions(channel) & Permission.READ_MESSAGE_HISTORY
        ):
            return []
        limit = max(1, min(100, int(req.query.get("limit", 50))))
        messages = [m for m in self.world.channel_message_list(channel.id) if not m.ephemeral]
        if "before" in req.query:
            messages = [m for m in messages if m.id < int(req.query["before"])]
        if "after" in req.query:
            messages = [m for m in messages if m.id > int(req.query["after"])]
            messages = messages[:limit]
        if "around" in req.query:
            around = int(req.query["around"])
            older = [m for m in messages if m.id <= around][-((limit + 1) // 2) :]
            newer = [m for m in messages if m.id > around][: limit // 2]
            messages = older + newer
        messages = messages[-limit:]
        return [payloads.message(self.world, m) for m in reversed(messages)]

    async def post_message(self, req: ApiRequest, channel_id: str) -> Any:
        channel = self._channel(channel_id)
        self._check_can_post(channel, req.files)
        body = req.json if isinstance(req.json, dict) else {}
        nonce = body.get("nonce")
        if nonce is not None and len(str(nonce)) > 25:
            errors = FormErrors()
            errors.add(("nonce",), "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
            errors.raise_if_any()
        # Discord's "Create Message": with enforce_nonce, a message of the same author with the same nonce in
        # the past few minutes is returned instead of a new one being created.
        key = (self.world.bot_user.id, str(nonce))
        if nonce is not None and body.get("enforce_nonce"):
            seen = self.world.nonces.get(key)
            if seen is not None and time.monotonic() - seen[1] <= self.world.nonce_window:
                earlier = self.world.messages.get(seen[0])
                if earlier is not None:
                    return payloads.message(self.world, earlier)
        message = create_message(self.world, channel, self.world.bot_user, body, req.files)
        if nonce is not None and body.get("enforce_nonce"):
            self.world.nonces[key] = (message.id, time.monotonic())
        self._log_mentions(req, message, body)
        return payloads.message(self.world, message)

    async def get_message(self, req: ApiRequest, channel_id: str, message_id: str) -> Any:
        channel = self._channel(channel_id)
        if channel.guild_id is not None:
            self._require(channel, Permission.READ_MESSAGE_HISTORY)
        return payloads.message(self.world, self._message(channel, message_id))

    async def edit_message(self, req: ApiRequest, channel_id: str, message_id: str) -> Any:
        channel = self._channel(channel_id)
        message = self._message(channel, message_id)
        body = req.json if isinstance(req.json, dict) else {}
        if message.author.id != self.world.bot_user.id or message.webhook_id is not None:
            raise cannot_edit_others_message()
        edit_message(self.world, message, body, req.files)
        self._log_mentions(req, message, body)
        return payloads.message(self.world, message)

    async def delete_message(self, req: ApiRequest, channel_id: str, message_id: str) -> Any:
        channel = self._channel(channel_id)
        message = self._message(channel, message_id)
        if message.author.id != self.world.bot_user.id and channel.type != ChannelType.DM:
            self._require(channel, Permission.MANAGE_MESSAGES)
        self.world.delete_message(message)
        return NO_CONTENT

    async def bulk_delete(self, req: ApiRequest, channel_id: str) -> Any:
        channel = self._channel(channel_id)
        self._require(channel, Permission.MANAGE_MESSAGES)
        for mid in (req.json or {}).get("messages", []):
            self.world.delete_message(self._message(channel, str(mid)))
        return NO_CONTENT

    async def list_pins(self, req: ApiRequest, channel_id: str) -> Any:
        channel = self._channel(channel_id)
        pinned = [m for m in self.world.channel_message_list(channel.id) if m.pinned]
        items = [
            {"pinned_at": m.timestamp.isoformat(), "message": payloads.message(self.world, m)} for m in pinned
        ]
        return {"items": items, "has_more": False}

    async def pin(self, req: ApiRequest, channel_id: str, message_id: str) -> Any:
        channel = self._channel(channel_id)
        self._require(channel, Permission.MANAGE_MESSAGES)
        self._message(channel, message_id).pinned = True
        return NO_CONTENT

    async def unpin(self, req: ApiRequest, channel_id: str, message_id: str) -> Any:
        channel = self._channel(channel_id)
        self._require(channel, Permission.MANAGE_MESSAGES)
        self._message(channel, message_id).pinned = False
        return NO_CONTENT

    # ------------------------------------------------------------------ threads

    def _new_thread(
        self, parent: Channel, body: dict[str, Any], *, thread_type: int, thread_id: int | None
    ) -> Channel:
        name = body.get("name")
        errors = FormErrors()
        if not name:
            errors.required(("name",))
        elif len(name) > 100:
            errors.bad_length(("name",), 1, 100)
        errors.raise_if_any()
        thread = Channel(
            id=thread_id if thread_id is not None else self.world.ids.next(),
            type=thread_type,
            name=name,
            guild_id=parent.guild_id,
            parent_id=parent.id,
            owner_id=self.world.bot_user.id,
            auto_archive_duration=int(body.get("auto_archive_duration") or 4320),
            rate_limit_per_user=int(body.get("rate_limit_per_user") or 0),
            invitable=bool(body.get("invitable", True)),
            member_ids={self.world.bot_user.id},
        )
        return thread

    async def thread_from_message(self, req: ApiRequest, channel_id: str, message_id: str) -> Any:
        parent = self._channel(channel_id)
        if parent.type not in (ChannelType.GUILD_TEXT, ChannelType.GUILD_ANNOUNCEMENT):
            raise APIError(400, 50024, "Cannot execute action on this channel type")
        self._require(parent, Permission.CREATE_PUBLIC_THREADS, Permission.READ_MESSAGE_HISTORY)
        message = self._message(parent, message_id)
        if message.thread_id is not None:
            raise thread_already_created()
        thread_type = (
            ChannelType.ANNOUNCEMENT_THREAD
            if parent.type == ChannelType.GUILD_ANNOUNCEMENT
            else ChannelType.PUBLIC_THREAD
        )
        # A thread started from a message shares the message's id.
        thread = self._new_thread(parent, req.json or {}, thread_type=thread_type, thread_id=message.id)
        self.world.register_thread(thread, message)
        return payloads.channel(self.world, thread)

    async def thread_without_message(self, req: ApiRequest, channel_id: str) -> Any:
        parent = self._channel(channel_id)
        body = req.json if isinstance(req.json, dict) else {}
        if parent.type == ChannelType.GUILD_FORUM:
            self._require(parent, Permission.SEND_MESSAGES)
            starter_body = body.get("message")
            if not isinstance(starter_body, dict):
                raise invalid_form_body(
                    {
                        "message": {
                            "_errors": [{"code": "BASE_TYPE_REQUIRED", "message": "This field is required"}]
                        }
                    }
                )
            thread = self._new_thread(parent, body, thread_type=ChannelType.PUBLIC_THREAD, thread_id=None)
            self.world.register_thread(thread, None)
            starter = create_message(
                self.world,
                thread,
                self.world.bot_user,
                starter_body,
                req.files,
                prefix=("message",),
                emit=False,
            )
            # The forum post's starter message has the thread's id on Discord; mirror that.
            self._rekey_message(starter, thread.id)
            self.world.emit_message("MESSAGE_CREATE", starter)
            data = payloads.channel(self.world, thread)
            data["message"] = payloads.message(self.world, starter)
            return data
        if parent.type not in (ChannelType.GUILD_TEXT, ChannelType.GUILD_ANNOUNCEMENT):
            raise APIError(400, 50024, "Cannot execute action on this channel type")
        thread_type = int(body.get("type") or ChannelType.PRIVATE_THREAD)
        needed = (
            Permission.CREATE_PRIVATE_THREADS
            if thread_type == ChannelType.PRIVATE_THREAD
            else Permission.CREATE_PUBLIC_THREADS
        )
        self._require(parent, needed)
        thread = self._new_thread(parent, body, thread_type=thread_type, thread_id=None)
        self.world.register_thread(thread, None)
        return payloads.channel(self.world, thread)

    def _rekey_message(self, message: Message, new_id: int) -> None:
        ids = self.world.channel_messages[message.channel_id]
        ids[ids.index(message.id)] = new_id
        del self.world.messages[message.id]
        message.id = new_id
        message.type = MessageType.DEFAULT
        self.world.messages[new_id] = message

    async def archived_threads(self, req: ApiRequest, channel_id: str) -> Any:
        parent = self._channel(channel_id)
        threads = [
            c for c in self.world.channels.values() if c.is_thread and c.parent_id == parent.id and c.archived
        ]
        return {
            "threads": [payloads.channel(self.world, t) for t in threads],
            "members": [
                payloads.thread_member(t, self.world.bot_user.id)
                for t in threads
                if self.world.bot_user.id in t.member_ids
            ],
            "has_more": False,
        }

    async def join_thread(self, req: ApiRequest, channel_id: str) -> Any:
        thread = self._thread(channel_id)
        thread.member_ids.add(self.world.bot_user.id)
        return NO_CONTENT

    async def leave_thread(self, req: ApiRequest, channel_id: str) -> Any:
        thread = self._thread(channel_id)
        thread.member_ids.discard(self.world.bot_user.id)
        return NO_CONTENT

    async def add_thread_member(self, req: ApiRequest, channel_id: str, user_id: str) -> Any:
        thread = self._thread(channel_id)
        if int(user_id) not in self.world.users:
            raise unknown_user()
        thread.member_ids.add(int(user_id))
        return NO_CONTENT

    async def remove_thread_member(self, req: ApiRequest, channel_id: str, user_id: str) -> Any:
        thread = self._thread(channel_id)
        self._require(thread, Permission.MANAGE_THREADS)
        thread.member_ids.discard(int(user_id))
        return NO_CONTENT

    async def list_thread_members(self, req: ApiRequest, channel_id: str) -> Any:
        thread = self._thread(channel_id)
        return [payloads.thread_member(thread, uid) for uid in sorted(thread.member_ids)]

    def _thread(self, channel_id: str) -> Channel:
        channel = self._channel(channel_id)
        if not channel.is_thread:
            raise APIError(400, 50024, "Cannot execute action on this channel type")
        return channel

    # ------------------------------------------------------------------ reactions

    async def add_reaction(self, req: ApiRequest, channel_id: str, message_id: str, emoji: str) -> Any:
        channel = self._channel(channel_id)
        if channel.guild_id is not None:
            self._require(channel, Permission.READ_MESSAGE_HISTORY, Permission.ADD_REACTIONS)
        message = self._message(channel, message_id)
        message.reactions.setdefault(emoji, set()).add(self.world.bot_user.id)
        return NO_CONTENT

    async def remove_reaction(self, req: ApiRequest, channel_id: str, message_id: str, emoji: str) -> Any:
        message = self._message(self._channel(channel_id), message_id)
        message.reactions.get(emoji, set()).discard(self.world.bot_user.id)
        return NO_CONTENT

    async def clear_reactions(self, req: ApiRequest, channel_id: str, message_id: str) -> Any:
        channel = self._channel(channel_id)
        self._require(channel, Permission.MANAGE_MESSAGES)
        self._message(channel, message_id).reactions.clear()
        return NO_CONTENT

    # ------------------------------------------------------------------ guilds

    def _guild(self, guild_id: str):
        guild = self.world.guilds.get(int(guild_id))
        if guild is None:
            raise unknown_guild()
        return guild

    async def get_guild(self, req: ApiRequest, guild_id: str) -> Any:
        guild = self._guild(guild_id)
        data = payloads.guild(self.world, guild)
        if req.query.get("with_counts") in ("1", "true"):
            data["approximate_member_count"] = len(guild.members)
            data["approximate_presence_count"] = 0
        return data

    async def get_guild_channels(self, req: ApiRequest, guild_id: str) -> Any:
        guild = self._guild(guild_id)
        return [
            payloads.channel(self.world, self.world.channels[c])
            for c in guild.channel_ids
            if c in self.world.channels and not self.world.channels[c].is_thread
        ]

    async def get_guild_roles(self, req: ApiRequest, guild_id: str) -> Any:
        return [payloads.role(r) for r in self._guild(guild_id).roles.values()]

    async def list_members(self, req: ApiRequest, guild_id: str) -> Any:
        guild = self._guild(guild_id)
        if not self.world.privileged_intents & 2:
            # Listing members needs the GUILD_MEMBERS privileged intent enabled for the app.
            raise missing_access()
        limit = max(1, min(1000, int(req.query.get("limit", 1))))
        after = int(req.query.get("after", 0))
        members = sorted((m for m in guild.members.values() if m.user.id > after), key=lambda m: m.user.id)
        return [payloads.member(self.world, m) for m in members[:limit]]

    async def get_member(self, req: ApiRequest, guild_id: str, user_id: str) -> Any:
        guild = self._guild(guild_id)
        member = guild.members.get(int(user_id))
        if member is None:
            raise unknown_member()
        return payloads.member(self.world, member)

    async def active_threads(self, req: ApiRequest, guild_id: str) -> Any:
        guild = self._guild(guild_id)
        threads = [
            self.world.channels[c]
            for c in guild.channel_ids
            if c in self.world.channels
            and self.world.channels[c].is_thread
            and not self.world.channels[c].archived
        ]
        return {
            "threads": [payloads.channel(self.world, t) for t in threads],
            "members": [
                payloads.thread_member(t, self.world.bot_user.id)
                for t in threads
                if self.world.bot_user.id in t.member_ids
            ],
        }


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise APIError(400, 50109, "The request body contains invalid JSON.") from None


def _json_response(obj: Any, *, status: int = 200, headers: dict[str, str]) -> web.Response:
    # Exactly "application/json": discord.py's json_or_text() compares the header verbatim
    # and treats "application/json; charset=utf-8" as plain text.
    body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    return web.Response(body=body, status=status, headers=headers, content_type="application/json")


def _default_error_body(status: int) -> dict[str, Any]:
    known = {
        400: (0, "400: Bad Request"),
        401: (0, "401: Unauthorized"),
        403: (50013, "Missing Permissions"),
        404: (0, "404: Not Found"),
        500: (0, "500: Internal Server Error"),
        502: (0, "502: Bad Gateway"),
        503: (0, "503: Service Unavailable"),
    }
    code, message = known.get(status, (0, f"{status}: Error"))
    return {"message": message, "code": code}
