"""`/luma quota`, `/luma history` and `/luma-admin`, and the admin commands' refusal to other members."""

from __future__ import annotations

import re

from bot.discord_ui import texts
from bot.luma.prices import CREDIT
from tests.e2e.harness import BotHarness


async def _video(bot: BotHarness, user, prompt: str):
    run = await bot.generate(user, prompt)
    result = await bot.result(run)
    await bot.delivered(run.job_id)
    return run, result


async def test_quota_shows_used_remaining_held_and_reset_time(bot: BotHarness) -> None:
    await _video(bot, bot.scene.alice, "a tea cup")
    answer = await bot.answer(await bot.slash(bot.scene.alice, "quota"))
    assert answer.ephemeral
    assert answer.content.startswith("You have used **1** of **3** credits this day; **2** left.")
    assert re.search(r"resets <t:\d+:R> \(<t:\d+:f>\)", answer.content)


async def test_quota_counts_units_held_by_running_jobs(bot: BotHarness) -> None:
    bot.provider.manual = True
    await bot.generate(bot.scene.alice, "still rendering")
    answer = await bot.answer(await bot.slash(bot.scene.alice, "quota"))
    assert (
        "**0** of **3** credits this day; **2** left, and **1** held by videos in progress" in answer.content
    )


async def test_history_lists_recent_jobs_with_states_links_and_chains(bot: BotHarness) -> None:
    parent, result = await _video(bot, bot.scene.alice, "a kite")
    reply = await bot.fake.post_message(
        bot.scene.guild, parent.thread_id, bot.scene.alice, "higher", reply_to=result
    )
    status = await bot.status_after(parent.thread_id, reply.id)
    from tests.e2e.harness import job_id_from_footer

    child_id = job_id_from_footer(status)
    await bot.result(child_id, channel=parent.thread_id)
    await bot.delivered(child_id)
    await _video(bot, bot.scene.bob, "not alice's")
    answer = await bot.answer(await bot.slash(bot.scene.alice, "history"))
    assert answer.ephemeral
    lines = answer.embeds[0]["description"].splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"✅ **#{child_id}** completed ↳ extends #{parent.job_id}")
    assert lines[1].startswith(f"✅ **#{parent.job_id}** completed <t:")
    parent_job = await bot.job(parent.job_id)
    assert f"/{parent.thread_id}/{result.id})" in lines[1] and f"[video]({parent_job.video_url})" in lines[1]


async def test_history_when_there_is_none(bot: BotHarness) -> None:
    answer = await bot.answer(await bot.slash(bot.scene.bob, "history"))
    assert answer.content == texts.HISTORY_EMPTY


async def test_admin_sets_the_server_limit_and_period(bot: BotHarness) -> None:
    record = await bot.slash(bot.scene.admin, "limit", {"limit": 1, "period": "week"}, name="luma-admin")
    assert (await bot.answer(record)).content == texts.admin_limit_set(1, "week")
    quota = await bot.quota(bot.scene.alice)
    assert (quota.limit, quota.period) == (CREDIT, "week")
    await _video(bot, bot.scene.alice, "the only one this week")
    refused = await bot.answer(await bot.slash(bot.scene.alice, "generate", {"prompt": "another"}))
    assert refused.content.startswith("You've used all 1 credits for this week.")


async def test_admin_gives_a_role_its_own_limit(bot: BotHarness) -> None:
    role = bot.fake.add_role(bot.scene.guild, "Patrons")
    patron = bot.fake.add_member(bot.scene.guild, "patron", roles=[role])
    record = await bot.slash(bot.scene.admin, "role-limit", {"role": role, "limit": 7}, name="luma-admin")
    assert (await bot.answer(record)).content == texts.admin_role_limit_set(f"<@&{role.id}>", 7)
    answer = await bot.answer(await bot.slash(patron, "quota"))
    assert "of **7** credits" in answer.content
    record = await bot.slash(bot.scene.admin, "role-limit", {"role": role}, name="luma-admin")
    assert (await bot.answer(record)).content == texts.admin_role_limit_set(f"<@&{role.id}>", None)
    answer = await bot.answer(await bot.slash(patron, "quota"))
    assert "of **3** credits" in answer.content


async def test_admin_overrides_one_members_limit(bot: BotHarness) -> None:
    record = await bot.slash(
        bot.scene.admin, "user-limit", {"member": bot.scene.alice, "limit": 0}, name="luma-admin"
    )
    answer = await bot.answer(record)
    assert answer.content == texts.admin_user_limit_set(f"<@{bot.scene.alice.id}>", 0)
    assert answer.mentions == []  # naming a member in an answer never pings them
    refused = await bot.answer(await bot.slash(bot.scene.alice, "generate", {"prompt": "please"}))
    assert refused.content.startswith("Video making is turned off for you in this server.")
    assert bot.creates() == []


async def test_admin_resets_a_members_usage(bot: BotHarness) -> None:
    await _video(bot, bot.scene.alice, "used once")
    record = await bot.slash(bot.scene.admin, "reset", {"member": bot.scene.alice}, name="luma-admin")
    assert (await bot.answer(record)).content == texts.admin_reset(f"<@{bot.scene.alice.id}>")
    assert (await bot.quota(bot.scene.alice)).used == 0


async def test_admin_sees_usage_by_member(bot: BotHarness) -> None:
    await _video(bot, bot.scene.alice, "one")
    await _video(bot, bot.scene.alice, "two")
    await _video(bot, bot.scene.bob, "three")
    answer = await bot.answer(await bot.slash(bot.scene.admin, "usage", name="luma-admin"))
    assert answer.embeds[0]["title"] == "Spend this month"
    # AceDataCloud publishes no price: credits only, no money.
    assert answer.embeds[0]["description"].splitlines() == [
        "**Total this month: 3 credits spent (no budget set).**",
        f"<@{bot.scene.alice.id}>: 2 credits",
        f"<@{bot.scene.bob.id}>: 1 credit",
    ]


async def test_admin_commands_are_refused_to_other_members(bot: BotHarness) -> None:
    command = bot.fake.command("luma-admin", bot.scene.guild)
    assert int(command.payload["default_member_permissions"]) == 32  # Manage Server
    for sub, options in [
        ("limit", {"limit": 100}),
        ("user-limit", {"member": bot.scene.bob, "limit": 50}),
        ("reset", {"member": bot.scene.bob}),
        ("usage", {}),
    ]:
        answer = await bot.answer(await bot.slash(bot.scene.bob, sub, options, name="luma-admin"))
        assert answer.ephemeral and answer.content == texts.NEEDS_MANAGE_GUILD
    quota = await bot.quota(bot.scene.bob)
    assert quota.limit == 3 * CREDIT
