"""Typed settings read from the environment and `.env`, validated once at start.

The variable names are a contract with server admins and with the tests: see `.env.example`.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.luma.capabilities import spec_for
from bot.luma.options import OptionDefaults, check_defaults
from bot.luma.prices import PriceFileError, PriceTable, load_prices
from bot.luma.validation import InvalidInput

Provider = Literal["acedatacloud", "umami", "luma", "dream-machine"]
Period = Literal["day", "week", "month"]

DEFAULT_DISCORD_API = "https://discord.com/api/v10"
DEFAULT_DISCORD_GATEWAY = "wss://gateway.discord.gg/"


def _int_list(value: object) -> list[int]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [int(part) for part in value.replace(" ", "").split(",") if part]
    if isinstance(value, int):
        return [value]
    return [int(part) for part in value]  # type: ignore[union-attr]


class Settings(BaseSettings):
    # Empty lines in .env (as .env.example ships them) mean "use the default", not "set to empty".
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True
    )

    discord_token: SecretStr
    discord_api_base_url: str = DEFAULT_DISCORD_API
    discord_gateway_url: str = DEFAULT_DISCORD_GATEWAY
    discord_guild_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    # Replies without a ping need the privileged message-content intent, which must be enabled in the portal.
    discord_message_content: bool = False

    luma_provider: Provider = "acedatacloud"
    luma_api_base_url: str | None = None
    luma_api_token: SecretStr
    # AceDataCloud runs 5 Luma tasks per token at once; more are refused with 429.
    luma_max_concurrent: int = Field(default=5, ge=1, le=10_000)
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

    database_url: str = "sqlite://data/luma-bot.sqlite3"

    quota_default_limit: int = Field(default=10, ge=0)
    quota_default_period: Period = "day"

    job_deadline_minutes: float = Field(default=15, gt=0)

    # Callbacks: set the public URL to have providers POST results instead of waiting for the next poll.
    callback_public_url: str | None = None
    callback_listen: str = "127.0.0.1:8080"

    log_level: str = "INFO"

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

    @field_validator("discord_api_base_url", "discord_gateway_url", "luma_api_base_url", "callback_public_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None if value == "" else value
        if not value.startswith(("http://", "https://", "ws://", "wss://")):
            raise ValueError("must be an http(s) or ws(s) URL")
        return value.rstrip("/") if value.startswith("http") else value

    @field_validator("discord_token", "luma_api_token")
    @classmethod
    def _not_blank(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
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

    @field_validator("callback_listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
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
    def _provider_defaults(self) -> Settings:
        try:
            check_defaults(spec_for(self.luma_provider), self.option_defaults)
        except InvalidInput as exc:
            raise ValueError(f"LUMA_DEFAULT_*: {exc}") from None
        return self

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
        return hashlib.sha256(b"luma-bot member ids:" + self.luma_api_token.get_secret_value().encode()).digest()

    @model_validator(mode="after")
    def _sqlite_dir(self) -> Settings:
        if not self.database_url.startswith(("sqlite://", "postgres://", "postgresql://", "asyncpg://")):
            raise ValueError("DATABASE_URL must start with sqlite://, postgres:// or postgresql://")
        return self

    @property
    def job_deadline(self) -> timedelta:
        return timedelta(minutes=self.job_deadline_minutes)

    @property
    def callback_host_port(self) -> tuple[str, int]:
        host, _, port = self.callback_listen.rpartition(":")
        return host.strip("[]"), int(port)


class SettingsError(Exception):
    """Settings are missing or malformed; the message is one line naming every bad variable."""


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = "_".join(str(p) for p in err["loc"]).upper() or "settings"
            reason = "is missing" if err["type"] == "missing" else err["msg"].removeprefix("Value error, ")
            problems.append(f"{name} {reason}")
        raise SettingsError("Invalid settings: " + "; ".join(problems) + " (see .env.example)") from None
