"""Result videos as members see them: attached so they play inline, re-encoded to fit the server's upload
limit, a thumbnail always, the link when nothing else works, and the Original and Delete buttons."""

from __future__ import annotations

from datetime import timedelta

import aiohttp
import pytest

from bot.discord_ui import texts
from bot.luma.prices import CREDIT
from bot.store.models import Job, JobState, LedgerState, QuotaEntry
from tests.e2e.harness import WAIT, BotHarness, Run
from tests.fakes.discord import Message, Permission
from tests.fakes.media import decodes, padded_mp4

MiB = 1024 * 1024
TOO_LARGE = {"message": "Request entity too large", "code": 40005}


async def finished(bot: BotHarness, prompt: str = "a paper boat on a river", data: bytes | None = None):
    """A job whose task finishes (serving `data` if given) and its result post, once recorded."""
    run = await bot.generate(bot.scene.alice, prompt)
    await bot.provider.wait_until(lambda: len(bot.provider.tasks) >= 1, WAIT)
    task_id = list(bot.provider.tasks)[-1]
    if data is not None:
        bot.provider.set_video(task_id, data)
    bot.provider.finish(task_id)
    result = await bot.result(run)
    job = await bot.delivered(run.job_id)
    return run, task_id, result, job


async def ledger(job_id: int) -> list[str]:
    return [e.state for e in await QuotaEntry.filter(job_id=job_id)]


async def set_finished(job_id: int, when) -> None:
    await Job.filter(id=job_id).update(finished_at=when)


def video_of(message: Message) -> bytes:
    [video] = [f for f in message.files if f.filename.endswith(".mp4")]
    return video.data


manual = pytest.mark.parametrize("provider_options", [{"manual": True}])


@manual
async def test_a_small_video_is_attached_with_the_providers_bytes(bot: BotHarness) -> None:
    run, task_id, result, job = await finished(bot)
    assert [(a["filename"], a["content_type"]) for a in result.attachments] == [
        (f"luma-{job.id}.mp4", "video/mp4")
    ]
    assert video_of(result) == bot.provider.video_of(task_id)
    assert result.content == f"<@{bot.scene.alice.id}> your video is ready."
    assert result.mentions == [bot.scene.alice.id]
    assert result.embeds[0]["thumbnail"]["url"] == job.thumbnail_url  # the provider's own
    quota = await bot.quota(bot.scene.alice)
    assert (quota.used, quota.held) == (CREDIT, 0)


@manual
async def test_a_video_over_the_upload_limit_is_reencoded_below_it(bot: BotHarness) -> None:
    original = padded_mp4(11 * MiB)
    run, _, result, job = await finished(bot, data=original)
    data = video_of(result)
    assert len(data) <= 10 * MiB and data != original
    duration, width, height = decodes(data)
    assert duration == pytest.approx(2.0, abs=0.2) and (width, height) == (160, 90)
    assert "re-encoded to fit the 10 MB upload limit" in result.content
    assert job.state == JobState.COMPLETED


@manual
async def test_a_boosted_server_takes_the_original_up_to_its_own_limit(bot: BotHarness) -> None:
    bot.fake.set_premium_tier(bot.scene.guild, 2)  # 50 MiB
    await bot.fake.wait_for(lambda: bot.bot.get_guild(bot.scene.guild.id).premium_tier == 2, WAIT)
    original = padded_mp4(11 * MiB)
    _, _, result, _ = await finished(bot, data=original)
    assert video_of(result) == original


@manual
async def test_a_413_falls_back_to_a_smaller_copy(bot: BotHarness) -> None:
    run = await bot.generate(bot.scene.alice, "a kite over a beach")
    refused = bot.fake.inject_rest_error("POST", rf"/channels/{run.thread_id}/messages", 413, body=TOO_LARGE)
    await bot.provider.wait_until(lambda: len(bot.provider.tasks) == 1, WAIT)  # the create may still be on its way
    [task_id] = bot.provider.tasks
    bot.provider.set_video(task_id, padded_mp4(5 * MiB))  # under the limit the bot knows, yet refused
    bot.provider.finish(task_id)
    result = await bot.result(run)
    await bot.delivered(run.job_id)
    assert refused.hits == 1
    original = bot.provider.video_of(task_id)
    data = video_of(result)
    assert len(data) <= len(original) // 2 and decodes(data)[0] > 1.5
    assert "re-encoded" in result.content
    assert len(bot.result_posts(run.job_id)) == 1


