"""Self-test of the fake Discord: an unmodified discord.py bot driven over the real protocol.

The bot below is plain ``discord.ext.commands.Bot`` code.  The only changes to
discord.py are the two documented redirections (``Route.BASE`` and
``DiscordWebSocket.DEFAULT_GATEWAY``), applied by ``fake.run_client`` and
restored afterwards (checked by the ``discord_py_untouched`` fixture).
"""

from __future__ import annotations

import asyncio
import importlib.util
import io
import json
import sys
import textwrap
import zlib
from dataclasses import dataclass
from typing import Any

import aiohttp
import discord
import discord.gateway
import discord.http
import pytest
from discord import app_commands
from discord.app_commands import Choice
from discord.ext import commands

from tests.fakes.discord import Channel, FakeDiscord, Guild, InteractionRejected, Member, MessageFlag, Role

pytestmark = pytest.mark.filterwarnings("error")

GUILD_NAME = "Luma Lab"


class Probe:
    """Collects what happened inside the bot so tests can await it instead of sleeping."""

    def __init__(self) -> None:
        self._futures: dict[str, asyncio.Future[Any]] = {}
        self.release_late = asyncio.Event()

    def _future(self, key: str) -> asyncio.Future[Any]:
        if key not in self._futures:
            self._futures[key] = asyncio.get_running_loop().create_future()
        return self._futures[key]

    def set(self, key: str, value: Any) -> None:
        future = self._future(key)
        if not future.done():
            future.set_result(value)

    async def get(self, key: str, timeout: float = 5.0) -> Any:  # noqa: ASYNC109 - test helper mirrors fake API
        return await asyncio.wait_for(self._future(key), timeout)


class RetryView(discord.ui.View):
    def __init__(self, prompt: str) -> None:
        # No timeout: discord.py keeps a View's timeout task running past Client.close().
        super().__init__(timeout=None)
        self.prompt = prompt

    @discord.ui.button(label="Retry", style=discord.ButtonStyle.primary, custom_id="luma:retry")
    async def retry(self, interaction: discord.Interaction, button: discord.ui.Button[RetryView]) -> None:
        button.disabled = True
        await interaction.response.edit_message(content=f"Retrying {self.prompt!r}", view=self)


class ExtendModal(discord.ui.Modal):
    def __init__(self, source: discord.Message) -> None:
        super().__init__(title="Extend video", custom_id="luma:extend-modal")
        self.source = source
        self.how = discord.ui.TextInput(custom_id="how", style=discord.TextStyle.long, max_length=200)
        self.add_item(discord.ui.Label(text="How should it continue?", component=self.how))

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(
            f"Extending {self.source.id}: {self.how.value}", ephemeral=True
        )


