"""Start-up: where discord.py is pointed, command sync only when commands changed, the invite URL, and one
clear line (no traceback) when Discord refuses the token or the intent."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import parse_qs, urlsplit

import pytest

from bot.discord_ui.permissions import BOT_PERMISSIONS
from tests.e2e.harness import WAIT, BotHarness


def _command_puts(harness: BotHarness) -> list:
    return harness.fake.requests_to(
        "PUT", rf"/applications/{harness.fake.application_id}/(guilds/\d+/)?commands"
    )


async def test_commands_are_synced_to_the_configured_server(harness: BotHarness) -> None:
    await harness.start()
    [put] = _command_puts(harness)
    assert put.path.endswith(f"/guilds/{harness.scene.guild.id}/commands")
    registered = {(c.name, c.type) for c in harness.fake.commands(harness.scene.guild)}
    assert registered == {("luma", 1), ("luma-admin", 1), ("Extend video", 3)}
    luma = harness.fake.command("luma", harness.scene.guild)
    assert {o["name"] for o in luma.options} == {"generate", "extend", "quota", "history"}
    assert harness.fake.commands(None) == []


async def test_unchanged_commands_are_not_synced_again_after_a_restart(harness: BotHarness) -> None:
    await harness.start()
    await harness.restart()
    assert len(_command_puts(harness)) == 1


@pytest.mark.parametrize("settings_overrides", [{"discord_guild_ids": []}])
async def test_without_server_ids_commands_are_synced_globally(harness: BotHarness) -> None:
    await harness.start()
    [put] = _command_puts(harness)
    assert put.path == f"/applications/{harness.fake.application_id}/commands"
    assert {c.name for c in harness.fake.commands(None)} == {"luma", "luma-admin", "Extend video"}


async def test_the_invite_url_asks_for_exactly_the_needed_permissions(
    harness: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="bot.app"):
        await harness.start()
    [line] = [r.getMessage() for r in caplog.records if "invite" in r.getMessage()]
    query = parse_qs(urlsplit(line.split()[-1]).query)
    assert query["client_id"] == [str(harness.fake.application_id)]
    assert query["scope"] == ["bot applications.commands"]
    permissions = int(query["permissions"][0])
    assert (
        permissions
        == BOT_PERMISSIONS.value
        == (1 << 10) | (1 << 11) | (1 << 38) | (1 << 35) | (1 << 14) | (1 << 15) | (1 << 16)
    )


async def test_a_rejected_token_ends_the_bot_with_one_clear_line(
    harness: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    app = harness.make_app(discord_token="not-the-right-token")
    with caplog.at_level(logging.INFO):
        code = await asyncio.wait_for(app.run(), WAIT)
    assert code != 0
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        "Discord rejected DISCORD_TOKEN: copy the bot's token again from the Developer Portal "
        "(your application → Bot → Reset Token)"
    ]
    assert all(r.exc_info is None for r in caplog.records)


@pytest.mark.parametrize("discord_options", [{"privileged_intents": ()}])
@pytest.mark.parametrize("settings_overrides", [{"discord_message_content": True}])
async def test_a_refused_message_content_intent_ends_the_bot_with_one_clear_line(
    harness: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    app = harness.make_app()
    with caplog.at_level(logging.INFO):
        code = await asyncio.wait_for(app.run(), WAIT)
    assert code != 0
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].startswith("Discord refused the Message Content intent")
    assert all(r.exc_info is None for r in caplog.records if r.levelno >= logging.ERROR)


async def test_stopping_closes_cleanly(harness: BotHarness) -> None:
    await harness.start()
    assert await harness.stop() == 0


@pytest.mark.parametrize("settings_overrides", [{"shard_count": 1, "shard_ids": [0]}])
async def test_a_sharded_process_connects_its_shards_and_serves_commands(harness: BotHarness) -> None:
    await harness.start()
    assert harness.fake.session.events_named("READY")[0]["d"]["shard"] == [0, 1]
    run = await harness.generate(harness.scene.alice, "a sharded sunrise")
    await harness.result(run)


async def test_callbacks_are_served_when_a_public_url_is_set(harness: BotHarness) -> None:
    import dataclasses
    import socket

    import aiohttp

    from bot.jobs.policy import PollPolicy

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    # Polling too slow to matter: only the provider's callback can deliver within the test.
    harness.engine_config = dataclasses.replace(
        harness.engine_config,
        callback_base_url=base,
        poll=PollPolicy(first_poll=300, min_interval=300, max_interval=300, coalesce=0.05),
    )
    await harness.start(callback_public_url=base, http_listen=f"127.0.0.1:{port}")
    async with aiohttp.ClientSession() as http, http.get(f"{base}/healthz") as response:
        body = await response.json()
        assert response.status == 200 and body["ok"] is True and body["discord"]["ok"] is True
    run = await harness.generate(harness.scene.alice, "a called-back comet")
    await harness.result(run)
    # The callback is only a hint: the engine confirms it with one poll, long before its own schedule.
    assert harness.provider.count("poll") == 1
    assert [c.status for c in harness.provider.callbacks] == [200]


@pytest.mark.parametrize("sharded", [False, True])
@pytest.mark.parametrize(
    ("close_code", "line"),
    [
        (4004, "Discord rejected DISCORD_TOKEN: copy the bot's token again from the Developer Portal "
               "(your application → Bot → Reset Token)"),
        (4014, "Discord refused the Message Content intent: switch it on in the Developer Portal "
               "(your application → Bot → Privileged Gateway Intents) or set DISCORD_MESSAGE_CONTENT=false"),
    ],
)
async def test_a_gateway_that_refuses_the_session_ends_the_bot_with_one_clear_line(
    harness: BotHarness, caplog: pytest.LogCaptureFixture, close_code: int, line: str, sharded: bool
) -> None:
    # The REST API accepts the token; only the gateway closes the session, as Discord does with 4004/4014.
    harness.fake.gateway.refuse_sessions = close_code
    app = harness.make_app(**({"shard_count": 1, "shard_ids": [0]} if sharded else {}))
    with caplog.at_level(logging.INFO):
        code = await asyncio.wait_for(app.run(), WAIT)
    assert code == 1
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == [line]
    assert all(r.exc_info is None for r in errors)
