"""What survives a restart (buttons, modals, jobs in flight) and where results go when the thread is gone."""

from __future__ import annotations

import discord
import pytest

from bot.discord_ui import texts
from bot.discord_ui.buttons import result_view
from bot.discord_ui.embeds import result_embed
from bot.luma.prices import CREDIT
from bot.store import jobs as store
from tests.e2e.harness import WAIT, BotHarness


async def test_buttons_pressed_after_a_restart_still_work(bot: BotHarness) -> None:
    run = await bot.generate(bot.scene.alice, "a snowy owl")
    result = await bot.result(run)
    await bot.delivered(run.job_id)
    await bot.restart()
    press = await bot.fake.press_button(
        bot.scene.guild, run.thread_id, bot.scene.bob, result, f"luma:regen:{run.job_id}"
    )
    again = await bot.accepted(press, channel=run.thread_id)
    await bot.result(again.job_id, channel=run.thread_id)
    press = await bot.fake.press_button(
        bot.scene.guild, run.thread_id, bot.scene.bob, result, f"luma:extend:{run.job_id}"
    )
    modal = await press.wait_modal(WAIT)
    submit = await bot.fake.submit_modal(
        bot.scene.guild, run.thread_id, bot.scene.bob, modal["custom_id"], {"prompt": "it takes off"}
    )
    extension = await bot.accepted(submit, channel=run.thread_id)
    await bot.result(extension.job_id, channel=run.thread_id)
    assert (await bot.job(extension.job_id)).parent_id == run.job_id


async def test_a_modal_opened_before_a_restart_is_submitted_after_it(bot: BotHarness) -> None:
    run = await bot.generate(bot.scene.alice, "a paper plane")
    result = await bot.result(run)
    menu = await bot.fake.invoke_message_context_menu(
        bot.scene.guild, run.thread_id, bot.scene.alice, "Extend video", result
    )
    modal = await menu.wait_modal(WAIT)
    await bot.restart()
    submit = await bot.fake.submit_modal(
        bot.scene.guild, run.thread_id, bot.scene.alice, modal["custom_id"], {"prompt": "it loops around"}
    )
    extension = await bot.accepted(submit, channel=run.thread_id)
    await bot.result(extension.job_id, channel=run.thread_id)


@pytest.mark.parametrize("provider_options", [{"manual": True}])
async def test_a_job_finishing_while_the_bot_is_down_is_delivered_after_the_restart(bot: BotHarness) -> None:
    run = await bot.generate(bot.scene.alice, "a tide coming in")
    await bot.provider.wait_until(lambda: bot.provider.count("poll") >= 1, WAIT)
    await bot.stop()
    [task_id] = bot.provider.tasks
    bot.provider.finish(task_id)
    await bot.start()
    result = await bot.result(run)
    assert result.channel_id == run.thread_id
    assert (await bot.delivered(run.job_id)).result_message_id == result.id


@pytest.mark.parametrize("provider_options", [{"manual": True}])
async def test_a_result_already_posted_is_not_posted_twice(bot: BotHarness) -> None:
    run = await bot.generate(bot.scene.alice, "a candle flickering")
    await bot.provider.wait_until(lambda: len(bot.provider.tasks) == 1, WAIT)
    # What a crash between posting the result and recording it leaves behind: the attempt noted, the post,
    # but no record of it.
    earlier = await _post_without_record(bot, run.job_id, run.thread_id)
    [task_id] = bot.provider.tasks
    bot.provider.finish(task_id)
    delivered = await bot.delivered(run.job_id)
    assert delivered.result_message_id == earlier.id
    posts = [m for m in bot.fake.messages(run.thread_id) if m.author.id == bot.fake.bot_user.id]
    assert [m.id for m in posts] == [earlier.id]


@pytest.mark.parametrize("provider_options", [{"manual": True}])
async def test_a_result_posted_before_a_busy_thread_moved_on_is_not_posted_twice(bot: BotHarness) -> None:
    """Issue 13.2: more than 50 messages between the post and the restart must not hide the post."""
    run = await bot.generate(bot.scene.alice, "a candle in a crowded room")
    await bot.provider.wait_until(lambda: len(bot.provider.tasks) == 1, WAIT)
    earlier = await _post_without_record(bot, run.job_id, run.thread_id)
    thread = bot.fake.world.channels[run.thread_id]
    for i in range(120):  # members chat on; Discord's nonce memory has long forgotten the post
        await bot.fake.post_message(bot.scene.guild, thread, bot.scene.bob, f"nice {i}")
    bot.fake.world.nonce_window = 0
    [task_id] = bot.provider.tasks
    bot.provider.finish(task_id)
    delivered = await bot.delivered(run.job_id)
    assert delivered.result_message_id == earlier.id
    assert [m.id for m in bot.result_posts(run.job_id)] == [earlier.id]


async def _post_without_record(bot: BotHarness, job_id: int, thread_id: int) -> discord.Message:
    job = await bot.job(job_id)
    await bot.db(store.note_post_attempt(job_id))
    thread = bot.bot.get_partial_messageable(thread_id, guild_id=bot.scene.guild.id)
    return await thread.send(
        f"<@{bot.scene.alice.id}>",
        embed=result_embed(job),
        view=result_view(job),
        allowed_mentions=discord.AllowedMentions.none(),
    )


@pytest.mark.parametrize("provider_options", [{"manual": True}])
async def test_when_the_thread_is_gone_the_result_goes_to_the_channel(bot: BotHarness) -> None:
    run = await bot.generate(bot.scene.alice, "a sailing ship")
    await bot.provider.wait_until(lambda: len(bot.provider.tasks) == 1, WAIT)
    bot.fake.delete_channel(run.thread_id)
    [task_id] = bot.provider.tasks
    bot.provider.finish(task_id)
    result = await bot.result(run.job_id, channel=bot.scene.channel.id)
    assert result.mentions == [bot.scene.alice.id]
    assert (await bot.delivered(run.job_id)).result_message_id == result.id


@pytest.mark.parametrize("provider_options", [{"manual": True}])
async def test_when_the_bot_may_not_post_anywhere_the_result_goes_to_a_dm(bot: BotHarness) -> None:
    run = await bot.generate(bot.scene.alice, "a lantern festival")
    await bot.provider.wait_until(lambda: len(bot.provider.tasks) == 1, WAIT)
    bot.fake.forbid_channel(bot.scene.channel)
    [task_id] = bot.provider.tasks
    bot.provider.finish(task_id)
    dm = bot.fake.dm_channel(bot.scene.alice)
    result = await bot.result(run.job_id, channel=dm.id)
    assert result.content.startswith(texts.dm_result_prefix("Luma Lab"))
    await bot.delivered(run.job_id)
    assert (await bot.quota(bot.scene.alice)).used == CREDIT
