"""Luma's own APIs end to end, over the fake Discord and the fake provider speaking the Agents API and the
Dream Machine API: options, frames and extensions in each API's own words, refusals before anything is
sent, every failure answered the way the member and the operator need, and links that work when posted."""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta
from typing import Any

import aiohttp
import pytest

from bot.discord_ui import texts
from bot.luma.prices import CREDIT
from bot.store.models import FailureKind, JobState
from tests.e2e.harness import WAIT, BotHarness, Run
from tests.fakes.luma_provider import FakeLumaProvider

API_NAMES = ["luma", "dream-machine"]


@pytest.fixture(params=API_NAMES)
def api(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def settings_overrides(api: str, provider: FakeLumaProvider) -> dict[str, Any]:
    return {"luma_provider": api, "luma_api_base_url": provider.url_for(api), "quota_default_limit": 20}


def creates(bot: BotHarness) -> list[dict[str, Any]]:
    return bot.creates()


async def finished(bot: BotHarness, run: Run) -> Any:
    result = await bot.result(run)
    job = await bot.delivered(run.job_id)
    return result, job


def options_field(message: Any) -> str:
    return next(f["value"] for f in message.embeds[0]["fields"] if f["name"] == texts.FIELD_OPTIONS)


# -- options, frames, the member's opaque id --------------------------------------------------------------


async def test_generate_sends_the_chosen_model_resolution_and_duration_and_shows_them(bot: BotHarness, api: str):
    chosen = (
        {"resolution": "1080p", "duration": "10s", "aspect_ratio": "21:9"}
        if api == "luma"
        else {"model": "ray-flash-2", "resolution": "4k", "duration": "9s", "aspect_ratio": "9:21"}
    )
    run = await bot.generate(bot.scene.alice, "a glacier calving into the sea", **chosen)
    result, job = await finished(bot, run)
    [body] = creates(bot)
    if api == "luma":
        assert (body["model"], body["type"], body["aspect_ratio"]) == ("ray-3.2", "video", "21:9")
        assert body["video"] == {"resolution": "1080p", "duration": "10s"}
        shown = "ray-3.2 · 1080p · 10s"
    else:
        assert (body["model"], body["resolution"], body["duration"], body["aspect_ratio"]) == (
            "ray-flash-2", "4k", "9s", "9:21"
        )
        assert body["generation_type"] == "video"
        shown = "ray-flash-2 · 4k · 9s"
    assert job.state == JobState.COMPLETED
    assert options_field(result).startswith(shown)
    assert options_field(bot.fake.world.messages[run.status.id]).startswith(shown)
    # The Agents API gives no thumbnail: a frame of the video stands in, so the result still looks complete.
    if api == "luma":
        assert result.embeds[0]["thumbnail"]["url"].startswith("attachment://")


async def test_defaults_are_the_providers_when_nothing_is_chosen(bot: BotHarness, api: str):
    run = await bot.generate(bot.scene.alice, "a quiet street in the rain")
    result, _ = await finished(bot, run)
    [body] = creates(bot)
    if api == "luma":
        assert body["video"] == {"resolution": "720p", "duration": "5s"}
        assert options_field(result).startswith("ray-3.2 · 720p · 5s")
    else:
        assert (body["model"], body["resolution"], body["duration"]) == ("ray-2", "720p", "5s")


async def test_frames_go_as_image_references(bot: BotHarness, api: str):
    start, end = "https://images.example.com/start.png", "https://images.example.com/end.jpg"
    run = await bot.generate(bot.scene.alice, "from dawn to dusk", start_image_url=start, end_image_url=end)
    await finished(bot, run)
    [body] = creates(bot)
    if api == "luma":
        assert body["video"]["start_frame"] == {"url": start} and body["video"]["end_frame"] == {"url": end}
    else:
        assert body["keyframes"] == {
            "frame0": {"type": "image", "url": start},
            "frame1": {"type": "image", "url": end},
        }


async def test_the_member_is_named_by_a_stable_opaque_id_never_their_discord_id(bot: BotHarness, api: str):
    if api != "luma":
        pytest.skip("only the Agents API takes a user id")
    for user, prompt in ((bot.scene.alice, "one"), (bot.scene.alice, "two"), (bot.scene.bob, "three")):
        await finished(bot, await bot.generate(user, f"a kite, take {prompt}"))
    ids = [body["user_id"] for body in creates(bot)]
    assert ids[0] == ids[1] != ids[2]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert str(bot.scene.alice.id) not in ids[0] and str(bot.scene.bob.id) not in ids[2]


# -- refusals before anything is sent ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"loop": True, "end_image_url": "https://images.example.com/end.jpg"}, "end frame"),
        ({"loop": True, "duration": "10s"}, "can loop only 5s"),
    ],
)
async def test_what_the_provider_cannot_do_is_refused_before_any_request(
    bot: BotHarness, api: str, options: dict[str, Any], words: str
):
    if api == "dream-machine" and options.get("duration") == "10s":
        pytest.skip("Dream Machine has no 10s videos to offer")
    record = await bot.slash(bot.scene.alice, "generate", {"prompt": "a looping waterfall", **options})
    answer = await bot.answer(record)
    assert answer.ephemeral and words in answer.content
    assert bot.provider.count("create") == 0
    assert (await bot.quota(bot.scene.alice)).held == 0


