"""Pure pieces of the Discord layer: button and modal custom_ids, message links, attachments, errors."""

from __future__ import annotations

import discord
import pytest
from discord import app_commands

from bot.discord_ui import errors, flow, modals, texts
from bot.discord_ui.attachments import MAX_IMAGE_BYTES, frame_url
from bot.discord_ui.buttons import DYNAMIC_ITEMS, JOB_BUTTON, ExtendButton, RegenerateButton, RetryButton
from bot.discord_ui.permissions import BOT_PERMISSIONS, invite_url, missing_to_post
from bot.luma.validation import InvalidInput


@pytest.mark.parametrize(
    ("cls", "custom_id"),
    [
        (ExtendButton, "luma:extend:123"),
        (RegenerateButton, "luma:regen:123"),
        (RetryButton, "luma:retry:123"),
    ],
)
async def test_button_custom_ids_carry_the_job_id(cls, custom_id: str) -> None:
    button = cls(123)
    assert button.item.custom_id == custom_id
    match = cls.__discord_ui_compiled_template__.fullmatch(custom_id)
    assert match is not None and int(match["job_id"]) == 123
    assert JOB_BUTTON.fullmatch(custom_id).group(1) == "123"
    # Discord's limit for custom ids, even for the largest snowflake-sized job id.
    assert len(cls(2**63 - 1).item.custom_id) <= 100


async def test_dynamic_items_do_not_overlap() -> None:
    ids = ["luma:extend:1", "luma:regen:1", "luma:retry:1", "luma:extend-modal:1"]
    for custom_id in ids:
        matching = [c for c in DYNAMIC_ITEMS if c.__discord_ui_compiled_template__.fullmatch(custom_id)]
        assert len(matching) == (0 if "modal" in custom_id else 1), custom_id


async def test_extend_modal_carries_the_job_id_and_is_not_kept_in_memory() -> None:
    modal = modals.extend_modal(55)
    assert modal.custom_id == "luma:extend-modal:55" and modal.is_finished()
    payload = modal.to_dict()
    assert payload["title"] == texts.MODAL_TITLE and len(payload["title"]) <= 45
    label = payload["components"][0]
    assert label["type"] == 18 and label["component"]["custom_id"] == modals.PROMPT_INPUT_ID
    assert label["component"]["max_length"] == 4000 and label["component"]["required"] is True


@pytest.mark.parametrize(
    "components",
    [
        [{"type": 18, "id": 1, "component": {"type": 4, "id": 2, "custom_id": "prompt", "value": "zoom"}}],
        [{"type": 1, "id": 1, "components": [{"type": 4, "id": 2, "custom_id": "prompt", "value": "zoom"}]}],
    ],
)
def test_modal_values_are_read_from_labels_and_rows(components) -> None:
    assert modals.submitted_value(components) == "zoom"
    assert modals.submitted_value(components, "other") == ""


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("https://discord.com/channels/1/2/3", (1, 2, 3)),
        ("https://ptb.discord.com/channels/11/22/33/", (11, 22, 33)),
        ("https://discordapp.com/channels/@me/22/33", (None, 22, 33)),
        (" https://canary.discord.com/channels/1/2/3 ", (1, 2, 3)),
        ("https://discord.com/channels/1/2", None),
        ("https://cdn.discordapp.com/attachments/1/2/video.mp4", None),
        ("abcdef123456", None),
    ],
)
def test_message_links_are_recognised(text: str, parsed) -> None:
    assert flow.parse_message_link(text) == parsed


def test_the_bots_mention_is_stripped_from_replies() -> None:
    assert flow.strip_bot_mention("<@99> make it rain", 99) == "make it rain"
    assert flow.strip_bot_mention("make <@!99> it rain <@100>", 99) == "make  it rain <@100>"


class _Attachment:
    def __init__(self, content_type: str | None, size: int) -> None:
        self.content_type, self.size, self.url = (
            content_type,
            size,
            "https://cdn.discordapp.com/attachments/1/2/f",
        )


@pytest.mark.parametrize(
    "content_type", ["image/png", "image/jpeg", "image/webp", "image/PNG; charset=binary"]
)
def test_image_attachments_become_their_cdn_url(content_type: str) -> None:
    assert frame_url(_Attachment(content_type, 1000), None, "start frame") == _Attachment(None, 0).url


@pytest.mark.parametrize("content_type", ["image/gif", "video/mp4", "text/plain", None])
def test_other_attachments_are_refused(content_type) -> None:
    with pytest.raises(InvalidInput, match="must be a png, jpeg or webp image"):
        frame_url(_Attachment(content_type, 1000), None, "start frame")


def test_oversized_images_are_refused() -> None:
    assert frame_url(_Attachment("image/png", MAX_IMAGE_BYTES), None, "end frame")
    with pytest.raises(InvalidInput, match="the limit is 10 MiB"):
        frame_url(_Attachment("image/png", MAX_IMAGE_BYTES + 1), None, "end frame")


def test_a_frame_is_an_attachment_or_a_link_not_both() -> None:
    assert frame_url(None, "https://example.com/a.png", "end frame") == "https://example.com/a.png"
    assert frame_url(None, None, "end frame") is None
    with pytest.raises(InvalidInput, match="not both"):
        frame_url(_Attachment("image/png", 10), "https://example.com/a.png", "end frame")


def test_the_invite_asks_for_exactly_what_the_bot_uses() -> None:
    assert BOT_PERMISSIONS == discord.Permissions(
        view_channel=True,
        send_messages=True,
        send_messages_in_threads=True,
        create_public_threads=True,
        embed_links=True,
        attach_files=True,
            read_message_history=True,
    )
    url = invite_url(1234)
    assert "client_id=1234" in url and f"permissions={BOT_PERMISSIONS.value}" in url
    assert "scope=bot+applications.commands" in url


def test_posting_needs_send_and_embed_permissions() -> None:
    assert missing_to_post(BOT_PERMISSIONS, in_thread=False) == []
    assert missing_to_post(discord.Permissions(view_channel=True, send_messages=True), in_thread=True) == [
        "embed_links",
        "send_messages_in_threads",
    ]


@pytest.mark.parametrize(
    ("error", "sentence"),
    [
        (InvalidInput("The prompt is empty."), "The prompt is empty."),
        (app_commands.NoPrivateMessage(), texts.GUILD_ONLY),
        (app_commands.MissingPermissions(["manage_guild"]), texts.NEEDS_MANAGE_GUILD),
        (errors.CannotPost(["send_messages"]), texts.CANNOT_POST),
    ],
)
def test_errors_become_sentences(error, sentence) -> None:
    assert errors.describe(error) == (sentence, True)


def test_invoke_errors_are_unwrapped() -> None:
    inner = InvalidInput("Nope.")
    wrapped = app_commands.CommandInvokeError.__new__(app_commands.CommandInvokeError)
    wrapped.original = inner
    assert errors.describe(wrapped) == ("Nope.", True)


def test_unexpected_errors_get_a_reference_and_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    sentence = errors.log_and_describe(ValueError("boom"), what="command /luma generate", user_id=5, job_id=9)
    assert sentence.startswith("Something went wrong on my side (ref `")
    [record] = [r for r in caplog.records if r.name == "bot.discord_ui.errors"]
    assert "job 9" in record.getMessage() and record.exc_info is not None


def test_errors_while_shutting_down_say_so() -> None:
    assert errors.describe(RuntimeError("the bot is shutting down"), shutting_down=True) == (
        texts.SHUTTING_DOWN,
        True,
    )
