"""The running bot: the commands.Bot subclass (cogs, dynamic buttons, the job engine, command sync) and `run`,
which opens the database, the HTTP session and the provider client, and closes them all again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

import aiohttp
import discord
import discord.gateway
import discord.http
import yarl
from discord.ext import commands

from bot.discord_ui.buttons import DYNAMIC_ITEMS
from bot.discord_ui.delivery import DiscordDelivery
from bot.discord_ui.errors import on_app_command_error
from bot.discord_ui.permissions import invite_url
from bot.discord_ui.sync import SyncState, state_dir_for, sync_commands
from bot.jobs.engine import EngineConfig, JobEngine, engine_config_from_settings
from bot.jobs.providers import ProviderPool
from bot.luma.prices import Pricing
from bot.metrics import METRICS
from bot.settings import Settings
from bot.store.db import close_database, open_database
from bot.store.models import QuotaPeriod
from bot.store.quotas import QuotaBook, QuotaDefaults
from bot.web import ServerLimits, WebServer, start_server
from bot.web.health import GatewayWatch, health_report

log = logging.getLogger(__name__)

EXTENSIONS: tuple[str, ...] = ("cogs.luma", "cogs.admin", "cogs.events")
# On shutdown, requests to the provider already on the wire get this long to finish (jobs stay resumable).
SHUTDOWN_GRACE = 5.0


def bot_intents(settings: Settings) -> discord.Intents:
    """Only what the bot uses: server and channel state, and messages (for replies to results). Message
    content is privileged; without it Discord still sends the text of messages that ping the bot."""
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_messages = True
    intents.message_content = settings.discord_message_content
    return intents


class _LumaBotBase:
    """The bot's own behaviour, shared by the plain and the sharded bot classes."""

    def __init__(
        self,
        settings: Settings,
        *,
        engine: JobEngine,
        quotas: QuotaBook,
        sync_state: SyncState | None = None,
        **options: Any,
    ) -> None:
        if settings.shard_count:
            options.setdefault("shard_count", settings.shard_count)
            if settings.shard_ids:
                options.setdefault("shard_ids", list(settings.shard_ids))
        super().__init__(  # type: ignore[call-arg]
            command_prefix=commands.when_mentioned,
            intents=bot_intents(settings),
            # The safe default for every message: nothing pings. Results opt in to ping their requester.
            allowed_mentions=discord.AllowedMentions.none(),
            help_command=None,
            **options,
        )
        self.settings = settings
        self.engine = engine
        self.quotas = quotas
        self.delivery = DiscordDelivery(self)  # type: ignore[arg-type]
        self.sync_state = sync_state or SyncState(state_dir_for(settings.database_url))
        self.shutting_down = False
        self.tree.error(on_app_command_error)  # type: ignore[attr-defined]

    async def setup_hook(self) -> None:
        bot: Any = self
        for extension in EXTENSIONS:
            await bot.load_extension(extension)
        bot.add_dynamic_items(*DYNAMIC_ITEMS)
        self.engine.set_port(self.delivery)
        await self.engine.start()
        assert bot.application_id is not None
        if self._syncs_commands:
            try:
                await sync_commands(
                    bot.tree, bot.application_id, self.settings.discord_guild_ids, self.sync_state
                )
            except discord.HTTPException as exc:
                # The commands registered last time keep working; the next start tries again.
                log.error("could not sync slash commands: %s", exc)
        log.info("invite the bot with: %s", invite_url(bot.application_id))

    @property
    def _syncs_commands(self) -> bool:
        # Commands belong to the application, not to a shard: of several processes, the one with shard 0 syncs.
        return not self.settings.shard_ids or 0 in self.settings.shard_ids

    async def on_message(self, message: discord.Message, /) -> None:
        # No prefix commands: replies to results are handled by a listener in cogs/events.py.
        return

    async def close(self) -> None:
        self.shutting_down = True
        await self.engine.stop(SHUTDOWN_GRACE)
        await self.delivery.close()
        await super().close()  # type: ignore[misc]


class LumaBot(_LumaBotBase, commands.Bot):
    """The bot in one process with one gateway connection (or one shard chosen by discord.py)."""


class ShardedLumaBot(_LumaBotBase, commands.AutoShardedBot):
    """The bot running the shards SHARD_IDS of SHARD_COUNT; other processes run the others."""


def make_bot(settings: Settings, *, engine: JobEngine, quotas: QuotaBook, **options: Any) -> LumaBot:
    # The bot never joins voice: discord.py's warnings about missing voice libraries are only noise.
    discord.VoiceClient.warn_nacl = False
    discord.VoiceClient.warn_dave = False
    cls = ShardedLumaBot if settings.shard_count else LumaBot
    return cls(settings, engine=engine, quotas=quotas, **options)  # type: ignore[return-value]


def count_discord_errors(bot: Any) -> None:
    """Count Discord REST calls that failed after discord.py's own retries of 429s and 5xx (for /metrics)."""
    http = bot.http
    original = http.request

    async def request(route: discord.http.Route, **kwargs: Any) -> Any:
        try:
            return await original(route, **kwargs)
        except discord.HTTPException as exc:
            METRICS.discord_error(route.method, exc.status)
            raise

    http.request = request


