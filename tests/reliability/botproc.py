"""Runs the real bot (`python -m bot`) as a separate OS process, so tests can SIGKILL and SIGTERM it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path


class BotProcess:
    def __init__(self, env: dict[str, str], log_path: Path, *, args: tuple[str, ...] = ()) -> None:
        self.env = env
        self.log_path = log_path
        self.args = args
        # What follows the interpreter: the product's entry point unless a test picks a launcher.
        self.argv: tuple[str, ...] = ("-m", "bot")
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0

    async def start(self) -> None:
        assert self.proc is None or self.proc.returncode is not None, "already running"
        env = {**os.environ, **self.env}
        log = self.log_path.open("ab")
        log.write(f"\n===== start #{self.starts + 1} =====\n".encode())
        log.flush()
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, *self.argv, *self.args, env=env, stdout=log, stderr=log, stdin=asyncio.subprocess.DEVNULL
        )
        log.close()
        self.starts += 1

    async def kill(self) -> None:
        """SIGKILL: no cleanup of any kind, as when the machine loses power."""
        if self.proc and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()

    async def terminate(self, within: float = 15.0) -> int:
        """SIGTERM, then the exit code; SIGKILL if it does not stop in time (which fails the caller's check)."""
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(within):
                    await self.proc.wait()
            except TimeoutError:
                await self.kill()
                return -9
        return self.proc.returncode

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
