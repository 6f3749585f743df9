"""Several providers and keys, end to end: a provider whose creates fail loses new jobs to the next one within
a request and gets them back once a probe succeeds; a key that runs out of funds rests while the provider's
other key works; admins see which is which."""

from __future__ import annotations

from typing import Any

import pytest

from bot.discord_ui import texts
from bot.luma.prices import CREDIT
from bot.store.models import FailureKind, JobState
from tests.e2e.harness import PROVIDER_TOKEN, WAIT, BotHarness
from tests.fakes.luma_provider import AGENTS_PREFIX, FakeLumaProvider

SECOND_TOKEN = "provider-second-key"


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest, provider: FakeLumaProvider) -> dict[str, Any]:
    if request.node.get_closest_marker("two_keys"):
        provider.add_token(SECOND_TOKEN)
        return {
            "luma_providers": "acedatacloud",
            "provider_acedatacloud_tokens": f"{PROVIDER_TOKEN},{SECOND_TOKEN}",
            "provider_acedatacloud_base_url": provider.url_for("acedatacloud"),
            "quota_default_limit": 20,
        }
    return {
        "luma_providers": "luma,dream-machine",
        "provider_luma_tokens": PROVIDER_TOKEN,
        "provider_luma_base_url": provider.url_for("luma"),
        "provider_dream_machine_tokens": PROVIDER_TOKEN,
        "provider_dream_machine_base_url": provider.url_for("dream-machine"),
        "quota_default_limit": 20,
    }


def creates(provider: FakeLumaProvider, name: str) -> int:
    return provider.count("create", provider=name)


async def test_new_jobs_fail_over_to_the_next_provider_and_return_when_it_heals(bot: BotHarness) -> None:
    alice, provider = bot.scene.alice, bot.provider
    # The preferred provider answers every create with a gateway error (the task may or may not exist).
    provider.inject(502, raw_text="<html>Bad Gateway</html>", path=f"{AGENTS_PREFIX}/generations", times=None)

    first = await bot.generate(alice, "a fox running through snow")
    failure = await bot.result(first)
    job = await bot.delivered(first.job_id)
    assert (job.state, job.failure_kind) == (JobState.FAILED, FailureKind.UNCONFIRMED)
    assert "may or may not have started" in failure.content
    assert creates(provider, "luma") == 1  # never sent twice

    # The next jobs go straight to the second provider, each created once, delivered once, charged once.
    runs = [await bot.generate(alice, f"a paper boat, take {i}") for i in range(3)]
    charged = 0
    for run in runs:
        await bot.result(run)
        done = await bot.delivered(run.job_id)
        assert (done.state, done.provider) == (JobState.COMPLETED, "dream-machine")
        assert len(bot.result_posts(run.job_id)) == 1
        charged += done.cost
    assert creates(provider, "luma") == 1 and creates(provider, "dream-machine") == 3
    quota = await bot.quota(alice)
    assert (quota.used, quota.held) == (charged, 0)  # what each was quoted, once

    # The first provider heals: once its cool-down is over, a probe goes to it and new jobs return to it.
    provider.clear_faults()
    back = None
    for attempt in range(20):
        run = await bot.generate(alice, f"a lighthouse at dusk, take {attempt}")
        await bot.result(run)
        done = await bot.delivered(run.job_id)
        assert done.state == JobState.COMPLETED
        if done.provider == "luma":
            back = run
            break
    assert back is not None, "no job went back to the healed provider"
    after = await bot.generate(alice, "one more after the recovery")
    await bot.result(after)
    assert (await bot.delivered(after.job_id)).provider == "luma"


@pytest.mark.two_keys
async def test_a_key_out_of_funds_rests_while_the_other_key_makes_the_videos(bot: BotHarness) -> None:
    alice, provider = bot.scene.alice, bot.provider
    provider.set_balance_exhausted(True, token=PROVIDER_TOKEN)

    runs = [await bot.generate(alice, f"a windmill in the rain, take {i}") for i in range(4)]
    for run in runs:
        await bot.result(run)
        assert (await bot.delivered(run.job_id)).state == JobState.COMPLETED
    # Every video was made with the second key; the first was asked, refused, and rested.
    assert {task.token for task in provider.tasks.values()} == {SECOND_TOKEN}
    refused = [r for r in provider.request_log if r.kind == "create" and r.authorization == f"Bearer {PROVIDER_TOKEN}"]
    assert 1 <= len(refused) < len(runs)
    quota = await bot.quota(alice)
    assert (quota.used, quota.held) == (4 * CREDIT, 0)

    record = await bot.slash(bot.scene.admin, "providers", name="luma-admin")
    answer = await bot.answer(record)
    assert answer.ephemeral
    report = answer.embeds[0]["fields"][0]["value"]
    assert f"key `…{PROVIDER_TOKEN[-4:]}`" in report and "resting (balance)" in report
    assert f"key `…{SECOND_TOKEN[-4:]}`: 0/5 running · available" in report
    assert PROVIDER_TOKEN not in str(answer.embeds) and SECOND_TOKEN not in str(answer.embeds)


async def test_members_without_manage_server_cannot_see_the_providers(bot: BotHarness) -> None:
    record = await bot.slash(bot.scene.bob, "providers", name="luma-admin")
    answer = await bot.answer(record)
    assert answer.ephemeral and texts.NEEDS_MANAGE_GUILD == answer.content
    assert not answer.embeds


async def test_healthz_reports_each_provider_and_key(bot: BotHarness) -> None:
    import aiohttp

    port = bot.app.web.port  # type: ignore[union-attr]
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/healthz", timeout=aiohttp.ClientTimeout(total=WAIT)) as resp:
            body = await resp.json()
    assert list(body["providers"]) == ["luma", "dream-machine"]
    assert all(p["healthy"] for p in body["providers"].values())
    assert [k["key"] for k in body["providers"]["luma"]["keys"]] == [f"…{PROVIDER_TOKEN[-4:]}"]