# Close codes with which Discord ends the gateway session for good (discord.py raises ConnectionClosed).
_TOKEN_REJECTED = (
    "Discord rejected DISCORD_TOKEN: copy the bot's token again from the Developer Portal "
    "(your application → Bot → Reset Token)"
)
_INTENT_REFUSED = (
    "Discord refused the Message Content intent: switch it on in the Developer Portal "
    "(your application → Bot → Privileged Gateway Intents) or set DISCORD_MESSAGE_CONTENT=false"
)


def point_discord_py(settings: Settings) -> None:
    """Send discord.py's REST calls and gateway connection where the settings say (the tests' fake Discord)."""
    discord.http.Route.BASE = settings.discord_api_base_url
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)


class App:
    """One run of the bot. `run()` returns the process exit code; `stop()` ends it cleanly from outside.

    Tests and benchmarks pass `engine_config` (short poll intervals) and `bot_options` (e.g.
    guild_ready_timeout) to run the real thing quickly.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        engine_config: EngineConfig | None = None,
        bot_options: dict[str, Any] | None = None,
        web_limits: ServerLimits | None = None,
    ) -> None:
        self.settings = settings
        self.engine_config = engine_config
        self.bot_options = bot_options or {}
        self.web_limits = web_limits or ServerLimits()
        self.bot: LumaBot | None = None
        self.engine: JobEngine | None = None
        self.web: WebServer | None = None
        self.gateway = GatewayWatch()
        self.built = asyncio.Event()
        self._stop_requested = False

    async def stop(self) -> None:
        self._stop_requested = True
        if self.bot is not None:
            await self.bot.close()

    async def run(self) -> int:
        settings = self.settings
        point_discord_py(settings)
        await open_database(settings.database_url)
        try:
            async with aiohttp.ClientSession() as session:
                return await self._run_with(session)
        finally:
            await close_database()

    async def _run_with(self, session: aiohttp.ClientSession) -> int:
        settings = self.settings
        pool = ProviderPool.from_configs(settings.provider_configs(), session)
        quotas = QuotaBook(
            QuotaDefaults(settings.quota_default_limit, QuotaPeriod(settings.quota_default_period)),
            # A credit is the price of the preferred provider's default video, so limits keep meaning videos.
            Pricing(
                settings.prices,
                credit_provider=settings.provider_configs()[0].name,
                credit_defaults=settings.option_defaults,
            ),
        )
        config = self.engine_config or engine_config_from_settings(settings)
        self.engine = engine = JobEngine(pool, quotas, config)
        self.bot = bot = make_bot(settings, engine=engine, quotas=quotas, **self.bot_options)
        self.gateway.attach(bot, sharded=isinstance(bot, commands.AutoShardedBot))
        count_discord_errors(bot)
        try:
            host, port = settings.http_host_port
            # Callback routes only when providers are told where to call (CALLBACK_PUBLIC_URL).
            self.web = await start_server(
                host,
                port,
                self.health,
                engine=engine if settings.callback_public_url else None,
                limits=self.web_limits,
            )
            self.built.set()
            if self._stop_requested:
                return 0
            async with bot:
                await bot.start(settings.discord_token.get_secret_value())
            return 0
        except discord.LoginFailure:
            log.error(_TOKEN_REJECTED)
            return 1
        except discord.PrivilegedIntentsRequired:
            log.error(_INTENT_REFUSED)
            return 1
        except discord.ConnectionClosed as exc:
            # The gateway, not the REST API, refused us: the same causes, the same one line.
            if exc.code == 4004:
                log.error(_TOKEN_REJECTED)
            elif exc.code == 4014:
                log.error(_INTENT_REFUSED)
            else:
                log.error(
                    "Discord closed the gateway connection for good (code %s: %s)", exc.code, exc.reason
                )
            return 1
        finally:
            self.built.set()
            await engine.stop(SHUTDOWN_GRACE)
            if not bot.is_closed():
                await bot.close()
            if self.web is not None:
                await self.web.cleanup()

    async def health(self) -> dict[str, Any]:
        """The /healthz report: the gateway session live, the database writable, and each provider's state."""
        providers = await self.engine.provider_report() if self.engine is not None else []
        report = await health_report(self.gateway, providers)
        if self.bot is None or self.bot.is_closed():
            report["ok"] = False
            report["discord"] = {"ok": False, "detail": "closed"}
        return report


async def run(
    settings: Settings,
    *,
    engine_config: EngineConfig | None = None,
    bot_options: dict[str, Any] | None = None,
) -> int:
    """`python -m bot`: run until Discord closes the connection for good or the process is told to stop
    (SIGTERM or SIGINT: new work is refused, requests in flight get a few seconds, every job stays resumable)."""
    app = App(settings, engine_config=engine_config, bot_options=bot_options)
    loop = asyncio.get_running_loop()
    stopping: list[asyncio.Future[None]] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, lambda: stopping.append(asyncio.ensure_future(app.stop())))
    try:
        return await app.run()
    finally:
        await asyncio.gather(*stopping, return_exceptions=True)
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
