"""What the container image and the service files run, tested without a container daemon: the image's own
entrypoint and environment (read from the Dockerfile) start the bot, which answers /healthz (also through the
image's HEALTHCHECK command) and stops cleanly on SIGTERM; the compose file and the systemd unit hold what an
admin's deployment needs."""

from __future__ import annotations

import asyncio
import configparser
import json
import os
import re
import shlex
import signal
import socket
import sys
import time
from pathlib import Path

import aiohttp
import yaml

from tests.e2e.harness import PROVIDER_TOKEN
from tests.fakes.discord import FakeDiscord
from tests.fakes.luma_provider import FakeLumaProvider

ROOT = Path(__file__).resolve().parents[2]


def dockerfile() -> dict[str, object]:
    """The final stage's ENV, USER, ENTRYPOINT, CMD and HEALTHCHECK (continuation lines joined)."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    stage = text.split("\nFROM ")[-1]
    out: dict[str, object] = {"env": {}}
    for line in stage.splitlines():
        word, _, rest = line.strip().partition(" ")
        if word == "ENV":
            for pair in shlex.split(rest):
                key, _, val = pair.partition("=")
                out["env"][key] = val  # type: ignore[index]
        elif word in ("USER", "ENTRYPOINT", "CMD", "HEALTHCHECK"):
            out[word] = rest
    return out


def exec_form(value: str) -> list[str]:
    return json.loads(value[value.index("["):])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_image_runs_as_a_non_root_user_with_the_bot_as_pid_1():
    image = dockerfile()
    assert image["USER"] not in ("root", "0")
    # Exec form (a JSON list): python itself is PID 1 and receives SIGTERM; no shell in between.
    assert exec_form(image["ENTRYPOINT"]) == ["python", "-m", "bot"]  # type: ignore[arg-type]
    assert exec_form(image["CMD"]) == ["run"]  # type: ignore[arg-type]
    assert "/healthz" in image["HEALTHCHECK"]  # type: ignore[operator]


async def test_the_image_command_answers_healthz_and_stops_cleanly_on_sigterm(tmp_path):
    image = dockerfile()
    env = dict(image["env"])  # type: ignore[call-overload]
    port = free_port()
    listen_port = env["HTTP_LISTEN"].rpartition(":")[2]
    # The image's environment, with three differences a test needs: where Python is, the home directory (the
    # image's /data volume), and a free port instead of 8080.
    env.update({"PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}", "LUMA_BOT_HOME": str(tmp_path),
                "HTTP_LISTEN": f"127.0.0.1:{port}", "PYTHONPATH": str(ROOT)})
    async with FakeDiscord() as fake, FakeLumaProvider(token=PROVIDER_TOKEN) as provider:
        # What an admin puts in .env (compose passes it as environment).
        env.update({"DISCORD_TOKEN": fake.token, "DISCORD_API_BASE_URL": fake.api_base,
                    "DISCORD_GATEWAY_URL": fake.gateway_url, "LUMA_API_TOKEN": PROVIDER_TOKEN,
                    "LUMA_API_BASE_URL": provider.base_url, "LOG_FORMAT": "json"})
        argv = [*exec_form(image["ENTRYPOINT"]), *exec_form(image["CMD"])]  # type: ignore[arg-type]
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        try:
            healthy_after = None
            async with aiohttp.ClientSession() as http:
                while time.monotonic() - started < 60 and proc.returncode is None:
                    try:
                        async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                            if resp.status == 200:
                                healthy_after = time.monotonic() - started
                                break
                    except aiohttp.ClientConnectionError:
                        pass
                    await asyncio.sleep(0.05)  # polling a condition, with a deadline
            assert healthy_after is not None, "the bot never answered /healthz with 200"
            print(f"image command: /healthz 200 after {healthy_after:.2f}s")
            # The image's own HEALTHCHECK command, pointed at the test's port.
            check = exec_form(image["HEALTHCHECK"].split("CMD", 1)[1])  # type: ignore[union-attr]
            check = [part.replace(f":{listen_port}/", f":{port}/") for part in check]
            probe = await asyncio.create_subprocess_exec(*check, env=env)
            assert await asyncio.wait_for(probe.wait(), 30) == 0
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(proc.wait(), 30)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        _, err = await proc.communicate()
    assert code == 0, err.decode()[-3000:]
    lines = [json.loads(line) for line in err.decode().splitlines() if line.strip()]  # LOG_FORMAT=json
    messages = [line["message"] for line in lines]
    assert any(m.startswith(f"database: SQLite file {tmp_path}/data/luma-bot.sqlite3") for m in messages)
    assert not [line for line in lines if line["level"] in ("ERROR", "CRITICAL")]
    assert fake.token not in err.decode() and PROVIDER_TOKEN not in err.decode()


def test_compose_runs_the_bot_with_postgresql_on_a_named_volume_after_the_database_is_healthy():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"bot", "db"}
    db, bot = services["db"], services["bot"]
    assert db["image"].startswith("postgres:")
    volume = db["volumes"][0].split(":")[0]
    assert volume in compose["volumes"]  # named, so `docker compose down` keeps the data
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert bot["depends_on"]["db"]["condition"] == "service_healthy"
    assert bot["env_file"] == ".env" and bot["build"] == "."
    assert bot["environment"]["DATABASE_URL"].startswith("postgres://luma:") and "@db:5432/luma" in bot["environment"]["DATABASE_URL"]
    assert db["environment"]["POSTGRES_USER"] == "luma" and db["environment"]["POSTGRES_DB"] == "luma"
    assert all(p.startswith("127.0.0.1:") for p in bot["ports"])  # never the bot's port on every interface
    assert bot["restart"] == db["restart"] == "unless-stopped"


def test_the_systemd_unit_runs_the_bot_from_its_directory_and_restarts_it():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment, method-assign]
    unit.read_string((ROOT / "deploy" / "luma-bot.service").read_text())
    service = unit["Service"]
    assert service["WorkingDirectory"] and service["User"] not in ("root", "0")
    assert service["ExecStart"].endswith("python -m bot run")
    assert service["Restart"] == "on-failure" and service["KillSignal"] == "SIGTERM"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
