"""The benchmark's stage: the fake Discord and the fake provider on loopback in this process, the bot as a
child process against them, and observers that collect what the fakes record (timestamps included) without
touching the bot.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import re
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.fakes.discord import FakeDiscord, InteractionRecord, Message
from tests.fakes.luma_provider import FakeLumaProvider

REPO = Path(__file__).resolve().parent.parent
# Where the bot processes import the bot from: this checkout, or (`--bot-rev`) a snapshot of one commit.
BOT_TREE = REPO
PROVIDER_TOKEN = "bench-provider-token"
# A result message links the provider's file (in its embed's URL, or its text): the fake serves it at
# /cdn/luma/<task id>.mp4 (AceDataCloud, UmamiAI), /agents-cdn/<task id>.mp4?... (Agents API) or
# /cdn/dream-machine/<task id>.mp4.
VIDEO_LINK = re.compile(r"/(?:cdn/luma|agents-cdn|cdn/dream-machine)/([0-9a-f-]{36})\.mp4")
RESULT_BUTTON = re.compile(r"luma:(?:extend|retry):([0-9]+)")
FAILURE_BUTTON = re.compile(r"luma:retry:([0-9]+)")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    """The benchmark could not run as designed (the bot died, or something never happened)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the bot process ----------------------------------------------------------------------------------------