@manual
async def test_refused_uploads_end_in_the_link_never_in_no_post(bot: BotHarness) -> None:
    run = await bot.generate(bot.scene.alice, "a kite in a storm")
    refused = bot.fake.inject_rest_error(
        "POST", rf"/channels/{run.thread_id}/messages", 413, body=TOO_LARGE, times=2
    )
    await bot.provider.wait_until(lambda: len(bot.provider.tasks) == 1, WAIT)  # the create may still be on its way
    [task_id] = bot.provider.tasks
    bot.provider.set_video(task_id, padded_mp4(5 * MiB))  # refused, and so is the smaller copy
    bot.provider.finish(task_id)
    result = await bot.result(run)
    job = await bot.delivered(run.job_id)
    assert refused.hits == 2
    assert result.channel_id == run.thread_id and result.attachments == []
    assert job.video_url in result.content and "too large to attach" in result.content
    assert await bot.db(ledger(job.id)) == [LedgerState.CHARGED]


@manual
async def test_without_attach_files_the_link_is_posted_in_the_thread(bot: BotHarness) -> None:
    run = await bot.generate(bot.scene.alice, "a lantern festival")
    thread = bot.fake.world.channels[run.thread_id]
    guild = bot.fake.world.guilds[bot.scene.guild.id]
    bot_role = guild.roles[guild.bot_role_id]
    bot.fake.set_channel_permissions(thread.parent_id, bot_role, deny=int(Permission.ATTACH_FILES))
    await bot.provider.wait_until(lambda: len(bot.provider.tasks) == 1, WAIT)  # the create may still be on its way
    [task_id] = bot.provider.tasks
    bot.provider.finish(task_id)
    result = await bot.result(run)
    job = await bot.delivered(run.job_id)
    assert result.channel_id == run.thread_id and result.attachments == []
    assert result.content == f"<@{bot.scene.alice.id}> {job.video_url}"


@manual
async def test_a_video_that_cannot_be_downloaded_is_posted_as_its_link(bot: BotHarness) -> None:
    run = await bot.generate(bot.scene.alice, "a glass of water")
    await bot.provider.wait_until(lambda: len(bot.provider.tasks) == 1, WAIT)  # the create may still be on its way
    [task_id] = bot.provider.tasks
    bot.provider.inject(404, path=f"/cdn/luma/{task_id}.mp4", times=None)
    bot.provider.finish(task_id)
    result = await bot.result(run)
    job = await bot.delivered(run.job_id)
    assert result.attachments == [] and result.content == f"<@{bot.scene.alice.id}> {job.video_url}"


# -- Luma's Agents API: presigned links that expire after an hour, no thumbnail ------------------------------


async def agents_bot(harness: BotHarness) -> BotHarness:
    await harness.start(luma_provider="luma", luma_api_base_url=harness.provider.url_for("luma"))
    return harness


@manual
async def test_without_a_provider_thumbnail_a_frame_of_the_video_is_shown(harness: BotHarness) -> None:
    bot = await agents_bot(harness)
    _, _, result, job = await finished(bot)
    assert job.thumbnail_url is None
    thumbnail = f"luma-{job.id}-thumbnail.jpg"
    assert result.embeds[0]["thumbnail"]["url"] == f"attachment://{thumbnail}"
    [frame] = [f for f in result.files if f.filename == thumbnail]
    assert frame.data[:3] == b"\xff\xd8\xff" and frame.content_type == "image/jpeg"


