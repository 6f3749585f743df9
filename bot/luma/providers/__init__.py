"""The provider clients, one module per API, and the one place that builds a client from a provider's name.
What each provider can do is in `bot.luma.capabilities`."""

from __future__ import annotations

import aiohttp

from bot.luma.base import LumaClient
from bot.luma.capabilities import PROVIDER_NAMES, SPECS
from bot.luma.http import JsonProviderClient, RetryPolicy
from bot.luma.providers import acedatacloud, agents, dream_machine, umami

PROVIDERS: tuple[str, ...] = PROVIDER_NAMES
DEFAULT_BASE_URLS: dict[str, str] = {name: spec.default_base_url for name, spec in SPECS.items()}
_CLIENTS: dict[str, type[JsonProviderClient]] = {
    acedatacloud.PROVIDER: acedatacloud.AceDataCloudClient,
    umami.PROVIDER: umami.UmamiClient,
    agents.PROVIDER: agents.LumaAgentsClient,
    dream_machine.PROVIDER: dream_machine.DreamMachineClient,
}


def make_client(
    provider: str,
    session: aiohttp.ClientSession,
    *,
    token: str,
    base_url: str | None = None,
    retry: RetryPolicy | None = None,
    timeout: float = 30,
) -> LumaClient:
    """A client for `provider` (one of PROVIDERS); raises ValueError for any other name."""
    name = provider.strip().lower()
    if name not in _CLIENTS:
        raise ValueError(f"unknown Luma provider {provider!r}; expected one of {', '.join(PROVIDERS)}")
    cls = _CLIENTS[name]
    return cls(
        session, token=token, base_url=base_url or DEFAULT_BASE_URLS[name], retry=retry, timeout=timeout
    )  # type: ignore[return-value]
