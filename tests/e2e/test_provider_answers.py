"""Provider answers the bot cannot use: each ends only the job it concerns, never resends a paid create, and
leaves every other job to go on."""

from __future__ import annotations

import logging

import pytest

from bot.discord_ui import texts
from bot.luma.prices import CREDIT
from bot.store.models import FailureKind, JobState
from tests.e2e.harness import WAIT, BotHarness
from tests.fakes.luma_provider import ace_error_body


@pytest.mark.parametrize("provider_options", [{"manual": True}])
async def test_a_record_the_bot_cannot_store_fails_only_its_own_job(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    bad = await bot.generate(bot.scene.alice, "a video whose record is broken")
    good = await bot.generate(bot.scene.bob, "an ordinary video")
    await bot.provider.wait_until(lambda: len(bot.provider.tasks) == 2, WAIT)
    bad_task, good_task = bot.provider.tasks
    # Both finish before the next poll, so one batch answer carries the bad record and the good one.
    with caplog.at_level(logging.WARNING):
        bot.provider.finish(bad_task, video_id="v" * 200)  # longer than any id column holds
        bot.provider.finish(good_task)

        result = await bot.result(good)
        delivered = await bot.delivered(good.job_id)
        assert delivered.state == JobState.COMPLETED and result.attachments[0]["content_type"] == "video/mp4"

        failure = await bot.result(bad)
        failed = await bot.delivered(bad.job_id)
    assert failure.content == texts.failure_message(f"<@{bot.scene.alice.id}>", FailureKind.FAILED)
    assert failed.state == JobState.FAILED and failed.video_id is None
    assert "video_id" in (failed.failure_reason or "")
    alice = await bot.quota(bot.scene.alice)
    assert (alice.used, alice.held) == (0, 0)  # the unit came back
    assert (await bot.quota(bot.scene.bob)).used == CREDIT
    logged = [r.getMessage() for r in caplog.records if f"job {bad.job_id}:" in r.getMessage()]
    assert any("video_id" in line for line in logged), logged
    assert not [r for r in caplog.records if "engine loop" in r.getMessage()]  # no loop crashed


@pytest.mark.parametrize("code", ["api_error", "timeout"])
async def test_a_create_answered_200_with_a_server_error_is_not_sent_again(
    bot: BotHarness, code: str
) -> None:
    # AceDataCloud answers some server errors with HTTP 200 and `success: false`: the task may exist.
    bot.provider.inject(200, ace_error_body(code, "upstream trouble", success=False), path="create")
    run = await bot.generate(bot.scene.alice, "a paper boat on a river")
    failure = await bot.result(run)
    job = await bot.delivered(run.job_id)
    # The member hears the truth: it may or may not have started, it was not resent, nothing was charged.
    assert failure.content == texts.failure_message(
        f"<@{bot.scene.alice.id}>", FailureKind.UNCONFIRMED, job.failure_reason
    )
    assert "may or may not have started" in failure.content and "restarted" not in failure.content
    assert job.failure_kind == FailureKind.UNCONFIRMED
    # Recorded as failed and delivered: nothing can send it again, so one create is all there ever is.
    assert bot.provider.count("create") == 1
    quota = await bot.quota(bot.scene.alice)
    assert (quota.used, quota.held) == (0, 0)
