"""Contract tests: the official SDKs (`luma-agents`, `lumaai`, `acedatacloud`) talk to the fake provider over
real sockets, so the fake's wire formats are the ones the providers' own clients expect."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.fakes.luma_provider import FakeLumaProvider

TOKEN = "luma-contract-TOKEN-7c41"


@pytest.fixture
async def fake() -> AsyncIterator[FakeLumaProvider]:
    """Tasks move only when a test says so."""
    async with FakeLumaProvider(token=TOKEN, manual=True) as f:
        yield f


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """A plain client for what the SDKs do not fetch themselves (result media)."""
    async with httpx.AsyncClient(timeout=5) as client:
        yield client
