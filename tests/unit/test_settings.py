"""Settings: what a new admin's .env gives, and one clear line for anything wrong."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import Settings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]
SETTING_NAMES = [name.upper() for name in Settings.model_fields]


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LUMA_BOT_HOME", str(tmp_path))
    return tmp_path


def test_env_example_with_the_two_tokens_filled_in_is_valid(clean_env):
    text = (ROOT / ".env.example").read_text()
    text = text.replace("DISCORD_TOKEN=\n", "DISCORD_TOKEN=discord-secret\n")
    text = text.replace("LUMA_API_TOKEN=\n", "LUMA_API_TOKEN=luma-secret\n")
    (clean_env / ".env").write_text(text)
    settings = load_settings()
    assert settings.discord_token.get_secret_value() == "discord-secret"
    assert settings.luma_provider == "acedatacloud" and settings.luma_max_concurrent == 5
    assert settings.shard_count is None and settings.callback_public_url is None


def test_every_setting_is_documented_in_env_example():
    text = (ROOT / ".env.example").read_text()
    missing = [name for name in SETTING_NAMES if f"\n{name}=" not in "\n" + text]
    assert missing == []


def test_problems_are_reported_in_one_line_naming_each_variable(clean_env, monkeypatch):
    monkeypatch.setenv("LUMA_MAX_CONCURRENT", "lots")
    monkeypatch.setenv("QUOTA_DEFAULT_PERIOD", "year")
    with pytest.raises(SettingsError) as err:
        load_settings()
    message = str(err.value)
    assert "\n" not in message
    for name in ("DISCORD_TOKEN", "LUMA_API_TOKEN", "LUMA_MAX_CONCURRENT", "QUOTA_DEFAULT_PERIOD"):
        assert name in message


def test_python_m_bot_with_missing_tokens_prints_one_line_and_no_traceback(clean_env):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(clean_env), "PYTHONPATH": str(ROOT), "LUMA_BOT_HOME": str(clean_env)}
    proc = subprocess.run([sys.executable, "-m", "bot", "check"], cwd=clean_env, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "DISCORD_TOKEN is missing" in proc.stderr


def test_secrets_do_not_show_in_the_settings_repr(clean_env, monkeypatch):
    monkeypatch.setenv("DISCORD_TOKEN", "discord-very-secret")
    monkeypatch.setenv("LUMA_API_TOKEN", "luma-very-secret")
    text = repr(load_settings())
    assert "very-secret" not in text


def test_shard_ids_need_a_count(clean_env, monkeypatch):
    monkeypatch.setenv("DISCORD_TOKEN", "a")
    monkeypatch.setenv("LUMA_API_TOKEN", "b")
    monkeypatch.setenv("SHARD_IDS", "0,1")
    with pytest.raises(SettingsError, match="SHARD_COUNT"):
        load_settings()
    monkeypatch.setenv("SHARD_COUNT", "2")
    assert load_settings().instance_id == "shards-0,1"




def test_dotenv_and_the_default_database_are_found_in_luma_bot_home_whatever_the_working_directory(
    clean_env, monkeypatch, tmp_path_factory
):
    home = tmp_path_factory.mktemp("home")
    (home / ".env").write_text("DISCORD_TOKEN=a\nLUMA_API_TOKEN=b\n")
    monkeypatch.setenv("LUMA_BOT_HOME", str(home))  # the working directory stays clean_env
    settings = load_settings()
    assert settings.database_url == f"sqlite://{home}/data/luma-bot.sqlite3"
    monkeypatch.setenv("DATABASE_URL", "sqlite://state/bot.sqlite3")
    assert load_settings().database_url == f"sqlite://{home}/state/bot.sqlite3"


def test_callback_listen_is_still_read_as_the_older_name_of_http_listen(clean_env, monkeypatch):
    monkeypatch.setenv("DISCORD_TOKEN", "a")
    monkeypatch.setenv("LUMA_API_TOKEN", "b")
    assert load_settings().http_host_port == ("127.0.0.1", 8080)
    monkeypatch.setenv("CALLBACK_LISTEN", "0.0.0.0:9000")
    assert load_settings().http_host_port == ("0.0.0.0", 9000)
    monkeypatch.setenv("HTTP_LISTEN", "127.0.0.1:9100")
    assert load_settings().http_host_port == ("127.0.0.1", 9100)


def test_migrate_needs_only_the_database_settings(clean_env, monkeypatch):
    from bot.settings import DatabaseSettings

    monkeypatch.setenv("DATABASE_URL", "postgres://bot:pw@db:5432/luma")
    assert load_settings(DatabaseSettings).database_url == "postgres://bot:pw@db:5432/luma"