class BotProcess:
    """`python -m bench.botproc` as a child process; CPU and memory are read from /proc."""

    def __init__(self, env: dict[str, str], args: list[str], log_path: Path, cwd: Path) -> None:
        self.env = env
        self.args = args
        self.log_path = log_path
        self.cwd = cwd
        self.proc: asyncio.subprocess.Process | None = None
        self.spawned_at = 0.0  # time.time() just before the exec

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self) -> None:
        log = self.log_path.open("ab")
        try:
            self.spawned_at = time.time()
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.botproc",
                *self.args,
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )
        finally:
            log.close()

    def cpu_seconds(self) -> float:
        """User + system CPU time of the bot so far (the kernel counts it in clock ticks, 10 ms)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        # After the command name: state is field 3, utime 14 and stime 15 (1-based, see proc(5)).
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise BenchError("no VmRSS in /proc status")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def stop(self, timeout: float = 30.0) -> int | None:  # noqa: ASYNC109
        """SIGTERM (the bot's clean shutdown), then SIGKILL if it does not end in time."""
        if self.proc is None or self.proc.returncode is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()
            return await self.proc.wait()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


# -- observing the fakes ------------------------------------------------------------------------------------


@dataclass
class ResultPost:
    job_id: int
    task_id: str | None
    posted_at: float  # time.time() of the message's creation, as the fake Discord recorded it
    in_thread: bool
    failed: bool = False  # a failure notice (a Retry button, no Extend), not a video
    file_sizes: tuple[int, ...] = ()  # bytes of each attached file (the bytes themselves are dropped)


@dataclass
class Observer:
    """Collects result messages as the fake Discord stores them (wrapping its store, O(1) per message), and
    wakes waiters when a count is reached. Timestamps are the fake's own records."""

    discord: FakeDiscord
    results: list[ResultPost] = field(default_factory=list)
    keep_files: bool = False
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def install(self) -> None:
        world = self.discord.world
        original = world.store_message
        bot_id = self.discord.bot_user.id

        def store_message(message: Message) -> Message:
            stored = original(message)
            if message.author.id == bot_id and not message.ephemeral:
                self._classify(message)
            return stored

        world.store_message = store_message  # type: ignore[method-assign]

    def _classify(self, message: Message) -> None:
        job_id = None
        ids = [str(button.get("custom_id", "")) for button in message.buttons()]
        for custom_id in ids:
            match = RESULT_BUTTON.fullmatch(custom_id)
            if match:
                job_id = int(match.group(1))
                break
        if job_id is None:
            return
        failed = any(FAILURE_BUTTON.fullmatch(c) for c in ids) and not any(":extend:" in c for c in ids)
        texts = [message.content or ""] + [str(e.get("url") or "") for e in message.embeds]
        link = next((m for m in (VIDEO_LINK.search(t) for t in texts) if m), None)
        channel = self.discord.world.channels.get(message.channel_id)
        sizes = tuple(len(f.data) for f in message.files)
        if not self.keep_files and message.files:
            # A benchmark posts hundreds of megabytes of video: keep the sizes, not the bytes.
            message.files = [dataclasses.replace(f, data=b"") for f in message.files]
        self.results.append(
            ResultPost(
                job_id=job_id,
                task_id=link.group(1) if link else None,
                posted_at=message.timestamp.timestamp(),
                in_thread=bool(channel and channel.is_thread),
                failed=failed,
                file_sizes=sizes,
            )
        )
        self._changed.set()

    def reset(self) -> None:
        self.results.clear()

    async def wait_results(self, n: int, timeout: float, bot: BotProcess | None = None) -> None:  # noqa: ASYNC109
        await wait_until(
            lambda: len(self.results) >= n,
            self._changed,
            timeout,
            f"{n} result messages (got {{}})",
            lambda: len(self.results),
            bot,
        )


async def wait_until(
    predicate: Callable[[], bool],
    event: asyncio.Event,
    timeout: float,  # noqa: ASYNC109 - bounds the wait and names it in the error
    what: str,
    progress: Callable[[], object] = lambda: "",
    bot: BotProcess | None = None,
) -> None:
    """Wait for `predicate` to hold, re-checked whenever `event` is set; fail if the bot dies or time runs out."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if bot is not None and not bot.running:
            raise BenchError(f"the bot exited while waiting for {what.format(progress())}:\n{bot.log_tail()}")
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise BenchError(f"timed out after {timeout:.0f}s waiting for {what.format(progress())}")
        event.clear()
        with contextlib.suppress(TimeoutError):
            # Bounded so a dead bot is noticed even when nothing changes any more.
            await asyncio.wait_for(event.wait(), min(remaining, 1.0))


class AckTracker:
    """Waits until every interaction of a list is acknowledged, checking each one once (in order)."""

    def __init__(self, discord: FakeDiscord, records: list[InteractionRecord]) -> None:
        self.discord = discord
        self.records = records
        self._next = 0

    def _done(self) -> bool:
        while self._next < len(self.records) and self.records[self._next].acknowledged:
            self._next += 1
        return self._next >= len(self.records)

    async def wait(self, timeout: float, bot: BotProcess | None = None) -> None:  # noqa: ASYNC109
        await self.discord.wait_for(
            lambda: self._done() or (bot is not None and not bot.running),
            timeout,
            f"{len(self.records)} acknowledgements",
        )
        if bot is not None and not bot.running:
            raise BenchError(f"the bot exited before acknowledging every interaction:\n{bot.log_tail()}")

    def latencies_ms(self) -> list[float]:
        return [
            (r.acknowledged_at - r.created_at) * 1000 for r in self.records if r.acknowledged_at is not None
        ]


# -- the stage ----------------------------------------------------------------------------------------------


@dataclass
class BotOptions:
    scale: float = 1.0
    strategy: str = "ours"
    max_concurrent: int = 5
    callbacks: bool = False
    database_url: str | None = None  # default: SQLite in the stage's temporary directory
    label: str = "bot"
    provider: str = "acedatacloud"  # LUMA_PROVIDER; its base URL is the fake's for that API
    env: dict[str, str] = field(default_factory=dict)  # more settings (LUMA_PROVIDERS, PROVIDER_*, MEDIA_*)


class Stage:
    """Fakes on loopback plus one server with `users` members across `channels` text channels."""

    def __init__(
        self, *, users: int, channels: int = 10, provider: FakeLumaProvider, workdir: Path | None = None
    ) -> None:
        self.users_wanted = users
        self.channels_wanted = channels
        self.provider = provider
        self.discord = FakeDiscord(bot_username="Luma")
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="luma-bench-")
        self.workdir = workdir or Path(self._tmp.name)  # type: ignore[union-attr]
        self.members: list[Any] = []
        self.channels: list[Any] = []
        self.observer = Observer(self.discord)

    async def __aenter__(self) -> Stage:
        await self.discord.start()
        await self.provider.start()
        self.guild = self.discord.add_guild("Bench Guild")
        self.channels = [
            self.discord.add_channel(self.guild, name=f"videos-{i}") for i in range(self.channels_wanted)
        ]
        self.members = [
            self.discord.add_member(self.guild, username=f"member{i}") for i in range(self.users_wanted)
        ]
        self.observer.install()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.discord.stop()
        await self.provider.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def sqlite_url(self, name: str) -> str:
        return f"sqlite://{self.workdir / name}"

    def env(self, options: BotOptions, database_url: str) -> dict[str, str]:
        from bot.settings import Settings

        # The bot's settings come only from here: none inherited from this shell (and the bot runs in the
        # stage's directory, so no .env is read either).
        ours = {name.upper() for name in Settings.model_fields}
        env = {
            k: v
            for k, v in os.environ.items()
            if k.upper() not in ours and not k.upper().startswith(("PROVIDER_", "LUMA_", "MEDIA_"))
        }
        env.update(
            {
                "PYTHONPATH": os.pathsep.join(filter(None, [str(BOT_TREE), os.environ.get("PYTHONPATH")])),
                "DISCORD_TOKEN": self.discord.token,
                "DISCORD_API_BASE_URL": self.discord.api_base,
                "DISCORD_GATEWAY_URL": self.discord.gateway_url,
                "DISCORD_GUILD_IDS": str(self.guild.id),
                "LUMA_PROVIDER": options.provider,
                "LUMA_API_BASE_URL": self.provider.url_for(options.provider),
                "LUMA_API_TOKEN": PROVIDER_TOKEN,
                "LUMA_MAX_CONCURRENT": str(options.max_concurrent),
                "DATABASE_URL": database_url,
                "QUOTA_DEFAULT_LIMIT": "1000000",
                "JOB_DEADLINE_MINUTES": "120",
                "LOG_LEVEL": "INFO",
                # No .env of the developer's, and a free port for /healthz: bench bots run side by side.
                "LUMA_BOT_HOME": str(self.workdir),
                "HTTP_LISTEN": "127.0.0.1:0",
            }
        )
        env.update(options.env)
        if options.callbacks:
            port = free_port()
            env["CALLBACK_PUBLIC_URL"] = f"http://127.0.0.1:{port}"
            # HTTP_LISTEN is where the bot's one HTTP server (callbacks included) listens; CALLBACK_LISTEN is
            # its older name, which HTTP_LISTEN overrides.
            env["HTTP_LISTEN"] = env["CALLBACK_LISTEN"] = f"127.0.0.1:{port}"
        return env

    async def launch(self, options: BotOptions, *, ready_timeout: float = 60.0) -> BotProcess:  # noqa: ASYNC109
        """Start the bot and wait until its gateway session is ready and its commands are registered."""
        database_url = options.database_url or self.sqlite_url(f"{options.label}.sqlite3")
        args = ["--scale", repr(options.scale), "--strategy", options.strategy]
        bot = BotProcess(
            self.env(options, database_url), args, self.workdir / f"{options.label}.log", self.workdir
        )
        known = self.sessions_now()
        await bot.start()
        await self.wait_ready(bot, known, ready_timeout)
        return bot

    def sessions_now(self) -> set[int]:
        return {id(s) for s in self.discord.sessions}

    async def wait_ready(self, bot: BotProcess, known: set[int], timeout: float = 60.0) -> float:  # noqa: ASYNC109
        """Until a gateway session not in `known` is ready and /luma is registered; returns time.time() then."""

        def ready() -> bool:
            if not bot.running:
                return True
            fresh = [
                s
                for s in self.discord.gateway.live_sessions
                if id(s) not in known and s.ready and s.connected
            ]
            return bool(fresh) and any(c.name == "luma" for c in self.discord.commands(self.guild))

        try:
            await self.discord.wait_for(ready, timeout, "the bot to connect and register its commands")
        except TimeoutError as exc:
            raise BenchError(f"{exc}\n{bot.log_tail()}") from None
        if not bot.running:
            raise BenchError(f"the bot exited during start-up:\n{bot.log_tail()}")
        return time.time()

    def member(self, i: int) -> Any:
        return self.members[i % len(self.members)]

    def channel(self, i: int) -> Any:
        return self.channels[i % len(self.channels)]

    async def generate(self, i: int, user: int, prompt: str | None = None) -> InteractionRecord:
        return await self.discord.invoke_slash(
            self.guild,
            self.channel(i),
            self.member(user),
            "luma",
            subcommand="generate",
            options={"prompt": prompt or f"bench video {i}: a lighthouse in a storm"},
        )
