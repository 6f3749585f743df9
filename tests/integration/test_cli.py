"""The program's commands as an admin meets them: every failure to start is one line and an exit code, never a
traceback; `migrate` needs only the database; `check` changes nothing and names what is wrong."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_SKIP_REASON, POSTGRES_URL
from tests.fakes.luma_provider import FakeLumaProvider

ROOT = Path(__file__).resolve().parents[2]
TOKENS = {"DISCORD_TOKEN": "discord-token-for-cli-tests", "LUMA_API_TOKEN": "luma-token-for-cli-tests"}
# Run as this user when the tests run as root, who may write read-only files (nobody on Debian).
NOBODY = 65534


def _command(home: Path, args: tuple[str, ...], user: int | None, env: dict[str, str]) -> tuple[list[str], dict]:
    environ = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT), "LUMA_BOT_HOME": str(home),
               "HOME": str(home), **env}
    # Dropping root with setpriv (not subprocess's user=, which cannot reach a Python installed under /root).
    prefix = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] if user is not None else []
    return [*prefix, sys.executable, "-m", "bot", *args], environ


def bot(home: Path, *args: str, user: int | None = None, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
    argv, environ = _command(home, args, user, env)
    return subprocess.run(argv, cwd=home, env=environ, capture_output=True, text=True, timeout=timeout)


async def abot(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """`bot` without blocking the event loop, for tests whose fakes run in this process."""
    argv, environ = _command(home, args, None, env)
    proc = await asyncio.create_subprocess_exec(*argv, cwd=home, env=environ, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return subprocess.CompletedProcess(argv, proc.returncode or 0, out.decode(), err.decode())


def one_line(proc: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("luma-bot: ")
    return lines[0]


def test_version_prints_the_version(tmp_path):
    proc = bot(tmp_path, "--version")
    assert proc.returncode == 0 and proc.stdout.strip() == "luma-bot 0.1.0"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"DATABASE_URL": "postgres://bot:pw@127.0.0.1:5432"}, "DATABASE_URL names no database"),
        ({"DATABASE_URL": "postgres://bot:pw@127.0.0.1:5432/"}, "DATABASE_URL names no database"),
        ({"DATABASE_URL": "mysql://bot@127.0.0.1/luma"}, "DATABASE_URL"),
        ({"HTTP_LISTEN": "8080"}, "HTTP_LISTEN"),
    ],
)
@pytest.mark.parametrize("command", ["run", "check"])
def test_a_bad_setting_stops_the_bot_with_one_line_naming_it(tmp_path, env, named, command):
    proc = bot(tmp_path, command, **TOKENS, **env)
    assert proc.returncode == 2
    assert named in one_line(proc)


def test_migrate_needs_only_the_database_settings(tmp_path):
    proc = bot(tmp_path, "migrate")  # no token at all
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "data" / "luma-bot.sqlite3").is_file()
    assert f"SQLite file {tmp_path}/data/luma-bot.sqlite3" in proc.stdout


def _postgres_url(database: str, user: str = "postgres", password: str = "") -> str:
    base = POSTGRES_URL.rsplit("/", 1)[0]
    host = base.split("@", 1)[1]
    auth = f"{user}:{password}" if password else user
    return f"postgres://{auth}@{host}/{database}"


@pytest.mark.postgres
@pytest.mark.parametrize("command", ["run", "migrate"])
def test_a_database_that_does_not_exist_is_one_line(tmp_path, command):
    if not POSTGRES_URL:
        pytest.skip(POSTGRES_SKIP_REASON)
    proc = bot(tmp_path, command, **TOKENS, DATABASE_URL=_postgres_url("no_such_database_here"))
    assert proc.returncode == 1
    assert 'database "no_such_database_here" does not exist' in one_line(proc)


@pytest.mark.postgres
def test_a_role_the_server_refuses_is_one_line_without_the_password(tmp_path):
    if not POSTGRES_URL:
        pytest.skip(POSTGRES_SKIP_REASON)
    url = _postgres_url("test", user="no_such_role", password="hunter2-secret")
    proc = bot(tmp_path, "run", **TOKENS, DATABASE_URL=url)
    assert proc.returncode == 1
    line = one_line(proc)
    assert "no_such_role" in line and "hunter2-secret" not in proc.stderr + proc.stdout


def test_an_unreachable_database_server_is_one_line(tmp_path):
    proc = bot(tmp_path, "migrate", DATABASE_URL="postgres://bot:pw@127.0.0.1:1/luma")
    assert proc.returncode == 1
    assert "cannot start" in one_line(proc)


# ---- read-only SQLite (issue 13.11: all three commands hung with no output) ---------------------------


@pytest.fixture
def open_tmp(tmp_path):
    """A directory an ordinary user can reach (pytest's own are private to the user running the tests)."""
    path = Path(tempfile.mkdtemp(prefix="luma-bot-cli-"))
    path.chmod(0o755)
    yield path
    for sub in path.rglob("*"):
        sub.chmod(0o755 if sub.is_dir() else 0o644)
    shutil.rmtree(path)


def _read_only_database(tmp_path: Path, what: str) -> tuple[Path, int | None]:
    home = tmp_path / "home"
    home.mkdir()
    assert bot(home, "migrate").returncode == 0
    data = home / "data"
    if what == "file":
        (data / "luma-bot.sqlite3").chmod(0o444)
    else:
        data.chmod(0o555)
    user = None
    if os.geteuid() == 0:  # root writes read-only files anyway: be an ordinary user
        user = NOBODY
        for path in (tmp_path, home):
            path.chmod(0o755)
    return home, user


@pytest.mark.parametrize("what", ["file", "directory"])
@pytest.mark.parametrize("command", ["run", "check", "migrate"])
def test_a_read_only_sqlite_database_stops_every_command_with_one_line(open_tmp, what, command):
    home, user = _read_only_database(open_tmp, what)
    proc = bot(home, command, user=user, timeout=30, **TOKENS, LUMA_API_BASE_URL="http://127.0.0.1:1")
    assert proc.returncode == 1
    if command == "check":
        assert "database: PROBLEM" in proc.stdout and "read-only" in proc.stdout
    else:
        assert "read-only" in one_line(proc)


# ---- check ----------------------------------------------------------------------------------------------


async def test_check_creates_nothing_and_accepts_a_good_setup(tmp_path):
    async with FakeLumaProvider(token=TOKENS["LUMA_API_TOKEN"], manual=True) as fake:
        proc = await abot(tmp_path, "check", **TOKENS, LUMA_API_BASE_URL=fake.base_url)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[0] == "settings: ok"
    assert "provider token (acedatacloud): ok" in proc.stdout
    assert list(tmp_path.iterdir()) == []  # no data directory, no database file
    assert fake.count("create") == 0


@pytest.mark.parametrize("provider", ["acedatacloud", "umami"])
async def test_check_names_a_rejected_provider_token(tmp_path, provider):
    async with FakeLumaProvider(token="the-real-token", manual=True) as fake:
        proc = await abot(tmp_path, "check", **TOKENS, LUMA_PROVIDER=provider, LUMA_API_BASE_URL=fake.url_for(provider))
    assert proc.returncode == 1
    assert f"provider token ({provider}): PROBLEM: LUMA_API_TOKEN was rejected" in proc.stdout
    assert TOKENS["LUMA_API_TOKEN"] not in proc.stdout + proc.stderr


def test_check_does_not_migrate_an_existing_database(tmp_path):
    db = tmp_path / "empty.sqlite3"
    db.touch()
    before = db.stat().st_size
    proc = bot(tmp_path, "check", **TOKENS, DATABASE_URL=f"sqlite://{db}", LUMA_API_BASE_URL="http://127.0.0.1:1")
    assert "database: ok" in proc.stdout
    assert db.stat().st_size == before and sorted(p.name for p in tmp_path.iterdir()) == ["empty.sqlite3"]
