"""Generating a video, start to end, through the fake Discord and the fake provider."""

from __future__ import annotations

import pytest

from bot.luma.prices import CREDIT
from tests.e2e.harness import BotHarness
from tests.fakes.discord import ChannelType, Permission


async def test_generate_posts_status_opens_thread_and_delivers_video(bot: BotHarness) -> None:
    scene = bot.scene
    run = await bot.generate(scene.alice, "a red fox running through snow")
    assert run.thread_id is not None and run.job_id is not None
    thread = bot.fake.world.channels[run.thread_id]
    assert thread.name == "a red fox running through snow"
    assert thread.id == run.status.id  # opened on the public status message
    assert (
        not run.status.ephemeral and "a red fox running through snow" in run.status.embeds[0]["description"]
    )
    result = await bot.result(run)
    assert result.channel_id == run.thread_id
    job = await bot.delivered(run.job_id)
    # The video is attached, so it plays inline; the requester is pinged.
    assert result.content == f"<@{scene.alice.id}> your video is ready."
    assert [(a["filename"], a["content_type"]) for a in result.attachments] == [(f"luma-{job.id}.mp4", "video/mp4")]
    embed = result.embeds[0]
    assert embed["thumbnail"]["url"] == job.thumbnail_url
    assert "1360×752" in str(embed["fields"]) and job.video_id in str(embed["fields"])
    assert [b["custom_id"] for b in result.buttons()] == [
        f"luma:{name}:{job.id}" for name in ("extend", "regen", "original", "delete")
    ]
    quota = await bot.quota(scene.alice)
    assert (quota.used, quota.held) == (CREDIT, 0)


async def test_result_is_posted_with_the_bot_token_not_the_interaction(bot: BotHarness) -> None:
    run = await bot.generate(bot.scene.alice, "a lighthouse at dusk")
    result = await bot.result(run)
    assert result.webhook_id is None and result.interaction_id is None
    posts = bot.fake.requests_to("POST", rf"/channels/{run.thread_id}/messages")
    assert [r.status for r in posts] == [200]


async def test_status_message_moves_from_queued_to_done(bot: BotHarness) -> None:
    run = await bot.generate(bot.scene.alice, "clouds over mountains")
    posted = [
        r.json["embeds"][0]
        for r in bot.fake.requests_to("POST", rf"/channels/{bot.scene.channel.id}/messages")
        if r.json and r.json.get("embeds") and r.json["embeds"][0]["footer"]["text"] == f"Job #{run.job_id}"
    ]
    assert len(posted) == 1 and "Queued" in posted[0]["fields"][2]["value"]  # as it was first shown
    await bot.result(run)
    await bot.delivered(run.job_id)
    edits = bot.fake.requests_to("PATCH", rf"/channels/{bot.scene.channel.id}/messages/{run.status.id}")
    states = [r.json["embeds"][0]["fields"][2]["value"] for r in edits]
    assert any(s.startswith("🎬 Generating, started <t:") for s in states)
    assert states[-1].startswith("✅ Done <t:") and f"/{run.thread_id}/" in states[-1]


async def test_every_option_and_attached_frames_reach_the_provider(bot: BotHarness) -> None:
    start = bot.fake.make_attachment("start.png", "image/png", 200_000)
    end = bot.fake.make_attachment("end.webp", "image/webp", 300_000)
    run = await bot.generate(
        bot.scene.alice,
        "a paper boat on a river",
        aspect_ratio="9:16",
        loop=True,
        enhancement=False,
        start_image=start,
        end_image=end,
    )
    await bot.result(run)
    [body] = bot.creates()
    assert body["prompt"] == "a paper boat on a river"
    assert (body["aspect_ratio"], body["loop"], body["enhancement"]) == ("9:16", True, False)
    assert (body["start_image_url"], body["end_image_url"]) == (start["url"], end["url"])
    assert "start frame" in run.status.embeds[0]["fields"][0]["value"]


async def test_frames_given_as_links_reach_the_provider(bot: BotHarness) -> None:
    run = await bot.generate(
        bot.scene.alice,
        "a city timelapse",
        start_image_url="https://images.example.com/a.jpg",
        end_image_url="https://images.example.com/b.png",
    )
    await bot.result(run)
    [body] = bot.creates()
    assert body["start_image_url"] == "https://images.example.com/a.jpg"
    assert body["end_image_url"] == "https://images.example.com/b.png"
    assert (body["aspect_ratio"], body["loop"], body["enhancement"]) == ("16:9", False, True)


