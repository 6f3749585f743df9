"""Creating and editing messages the way Discord does, shared by REST, webhooks and drivers.

Validation (limits, empty messages, upload size, unknown reply targets) runs
before anything is stored, so a rejected request leaves no trace in the world
except the request log.
"""

from __future__ import annotations

import copy
from typing import Any

from .errors import FormErrors, entity_too_large
from .models import Channel, Message, MessageFlag, MessageType, User, iter_components
from .snowflakes import utcnow
from .state import World
from .validation import ensure_not_empty, validate_message

# Flags a sender may set on a new message; Discord silently drops the others.
_SETTABLE_FLAGS = int(
    MessageFlag.SUPPRESS_EMBEDS
    | MessageFlag.EPHEMERAL
    | MessageFlag.SUPPRESS_NOTIFICATIONS
    | MessageFlag.IS_VOICE_MESSAGE
    | MessageFlag.IS_COMPONENTS_V2
)
# Flags an edit may change.
_EDITABLE_FLAGS = int(MessageFlag.SUPPRESS_EMBEDS | MessageFlag.IS_COMPONENTS_V2)

File = tuple[str, str, str, bytes]


def prepare_components(components: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Copy components and number them like Discord (``id`` 1..n depth-first) where unset."""
    result = copy.deepcopy(components or [])
    used = {c["id"] for c in iter_components(result) if isinstance(c.get("id"), int)}
    next_id = 1
    for component in iter_components(result):
        if not isinstance(component.get("id"), int):
            while next_id in used:
                next_id += 1
            component["id"] = next_id
            used.add(next_id)
    return result


def prepare_embeds(embeds: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    result = []
    for embed in copy.deepcopy(embeds or []):
        embed.setdefault("type", "rich")
        embed["content_scan_version"] = 0
        result.append(embed)
    return result


def check_upload_size(world: World, files: list[File], channel_id: int | None = None) -> None:
    """Since 2025-04-03 the limit applies to each attachment: the guild's (by boost tier), 10 MiB elsewhere."""
    limit = world.upload_limit(channel_id)
    if any(len(f[3]) > limit for f in files):
        raise entity_too_large()


def validate_body(body: dict[str, Any], prefix: tuple[str | int, ...] = ()) -> None:
    errors = FormErrors()
    validate_message(body, errors, prefix)
    errors.raise_if_any()


def create_message(
    world: World,
    channel: Channel,
    author: User,
    body: dict[str, Any],
    files: list[File],
    *,
    prefix: tuple[str | int, ...] = (),
    message_type: int | None = None,
    webhook_id: int | None = None,
    application_id: int | None = None,
    interaction: Any = None,
    extra_flags: int = 0,
    emit: bool = True,
) -> Message:
    """Validate ``body`` and store a new message in ``channel`` (then MESSAGE_CREATE it)."""
    validate_body(body, prefix)
    check_upload_size(world, files, channel.id)
    flags = (int(body.get("flags") or 0) & _SETTABLE_FLAGS) | extra_flags
    upload = world.attachments_from_upload(
        body, files, channel.id, ephemeral=bool(flags & MessageFlag.EPHEMERAL)
    )
    attachments, uploaded = upload if upload is not None else ([], [])
    ensure_not_empty(body, len(attachments))

    reference = body.get("message_reference")
    referenced: Message | None = None
    if (
        isinstance(reference, dict)
        and reference.get("message_id") is not None
        and reference.get("type", 0) == 0
    ):
        referenced = world.messages.get(int(reference["message_id"]))
        ref_channel = int(reference.get("channel_id") or channel.id)
        if referenced is None or referenced.deleted or referenced.channel_id != ref_channel:
            referenced = None
            if reference.get("fail_if_not_exists", True):
                errors = FormErrors()
                errors.add((*prefix, "message_reference"), "REPLIES_UNKNOWN_MESSAGE", "Unknown message")
                errors.raise_if_any()
    guild = world.guild_of(channel)
    content = body.get("content") or ""
    if not isinstance(content, str):
        content = str(content)
    allowed = body.get("allowed_mentions")
    mentions, mention_roles, everyone = world.compute_mentions(
        content, allowed, guild=guild, replied_to=referenced, author_id=author.id
    )
    if message_type is None:
        message_type = MessageType.REPLY if referenced is not None else MessageType.DEFAULT
    message = Message(
        id=world.ids.next(),
        channel_id=channel.id,
        guild_id=channel.guild_id,
        author=author,
        content=content,
        embeds=prepare_embeds(body.get("embeds")),
        components=prepare_components(body.get("components")),
        attachments=attachments,
        files=uploaded,
        mentions=mentions,
        mention_roles=mention_roles,
        mention_everyone=everyone,
        type=int(message_type),
        flags=flags,
        tts=bool(body.get("tts")),
        nonce=body.get("nonce"),
        webhook_id=webhook_id,
        application_id=application_id,
        poll=body.get("poll"),
        allowed_mentions=copy.deepcopy(allowed),
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
    if interaction is not None:
        interaction.stamp(message)
    world.store_message(message)
    if emit:
        world.emit_message("MESSAGE_CREATE", message)
    world.notifier.notify()
    return message


def edit_message(
    world: World,
    message: Message,
    body: dict[str, Any],
    files: list[File],
    *,
    prefix: tuple[str | int, ...] = (),
    finish_loading: bool = False,
) -> Message:
    """Apply an edit body (only the keys present change), then MESSAGE_UPDATE."""
    validate_body({**body, "flags": body.get("flags", message.flags)}, prefix)
    check_upload_size(world, files, message.channel_id)
    upload = world.attachments_from_upload(
        body, files, message.channel_id, existing=message.attachments, ephemeral=message.ephemeral
    )
    new_state = {
        "content": body["content"] if "content" in body else message.content,
        "embeds": body["embeds"] if "embeds" in body else message.embeds,
        "components": body["components"] if "components" in body else message.components,
        "poll": message.poll,
    }
    attachments = upload[0] if upload is not None else message.attachments
    ensure_not_empty(new_state, len(attachments))
    if "content" in body:
        message.content = body["content"] or ""
    if "embeds" in body:
        message.embeds = prepare_embeds(body["embeds"])
    if "components" in body:
        message.components = prepare_components(body["components"])
    if upload is not None:
        message.attachments, new_files = upload
        kept = {int(a["id"]) for a in message.attachments}
        message.files = [f for f in message.files if f.attachment_id in kept] + new_files
    if "flags" in body and body["flags"] is not None:
        message.flags = (message.flags & ~_EDITABLE_FLAGS) | (int(body["flags"]) & _EDITABLE_FLAGS)
    if "allowed_mentions" in body or "content" in body:
        message.allowed_mentions = copy.deepcopy(body.get("allowed_mentions"))
        guild = world.guilds.get(message.guild_id) if message.guild_id else None
        referenced = world.messages.get(message.referenced_message_id or 0)
        # Edits never re-ping the replied-to user unless explicitly allowed.
        message.mentions, message.mention_roles, message.mention_everyone = world.compute_mentions(
            message.content,
            body.get("allowed_mentions"),
            guild=guild,
            replied_to=referenced,
            author_id=message.author.id,
            default_replied_user=referenced is not None and referenced.author.id in message.mentions,
        )
    if finish_loading:
        # Completing a deferred ("thinking") response is not an edit from the user's point of view.
        message.flags &= ~MessageFlag.LOADING
    else:
        message.edited_timestamp = utcnow()
    message.edits += 1
    world.emit_message("MESSAGE_UPDATE", message)
    world.notifier.notify()
    return message