async def test_the_command_offers_only_what_the_provider_has(bot: BotHarness, api: str):
    luma = bot.fake.command("luma", bot.scene.guild)
    [generate] = [o for o in luma.options if o["name"] == "generate"]
    options = {o["name"]: o for o in generate["options"]}
    values = {name: [c["value"] for c in options[name].get("choices", [])] for name in ("resolution", "duration")}
    ratios = [c["value"] for c in options["aspect_ratio"]["choices"]]
    if api == "luma":
        assert values == {"resolution": ["360p", "540p", "720p", "1080p"], "duration": ["5s", "10s"]}
        assert "9:21" not in ratios and "enhancement" not in options
    else:
        assert values == {"resolution": ["540p", "720p", "1080p", "4k"], "duration": ["5s", "9s"]}
        assert [c["value"] for c in options["model"]["choices"]] == ["ray-2", "ray-flash-2"]


# -- extending, every way ---------------------------------------------------------------------------------


async def fresh_link(bot: BotHarness, generation: str) -> str:
    """What a member who fetched the generation later would hold: the same file, signed anew."""
    url = f"{bot.provider.url_for('luma')}/generations/{generation}"
    async with aiohttp.ClientSession() as session:
        async with session.get(url, headers={"Authorization": f"Bearer {bot.provider.token}"}) as resp:
            return (await resp.json())["output"][0]["url"]


def generation_reference(api: str, body: dict[str, Any]) -> str:
    if api == "luma":
        return body["video"]["start_frame"]["generation_id"]
    assert body["keyframes"]["frame0"]["type"] == "generation"
    return body["keyframes"]["frame0"]["id"]


async def test_every_way_of_extending_names_the_earlier_generation(bot: BotHarness, api: str):
    alice, bob, guild = bot.scene.alice, bot.scene.bob, bot.scene.guild
    parent = await bot.generate(alice, "a hot air balloon over fields")
    result, parent_job = await finished(bot, parent)
    generation = parent_job.task_id
    assert parent_job.video_id == generation

    async def extended(record_or_run: Any, channel: int | None = None) -> None:
        run = record_or_run if isinstance(record_or_run, Run) else await bot.accepted(record_or_run, channel)
        await bot.result(run.job_id)
        child = await bot.delivered(run.job_id)
        assert (child.state, child.parent_id) == (JobState.COMPLETED, parent.job_id)
        assert generation_reference(api, creates(bot)[-1]) == generation

    # By id, by a link to the result message, by the video's own link (presigned links change their
    # signature on every fetch: the bot still knows it), by reply, by button and by the message menu.
    await extended(await bot.slash(alice, "extend", {"video": generation, "prompt": "it climbs"}))
    link = f"https://discord.com/channels/{guild.id}/{parent.thread_id}/{result.id}"
    await extended(await bot.slash(bob, "extend", {"video": link, "prompt": "it drifts east"}))
    fresh = (await fresh_link(bot, generation)) if api == "luma" else parent_job.video_url
    assert api != "luma" or fresh != parent_job.video_url
    await extended(await bot.slash(alice, "extend", {"video": fresh, "prompt": "it lands"}))
    reply = await bot.fake.post_message(guild, parent.thread_id, bob, "the sun sets behind it", reply_to=result)
    status = await bot.status_after(parent.thread_id, reply.id)
    from tests.e2e.harness import job_id_from_footer

    await extended(Run(None, status, parent.thread_id, job_id_from_footer(status)))
    for source in ("button", "menu"):
        if source == "button":
            press = await bot.fake.press_button(guild, parent.thread_id, bob, result, f"luma:extend:{parent.job_id}")
        else:
            press = await bot.fake.invoke_message_context_menu(guild, parent.thread_id, bob, "Extend video", result)
        modal = await press.wait_modal(WAIT)
        submit = await bot.fake.submit_modal(guild, parent.thread_id, bob, modal["custom_id"], {"prompt": source})
        await extended(submit, parent.thread_id)
    assert len(creates(bot)) == 7


async def test_a_link_the_bot_does_not_know_is_refused_with_nothing_sent(bot: BotHarness, api: str):
    record = await bot.slash(
        bot.scene.alice, "extend", {"video": "https://videos.example.com/someone-elses.mp4", "prompt": "more"}
    )
    answer = await bot.answer(record)
    assert answer.ephemeral and "can only extend its own videos" in answer.content
    assert bot.provider.count("create") == 0


# -- failures, each settled once --------------------------------------------------------------------------