async def test_generate_inside_a_thread_answers_in_place(bot: BotHarness) -> None:
    thread = bot.fake.add_thread(bot.scene.channel, "our videos", owner=bot.scene.alice)
    await bot.fake.sync()
    record = await bot.slash(bot.scene.alice, "generate", {"prompt": "a koi pond"}, channel=thread)
    run = await bot.accepted(record, channel=thread)
    assert run.thread_id is None and [t.id for t in bot.fake.threads] == [thread.id]
    result = await bot.result(run.job_id)
    assert result.channel_id == thread.id


async def test_without_thread_permission_the_bot_answers_in_the_channel(bot: BotHarness) -> None:
    bot.fake.set_channel_permissions(
        bot.scene.channel, bot.fake.bot_user, deny=int(Permission.CREATE_PUBLIC_THREADS)
    )
    await bot.fake.sync()
    record = await bot.slash(bot.scene.alice, "generate", {"prompt": "a snail racing"})
    run = await bot.accepted(record)
    assert run.thread_id is None and bot.fake.threads == []
    result = await bot.result(run.job_id)
    assert result.channel_id == bot.scene.channel.id


async def test_prompts_are_escaped_and_cannot_ping(bot: BotHarness) -> None:
    scene = bot.scene
    prompt = f"**bold** @everyone @here <@&{scene.admin_role.id}> <@{scene.bob.id}> `code`"
    run = await bot.generate(scene.alice, prompt)
    result = await bot.result(run)
    shown = run.status.embeds[0]["description"]
    assert "\\*\\*bold\\*\\*" in shown and "@\u200beveryone" in shown and "\\`code\\`" in shown
    for message in (bot.fake.get_message(run.status.id), result):
        assert message.mention_everyone is False and message.mention_roles == []
        assert scene.bob.id not in message.mentions
    assert result.mentions == [scene.alice.id]
    thread = bot.fake.world.channels[run.thread_id]
    assert "@" not in thread.name and "*" not in thread.name


async def test_every_message_sets_allowed_mentions_and_only_results_ping_the_requester(
    bot: BotHarness,
) -> None:
    scene = bot.scene
    run = await bot.generate(scene.alice, "@everyone look")
    result = await bot.result(run)
    await bot.delivered(run.job_id)
    quota = await bot.slash(scene.alice, "quota")
    await bot.answer(quota)
    log = bot.fake.allowed_mentions_log
    assert log, "the bot sent no messages"
    for entry in log:
        mentions = entry["allowed_mentions"]
        assert mentions is not None, entry
        assert mentions.get("parse") == [], entry
        if entry["message_id"] == result.id:
            assert mentions.get("users") == [scene.alice.id]
        else:
            assert not mentions.get("users") and not mentions.get("roles"), entry


async def test_thread_names_are_cut_to_discords_limit(bot: BotHarness) -> None:
    run = await bot.generate(bot.scene.alice, "a very long prompt " * 20)
    name = bot.fake.world.channels[run.thread_id].name
    assert len(name) <= 100 and name.startswith("a very long prompt")
    assert bot.fake.world.channels[run.thread_id].type == ChannelType.PUBLIC_THREAD


async def test_a_burst_of_commands_is_acknowledged_within_discords_deadline(bot: BotHarness) -> None:
    members = [bot.fake.add_member(bot.scene.guild, f"member{i}") for i in range(15)]
    await bot.fake.sync()
    records = [await bot.slash(m, "generate", {"prompt": f"burst {i}"}) for i, m in enumerate(members)]
    for record in records:
        response = await record.wait_response()  # raises if the 3 s deadline passed unanswered
        assert response["type"] == 5 and response["data"]["flags"] == 64
        assert record.acknowledged_at - record.created_at < 3.0
    for record in records:
        answer = await bot.answer(record)
        assert "Follow it here" in answer.content


@pytest.mark.postgres
async def test_a_video_and_its_extension_on_postgresql(harness: BotHarness, postgres_url: str) -> None:
    await harness.start(database_url=postgres_url)
    run = await harness.generate(harness.scene.alice, "a harbour at night")
    result = await harness.result(run)
    reply = await harness.fake.post_message(
        harness.scene.guild, run.thread_id, harness.scene.alice, "fireworks start", reply_to=result
    )
    status = await harness.status_after(run.thread_id, reply.id)
    from tests.e2e.harness import job_id_from_footer

    child = job_id_from_footer(status)
    await harness.result(child, channel=run.thread_id)
    assert (await harness.delivered(child)).parent_id == run.job_id
