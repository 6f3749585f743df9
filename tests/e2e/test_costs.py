"""What a video costs, as members and admins see it in Discord: the price in the answer and on the status
message, `/luma quota`'s price list, `/luma-admin budget`, `options` and `usage` with its CSV."""

from __future__ import annotations

import csv
import io

from bot.discord_ui import texts
from bot.luma.prices import CREDIT
from bot.store.models import Job, QuotaEntry
from tests.e2e.harness import BotHarness


async def job_count(user_id: int | None = None) -> int:
    return await (Job.filter(user_id=user_id) if user_id else Job.all()).count()


async def ledger() -> list[QuotaEntry]:
    return await QuotaEntry.all().order_by("id").prefetch_related("job")


async def job_of(user_id: int) -> Job:
    return await Job.get(user_id=user_id)


def field(message, name: str) -> str | None:
    for embed in message.embeds:
        for f in embed.get("fields", []):
            if f["name"] == name:
                return f["value"]
    return None


async def test_the_answer_and_the_status_message_say_what_a_video_costs(bot: BotHarness) -> None:
    run = await bot.generate(bot.scene.alice, "a lighthouse")
    assert "It costs 1 credit; you pay only if the video is delivered." in run.answer.content
    assert field(run.status, texts.FIELD_COST) == "1 credit"


async def test_the_budget_refuses_a_request_naming_the_reset_time_and_sends_nothing(bot: BotHarness) -> None:
    record = await bot.slash(bot.scene.admin, "budget", {"credits": 1, "period": "week"}, name="luma-admin")
    assert "**1** credits per week" in (await bot.answer(record)).content
    run = await bot.generate(bot.scene.alice, "the only one")
    await bot.delivered(run.job_id)
    sent = len(bot.creates())
    # Bob has his own allowance left, but the server's budget is spent.
    refused = await bot.answer(await bot.slash(bot.scene.bob, "generate", {"prompt": "one more"}))
    assert refused.content.startswith("This server's video budget for this week can't cover this video")
    assert "<t:" in refused.content and ":f>" in refused.content
    assert len(bot.creates()) == sent
    assert await bot.db(job_count(bot.scene.bob.id)) == 0
    assert (await bot.quota(bot.scene.bob)).held == 0


async def test_a_budget_of_zero_switches_videos_off(bot: BotHarness) -> None:
    await bot.answer(await bot.slash(bot.scene.admin, "budget", {"credits": 0}, name="luma-admin"))
    refused = await bot.answer(await bot.slash(bot.scene.alice, "generate", {"prompt": "please"}))
    assert refused.content.startswith("Video making is switched off in this server")
    assert bot.creates() == []


async def test_admin_usage_shows_spend_and_attaches_the_ledger_as_csv(bot: BotHarness) -> None:
    for user, prompt in ((bot.scene.alice, "one"), (bot.scene.alice, "two"), (bot.scene.bob, "three")):
        run = await bot.generate(user, prompt)
        await bot.delivered(run.job_id)
    answer = await bot.answer(await bot.slash(bot.scene.admin, "usage", name="luma-admin"))
    assert answer.embeds[0]["description"].splitlines()[0] == "**Total this month: 3 credits spent (no budget set).**"
    [upload] = answer.files
    assert upload.filename.startswith("luma-ledger-") and upload.filename.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(upload.data.decode())))
    entries = await bot.db(ledger())
    assert [(int(r["job_id"]), int(r["user_id"]), r["state"], r["credits_charged"]) for r in rows] == [
        (e.job_id, e.job.user_id, "charged", "1") for e in entries
    ]


async def test_quota_on_the_agents_api_lists_what_each_option_costs(harness: BotHarness) -> None:
    await harness.start(luma_provider="luma")
    answer = await harness.answer(await harness.slash(harness.scene.alice, "quota"))
    assert "A credit is the price of one ray-3.2 720p 5s video ($0.30)." in answer.content
    table = answer.content.split("```")[1].splitlines()
    assert table[1].split() == ["5s", "10s"]
    assert table[-1].split() == ["1080p", "4", "12"]
    assert table[2].split() == ["360p", "0.5", "1.5"]


async def test_admin_limits_refuse_an_option_with_nothing_sent(harness: BotHarness) -> None:
    await harness.start(luma_provider="luma")
    record = await harness.slash(
        harness.scene.admin, "options", {"max_resolution": "720p", "default_resolution": "540p"}, name="luma-admin"
    )
    assert "resolutions up to: 720p (360p, 540p, 720p)" in (await harness.answer(record)).content
    refused = await harness.answer(
        await harness.slash(harness.scene.alice, "generate", {"prompt": "big", "resolution": "1080p"})
    )
    assert refused.content == "You chose 1080p; this server allows videos up to 720p: choose 360p, 540p, 720p."
    assert harness.provider.request_log == []
    assert await harness.db(job_count()) == 0
    # A member who chooses nothing gets the server's default, and its price.
    record = await harness.slash(harness.scene.alice, "generate", {"prompt": "small"})
    answer = await harness.answer(record)
    assert "It costs 0.5 credits ($0.15)" in answer.content
    job = await harness.db(job_of(harness.scene.alice.id))
    assert (job.options["resolution"], job.cost) == ("540p", CREDIT // 2)


async def test_admin_options_refuse_a_default_beyond_the_limits(harness: BotHarness) -> None:
    await harness.start(luma_provider="luma")
    record = await harness.slash(
        harness.scene.admin, "options", {"max_duration": "5s", "default_duration": "10s"}, name="luma-admin"
    )
    answer = await harness.answer(record)
    assert answer.content == "The default duration 10s is beyond this server's limits: choose one of 5s."
