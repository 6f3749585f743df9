"""Quotas and failures: refusals before anything is sent, refunds when no video comes, specific sentences."""

from __future__ import annotations

import dataclasses
import logging
from datetime import timedelta

import pytest

from bot.discord_ui import texts
from bot.luma.prices import CREDIT
from bot.store.models import FailureKind
from tests.e2e.harness import FAST_ENGINE, WAIT, BotHarness


@pytest.mark.parametrize("settings_overrides", [{"quota_default_limit": 1}])
async def test_exhausted_quota_is_refused_and_nothing_reaches_the_provider(bot: BotHarness) -> None:
    run = await bot.generate(bot.scene.alice, "a first video")
    await bot.result(run)
    await bot.delivered(run.job_id)
    public = lambda: [m for m in bot.fake.messages(bot.scene.channel) if not m.ephemeral]  # noqa: E731
    posted_before = len(public())
    record = await bot.slash(bot.scene.alice, "generate", {"prompt": "one too many"})
    answer = await bot.answer(record)
    assert answer.ephemeral
    assert answer.content.startswith("You've used all 1 credits for this day. Your quota resets <t:")
    assert len(bot.creates()) == 1
    assert len(public()) == posted_before
    quota = await bot.quota(bot.scene.alice)
    assert (quota.used, quota.held) == (CREDIT, 0)


async def test_a_failed_video_gives_the_unit_back_with_a_sentence(bot: BotHarness) -> None:
    run = await bot.generate(bot.scene.alice, "[fail] a glass bridge")
    failure = await bot.result(run)
    assert failure.content == f"<@{bot.scene.alice.id}> Sorry, no video: {texts.failure(FailureKind.FAILED)}"
    assert [b["custom_id"] for b in failure.buttons()] == [f"luma:retry:{run.job_id}"]
    job = await bot.delivered(run.job_id)
    assert job.failure_kind == FailureKind.FAILED
    quota = await bot.quota(bot.scene.alice)
    assert (quota.used, quota.held) == (0, 0)
    status = bot.fake.get_message(run.status.id)
    assert status.embeds[0]["fields"][2]["value"].startswith("❌ Failed:")


async def test_a_moderation_refusal_is_explained_and_refunded(bot: BotHarness) -> None:
    run = await bot.generate(bot.scene.alice, "[moderate] something the provider refuses")
    failure = await bot.result(run)
    assert "moderation refused this prompt" in failure.content
    assert failure.buttons() == []  # the same prompt would be refused again
    await bot.delivered(run.job_id)
    assert (await bot.quota(bot.scene.alice)).used == 0


async def test_only_the_requester_may_retry_a_failed_job(bot: BotHarness) -> None:
    run = await bot.generate(bot.scene.alice, "[fail] a sandcastle")
    failure = await bot.result(run)
    press = await bot.fake.press_button(
        bot.scene.guild, run.thread_id, bot.scene.bob, failure, f"luma:retry:{run.job_id}"
    )
    assert (await bot.answer(press)).content == texts.RETRY_ONLY_REQUESTER
    assert len(bot.creates()) == 1
    press = await bot.fake.press_button(
        bot.scene.guild, run.thread_id, bot.scene.alice, failure, f"luma:retry:{run.job_id}"
    )
    retry = await bot.accepted(press, channel=run.thread_id)
    assert retry.job_id != run.job_id
    await bot.provider.wait_until(lambda: len(bot.creates()) == 2, WAIT)


async def test_replying_to_a_failure_is_refused_without_charge(bot: BotHarness) -> None:
    run = await bot.generate(bot.scene.alice, "[fail] a comet")
    failure = await bot.result(run)
    await bot.delivered(run.job_id)
    reply = await bot.fake.post_message(
        bot.scene.guild, run.thread_id, bot.scene.alice, "longer", reply_to=failure
    )
    answer = await bot.fake.wait_for_message(
        run.thread_id, author=bot.fake.bot_user, after=reply, timeout=WAIT
    )
    assert answer.content == "That message has no finished video to extend."
    assert len(bot.creates()) == 1
    assert (await bot.quota(bot.scene.alice)).held == 0


async def test_balance_used_up_holds_the_queue_and_tells_the_operator_once(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    bot.provider.set_balance_exhausted()
    with caplog.at_level(logging.ERROR):
        run = await bot.generate(bot.scene.alice, "a waterfall")

        def waiting() -> bool:
            fields = bot.fake.get_message(run.status.id).embeds[0]["fields"]
            return "out of credit" in fields[2]["value"]

        await bot.fake.wait_for(waiting, WAIT, "the status message to say the provider is out of credit")
        second = await bot.generate(bot.scene.bob, "a river")
        await bot.fake.wait_for(
            lambda: "out of credit" in bot.fake.get_message(second.status.id).embeds[0]["fields"][2]["value"],
            WAIT,
            "the second status message to say so too",
        )
    balance_lines = [
        r for r in caplog.records if r.name == "bot.discord_ui.delivery" and "balance" in r.getMessage()
    ]
    assert len(balance_lines) == 1
    bot.provider.set_balance_exhausted(False)
    await bot.result(run)
    await bot.result(second)


async def test_a_job_past_its_deadline_fails_with_its_unit_back(harness: BotHarness) -> None:
    harness.engine_config = dataclasses.replace(FAST_ENGINE, deadline=timedelta(seconds=0.5))
    harness.provider.manual = True  # the task never finishes
    await harness.start()
    run = await harness.generate(harness.scene.alice, "a slow sunrise")
    failure = await harness.result(run)
    assert texts.failure(FailureKind.TIMEOUT) in failure.content
    await harness.delivered(run.job_id)
    assert (await harness.quota(harness.scene.alice)).held == 0
