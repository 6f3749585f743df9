"""Extending a video every way a member can ask, and regenerating one."""

from __future__ import annotations

import pytest

from bot.discord_ui import texts
from bot.luma.prices import CREDIT
from tests.e2e.harness import WAIT, BotHarness, Run
from tests.fakes.discord import Member, Message


async def finished_video(
    bot: BotHarness, user: Member, prompt: str = "a hot air balloon", **options
) -> tuple[Run, Message]:
    run = await bot.generate(user, prompt, **options)
    result = await bot.result(run)
    await bot.delivered(run.job_id)
    return run, result


async def extension_result(bot: BotHarness, parent: Run, status: Message) -> tuple[int, Message]:
    """The extension job behind `status` and its result, which must land in the parent's thread."""
    from tests.e2e.harness import job_id_from_footer

    job_id = job_id_from_footer(status)
    assert job_id is not None and job_id != parent.job_id
    result = await bot.result(job_id, channel=parent.thread_id)
    job = await bot.delivered(job_id)
    assert job.parent_id == parent.job_id
    return job_id, result


async def test_extend_by_video_id(bot: BotHarness) -> None:
    parent, _ = await finished_video(bot, bot.scene.alice)
    video_id = (await bot.job(parent.job_id)).video_id
    record = await bot.slash(
        bot.scene.alice, "extend", {"video": video_id, "prompt": "it rises above the clouds"}
    )
    run = await bot.accepted(record)
    result = await bot.result(run)
    child = await bot.delivered(run.job_id)
    assert child.parent_id == parent.job_id
    create = bot.creates()[-1]
    assert (create["action"], create["video_id"], create["prompt"]) == (
        "extend",
        video_id,
        "it rises above the clouds",
    )
    assert "Extends" in str(result.embeds[0]["fields"])


async def test_extend_by_link_to_a_result_message(bot: BotHarness) -> None:
    parent, result = await finished_video(bot, bot.scene.alice)
    link = f"https://discord.com/channels/{bot.scene.guild.id}/{parent.thread_id}/{result.id}"
    record = await bot.slash(bot.scene.bob, "extend", {"video": link, "prompt": "and lands softly"})
    run = await bot.accepted(record)
    await bot.result(run)
    child = await bot.delivered(run.job_id)
    assert (child.parent_id, child.user_id) == (parent.job_id, bot.scene.bob.id)
    assert bot.creates()[-1]["video_id"] == (await bot.job(parent.job_id)).video_id


@pytest.mark.parametrize("provider_options", [{"manual": True}])
async def test_extend_by_video_url(bot: BotHarness) -> None:
    run = await bot.generate(bot.scene.alice, "waves on a beach")
    await bot.provider.wait_until(lambda: len(bot.provider.tasks) == 1, WAIT)
    [task_id] = bot.provider.tasks
    public_url = "https://cdn.lumalabs.example/videos/waves.mp4"
    bot.provider.finish(task_id, video_url=public_url)
    await bot.result(run)
    record = await bot.slash(bot.scene.alice, "extend", {"video": public_url, "prompt": "a surfer appears"})
    child_run = await bot.accepted(record)
    await bot.provider.wait_until(lambda: len(bot.provider.tasks) == 2, WAIT)
    create = bot.creates()[-1]
    # A link to one of our own videos is extended by that video's id (the provider knows it best).
    assert create["action"] == "extend" and create["video_id"] == (await bot.job(run.job_id)).video_id
    assert (await bot.job(child_run.job_id)).parent_id == run.job_id


async def test_reply_to_a_result_extends_it_in_the_same_thread(bot: BotHarness) -> None:
    parent, result = await finished_video(bot, bot.scene.alice)
    reply = await bot.fake.post_message(
        bot.scene.guild, parent.thread_id, bot.scene.bob, "the balloon drifts over the sea", reply_to=result
    )
    status = await bot.status_after(parent.thread_id, reply.id)
    assert status.message_reference["message_id"] == str(reply.id)  # answers the member's reply
    assert status.mentions == []  # without pinging them
    _, child_result = await extension_result(bot, parent, status)
    assert child_result.mentions == [bot.scene.bob.id]
    create = bot.creates()[-1]
    assert (create["action"], create["prompt"]) == ("extend", "the balloon drifts over the sea")


async def test_reply_without_a_ping_gets_a_hint_when_the_bot_cannot_read_it(bot: BotHarness) -> None:
    parent, result = await finished_video(bot, bot.scene.alice)
    reply = await bot.fake.post_message(
        bot.scene.guild,
        parent.thread_id,
        bot.scene.alice,
        "make it rain",
        reply_to=result,
        mention_reply=False,
    )
    hint = await bot.fake.wait_for_message(
        parent.thread_id, author=bot.fake.bot_user, after=reply, timeout=WAIT
    )
    assert hint.content == texts.REPLY_UNREADABLE and hint.mentions == []
    assert len(bot.creates()) == 1


