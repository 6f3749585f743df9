"""Builds the provider client named in the settings: the only place that knows every provider class."""

from __future__ import annotations

import aiohttp

from bot.luma.providers import acedatacloud, umami
from bot.luma.base import LumaClient
from bot.luma.http import RetryPolicy

PROVIDERS: tuple[str, ...] = (acedatacloud.PROVIDER, umami.PROVIDER)
DEFAULT_BASE_URLS: dict[str, str] = {
    acedatacloud.PROVIDER: acedatacloud.DEFAULT_BASE_URL,
    umami.PROVIDER: umami.DEFAULT_BASE_URL,
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
    """A client for `provider` ("acedatacloud" | "umami"); raises ValueError for any other name."""
    name = provider.strip().lower()
    if name not in DEFAULT_BASE_URLS:
        raise ValueError(f"unknown Luma provider {provider!r}; expected one of {', '.join(PROVIDERS)}")
    url = base_url or DEFAULT_BASE_URLS[name]
    if name == acedatacloud.PROVIDER:
        return acedatacloud.AceDataCloudClient(
            session, token=token, base_url=url, retry=retry, timeout=timeout
        )
    return umami.UmamiClient(session, token=token, base_url=url, retry=retry, timeout=timeout)
