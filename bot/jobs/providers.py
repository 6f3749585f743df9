"""The providers and keys this deployment uses, in order of preference: one client per key, each key known
by a stable id (stored on the jobs it runs, so a restarted bot polls a task through the key that made it)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from bot.luma.base import LumaClient
from bot.luma.capabilities import ProviderSpec, spec_for
from bot.luma.http import RetryPolicy
from bot.luma.providers import make_client


def key_id_for(provider: str, token: str) -> str:
    """A key's stable name: the provider and a short hash of the token (never the token itself)."""
    return f"{provider}:{hashlib.sha256(token.encode()).hexdigest()[:12]}"


def mask(token: str) -> str:
    return "…" + token[-4:] if len(token) > 8 else "…"


@dataclass(frozen=True, slots=True, eq=False)
class ProviderKey:
    id: str
    provider: str
    client: LumaClient
    max_concurrent: int
    masked: str  # the token's last 4 characters, for admins

    @property
    def spec(self) -> ProviderSpec:
        return spec_for(self.provider)


class ProviderPool:
    def __init__(self, keys: Iterable[ProviderKey]) -> None:
        self._keys = list(keys)
        if not self._keys:
            raise ValueError("no provider key configured")
        self._by_id = {k.id: k for k in self._keys}
        self.order: tuple[str, ...] = tuple(dict.fromkeys(k.provider for k in self._keys))

    @classmethod
    def from_configs(
        cls, configs: Iterable[Any], session: aiohttp.ClientSession, *, retry: RetryPolicy | None = None
    ) -> ProviderPool:
        """One client per key of each configured provider (bot.settings.ProviderConfig), in order."""
        keys = [
            ProviderKey(
                key_id_for(config.name, token),
                config.name,
                make_client(config.name, session, token=token, base_url=config.base_url, retry=retry),
                config.max_concurrent,
                mask(token),
            )
            for config in configs
            for token in config.tokens
        ]
        return cls(keys)

    @classmethod
    def single(cls, client: LumaClient, max_concurrent: int) -> ProviderPool:
        """One provider with one key, named after the provider (tests and embedders that build a client)."""
        return cls([ProviderKey(f"{client.provider}:0", client.provider, client, max_concurrent, "…")])

    def keys(self, provider: str | None = None) -> list[ProviderKey]:
        return [k for k in self._keys if provider is None or k.provider == provider]

    def key(self, key_id: str | None) -> ProviderKey | None:
        return self._by_id.get(key_id) if key_id else None

    def has(self, provider: str) -> bool:
        return provider in self.order

    def for_task(self, provider: str, key_id: str | None) -> ProviderKey | None:
        """The key to follow a task with: the one that made it, else (its key was replaced in the settings,
        or the job predates keys) the provider's first key, whose account is most likely the same. None when
        the provider is no longer configured."""
        return self.key(key_id) or next(iter(self.keys(provider)), None)

    @property
    def primary(self) -> ProviderKey:
        return self._keys[0]

    def specs(self) -> Sequence[ProviderSpec]:
        return [spec_for(name) for name in self.order]