async def test_a_moderated_prompt_gets_the_moderation_sentence_and_the_unit_back(bot: BotHarness, api: str):
    run = await bot.generate(bot.scene.alice, "something [moderate]")
    failure, job = await finished(bot, run)
    assert job.failure_kind == FailureKind.MODERATION
    assert failure.content == texts.failure_message(f"<@{bot.scene.alice.id}>", FailureKind.MODERATION)
    quota = await bot.quota(bot.scene.alice)
    assert (quota.used, quota.held) == (0, 0)
    assert bot.provider.count("create") == 1


async def test_a_failed_generation_is_sent_once_more_then_fails_with_the_unit_back(bot: BotHarness, api: str):
    if api != "luma":
        pytest.skip("only the Agents API says which failures are worth another try")
    run = await bot.generate(bot.scene.alice, "unlucky [fail]")
    _, job = await finished(bot, run)
    assert (job.state, job.failure_kind, job.resubmits) == (JobState.FAILED, FailureKind.FAILED, 1)
    assert bot.provider.count("create") == 2
    quota = await bot.quota(bot.scene.alice)
    assert (quota.used, quota.held) == (0, 0)
    assert len(bot.result_posts(run.job_id)) == 1


async def test_a_refused_request_shows_the_providers_reason(bot: BotHarness, api: str):
    bot.provider.inject(422, {"detail": "The start frame could not be decoded as an image"}, path="create")
    run = await bot.generate(bot.scene.alice, "from a broken frame", start_image_url="https://images.example.com/x.png")
    failure, job = await finished(bot, run)
    assert job.failure_kind == FailureKind.INVALID
    assert "The start frame could not be decoded as an image" in failure.content
    assert "HTTP 422" not in failure.content
    assert (await bot.quota(bot.scene.alice)).used == 0


async def test_an_empty_balance_holds_the_queue_until_it_is_topped_up(bot: BotHarness, api: str, caplog):
    bot.provider.set_balance_exhausted(True)
    run = await bot.generate(bot.scene.alice, "waiting for funds")
    status = bot.fake.world.messages[run.status.id]
    await bot.fake.wait_for(lambda: "out of credit" in str(status.embeds), WAIT, "the held-up status")
    assert (await bot.job(run.job_id)).state == JobState.QUEUED
    bot.provider.set_balance_exhausted(False)
    _, job = await finished(bot, run)
    assert job.state == JobState.COMPLETED
    assert (await bot.quota(bot.scene.alice)).used == job.cost == CREDIT  # a default video is one credit
    started = [r for r in caplog.records if r.getMessage().startswith("provider incident (balance)")]
    assert len([r for r in started if "is over" not in r.getMessage()]) == 1


async def test_a_rate_limited_create_waits_and_is_sent_again_never_failed(bot: BotHarness, api: str):
    bot.provider.inject(429, {"detail": "Too many concurrent jobs"}, path="create", retry_after=0.2)
    run = await bot.generate(bot.scene.alice, "patience")
    _, job = await finished(bot, run)
    assert job.state == JobState.COMPLETED
    assert bot.provider.count("create") == 2


# -- links that work when they are posted ------------------------------------------------------------------


@pytest.mark.parametrize("provider_options", [{"manual": True, "presigned_ttl": 60.0}])
async def test_an_expired_presigned_link_is_fetched_again_before_it_is_posted(
    harness: BotHarness, api: str
) -> None:
    if api != "luma":
        pytest.skip("only the Agents API's links expire within the hour")
    harness.engine_config = dataclasses.replace(harness.engine_config, fresh_link_age=timedelta(0))
    await harness.start()
    bot = harness
    run = await bot.generate(bot.scene.alice, "a slow sunrise")
    await bot.provider.wait_until(lambda: len(bot.provider.tasks) == 1, WAIT)
    [task_id] = bot.provider.tasks
    # Discord refuses the result post for a while, so the link from the poll grows old before it is posted.
    bot.fake.inject_rest_error("POST", rf"/channels/{run.thread_id}/messages", 503, times=None)
    bot.provider.finish(task_id)
    await bot.fake.wait_for(
        lambda: bot.fake.requests_to("POST", rf"/channels/{run.thread_id}/messages"), WAIT, "a refused post"
    )
    old_link = (await bot.job(run.job_id)).video_url
    bot.provider.advance_clock(120)  # Discord was down for two minutes: the polled link has expired
    bot.fake.clear_injections()
    result = await bot.result(run)
    posted = (await bot.delivered(run.job_id)).video_url
    assert posted != old_link
    # The video came from the fresh link (the expired one answers 403), so it is attached, not linked.
    assert [a["filename"] for a in result.attachments if a["filename"].endswith(".mp4")] == [f"luma-{run.job_id}.mp4"]
    async with aiohttp.ClientSession() as session:
        async with session.get(old_link) as stale:
            assert stale.status == 403
        async with session.get(posted) as fresh:
            assert fresh.status == 200