@pytest.mark.parametrize("settings_overrides", [{"discord_message_content": True}])
async def test_with_message_content_replies_without_a_ping_extend_too(bot: BotHarness) -> None:
    parent, result = await finished_video(bot, bot.scene.alice)
    reply = await bot.fake.post_message(
        bot.scene.guild,
        parent.thread_id,
        bot.scene.alice,
        "make it rain",
        reply_to=result,
        mention_reply=False,
    )
    status = await bot.status_after(parent.thread_id, reply.id)
    await extension_result(bot, parent, status)
    assert bot.creates()[-1]["prompt"] == "make it rain"


async def test_context_menu_opens_a_modal_and_extends(bot: BotHarness) -> None:
    parent, result = await finished_video(bot, bot.scene.alice)
    menu = await bot.fake.invoke_message_context_menu(
        bot.scene.guild, parent.thread_id, bot.scene.bob, "Extend video", result
    )
    modal = await menu.wait_modal(WAIT)
    assert modal["custom_id"] == f"luma:extend-modal:{parent.job_id}" and modal["title"] == "Extend video"
    submit = await bot.fake.submit_modal(
        bot.scene.guild, parent.thread_id, bot.scene.bob, modal["custom_id"], {"prompt": "the sun sets"}
    )
    run = await bot.accepted(submit, channel=parent.thread_id)
    _, child_result = await extension_result(bot, parent, run.status)
    assert child_result.mentions == [bot.scene.bob.id]
    assert (await bot.quota(bot.scene.bob)).used == CREDIT


async def test_context_menu_on_other_messages_is_refused(bot: BotHarness) -> None:
    message = await bot.fake.post_message(
        bot.scene.guild, bot.scene.channel, bot.scene.alice, "my holiday video"
    )
    menu = await bot.fake.invoke_message_context_menu(
        bot.scene.guild, bot.scene.channel, bot.scene.alice, "Extend video", message
    )
    answer = await bot.answer(menu)
    assert answer.ephemeral and answer.content == texts.NOT_A_RESULT
    assert bot.creates() == []


async def test_extend_button_opens_a_modal_and_extends(bot: BotHarness) -> None:
    parent, result = await finished_video(bot, bot.scene.alice)
    press = await bot.fake.press_button(
        bot.scene.guild, parent.thread_id, bot.scene.bob, result, f"luma:extend:{parent.job_id}"
    )
    modal = await press.wait_modal(WAIT)
    submit = await bot.fake.submit_modal(
        bot.scene.guild, parent.thread_id, bot.scene.bob, modal["custom_id"], {"prompt": "birds fly past"}
    )
    run = await bot.accepted(submit, channel=parent.thread_id)
    await extension_result(bot, parent, run.status)
    assert bot.creates()[-1]["prompt"] == "birds fly past"


async def test_regenerate_runs_the_same_request_for_the_presser(bot: BotHarness) -> None:
    parent, result = await finished_video(bot, bot.scene.alice, "a neon city", aspect_ratio="21:9", loop=True)
    press = await bot.fake.press_button(
        bot.scene.guild, parent.thread_id, bot.scene.bob, result, f"luma:regen:{parent.job_id}"
    )
    run = await bot.accepted(press, channel=parent.thread_id)
    again = await bot.result(run.job_id, channel=parent.thread_id)
    assert again.mentions == [bot.scene.bob.id]
    first, second = bot.creates()
    assert first == second
    await bot.delivered(run.job_id)
    assert ((await bot.quota(bot.scene.alice)).used, (await bot.quota(bot.scene.bob)).used) == (CREDIT, CREDIT)


async def test_autocomplete_offers_the_callers_recent_videos(bot: BotHarness) -> None:
    first, _ = await finished_video(bot, bot.scene.alice, "a desert road")
    second, _ = await finished_video(bot, bot.scene.alice, "a forest path")
    await finished_video(bot, bot.scene.bob, "bob's own video")
    choices = await bot.fake.autocomplete(
        bot.scene.guild, bot.scene.channel, bot.scene.alice, "luma", "extend", focused="video", value=""
    )
    assert [c["name"] for c in choices] == [
        f"#{second.job_id} · a forest path",
        f"#{first.job_id} · a desert road",
    ]
    assert choices[0]["value"] == (await bot.job(second.job_id)).video_id
    narrowed = await bot.fake.autocomplete(
        bot.scene.guild, bot.scene.channel, bot.scene.alice, "luma", "extend", focused="video", value="desert"
    )
    assert [c["name"] for c in narrowed] == [f"#{first.job_id} · a desert road"]
