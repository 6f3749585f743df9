"""How jobs look in Discord: escaped prompts, thread names, status lines, result and failure embeds."""

from __future__ import annotations

from datetime import UTC, datetime

import discord
import pytest

from bot.discord_ui import embeds, texts
from bot.store.models import FailureKind, Job, JobAction, JobState

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
# Job objects need Tortoise's model registry (foreign-key attributes) even when nothing is saved.
pytestmark = pytest.mark.usefixtures("sqlite_db")


def job(**fields) -> Job:
    values = dict(
        id=7,
        guild_id=1,
        user_id=42,
        channel_id=5,
        action=JobAction.GENERATE,
        prompt="a cat",
        options={},
        provider="acedatacloud",
        state=JobState.QUEUED,
        callback_secret="s",
        deadline_at=NOW,
    )
    values.update(fields)
    return Job(**values)


async def test_prompts_are_shown_without_markdown_or_mentions() -> None:
    shown = embeds.show_prompt("**bold** _it_ @everyone @here <@123456789012345678> <@&123456789012345678>")
    assert "\\*\\*bold\\*\\*" in shown and "\\_it\\_" in shown
    assert "@everyone" not in shown and "@here" not in shown
    assert "<@123456789012345678>" not in shown and "<@&123456789012345678>" not in shown


async def test_long_prompts_are_cut_for_display() -> None:
    shown = embeds.show_prompt("x" * 5000)
    assert len(shown) <= embeds.PROMPT_DISPLAY_LIMIT and shown.endswith("…")


@pytest.mark.parametrize(
    ("prompt", "name"),
    [
        ("a  cat\non a\tboat", "a cat on a boat"),
        ("**bold** `code` @everyone", "bold code everyone"),
        ("   \n ", texts.DEFAULT_THREAD_NAME),
        ("***", texts.DEFAULT_THREAD_NAME),
    ],
)
async def test_thread_names_are_one_clean_line(prompt: str, name: str) -> None:
    assert embeds.thread_name(prompt) == name


async def test_thread_names_fit_discords_limit() -> None:
    name = embeds.thread_name("word " * 100)
    assert len(name) == embeds.THREAD_NAME_LIMIT and name.endswith("…")


async def test_status_line_follows_the_job() -> None:
    assert embeds.status_line(job(), position=3) == "⏳ Queued: position 3"
    assert embeds.status_line(job(), position=1) == "⏳ Queued: next in line"
    running = job(state=JobState.RUNNING, submitted_at=NOW)
    assert embeds.status_line(running) == f"🎬 Generating, started <t:{int(NOW.timestamp())}:R>"
    assert "out of credit" in embeds.status_line(job(), held_up=FailureKind.BALANCE)
    done = job(state=JobState.COMPLETED, finished_at=NOW)
    assert embeds.status_line(done, result_link="https://x/y").endswith("[see the video](https://x/y)")
    failed = job(state=JobState.FAILED, failure_kind=FailureKind.TIMEOUT)
    assert embeds.status_line(failed) == "❌ Failed: " + texts.failure(FailureKind.TIMEOUT)


async def test_status_embed_shows_prompt_options_requester_and_job() -> None:
    embed = embeds.status_embed(job(options={"aspect_ratio": "9:16", "loop": True, "start_image_url": "u"}))
    assert embed.description == "a cat"
    assert embed.fields[0].value == "aspect ratio 9:16 · loop on · enhancement on · start frame"
    assert embed.fields[1].value == "<@42>"
    assert embed.footer.text == "Job #7"


async def test_extension_status_names_what_it_extends() -> None:
    embed = embeds.status_embed(job(action=JobAction.EXTEND, parent_id=3, options={"end_image_url": "u"}))
    assert embed.title == texts.STATUS_TITLE_EXTEND
    assert embed.fields[0].value == "extends job #3 · end frame"


async def test_result_embed_has_thumbnail_size_and_ids() -> None:
    done = job(
        state=JobState.COMPLETED,
        video_id="vid-1",
        video_url="https://cdn/v.mp4",
        thumbnail_url="https://cdn/t.jpg",
        video_width=1360,
        video_height=752,
        parent_id=3,
    )
    embed = embeds.result_embed(done)
    assert embed.url == "https://cdn/v.mp4" and embed.thumbnail.url == "https://cdn/t.jpg"
    assert [f.value for f in embed.fields] == [
        "aspect ratio 16:9 · loop off · enhancement on", "1360×752", "job #7 · video `vid-1`", "job #3"
    ]
    assert embed.footer.text == texts.job_footer(7)


async def test_every_failure_kind_has_its_own_sentence_and_mentions_the_refund() -> None:
    sentences = {texts.failure(kind) for kind in FailureKind}
    assert len(sentences) == len(FailureKind)
    assert all(s.endswith("Its credits were given back.") for s in sentences)


async def test_only_retryable_failures_offer_a_retry() -> None:
    assert not embeds.can_retry(FailureKind.MODERATION) and not embeds.can_retry(FailureKind.INVALID)
    assert embeds.can_retry(FailureKind.INTERRUPTED) and embeds.can_retry(FailureKind.TIMEOUT)


async def test_quota_answer_uses_discord_timestamps() -> None:
    text = texts.quota(used=2000, remaining=500, held=1500, limit=4000, period="day", resets_at=NOW)
    stamp = int(NOW.timestamp())
    assert text == (
        "You have used **2** of **4** credits this day; **0.5** left, and **1.5** held by videos in progress.\n"
        f"Your quota resets <t:{stamp}:R> (<t:{stamp}:f>)."
    )


async def test_embeds_fit_discords_limits() -> None:
    long = job(prompt="p" * 5000, state=JobState.COMPLETED, video_url="https://v/" + "a" * 3000)
    for embed in (embeds.status_embed(long), embeds.result_embed(long), embeds.failure_embed(long)):
        assert len(embed.description or "") <= 4096
        assert len(embed) <= 6000
        assert isinstance(embed, discord.Embed)
    assert embeds.result_embed(long).url is None  # too long to be an embed URL
