"""Typed settings read from the environment and `.env`, validated once at start.

The variable names are a contract with server admins and with the tests: see `.env.example`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.luma.capabilities import PROVIDER_NAMES, spec_for
from bot.luma.options import OptionDefaults, check_defaults
from bot.luma.prices import PriceFileError, PriceTable, load_prices
from bot.luma.validation import InvalidInput

Provider = Literal["acedatacloud", "umami", "luma", "dream-machine"]
Period = Literal["day", "week", "month"]
LogFormat = Literal["text", "json"]

DEFAULT_DISCORD_API = "https://discord.com/api/v10"
DEFAULT_DISCORD_GATEWAY = "wss://gateway.discord.gg/"


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    name: str
    tokens: tuple[str, ...] = field(repr=False)
    base_url: str | None
    max_concurrent: int  # videos at once per key


def _env_name(provider: str, what: str) -> str:
    return f"PROVIDER_{provider.upper().replace('-', '_')}_{what}"


def _iterable(value: object) -> Iterable[Any]:
    """`value` as an iterable, failing as iterating it would: "before" validators get pydantic's raw input."""
    if not isinstance(value, Iterable):
        raise TypeError(f"{type(value).__name__!r} object is not iterable")
    return value


def _int_list(value: object) -> list[int]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [int(part) for part in value.replace(" ", "").split(",") if part]
    if isinstance(value, int):
        return [value]
    return [int(part) for part in _iterable(value)]


def bot_home() -> Path:
    """Where `.env` and the default SQLite file live: LUMA_BOT_HOME if set, else the source checkout this code
    runs from (a git clone has pyproject.toml next to bot/), else the working directory (a pip install)."""
    explicit = os.environ.get("LUMA_BOT_HOME", "").strip()
    if explicit:
        return Path(explicit).expanduser().resolve()
    project = Path(__file__).resolve().parents[1]
    return project if (project / "pyproject.toml").is_file() else Path.cwd()


class DatabaseSettings(BaseSettings):
    """What `python -m bot migrate` needs: the database and logging, and no token."""

    # Empty lines in .env (as .env.example ships them) mean "use the default", not "set to empty". The .env
    # file is passed by load_settings (it depends on LUMA_BOT_HOME), so constructing Settings reads none.
    model_config = SettingsConfigDict(
        env_file=None, env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True
    )

    # None: sqlite://$LUMA_BOT_HOME/data/luma-bot.sqlite3. Relative SQLite paths are under LUMA_BOT_HOME too.
    database_url: str = Field(default_factory=lambda: f"sqlite://{bot_home() / 'data' / 'luma-bot.sqlite3'}")

    log_level: str = "INFO"
    log_format: LogFormat = "text"

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.strip().upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return value.strip().upper()

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        value = value.strip()
        if value.startswith("sqlite://"):
            path = value.removeprefix("sqlite://")
            if path and path != ":memory:" and not Path(path.split("?", 1)[0]).is_absolute():
                value = f"sqlite://{bot_home() / path}"
            return value
        if not value.startswith(("postgres://", "postgresql://", "asyncpg://")):
            raise ValueError("must start with sqlite://, postgres:// or postgresql://")
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError as exc:
            raise ValueError(f"is not a valid URL ({exc})") from None
        if not parts.hostname:
            raise ValueError("names no server (postgres://USER:PASSWORD@HOST:5432/DATABASE)")
        if not parts.path.strip("/"):
            raise ValueError("names no database (postgres://USER:PASSWORD@HOST:5432/DATABASE)")
        return value


