"""Bad input gets one clear ephemeral sentence; nothing reaches the provider and nothing is charged."""

from __future__ import annotations

from typing import Any

import pytest

from bot.discord_ui import texts
from tests.e2e.harness import BotHarness

MiB = 1024 * 1024


def _attachment(bot: BotHarness, kind: str) -> dict[str, Any]:
    if kind == "video":
        return bot.fake.make_attachment("clip.mp4", "video/mp4", 2 * MiB)
    return bot.fake.make_attachment("huge.png", "image/png", 11 * MiB)


CASES = [
    (
        "whitespace prompt",
        "generate",
        {"prompt": "   \n\t "},
        "The prompt is empty: describe the video you want.",
    ),
    (
        "prompt over the limit",
        "generate",
        {"prompt": "x" * 5001},
        "The prompt is too long: 5001 characters, and the limit is 5000.",
    ),
    (
        "non-image attachment",
        "generate",
        {"prompt": "ok", "start_image": "video"},
        "The start frame must be a png, jpeg or webp image.",
    ),
    (
        "oversized attachment",
        "generate",
        {"prompt": "ok", "end_image": "huge"},
        "The end frame is 11.0 MiB; the limit is 10 MiB.",
    ),
    (
        "file URL",
        "generate",
        {"prompt": "ok", "start_image_url": "file:///etc/passwd"},
        "The image link must start with http:// or https://.",
    ),
    (
        "private address",
        "generate",
        {"prompt": "ok", "end_image_url": "http://192.168.1.20/frame.png"},
        "The image link points to a private network address; use a public link.",
    ),
    (
        "loopback address",
        "generate",
        {"prompt": "ok", "start_image_url": "http://127.0.0.1:8080/a.png"},
        "The image link points to this machine (a loopback address); use a public link.",
    ),
    (
        "unknown video id",
        "extend",
        {"video": "abcdef123456", "prompt": "more"},
        "I don't know a video with the id `abcdef123456`: use the id or link of one of my videos.",
    ),
    (
        "link to a message that is not a result",
        "extend",
        {"video": "https://discord.com/channels/1/22222222222222222/33333333333333333", "prompt": "more"},
        texts.NOT_A_RESULT_HERE,
    ),
    (
        "frame given twice",
        "extend",
        {
            "video": "abcdef123456",
            "prompt": "x",
            "end_image": "huge",
            "end_image_url": "https://example.com/a.png",
        },
        "Give the end frame as an attachment or as a link, not both.",
    ),
]


@pytest.mark.parametrize(("case", "subcommand", "options", "sentence"), CASES, ids=[c[0] for c in CASES])
async def test_bad_input_is_refused_with_a_sentence(
    bot: BotHarness, case: str, subcommand: str, options: dict[str, Any], sentence: str
) -> None:
    options = {k: _attachment(bot, v) if k.endswith("_image") else v for k, v in options.items()}
    answer = await bot.answer(await bot.slash(bot.scene.alice, subcommand, options))
    assert answer.ephemeral and answer.content == sentence
    assert bot.creates() == []
    assert [m for m in bot.fake.messages(bot.scene.channel) if not m.ephemeral] == []
    quota = await bot.quota(bot.scene.alice)
    assert (quota.used, quota.held) == (0, 0)


async def test_nothing_is_answered_publicly_when_the_bot_cannot_post(bot: BotHarness) -> None:
    bot.fake.forbid_channel(bot.scene.channel)
    await bot.fake.sync()
    answer = await bot.answer(await bot.slash(bot.scene.alice, "generate", {"prompt": "a castle"}))
    assert answer.content == texts.CANNOT_POST
    assert bot.creates() == []
    assert (await bot.quota(bot.scene.alice)).held == 0
