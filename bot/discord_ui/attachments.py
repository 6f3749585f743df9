"""Which Discord attachments may be a video's start or end frame. Only the attachment's CDN URL goes to the
provider; the bot never downloads it."""

from __future__ import annotations

import discord

from bot.discord_ui import texts
from bot.luma.validation import InvalidInput

IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/webp"})
# Luma's documented frame formats are png/jpeg/webp; providers fetch the frame themselves and reject large
# ones slowly (after we reserved a unit), so refuse them up front. 10 MiB covers any sensible still frame.
MAX_IMAGE_BYTES = 10 * 1024 * 1024


def frame_url(attachment: discord.Attachment | None, url: str | None, what: str) -> str | None:
    """The frame's URL from an attachment or a typed link (not both); InvalidInput for a bad attachment.
    Typed links are checked later, with the rest of the request, by the engine."""
    if attachment is not None and url:
        raise InvalidInput(texts.FRAME_TWICE.format(what=what))
    if attachment is None:
        return url or None
    content_type = (attachment.content_type or "").split(";", 1)[0].strip().lower()
    if content_type not in IMAGE_TYPES:
        raise InvalidInput(texts.ATTACHMENT_NOT_IMAGE.format(what=what))
    if attachment.size > MAX_IMAGE_BYTES:
        raise InvalidInput(
            texts.ATTACHMENT_TOO_BIG.format(
                what=what, size=f"{attachment.size / 1024 / 1024:.1f}", limit=MAX_IMAGE_BYTES // (1024 * 1024)
            )
        )
    return attachment.url
