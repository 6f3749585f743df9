"""Discord misbehaving while jobs run: rate limits, server errors, a dropped gateway, a deleted status
message. None of it may lose a delivery or make one twice."""

from __future__ import annotations

from bot.luma.prices import CREDIT
from bot.store.models import JobState
from tests.e2e.harness import WAIT, BotHarness


async def test_rate_limited_result_post_is_retried_and_delivered_once(bot: BotHarness) -> None:
    run = await bot.generate(bot.scene.alice, "a hummingbird in slow motion")
    limited = bot.fake.inject_rest_error("POST", rf"/channels/{run.thread_id}/messages", 429, times=2,
                                         retry_after=0.05)
    await bot.result(run)
    job = await bot.delivered(run.job_id)
    assert limited.hits == 2
    assert job.state == JobState.COMPLETED and len(bot.result_posts(run.job_id)) == 1


async def test_server_errors_on_the_result_post_are_retried_until_it_lands(bot: BotHarness) -> None:
    run = await bot.generate(bot.scene.alice, "rain on a tin roof")
    broken = bot.fake.inject_rest_error("POST", rf"/channels/{run.thread_id}/messages", 503, times=3)
    await bot.result(run)
    await bot.delivered(run.job_id)
    assert broken.hits == 3
    assert len(bot.result_posts(run.job_id)) == 1
    status = await bot.quota(bot.scene.alice)
    assert (status.used, status.held) == (CREDIT, 0)


async def test_a_gateway_drop_mid_job_loses_nothing(bot: BotHarness) -> None:
    bot.provider.manual = True
    run = await bot.generate(bot.scene.alice, "a kite in a storm")
    await bot.provider.wait_for_requests(1, "create")
    await bot.fake.disconnect_gateway(code=4000)
    bot.provider.finish(next(iter(bot.provider.tasks)))
    await bot.result(run)
    await bot.delivered(run.job_id)
    await bot.fake.wait_for(lambda: any(s.resumes for s in bot.fake.sessions), WAIT, "the bot to resume")
    # Commands still work after the reconnect.
    again = await bot.generate(bot.scene.bob, "after the storm")
    await bot.provider.wait_for_requests(2, "create")
    bot.provider.finish(list(bot.provider.tasks)[1])
    await bot.result(again)
    assert len(bot.result_posts(run.job_id)) == 1


async def test_a_deleted_status_message_does_not_stop_the_result(bot: BotHarness) -> None:
    bot.provider.manual = True
    run = await bot.generate(bot.scene.alice, "ink in water")
    await bot.provider.wait_for_requests(1, "create")
    status = bot.fake.world.messages[run.status.id]
    await bot.fake.wait_for(  # the "generating" edit is done, so the next edit is the final one
        lambda: any(f["value"].startswith("🎬 Generating") for e in status.embeds for f in e.get("fields", [])),
        WAIT, "the generating status")
    bot.fake.delete_message(bot.scene.channel, run.status)
    bot.provider.finish(next(iter(bot.provider.tasks)))
    # The thread outlives its starter message in Discord, so the result still goes there.
    await bot.result(run)
    # After recording the delivery the bot tries to mark the (gone) status message done: wait for that try.
    status_path = f"/channels/{bot.scene.channel.id}/messages/{run.status.id}"
    await bot.fake.wait_for(
        lambda: any(r.method == "PATCH" and r.path == status_path and r.status == 404 for r in bot.fake.requests),
        WAIT, "the final status edit")
    job = await bot.job(run.job_id)
    assert job.state == JobState.COMPLETED and job.delivered_at is not None
    assert len(bot.result_posts(run.job_id)) == 1