class Settings(DatabaseSettings):
    discord_token: SecretStr
    discord_api_base_url: str = DEFAULT_DISCORD_API
    discord_gateway_url: str = DEFAULT_DISCORD_GATEWAY
    discord_guild_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    # Replies without a ping need the privileged message-content intent, which must be enabled in the portal.
    discord_message_content: bool = False

    luma_provider: Provider = "acedatacloud"
    # Several providers, in order of preference (empty: LUMA_PROVIDER alone); each one's keys, URL and
    # videos-at-once per key come from PROVIDER_<NAME>_* below.
    luma_providers: Annotated[list[str], NoDecode] = Field(default_factory=list)
    luma_api_base_url: str | None = None
    # Required unless LUMA_PROVIDERS is set (checked in _token_present, so it is named with the other problems).
    luma_api_token: SecretStr | None = Field(default=None, validate_default=True)
    # AceDataCloud runs 5 Luma tasks per token at once; more are refused with 429.
    luma_max_concurrent: int = Field(default=5, ge=1, le=10_000)

    provider_acedatacloud_tokens: SecretStr | None = None
    provider_acedatacloud_base_url: str | None = None
    provider_acedatacloud_max_concurrent: int | None = Field(default=None, ge=1, le=10_000)
    provider_umami_tokens: SecretStr | None = None
    provider_umami_base_url: str | None = None
    provider_umami_max_concurrent: int | None = Field(default=None, ge=1, le=10_000)
    provider_luma_tokens: SecretStr | None = None
    provider_luma_base_url: str | None = None
    provider_luma_max_concurrent: int | None = Field(default=None, ge=1, le=10_000)
    provider_dream_machine_tokens: SecretStr | None = None
    provider_dream_machine_base_url: str | None = None
    provider_dream_machine_max_concurrent: int | None = Field(default=None, ge=1, le=10_000)
    # What members get when they choose nothing (empty: the provider's own default); checked at start against
    # what the provider offers.
    luma_default_model: str | None = None
    luma_default_resolution: str | None = None
    luma_default_duration: str | None = None
    # Keys the opaque member id sent to Luma's Agents API (`user_id`); empty: derived from LUMA_API_TOKEN, so
    # set it to keep members' ids stable across a change of key.
    luma_user_id_secret: SecretStr | None = None
    # A TOML price table replacing the shipped one (bot/luma/prices.toml) for the providers it names;
    # checked at start.
    luma_prices_file: str | None = None

    quota_default_limit: int = Field(default=10, ge=0)
    quota_default_period: Period = "day"

    job_deadline_minutes: float = Field(default=15, gt=0)
    # How long a job may wait in the queue before it is sent (a provider outage, a long queue).
    job_queue_timeout_minutes: float = Field(default=1440, gt=0)

    # Callbacks: set the public URL to have providers POST results instead of waiting for the next poll.
    callback_public_url: str | None = None
    # The bot's HTTP server (/healthz, /metrics, and callbacks when on) always listens here. CALLBACK_LISTEN
    # is its older name, still read so existing .env files keep working.
    http_listen: str = Field(
        default="127.0.0.1:8080", validation_alias=AliasChoices("http_listen", "callback_listen")
    )

    # Result videos are downloaded (streamed to a temporary file) and attached to the result so they play in
    # Discord; a file over the cap or slower than the timeout is posted as a link instead.
    media_max_download_mb: int = Field(default=512, ge=1, le=10_000)
    media_download_timeout_seconds: float = Field(default=120, gt=0)
    media_concurrent_downloads: int = Field(default=4, ge=1, le=100)
    # Re-encoding a video over a server's upload limit takes a CPU core each: keep it below the core count.
    media_concurrent_encodes: int = Field(default=1, ge=1, le=32)
    media_temp_dir: str | None = None

    # Sharded deployments: several processes share one PostgreSQL, each running some of the shards.
    shard_count: int | None = Field(default=None, ge=1)
    shard_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)

    @field_validator("shard_ids", mode="before")
    @classmethod
    def _split_shards(cls, value: object) -> list[int]:
        try:
            return _int_list(value)
        except ValueError as exc:
            raise ValueError("must be comma-separated shard numbers") from exc

    @property
    def instance_id(self) -> str:
        """Names this process in job claims; stable across its restarts, distinct per shard set."""
        return "shards-" + ",".join(map(str, self.shard_ids)) if self.shard_ids else "main"

    @field_validator("discord_guild_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> list[int]:
        try:
            return _int_list(value)
        except ValueError as exc:
            raise ValueError("must be comma-separated numeric server ids") from exc

    @field_validator("luma_providers", mode="before")
    @classmethod
    def _split_providers(cls, value: object) -> list[str]:
        if value is None or value == "":
            return []
        names = (
            [p.strip().lower() for p in value.split(",")]
            if isinstance(value, str)
            else list(_iterable(value))
        )
        names = [n for n in names if n]
        unknown = [n for n in names if n not in PROVIDER_NAMES]
        if unknown:
            raise ValueError(
                f"names unknown providers {', '.join(unknown)}; known: {', '.join(PROVIDER_NAMES)}"
            )
        if len(set(names)) != len(names):
            raise ValueError("names a provider twice")
        return names

    @field_validator("luma_api_token")
    @classmethod
    def _token_present(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is None and not info.data.get("luma_providers"):
            raise ValueError("is missing")
        return value

    @field_validator(
        "discord_api_base_url",
        "discord_gateway_url",
        "luma_api_base_url",
        "callback_public_url",
        "provider_acedatacloud_base_url",
        "provider_umami_base_url",
        "provider_luma_base_url",
        "provider_dream_machine_base_url",
    )
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None if value == "" else value
        if not value.startswith(("http://", "https://", "ws://", "wss://")):
            raise ValueError("must be an http(s) or ws(s) URL")
        return value.rstrip("/") if value.startswith("http") else value

    @field_validator("discord_token", "luma_api_token")
    @classmethod
    def _not_blank(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("is empty")
        return value

    @field_validator("luma_prices_file")
    @classmethod
    def _prices_file(cls, value: str | None) -> str | None:
        if value:
            try:
                load_prices(value)
            except PriceFileError as exc:
                raise ValueError(str(exc)) from None
        return value or None

    @property
    def prices(self) -> PriceTable:
        return load_prices(self.luma_prices_file)

    @field_validator("http_listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        # Port 0 picks a free port (logged at start): tests and side-by-side benchmark bots use it.
        if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ValueError("must be HOST:PORT, e.g. 127.0.0.1:8080")
        return value

    @model_validator(mode="after")
    def _shards(self) -> Settings:
        if self.shard_ids and not self.shard_count:
            raise ValueError("SHARD_IDS needs SHARD_COUNT")
        if self.shard_count and any(not 0 <= s < self.shard_count for s in self.shard_ids):
            raise ValueError("SHARD_IDS must be between 0 and SHARD_COUNT - 1")
        return self

    @model_validator(mode="after")
    def _providers_configured(self) -> Settings:
        for name in self.luma_providers:
            if not self._tokens_of(name):
                raise ValueError(f"{_env_name(name, 'TOKENS')} is missing (LUMA_PROVIDERS names {name})")
        return self

    @model_validator(mode="after")
    def _provider_defaults(self) -> Settings:
        """A default must suit at least one configured provider that lets members choose that option; the
        others use their own default."""
        names = [c.name for c in self.provider_configs()]
        defaults = self.option_defaults
        for what, value in (
            ("model", defaults.model),
            ("resolution", defaults.resolution),
            ("duration", defaults.duration),
        ):
            if value is None:
                continue
            problems = []
            for name in names:
                try:
                    check_defaults(spec_for(name), OptionDefaults(**{what: value}))
                except InvalidInput as exc:
                    problems.append(str(exc))
                else:
                    break
            else:
                raise ValueError(f"LUMA_DEFAULT_{what.upper()}: {problems[0]}")
        return self

    def _tokens_of(self, name: str) -> list[str]:
        raw: SecretStr | None = getattr(self, f"provider_{name.replace('-', '_')}_tokens")
        tokens = [t.strip() for t in raw.get_secret_value().split(",")] if raw is not None else []
        if not tokens and name == self.luma_provider and self.luma_api_token is not None:
            tokens = [self.luma_api_token.get_secret_value()]
        return [t for t in tokens if t]

    def provider_configs(self) -> list[ProviderConfig]:
        """Every configured provider in order of preference, with its keys. Without LUMA_PROVIDERS, the
        single-provider settings (LUMA_PROVIDER, LUMA_API_TOKEN, LUMA_API_BASE_URL, LUMA_MAX_CONCURRENT)."""
        if not self.luma_providers:
            assert self.luma_api_token is not None
            return [
                ProviderConfig(
                    self.luma_provider,
                    (self.luma_api_token.get_secret_value(),),
                    self.luma_api_base_url,
                    self.luma_max_concurrent,
                )
            ]
        configs = []
        for name in self.luma_providers:
            attr = f"provider_{name.replace('-', '_')}"
            url = getattr(self, f"{attr}_base_url") or (
                self.luma_api_base_url if name == self.luma_provider else None
            )
            limit = (
                getattr(self, f"{attr}_max_concurrent")
                or spec_for(name).max_concurrent
                or self.luma_max_concurrent
            )
            configs.append(ProviderConfig(name, tuple(self._tokens_of(name)), url, limit))
        return configs

    def secrets(self) -> list[str]:
        """Every token, for the log filter that blanks them."""
        found = [self.discord_token.get_secret_value()]
        for config in self.provider_configs():
            found.extend(config.tokens)
        return found

    @property
    def option_defaults(self) -> OptionDefaults:
        return OptionDefaults(
            model=self.luma_default_model,
            resolution=self.luma_default_resolution,
            duration=self.luma_default_duration,
        )

    @property
    def user_id_secret(self) -> bytes:
        """The key of the opaque member ids sent to the provider."""
        if self.luma_user_id_secret is not None and self.luma_user_id_secret.get_secret_value():
            return self.luma_user_id_secret.get_secret_value().encode()
        first_key = self.provider_configs()[0].tokens[0]
        return hashlib.sha256(b"luma-bot member ids:" + first_key.encode()).digest()

    @property
    def job_deadline(self) -> timedelta:
        return timedelta(minutes=self.job_deadline_minutes)

    @property
    def job_queue_timeout(self) -> timedelta:
        return timedelta(minutes=self.job_queue_timeout_minutes)

    @property
    def http_host_port(self) -> tuple[str, int]:
        host, _, port = self.http_listen.rpartition(":")
        return host.strip("[]"), int(port)

    callback_host_port = http_host_port  # the older name


class SettingsError(Exception):
    """Settings are missing or malformed; the message is one line naming every bad variable."""


S = TypeVar("S", bound=DatabaseSettings)


def env_file() -> Path:
    return bot_home() / ".env"


def load_settings(cls: type[S] = Settings, **overrides: object) -> S:  # type: ignore[assignment]
    """`cls` from the environment and $LUMA_BOT_HOME/.env, or SettingsError naming every bad variable."""
    try:
        return cls(_env_file=env_file(), **overrides)  # type: ignore[arg-type, call-arg]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = [p for p in err["loc"] if p != "callback_listen"] or err["loc"]
            name = "_".join(str(p) for p in loc).upper()
            reason = "is missing" if err["type"] == "missing" else err["msg"].removeprefix("Value error, ")
            problems.append(f"{name} {reason}" if name else reason)  # a whole-settings check names its own
        raise SettingsError("Invalid settings: " + "; ".join(problems) + " (see .env.example)") from None