@manual
async def test_original_after_the_link_expired_gives_a_fresh_working_link(harness: BotHarness) -> None:
    bot = await agents_bot(harness)
    run, _, result, job = await finished(bot)
    bot.provider.advance_clock(2 * 3600)  # the presigned link posted with the result has expired
    async with aiohttp.ClientSession() as http, http.get(job.video_url) as stale:
        assert stale.status == 403
    press = await bot.fake.press_button(
        bot.scene.guild, run.thread_id, bot.scene.bob, result, f"luma:original:{job.id}"
    )
    answer = await bot.answer(press)
    assert answer.ephemeral and answer.content.startswith("The full-quality file: http")
    fresh = answer.content.split()[3]
    assert fresh != job.video_url
    async with aiohttp.ClientSession() as http, http.get(fresh) as response:
        assert response.status == 200 and await response.read() == bot.provider.video_bytes


@manual
async def test_extend_works_from_a_result_whose_link_expired(harness: BotHarness) -> None:
    bot = await agents_bot(harness)
    run, task_id, result, job = await finished(bot)
    bot.provider.advance_clock(2 * 3600)
    press = await bot.fake.press_button(
        bot.scene.guild, run.thread_id, bot.scene.bob, result, f"luma:extend:{job.id}"
    )
    modal = await press.wait_modal(WAIT)
    submit = await bot.fake.submit_modal(
        bot.scene.guild, run.thread_id, bot.scene.bob, modal["custom_id"], {"prompt": "the boat sails on"}
    )
    await bot.accepted(submit, channel=run.thread_id)
    await bot.provider.wait_for_requests(2, "create")
    create = bot.creates()[-1]
    assert task_id in str(create) and "X-Amz" not in str(create)  # the generation id, not the dead file link


@manual
async def test_original_of_an_expired_acedatacloud_link_says_so(bot: BotHarness) -> None:
    run, _, result, job = await finished(bot)
    press = await bot.fake.press_button(
        bot.scene.guild, run.thread_id, bot.scene.bob, result, f"luma:original:{job.id}"
    )
    answer = await bot.answer(press)
    assert answer.content.startswith(f"The full-quality file: {job.video_url}")
    # 31 days later: AceDataCloud keeps files for 30.
    await bot.db(set_finished(job.id, job.finished_at - timedelta(days=31)))
    press = await bot.fake.press_button(
        bot.scene.guild, run.thread_id, bot.scene.bob, result, f"luma:original:{job.id}"
    )
    answer = await bot.answer(press)
    assert answer.ephemeral and answer.content.startswith("AceDataCloud kept the full-quality file")
    assert "30 days" in answer.content and job.video_url not in answer.content


# -- Delete -----------------------------------------------------------------------------------------------


async def press_delete(bot: BotHarness, run: Run, result: Message, member) -> Message:
    press = await bot.fake.press_button(
        bot.scene.guild, run.thread_id, member, result, f"luma:delete:{run.job_id}"
    )
    return await bot.answer(press)


@manual
async def test_delete_is_refused_to_other_members(bot: BotHarness) -> None:
    run, _, result, _ = await finished(bot)
    answer = await press_delete(bot, run, result, bot.scene.bob)
    assert answer.ephemeral and answer.content == texts.DELETE_NOT_ALLOWED
    assert not result.deleted and (await bot.job(run.job_id)).deleted_at is None


@manual
async def test_delete_by_the_requester_removes_the_post_and_history_says_so(bot: BotHarness) -> None:
    run, _, result, _ = await finished(bot)
    answer = await press_delete(bot, run, result, bot.scene.alice)
    assert answer.content == texts.DELETED
    assert result.deleted and bot.result_posts(run.job_id) == []
    job = await bot.job(run.job_id)
    assert job.deleted_at is not None and job.deleted_by == bot.scene.alice.id
    assert await bot.db(ledger(job.id)) == [LedgerState.CHARGED]
    history = await bot.answer(await bot.slash(bot.scene.alice, "history"))
    line = history.embeds[0]["description"]
    assert f"#{job.id}" in line and "deleted" in line and "[message]" not in line


@manual
async def test_a_member_with_manage_messages_may_delete(bot: BotHarness) -> None:
    run, _, result, _ = await finished(bot)
    moderator = bot.fake.add_role(bot.scene.guild, "Moderators", permissions=int(Permission.MANAGE_MESSAGES))
    member = bot.fake.add_member(bot.scene.guild, "moderator", roles=[moderator])
    answer = await press_delete(bot, run, result, member)
    assert answer.content == texts.DELETED and result.deleted
