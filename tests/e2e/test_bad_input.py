"""Bad input gets one clear ephemeral sentence; nothing reaches the provider and nothing is charged."""

from __future__ import annotations

from typing import Any

import pytest

from bot.discord_ui import texts
from tests.e2e.harness import WAIT, BotHarness

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


# Prompts that render as nothing in Discord: zero-width and formatting characters (Cf), exotic spaces and line
# separators (Zs/Zl/Zp), control characters (Cc), Hangul fillers, the braille blank and the combining grapheme
# joiner. Each would be sent to the provider and charged as if it described a video.
INVISIBLE_PROMPTS = {
    "zero-width": "\u200b\u200c\u200d",
    "byte-order mark and word joiner": "\ufeff\u2060\ufeff",
    "hangul fillers": "\u3164\u115f\u1160\uffa0",
    "braille blank and grapheme joiner": "\u2800 \u034f\u2800",
    "mixed with spaces": "\u3000\u200b\u00a0\u2028\u00ad\u180e\u2060",
    "tag characters": "\U000e0020\U000e0041\U000e007f",
}
EMPTY = "The prompt is empty: describe the video you want."


async def _nothing_charged(bot: BotHarness, creates_before: int) -> None:
    assert len(bot.creates()) == creates_before
    for member in (bot.scene.alice, bot.scene.bob):
        quota = await bot.quota(member)
        assert quota.held == 0


@pytest.mark.parametrize("prompt", INVISIBLE_PROMPTS.values(), ids=INVISIBLE_PROMPTS.keys())
async def test_an_invisible_prompt_is_refused_as_empty_by_the_slash_command(
    bot: BotHarness, prompt: str
) -> None:
    answer = await bot.answer(await bot.slash(bot.scene.alice, "generate", {"prompt": prompt}))
    assert answer.ephemeral and answer.content == EMPTY
    assert [m for m in bot.fake.messages(bot.scene.channel) if not m.ephemeral] == []
    await _nothing_charged(bot, 0)


async def _finished_video(bot: BotHarness) -> tuple[Any, Any]:
    run = await bot.generate(bot.scene.alice, "a hot air balloon")
    result = await bot.result(run)
    await bot.delivered(run.job_id)
    return run, result


async def test_an_invisible_prompt_is_refused_as_empty_in_the_extend_modal(bot: BotHarness) -> None:
    parent, result = await _finished_video(bot)
    press = await bot.fake.press_button(
        bot.scene.guild, parent.thread_id, bot.scene.bob, result, f"luma:extend:{parent.job_id}"
    )
    modal = await press.wait_modal(WAIT)
    submit = await bot.fake.submit_modal(
        bot.scene.guild,
        parent.thread_id,
        bot.scene.bob,
        modal["custom_id"],
        {"prompt": INVISIBLE_PROMPTS["mixed with spaces"]},
    )
    answer = await bot.answer(submit)
    assert answer.ephemeral and answer.content == EMPTY
    await _nothing_charged(bot, 1)


async def test_an_invisible_reply_to_a_result_is_refused_as_empty(bot: BotHarness) -> None:
    parent, result = await _finished_video(bot)
    reply = await bot.fake.post_message(
        bot.scene.guild, parent.thread_id, bot.scene.bob, INVISIBLE_PROMPTS["hangul fillers"], reply_to=result
    )
    answer = await bot.fake.wait_for_message(
        parent.thread_id, author=bot.fake.bot_user, after=reply, timeout=WAIT
    )
    assert answer.content == EMPTY and answer.mentions == []
    await _nothing_charged(bot, 1)