def build_bot(guild_id: int, probe: Probe) -> commands.Bot:
    # guild_ready_timeout: discord.py waits that long after the last GUILD_CREATE before on_ready.
    bot = commands.Bot(
        command_prefix=commands.when_mentioned, intents=discord.Intents.default(), guild_ready_timeout=0.1
    )
    guild = discord.Object(guild_id)
    luma = app_commands.Group(name="luma", description="Make videos with Luma")

    @luma.command(name="generate", description="Generate a video")
    @app_commands.choices(aspect_ratio=[Choice(name="16:9", value="16:9"), Choice(name="9:16", value="9:16")])
    async def generate(
        interaction: discord.Interaction,
        prompt: str,
        aspect_ratio: str = "16:9",
        start_image: discord.Attachment | None = None,
    ) -> None:
        await interaction.response.defer(thinking=True)
        source = start_image.filename if start_image else "nothing"
        await interaction.followup.send(
            f"Generated {prompt!r} at {aspect_ratio} from {source}", view=RetryView(prompt)
        )

    @luma.command(name="extend", description="Extend a video")
    async def extend(interaction: discord.Interaction, video: str) -> None:
        await interaction.response.send_message(f"extending {video}")

    @extend.autocomplete("video")
    async def extend_autocomplete(interaction: discord.Interaction, current: str) -> list[Choice[str]]:
        return [Choice(name=f"{current} clip {i}", value=f"{current}-{i}") for i in range(3)]

    @luma.command(name="late", description="Answers after the deadline")
    async def late(interaction: discord.Interaction) -> None:
        await probe.release_late.wait()
        try:
            await interaction.response.send_message("sorry, late")
        except discord.HTTPException as exc:
            probe.set("late", exc)

    @luma.command(name="slow", description="Follows up after the token expired")
    async def slow(interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        await probe.release_late.wait()
        try:
            await interaction.followup.send("finally")
        except discord.HTTPException as exc:
            probe.set("slow", exc)

    @luma.command(name="double", description="Answers twice")
    async def double(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("first")
        # A second handler (or process) answering the same interaction sends this very request;
        # discord.py's InteractionResponse would refuse locally, so go through its HTTP client.
        route = discord.http.Route(
            "POST",
            "/interactions/{interaction_id}/{interaction_token}/callback",
            interaction_id=interaction.id,
            interaction_token=interaction.token,
        )
        try:
            await interaction.client.http.request(route, json={"type": 4, "data": {"content": "second"}})
        except discord.HTTPException as exc:
            probe.set("double", exc)

    @luma.command(name="long", description="Says too much")
    async def long(interaction: discord.Interaction) -> None:
        try:
            await interaction.response.send_message("x" * 2001)
        except discord.HTTPException as exc:
            probe.set("long", exc)
            await interaction.response.send_message("shortened")

    bot.tree.add_command(luma, guild=guild)

    admin = app_commands.Group(name="admin", description="Admin tools")
    config = app_commands.Group(name="config", description="Settings", parent=admin)

    @config.command(name="set", description="Every option type at once")
    async def config_set(
        interaction: discord.Interaction,
        member: discord.Member,
        role: discord.Role,
        channel: discord.TextChannel,
        count: int,
        enabled: bool,
        ratio: float,
        file: discord.Attachment,
    ) -> None:
        probe.set("config", (member, role, channel, count, enabled, ratio, file, interaction.permissions))
        await interaction.response.send_message("saved", ephemeral=True)

    bot.tree.add_command(admin, guild=guild)

    @bot.tree.context_menu(name="Extend video", guild=guild)
    async def extend_menu(interaction: discord.Interaction, message: discord.Message) -> None:
        await interaction.response.send_modal(ExtendModal(message))

    @bot.event
    async def on_message(message: discord.Message) -> None:
        if bot.user in message.mentions and message.author != bot.user:
            probe.set("mentioned", message)

    return bot


@dataclass
class World:
    guild: Guild
    channel: Channel
    role: Role
    alice: Member


@pytest.fixture(autouse=True)
def discord_py_untouched() -> Any:
    base, gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    yield
    assert discord.http.Route.BASE == base
    assert discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY == gateway


@pytest.fixture
async def fake() -> Any:
    async with FakeDiscord() as fake:
        yield fake
    current = asyncio.current_task()
    leftovers = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    assert not leftovers, f"leaked tasks: {leftovers}"


@pytest.fixture
def world(fake: FakeDiscord) -> World:
    guild = fake.add_guild(GUILD_NAME)
    channel = fake.add_channel(guild, name="videos", topic="Luma output")
    role = fake.add_role(guild, "Creators", permissions=int(discord.Permissions(manage_messages=True).value))
    alice = fake.add_member(guild, "alice", roles=[role])
    return World(guild, channel, role, alice)


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
async def bot(fake: FakeDiscord, world: World, probe: Probe) -> Any:
    bot = build_bot(world.guild.id, probe)
    async with fake.run_client(bot):
        await bot.tree.sync(guild=discord.Object(world.guild.id))
        yield bot
    assert bot.is_closed()
    assert fake.unknown_routes == []
    assert fake.internal_errors == []


async def test_bot_connects_and_parses_ready_and_guild_create(
    fake: FakeDiscord, world: World, bot: commands.Bot
) -> None:
    guild = bot.get_guild(world.guild.id)
    assert guild is not None and guild.name == GUILD_NAME
    assert guild.get_channel(world.channel.id).topic == "Luma output"
    assert guild.get_role(world.role.id).permissions.manage_messages
    assert guild.me.id == fake.bot_user.id == bot.user.id
    assert bot.application_id == fake.application_id
    # Transport compression really happened, with the scheme discord.py negotiated:
    # zstd-stream whenever zstandard is importable (zlib-stream is covered by test_zlib_stream_client).
    session = fake.session
    negotiated = discord.utils._ActiveDecompressionContext.COMPRESSION_TYPE
    assert session.connection.compress == negotiated
    if importlib.util.find_spec("zstandard") is not None:
        assert negotiated == "zstd-stream"
    assert session.connection.frames_sent == session.connection.binary_frames_sent > 0
    ready = session.events_named("READY")[0]["d"]
    assert ready["resume_gateway_url"] == fake.resume_gateway_url
    assert session.event_names()[:2] == ["READY", "GUILD_CREATE"]


async def test_tree_sync_registers_commands(fake: FakeDiscord, world: World, bot: commands.Bot) -> None:
    registered = {(c.name, c.type) for c in fake.commands(world.guild)}
    assert registered == {("luma", 1), ("admin", 1), ("Extend video", 3)}
    luma = fake.command("luma", world.guild)
    assert {o["name"] for o in luma.options} == {"generate", "extend", "late", "slow", "double", "long"}
    assert fake.requests_to("PUT", rf"/applications/{fake.application_id}/guilds/{world.guild.id}/commands")
    # Re-syncing keeps command ids stable, like Discord.
    again = await bot.tree.sync(guild=discord.Object(world.guild.id))
    assert {c.id for c in again} == {c.id for c in fake.commands(world.guild)}


async def test_slash_command_defers_then_follows_up(
    fake: FakeDiscord, world: World, bot: commands.Bot
) -> None:
    image = fake.make_attachment("start.png", "image/png", 2048)
    record = await fake.invoke_slash(
        world.guild,
        world.channel,
        world.alice,
        "luma",
        subcommand="generate",
        options={"prompt": "a cat surfing", "aspect_ratio": "9:16", "start_image": image},
    )
    assert (await record.wait_response())["type"] == 5
    [followup] = await record.wait_followups(1)
    assert followup.content == "Generated 'a cat surfing' at 9:16 from start.png"
    # The first follow-up after a "thinking" defer replaces the loading message.
    assert followup.id == record.original.id and not followup.loading
    assert [b["custom_id"] for b in followup.buttons()] == ["luma:retry"]
    assert fake.messages(world.channel) == [followup]


async def test_subcommand_group_with_every_option_type(
    fake: FakeDiscord, world: World, bot: commands.Bot, probe: Probe
) -> None:
    clip = fake.make_attachment("clip.mp4", "video/mp4", 4096)
    options = {
        "member": world.alice,
        "role": world.role,
        "channel": world.channel,
        "count": 3,
        "enabled": True,
        "ratio": 0.5,
        "file": clip,
    }
    record = await fake.invoke_slash(
        world.guild, world.channel, world.alice, "admin", subcommand="config set", options=options
    )
    member, role, channel, count, enabled, ratio, file, permissions = await probe.get("config")
    assert isinstance(member, discord.Member) and member.id == world.alice.id
    assert member.get_role(world.role.id) is not None
    assert (role.id, channel.id, count, enabled, ratio) == (world.role.id, world.channel.id, 3, True, 0.5)
    assert (file.filename, file.content_type, file.url) == ("clip.mp4", "video/mp4", clip["url"])
    assert file.url.startswith("https://cdn.discordapp.com/attachments/")
    assert permissions.manage_messages  # from alice's role, sent as member.permissions
    assert (await record.wait_original()).ephemeral
    with pytest.raises(ValueError, match="required option"):
        await fake.invoke_slash(world.guild, world.channel, world.alice, "admin", subcommand="config set")


async def test_response_after_ack_deadline_gets_unknown_interaction(
    fake: FakeDiscord, world: World, bot: commands.Bot, probe: Probe
) -> None:
    fake.ack_deadline = 0.2
    record = await fake.invoke_slash(world.guild, world.channel, world.alice, "luma", subcommand="late")
    with pytest.raises(InteractionRejected, match="never answered"):
        await record.wait_response()
    assert record.expired
    probe.release_late.set()
    error = await probe.get("late")
    assert isinstance(error, discord.NotFound) and error.code == 10062
    assert (await record.wait_rejection()).code == 10062
    assert fake.messages(world.channel) == []


async def test_followup_after_token_expiry_gets_invalid_webhook_token(
    fake: FakeDiscord, world: World, bot: commands.Bot, probe: Probe
) -> None:
    fake.token_ttl = 0.3
    record = await fake.invoke_slash(world.guild, world.channel, world.alice, "luma", subcommand="slow")
    assert (await record.wait_response())["type"] == 5
    await fake.wait_for(lambda: record.token_expired)
    probe.release_late.set()
    error = await probe.get("slow")
    assert (error.status, error.code) == (401, 50027)
    assert record.original.loading  # the "thinking" message is stuck, as on Discord


async def test_second_response_gets_already_acknowledged(
    fake: FakeDiscord, world: World, bot: commands.Bot, probe: Probe
) -> None:
    record = await fake.invoke_slash(world.guild, world.channel, world.alice, "luma", subcommand="double")
    error = await probe.get("double")
    assert isinstance(error, discord.HTTPException) and (error.status, error.code) == (400, 40060)
    assert record.response["data"]["content"] == "first"
    assert [m.content for m in fake.messages(world.channel)] == ["first"]


async def test_overlong_message_gets_invalid_form_body(
    fake: FakeDiscord, world: World, bot: commands.Bot, probe: Probe
) -> None:
    record = await fake.invoke_slash(world.guild, world.channel, world.alice, "luma", subcommand="long")
    error = await probe.get("long")
    assert (error.status, error.code) == (400, 50035)
    assert "In data.content: Must be 2000 or fewer in length." in error.text
    # A rejected body does not acknowledge the interaction: the bot's retry went through.
    assert (await record.wait_original()).content == "shortened"


async def test_button_press_updates_the_message(fake: FakeDiscord, world: World, bot: commands.Bot) -> None:
    record = await fake.invoke_slash(
        world.guild, world.channel, world.alice, "luma", subcommand="generate", options={"prompt": "waves"}
    )
    [message] = await record.wait_followups(1)
    press = await fake.press_button(world.guild, world.channel, world.alice, message, "luma:retry")
    assert (await press.wait_response())["type"] == 7
    updated = await press.wait_original()
    assert updated.id == message.id and updated.content == "Retrying 'waves'"
    assert updated.buttons()[0]["disabled"] is True
    with pytest.raises(ValueError, match="disabled"):
        await fake.press_button(world.guild, world.channel, world.alice, message, "luma:retry")


async def test_context_menu_modal_round_trip(fake: FakeDiscord, world: World, bot: commands.Bot) -> None:
    target = await fake.post_message(world.guild, world.channel, world.alice, "my video")
    menu = await fake.invoke_message_context_menu(
        world.guild, world.channel, world.alice, "Extend video", target
    )
    modal = await menu.wait_modal()
    assert modal["title"] == "Extend video"
    assert modal["components"][0]["type"] == 18  # discord.py 2.7 Label wrapping the text input
    submit = await fake.submit_modal(
        world.guild, world.channel, world.alice, "luma:extend-modal", {"how": "zoom out"}
    )
    reply = await submit.wait_original()
    assert reply.content == f"Extending {target.id}: zoom out"
    assert reply.flags & MessageFlag.EPHEMERAL


async def test_autocomplete_returns_choices(fake: FakeDiscord, world: World, bot: commands.Bot) -> None:
    choices = await fake.autocomplete(
        world.guild, world.channel, world.alice, "luma", subcommand="extend", focused="video", value="sun"
    )
    assert choices == [{"name": f"sun clip {i}", "value": f"sun-{i}"} for i in range(3)]


async def test_gateway_outage_resumes_and_replays_missed_events(
    fake: FakeDiscord, world: World, bot: commands.Bot, probe: Probe
) -> None:
    session = fake.session
    async with fake.gateway_outage():
        missed = await fake.post_message(
            world.guild, world.channel, world.alice, "still there?", mention_bot=True
        )
        assert not session.connected
    seen = await probe.get("mentioned")
    assert seen.id == missed.id and seen.content.endswith("still there?")
    assert session.resumes == 1 and len(fake.sessions) == 1
    # discord.py resumed against resume_gateway_url and got the missed MESSAGE_CREATE by replay.
    assert session.connection.path == "/resume" and session.connection.replayed == 1
    later = await fake.invoke_slash(
        world.guild, world.channel, world.alice, "luma", subcommand="extend", options={"video": "v1"}
    )
    assert (await later.wait_response())["data"]["content"] == "extending v1"


async def test_reply_to_bot_pings_it_and_records_allowed_mentions(
    fake: FakeDiscord, world: World, bot: commands.Bot, probe: Probe
) -> None:
    channel = bot.get_channel(world.channel.id)
    sent = await channel.send(f"hello {world.role.mention}", allowed_mentions=discord.AllowedMentions.none())
    stored = fake.get_message(sent.id)
    assert stored.allowed_mentions == {"parse": []} and stored.mention_roles == []
    reply = await fake.post_message(world.guild, world.channel, world.alice, "nice!", reply_to=stored)
    seen = await probe.get("mentioned")
    assert seen.id == reply.id and seen.reference.message_id == sent.id
    # Without the MESSAGE_CONTENT intent the bot still sees content of messages that ping it.
    assert seen.content == "nice!"


async def test_rest_rules_for_deleted_and_forbidden_targets(
    fake: FakeDiscord, world: World, bot: commands.Bot
) -> None:
    channel = bot.get_channel(world.channel.id)
    with pytest.raises(discord.HTTPException) as invalid:
        await channel.send(embed=discord.Embed(title="t" * 257))
    assert invalid.value.code == 50035
    assert "In embeds.0.title: Must be 256 or fewer in length." in invalid.value.text

    sent = await channel.send("soon gone")
    fake.delete_message(world.channel, sent.id)
    with pytest.raises(discord.NotFound) as unknown_message:
        await sent.edit(content="edited")
    assert unknown_message.value.code == 10008

    doomed = fake.add_channel(world.guild, name="doomed")
    await fake.sync()
    doomed_channel = bot.get_channel(doomed.id)
    fake.delete_channel(doomed)
    with pytest.raises(discord.NotFound) as unknown_channel:
        await doomed_channel.send("hello?")
    assert unknown_channel.value.code == 10003

    fake.forbid_channel(world.channel)
    with pytest.raises(discord.Forbidden) as forbidden:
        await channel.send("let me in")
    assert forbidden.value.code == 50013
    await fake.sync()
    assert not channel.permissions_for(channel.guild.me).send_messages


async def test_file_upload_and_thread_from_message(
    fake: FakeDiscord, world: World, bot: commands.Bot
) -> None:
    fake.cdn_base = fake.http_base  # make attachment URLs downloadable from the fake
    png = (
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
        + (16).to_bytes(4, "big")
        + (9).to_bytes(4, "big")
        + b"\x08\x02"
    )
    channel = bot.get_channel(world.channel.id)
    sent = await channel.send("render", file=discord.File(io.BytesIO(png), "render.png"))
    stored = fake.get_message(sent.id)
    assert stored.files[0].data == png
    assert stored.attachments[0]["content_type"] == "image/png"
    assert (sent.attachments[0].width, sent.attachments[0].height) == (16, 9)
    assert await sent.attachments[0].read() == png

    thread = await sent.create_thread(name="render feedback")
    assert thread.id == sent.id and [t.id for t in fake.threads] == [sent.id]
    await fake.sync()
    assert bot.get_guild(world.guild.id).get_thread(thread.id).name == "render feedback"
    await thread.send("first!")
    assert [m.content for m in fake.messages(thread.id)] == ["first!"]


async def test_rate_limits_are_retried(fake: FakeDiscord, world: World, bot: commands.Bot) -> None:
    post_path = rf"/channels/{world.channel.id}/messages"
    post_429 = fake.inject_rest_error("POST", post_path, 429, retry_after=0.05)
    callback_429 = fake.inject_rest_error("POST", r"/interactions/\d+/[^/]+/callback", 429, retry_after=0.05)

    sent = await bot.get_channel(world.channel.id).send("after a 429")
    assert post_429.hits == 1
    assert [r.status for r in fake.requests_to("POST", post_path)] == [429, 200]
    assert fake.get_message(sent.id).content == "after a 429"

    record = await fake.invoke_slash(
        world.guild, world.channel, world.alice, "luma", subcommand="extend", options={"video": "v2"}
    )
    assert (await record.wait_response())["data"]["content"] == "extending v2"
    assert callback_429.hits == 1


async def test_wrong_token_is_rejected(fake: FakeDiscord, world: World) -> None:
    client = discord.Client(intents=discord.Intents.default())
    with fake.redirect_discord_py():
        with pytest.raises(discord.LoginFailure):
            await client.login("not-the-token")
        await client.close()
    assert fake.requests[-1].status == 401

    # IDENTIFY with a bad token closes the gateway with 4004; frames are zlib-stream framed.
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(fake.gateway_url + "?v=10&encoding=json&compress=zlib-stream") as ws:
            hello_frame = await ws.receive_bytes()
            assert hello_frame.endswith(b"\x00\x00\xff\xff")
            hello = json.loads(zlib.decompressobj().decompress(hello_frame))
            assert hello["op"] == 10 and hello["d"]["heartbeat_interval"] > 0
            await ws.send_json({"op": 2, "d": {"token": "wrong", "intents": 513, "properties": {}}})
            closing = await ws.receive()
            assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == 4004


ZLIB_CLIENT = textwrap.dedent(
    """
    import sys
    # Simulate an install without zstandard: discord.py then negotiates zlib-stream.
    sys.modules["zstandard"] = None
    sys.modules["compression.zstd"] = None
    import discord, discord.gateway, discord.http, yarl

    api_base, gateway_url, token = sys.argv[1:4]
    discord.http.Route.BASE = api_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)
    assert discord.utils._ActiveDecompressionContext.COMPRESSION_TYPE == "zlib-stream"
    client = discord.Client(intents=discord.Intents.default())

    @client.event
    async def on_message(message):
        if client.user in message.mentions:
            await message.reply("pong: " + message.content, mention_author=False)
            await client.close()

    client.run(token, log_handler=None)
    """
)


async def test_zlib_stream_client(fake: FakeDiscord, world: World) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        ZLIB_CLIENT,
        fake.api_base,
        fake.gateway_url,
        fake.token,
        stderr=asyncio.subprocess.PIPE,
    )
    exited = asyncio.ensure_future(proc.wait())
    try:
        ready = asyncio.ensure_future(fake.wait_until_ready(timeout=15))
        await asyncio.wait({ready, exited}, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():
            ready.cancel()
            stderr = (await proc.stderr.read()).decode()
            pytest.fail(f"zlib client exited with {proc.returncode} before connecting:\n{stderr}")
        session = ready.result()
        assert session.connection.compress == "zlib-stream"
        ping = await fake.post_message(world.guild, world.channel, world.alice, "ping", mention_bot=True)
        pong = await fake.wait_for_message(world.channel, author=fake.bot_user, after=ping)
        assert pong.content == f"pong: <@{fake.bot_user.id}> ping"
        assert pong.message_reference["message_id"] == str(ping.id)
        assert await asyncio.wait_for(exited, 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
        await exited
