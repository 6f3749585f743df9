"""Test drivers: what a human does in the Discord client, turned into real gateway payloads.

Each driver builds the INTERACTION_CREATE / MESSAGE_CREATE body exactly as
Discord would (options typed from the *registered* command, ``resolved`` data,
member with permissions, ``app_permissions``, channel object...), dispatches
it, and returns a record to await the bot's answer on.

Drivers refuse what a real client could not do (unknown command or option,
missing required option, a value outside the registered choices, pressing a
button that is not on the message or is disabled) with ``LookupError`` /
``ValueError`` so broken tests fail loudly instead of timing out.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from . import payloads
from .interactions import InteractionRecord, InteractionService, InteractionType
from .models import AppCommand, Channel, ChannelType, Guild, Message, MessageType, Role, User
from .state import ChannelLike, GuildLike, MessageLike, UserLike, World

SUBCOMMAND = 1
SUBCOMMAND_GROUP = 2
STRING, INTEGER, BOOLEAN, USER, CHANNEL, ROLE, MENTIONABLE, NUMBER, ATTACHMENT = 3, 4, 5, 6, 7, 8, 9, 10, 11

_SELECT_TYPES = {3, 5, 6, 7, 8}


class Drivers:
    def __init__(self, world: World, service: InteractionService) -> None:
        self.world = world
        self.service = service

    # ------------------------------------------------------------------ resolution helpers

    def _context(
        self, guild: GuildLike | None, channel: ChannelLike, user: UserLike
    ) -> tuple[Guild | None, Channel, User]:
        g = self.world.guild(guild) if guild is not None else None
        ch = self.world.channel(channel)
        u = self.world.user(user)
        if g is not None and u.id not in g.members:
            raise LookupError(f"user {u.username} is not a member of guild {g.name}")
        if g is not None and ch.guild_id != g.id:
            raise LookupError(f"channel {ch.id} is not in guild {g.name}")
        return g, ch, u

    def find_command(self, name: str, guild: Guild | None, command_type: int) -> AppCommand:
        scopes = [guild.id, None] if guild is not None else [None]
        for scope in scopes:
            for cmd in self.world.commands_in_scope(scope):
                if cmd.name == name and cmd.type == command_type:
                    return cmd
        registered = sorted(
            f"{c.name}(type {c.type}, guild {c.guild_id})" for c in self.world.commands.values()
        )
        raise LookupError(f"no registered command {name!r} of type {command_type}; registered: {registered}")

    # ------------------------------------------------------------------ interaction payloads

    def _interaction(
        self,
        itype: int,
        guild: Guild | None,
        channel: Channel,
        user: User,
        data: dict[str, Any],
        *,
        message: Message | None = None,
        locale: str = "en-US",
        command: AppCommand | None = None,
        custom_id: str | None = None,
        triggering: InteractionRecord | None = None,
    ) -> InteractionRecord:
        world = self.world
        iid = world.ids.next()
        token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(96)
        user_perms = world.channel_permissions(channel, user.id)
        channel_payload = payloads.channel(world, channel)
        channel_payload["permissions"] = str(user_perms)
        payload: dict[str, Any] = {
            "id": str(iid),
            "application_id": str(world.application_id),
            "type": itype,
            "data": data,
            "token": token,
            "version": 1,
            "locale": locale,
            "channel_id": str(channel.id),
            "channel": channel_payload,
            "app_permissions": str(world.bot_permissions(channel)),
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": world.attachment_size_limit,
        }
        if guild is not None:
            payload["guild_id"] = str(guild.id)
            payload["guild"] = payloads.partial_guild(guild)
            payload["guild_locale"] = guild.preferred_locale
            payload["member"] = payloads.member(world, guild.members[user.id], permissions=user_perms)
            payload["context"] = 0
            payload["authorizing_integration_owners"] = {"0": str(guild.id)}
        else:
            payload["user"] = payloads.user(user)
            payload["context"] = 1
            payload["authorizing_integration_owners"] = {"0": "0"}
        if message is not None:
            payload["message"] = payloads.message(world, message)
        record = InteractionRecord(
            world,
            id=iid,
            token=token,
            type=itype,
            payload=payload,
            guild_id=guild.id if guild is not None else None,
            channel_id=channel.id,
            user_id=user.id,
            created_at=self.service.now(),
            ack_deadline=self.service.ack_deadline,
            token_ttl=self.service.token_ttl,
            source_message_id=message.id if message is not None else None,
            command_name=command.name if command is not None else None,
            command_type=command.type if command is not None else None,
            custom_id=custom_id,
            triggering=triggering,
        )
        return self.service.register(record)

    # ------------------------------------------------------------------ application commands

    def slash(
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
        autocomplete: tuple[str, str] | None = None,
    ) -> InteractionRecord:
        g, ch, u = self._context(guild, channel, user)
        cmd = self.find_command(name, g, 1)
        path = subcommand.split() if isinstance(subcommand, str) else list(subcommand or [])
        resolved: dict[str, dict[str, Any]] = {}
        for att in attachments:
            resolved.setdefault("attachments", {})[str(att["id"])] = att
        top, leaf_defs = self._option_tree(cmd, path)
        leaf: list[dict[str, Any]] = top if not path else _deepest(top)
        values = dict(options or {})
        focused_name = autocomplete[0] if autocomplete else None
        if focused_name is not None and focused_name not in values:
            values[focused_name] = autocomplete[1]
        for opt_name, value in values.items():
            definition = next((d for d in leaf_defs if d.get("name") == opt_name), None)
            if definition is None:
                known = [d.get("name") for d in leaf_defs]
                raise LookupError(
                    f"command {name} {' '.join(path)} has no option {opt_name!r}; options: {known}"
                )
            if opt_name == focused_name:
                leaf.append(
                    {"name": opt_name, "type": definition["type"], "value": str(value), "focused": True}
                )
                continue
            leaf.append(self._convert_option(definition, value, g, resolved))
        if autocomplete is None:
            missing = [d["name"] for d in leaf_defs if d.get("required") and d["name"] not in values]
            if missing:
                raise ValueError(f"required option(s) {missing} missing for /{name} {' '.join(path)}")
        data: dict[str, Any] = {"id": str(cmd.id), "name": cmd.name, "type": 1}
        if top:
            data["options"] = top
        if resolved:
            data["resolved"] = resolved
        if cmd.guild_id is not None:
            data["guild_id"] = str(cmd.guild_id)
        itype = (
            InteractionType.APPLICATION_COMMAND_AUTOCOMPLETE
            if autocomplete
            else InteractionType.APPLICATION_COMMAND
        )
        return self._interaction(itype, g, ch, u, data, locale=locale, command=cmd)

    def _option_tree(
        self, cmd: AppCommand, path: list[str]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Nest subcommand groups/subcommands along ``path``; return (top-level options, leaf definitions)."""
        defs = cmd.options
        top: list[dict[str, Any]] = []
        container = top
        for part in path:
            definition = next((d for d in defs if d.get("name") == part and d.get("type") in (1, 2)), None)
            if definition is None:
                subs = [d.get("name") for d in defs if d.get("type") in (1, 2)]
                raise LookupError(f"/{cmd.name} has no subcommand (group) {part!r}; available: {subs}")
            node: dict[str, Any] = {"name": part, "type": definition["type"], "options": []}
            container.append(node)
            container = node["options"]
            defs = definition.get("options") or []
        if any(d.get("type") in (1, 2) for d in defs):
            subs = [d.get("name") for d in defs if d.get("type") in (1, 2)]
            raise LookupError(f"/{cmd.name} {' '.join(path)} needs a subcommand; available: {subs}")
        return top, defs

    def _convert_option(
        self, definition: dict[str, Any], value: Any, guild: Guild | None, resolved: dict[str, dict[str, Any]]
    ) -> dict[str, Any]:
        otype = definition["type"]
        name = definition["name"]
        world = self.world
        if otype == STRING:
            out: Any = str(value)
            lo, hi = definition.get("min_length"), definition.get("max_length")
            if (lo is not None and len(out) < lo) or (hi is not None and len(out) > hi):
                raise ValueError(f"option {name}: length {len(out)} outside [{lo}, {hi}]")
        elif otype == INTEGER:
            if isinstance(value, bool) or int(value) != value:
                raise ValueError(f"option {name} needs an integer, got {value!r}")
            out = int(value)
        elif otype == NUMBER:
            out = value if isinstance(value, int | float) and not isinstance(value, bool) else float(value)
        elif otype == BOOLEAN:
            if not isinstance(value, bool):
                raise ValueError(f"option {name} needs a bool, got {value!r}")
            out = value
        elif otype == USER or (otype == MENTIONABLE and not self._is_role(value, guild)):
            u = world.user(value)
            resolved.setdefault("users", {})[str(u.id)] = payloads.user(u)
            if guild is not None and u.id in guild.members:
                member_payload = payloads.member(world, guild.members[u.id], with_user=False)
                member_payload["permissions"] = str(world.base_permissions(guild, u.id))
                resolved.setdefault("members", {})[str(u.id)] = member_payload
            out = str(u.id)
        elif otype in (ROLE, MENTIONABLE):
            role = value if isinstance(value, Role) else guild.roles[int(value)] if guild else None
            if role is None:
                raise LookupError(f"option {name}: unknown role {value!r}")
            resolved.setdefault("roles", {})[str(role.id)] = payloads.role(role)
            out = str(role.id)
        elif otype == CHANNEL:
            ch = world.channel(value)
            allowed_types = definition.get("channel_types")
            if allowed_types and ch.type not in allowed_types:
                raise ValueError(f"option {name}: channel type {ch.type} not in {allowed_types}")
            resolved.setdefault("channels", {})[str(ch.id)] = self._partial_channel(ch)
            out = str(ch.id)
        elif otype == ATTACHMENT:
            if not isinstance(value, dict) or "id" not in value:
                raise ValueError(f"option {name} needs an attachment dict from fake.make_attachment()")
            resolved.setdefault("attachments", {})[str(value["id"])] = value
            out = str(value["id"])
        else:
            raise ValueError(f"option {name}: unsupported option type {otype}")
        choices = definition.get("choices")
        if choices and out not in [c["value"] for c in choices]:
            raise ValueError(f"option {name}: {out!r} is not one of the registered choices {choices}")
        for bound, ok in (("min_value", lambda b: out >= b), ("max_value", lambda b: out <= b)):
            if otype in (INTEGER, NUMBER) and definition.get(bound) is not None and not ok(definition[bound]):
                raise ValueError(f"option {name}: {out} violates {bound}={definition[bound]}")
        return {"name": name, "type": otype, "value": out}

    @staticmethod
    def _is_role(value: Any, guild: Guild | None) -> bool:
        return isinstance(value, Role) or (
            isinstance(value, int) and guild is not None and value in guild.roles
        )

    def _partial_channel(self, ch: Channel) -> dict[str, Any]:
        data = payloads.channel(self.world, ch)
        data["permissions"] = str(self.world.bot_permissions(ch))
        keep = {
            "id", "name", "type", "permissions", "last_message_id", "last_pin_timestamp", "nsfw", "parent_id",
            "guild_id", "flags", "rate_limit_per_user", "topic", "position", "thread_metadata",
        }  # fmt: skip
        return {k: v for k, v in data.items() if k in keep}

    def message_context_menu(
        self, guild: GuildLike | None, channel: ChannelLike, user: UserLike, name: str, target: MessageLike
    ) -> InteractionRecord:
        g, ch, u = self._context(guild, channel, user)
        cmd = self.find_command(name, g, 3)
        message = self.world.message(target)
        data: dict[str, Any] = {
            "id": str(cmd.id),
            "name": cmd.name,
            "type": 3,
            "target_id": str(message.id),
            # Resolved messages always carry content: interactions are exempt from the MESSAGE_CONTENT intent.
            "resolved": {"messages": {str(message.id): payloads.message(self.world, message)}},
        }
        if cmd.guild_id is not None:
            data["guild_id"] = str(cmd.guild_id)
        return self._interaction(InteractionType.APPLICATION_COMMAND, g, ch, u, data, command=cmd)

    def user_context_menu(
        self, guild: GuildLike | None, channel: ChannelLike, user: UserLike, name: str, target: UserLike
    ) -> InteractionRecord:
        g, ch, u = self._context(guild, channel, user)
        cmd = self.find_command(name, g, 2)
        target_user = self.world.user(target)
        resolved: dict[str, Any] = {"users": {str(target_user.id): payloads.user(target_user)}}
        if g is not None and target_user.id in g.members:
            member_payload = payloads.member(self.world, g.members[target_user.id], with_user=False)
            member_payload["permissions"] = str(self.world.base_permissions(g, target_user.id))
            resolved["members"] = {str(target_user.id): member_payload}
        data: dict[str, Any] = {
            "id": str(cmd.id),
            "name": cmd.name,
            "type": 2,
            "target_id": str(target_user.id),
            "resolved": resolved,
        }
        if cmd.guild_id is not None:
            data["guild_id"] = str(cmd.guild_id)
        return self._interaction(InteractionType.APPLICATION_COMMAND, g, ch, u, data, command=cmd)

    # ------------------------------------------------------------------ components & modals

    def component(
        self,
        guild: GuildLike | None,
        channel: ChannelLike,
        user: UserLike,
        message: MessageLike,
        custom_id: str,
        values: Sequence[Any] | None = None,
    ) -> InteractionRecord:
        g, ch, u = self._context(guild, channel, user)
        msg = self.world.message(message)
        if msg.deleted:
            raise LookupError(f"message {msg.id} was deleted; its components can't be used")
        component = msg.find_component(custom_id)
        if component is None:
            ids = [c.get("custom_id") for c in msg.buttons()]
            raise LookupError(f"message {msg.id} has no component {custom_id!r}; buttons: {ids}")
        if component.get("disabled"):
            raise ValueError(f"component {custom_id!r} is disabled; a user can't use it")
        ctype = component["type"]
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": ctype, "id": component.get("id")}
        if ctype in _SELECT_TYPES:
            data["values"], resolved = self._select_values(ctype, values or [], g)
            if resolved:
                data["resolved"] = resolved
        elif values:
            raise ValueError("values are only for select menus")
        return self._interaction(
            InteractionType.MESSAGE_COMPONENT, g, ch, u, data, message=msg, custom_id=custom_id
        )

    def _select_values(
        self, ctype: int, values: Sequence[Any], guild: Guild | None
    ) -> tuple[list[str], dict[str, Any]]:
        resolved: dict[str, dict[str, Any]] = {}
        if ctype == 3:
            return [str(v) for v in values], resolved
        out: list[str] = []
        for value in values:
            if isinstance(value, Role):
                resolved.setdefault("roles", {})[str(value.id)] = payloads.role(value)
                out.append(str(value.id))
            elif isinstance(value, Channel):
                resolved.setdefault("channels", {})[str(value.id)] = self._partial_channel(value)
                out.append(str(value.id))
            else:
                u = self.world.user(value)
                resolved.setdefault("users", {})[str(u.id)] = payloads.user(u)
                if guild is not None and u.id in guild.members:
                    mp = payloads.member(self.world, guild.members[u.id], with_user=False)
                    mp["permissions"] = str(self.world.base_permissions(guild, u.id))
                    resolved.setdefault("members", {})[str(u.id)] = mp
                out.append(str(u.id))
        return out, resolved

    def find_modal(self, custom_id: str, user_id: int) -> InteractionRecord | None:
        for record in reversed(list(self.world.interactions.values())):
            if record.modal is not None and record.modal.get("custom_id") == custom_id:
                if record.user_id == user_id:
                    return record
        return None

    def modal_submit(
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
        g, ch, u = self._context(guild, channel, user)
        source = source or self.find_modal(custom_id, u.id)
        msg = self.world.message(message) if message is not None else None
        if msg is None and source is not None and source.source_message_id is not None:
            # A modal opened from a component carries that component's message, like on Discord.
            msg = self.world.messages.get(source.source_message_id)
        resolved: dict[str, dict[str, Any]] = {}
        remaining = dict(values)
        if source is not None and source.modal is not None:
            components = [self._answer(c, remaining, resolved, g) for c in source.modal["components"]]
            if remaining:
                raise LookupError(f"modal {custom_id!r} has no field(s) {sorted(remaining)}")
        else:
            components = [
                {
                    "type": 1,
                    "id": 2 * i + 1,
                    "components": [{"type": 4, "id": 2 * i + 2, "custom_id": k, "value": str(v)}],
                }
                for i, (k, v) in enumerate(values.items())
            ]
        data: dict[str, Any] = {"custom_id": custom_id, "components": components}
        if resolved:
            data["resolved"] = resolved
        return self._interaction(
            InteractionType.MODAL_SUBMIT, g, ch, u, data, message=msg, custom_id=custom_id, triggering=source
        )

    def _answer(
        self,
        component: dict[str, Any],
        values: dict[str, Any],
        resolved: dict[str, dict[str, Any]],
        guild: Guild | None,
    ) -> dict[str, Any]:
        """The modal-submit shape of one modal component, filled from ``values``."""
        ctype = component["type"]
        if ctype == 1:
            children = [self._answer(c, values, resolved, guild) for c in component.get("components", [])]
            return {"type": 1, "id": component["id"], "components": children}
        if ctype == 18:
            return {
                "type": 18,
                "id": component["id"],
                "component": self._answer(component["component"], values, resolved, guild),
            }
        if ctype == 10:
            return {"type": 10, "id": component["id"]}
        custom_id = component.get("custom_id")
        answer: dict[str, Any] = {"type": ctype, "id": component["id"], "custom_id": custom_id}
        provided = custom_id in values
        value = values.pop(custom_id, None)
        if ctype == 4:
            text = str(value) if provided else component.get("value") or ""
            if component.get("required", True) and not text:
                raise ValueError(f"text input {custom_id!r} is required")
            lo, hi = component.get("min_length"), component.get("max_length")
            if text and ((lo is not None and len(text) < lo) or (hi is not None and len(text) > hi)):
                raise ValueError(f"text input {custom_id!r}: length {len(text)} outside [{lo}, {hi}]")
            answer["value"] = text
        elif ctype in _SELECT_TYPES:
            chosen = list(value or [])
            answer["values"], extra = self._select_values(ctype, chosen, guild)
            for key, items in extra.items():
                resolved.setdefault(key, {}).update(items)
        elif ctype == 19:
            files = list(value or [])
            answer["values"] = [str(a["id"]) for a in files]
            for att in files:
                resolved.setdefault("attachments", {})[str(att["id"])] = att
        elif ctype == 21:
            answer["value"] = value
        elif ctype == 22:
            answer["values"] = list(value or [])
        elif ctype == 23:
            answer["value"] = bool(value)
        return answer

    # ------------------------------------------------------------------ user messages

    def post_message(
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
        """A user's message, dispatched as MESSAGE_CREATE (a reply pings its author unless ``mention_reply=False``)."""
        world = self.world
        g, ch, u = (
            self._context(guild, channel, user)
            if guild is not None
            else (None, world.channel(channel), world.user(user))
        )
        if ch.type == ChannelType.DM and u.id not in ch.recipient_ids:
            raise LookupError(f"user {u.username} is not a recipient of DM channel {ch.id}")
        if mention_bot:
            content = f"{world.bot_user.mention} {content}".rstrip()
        referenced = world.message(reply_to) if reply_to is not None else None
        mentions, mention_roles, everyone = world.compute_mentions(
            content, None, guild=g, replied_to=referenced, author_id=u.id, default_replied_user=mention_reply
        )
        message = Message(
            id=world.ids.next(),
            channel_id=ch.id,
            guild_id=ch.guild_id,
            author=u,
            content=content,
            embeds=list(embeds),
            attachments=list(attachments),
            mentions=mentions,
            mention_roles=mention_roles,
            mention_everyone=everyone,
            type=MessageType.REPLY if referenced is not None else MessageType.DEFAULT,
        )
        if referenced is not None:
            message.message_reference = {
                "type": 0,
                "channel_id": str(referenced.channel_id),
                "message_id": str(referenced.id),
            }
            if referenced.guild_id is not None:
                message.message_reference["guild_id"] = str(referenced.guild_id)
            message.referenced_message_id = referenced.id
        world.store_message(message)
        world.emit_message("MESSAGE_CREATE", message)
        world.notifier.notify()
        return message


def _deepest(options: list[dict[str, Any]]) -> list[dict[str, Any]]:
    node = options
    while node and node[-1].get("type") in (1, 2):
        node = node[-1]["options"]
    return node
