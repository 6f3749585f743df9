"""Servers are separate (issue 13, points 4 and 5): a member of one server who names a video of another gets
no lookup of it, and an extend target that cannot be a video of this server is refused before any request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.discord_ui import texts
from bot.discord_ui.permissions import BOT_PERMISSIONS
from bot.store.models import Job
from tests.e2e.harness import BotHarness
from tests.fakes.discord import Channel, Member


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"discord_guild_ids": []}  # commands everywhere the bot is, both servers included


@pytest.fixture
async def two_servers(harness: BotHarness) -> AsyncIterator[tuple[BotHarness, Channel, Member]]:
    other = harness.fake.add_guild("Other Place", bot_permissions=BOT_PERMISSIONS.value)
    channel = harness.fake.add_channel(other, name="clips")
    stranger = harness.fake.add_member(other, "stranger")
    harness.scene.extra["alice_elsewhere"] = harness.fake.add_member(other, user=harness.scene.alice.user)
    await harness.start()
    yield harness, channel, stranger
    await harness.stop()


async def slash_elsewhere(bot: BotHarness, channel: Channel, user: Member, sub: str, options: dict[str, Any]):
    return await bot.fake.invoke_slash(
        bot.fake.world.guilds[channel.guild_id], channel, user, "luma", subcommand=sub, options=options
    )


async def test_another_servers_video_is_never_looked_up(two_servers) -> None:
    bot, channel, stranger = two_servers
    run = await bot.generate(bot.scene.alice, "a secret garden party")
    result = await bot.result(run)
    job = await bot.delivered(run.job_id)
    creates_before = bot.provider.count("create")

    # By id: the stranger learns nothing (not even that it exists), and nothing is sent.
    record = await slash_elsewhere(bot, channel, stranger, "extend", {"video": job.video_id, "prompt": "mine now"})
    answer = await bot.answer(record)
    assert answer.ephemeral and "I don't know a video with the id" in answer.content
    # By a link to the result message in the first server.
    link = f"https://discord.com/channels/{bot.scene.guild.id}/{run.thread_id}/{result.id}"
    record = await slash_elsewhere(bot, channel, stranger, "extend", {"video": link, "prompt": "mine now"})
    answer = await bot.answer(record)
    assert answer.ephemeral and answer.content == texts.NOT_A_RESULT_HERE
    for shown in (answer.content, str(answer.embeds)):
        assert "secret garden" not in shown and f"#{run.job_id}" not in shown and str(run.thread_id) not in shown
    assert bot.provider.count("create") == creates_before

    # History stays in its server.
    record = await slash_elsewhere(bot, channel, bot.scene.extra["alice_elsewhere"], "history", {})
    history = await bot.answer(record)
    assert history.content == texts.HISTORY_EMPTY


async def test_a_link_to_another_servers_video_file_is_an_unknown_video_not_a_lookup(two_servers) -> None:
    """AceDataCloud extends any video by its link: another server's file may go there, as an unknown video,
    never as that server's job (no parent, no thread, no prompt)."""
    bot, channel, stranger = two_servers
    run = await bot.generate(bot.scene.alice, "a private picnic")
    await bot.result(run)
    job = await bot.delivered(run.job_id)
    public = "https://videos.example.com/" + job.video_url.rsplit("/", 1)[-1]
    await bot.db(_set_url(job.id, public))
    record = await slash_elsewhere(bot, channel, stranger, "extend", {"video": public, "prompt": "continue it"})
    await bot.answer(record)
    await bot.provider.wait_until(lambda: bot.provider.count("create") == 2)
    sent = bot.creates()[-1]
    assert sent.get("video_url") == public and "video_id" not in sent
    [mine] = await bot.db(_jobs_in(channel.guild_id))
    assert mine.parent_id is None


async def _jobs_in(guild_id: int) -> list[Job]:
    return await Job.filter(guild_id=guild_id)


async def _set_url(job_id: int, url: str) -> None:
    await Job.filter(id=job_id).update(video_url=url)


@pytest.mark.parametrize(
    "target",
    [
        "https://discord.com/channels/1/2/3",  # ids that are not Discord snowflakes
        "https://discord.com/channels/123456789012345678901234/1/2",
        "https://discord.com/channels/@me/notanid",
        "https://discordapp.com/channels/1234/abc/def",
        "https://cdn.discordapp.com/attachments/1/2/video.mp4",
    ],
)
async def test_a_discord_link_that_cannot_be_a_video_is_refused_before_any_request(
    bot: BotHarness, target: str
) -> None:
    record = await bot.slash(bot.scene.alice, "extend", {"video": target, "prompt": "more"})
    answer = await bot.answer(record)
    assert answer.ephemeral and answer.content in (texts.NOT_A_MESSAGE_LINK, texts.NOT_A_RESULT_HERE)
    assert bot.provider.count("create") == 0
    assert (await bot.quota(bot.scene.alice)).held == 0


async def test_a_link_to_a_message_without_a_video_is_refused(bot: BotHarness) -> None:
    chatter = await bot.fake.post_message(bot.scene.guild, bot.scene.channel, bot.scene.bob, "look at my cat")
    link = f"https://discord.com/channels/{bot.scene.guild.id}/{bot.scene.channel.id}/{chatter.id}"
    record = await bot.slash(bot.scene.alice, "extend", {"video": link, "prompt": "more"})
    answer = await bot.answer(record)
    assert answer.ephemeral and answer.content == texts.NOT_A_RESULT_HERE
    assert bot.provider.count("create") == 0
