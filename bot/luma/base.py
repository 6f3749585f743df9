"""The provider client contract: the one interface the job engine uses to talk to any Luma reseller."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from bot.luma.types import ExtendRequest, GenerateRequest, TaskResult


@runtime_checkable
class LumaClient(Protocol):
    """A provider client. Every method raises the typed errors of `bot.luma.errors`, never aiohttp's."""

    # "acedatacloud" | "umami": the name stored on a job so a restarted bot polls the right provider.
    provider: str
    # Task ids that one batch poll may carry; `get_tasks` splits longer lists itself.
    max_batch: int
    # Seconds the engine must leave between two poll requests to this provider (AceDataCloud: "stay under
    # 1 req/s or you'll hit 429").
    min_poll_interval: float

    async def generate(self, req: GenerateRequest) -> str:
        """Submit a new video and return the provider's task id (without waiting for the video)."""
        ...

    async def extend(self, req: ExtendRequest) -> str:
        """Submit a continuation of an earlier video and return the provider's task id."""
        ...

    async def get_task(self, task_id: str) -> TaskResult:
        """Fetch one task; raises TaskNotFound when the provider does not know the id."""
        ...

    async def get_tasks(self, task_ids: Sequence[str]) -> dict[str, TaskResult]:
        """Fetch many tasks with one request per `max_batch` ids; ids the provider leaves out are absent."""
        ...

    def redact(self, text: str) -> str:
        """`text` with this client's token masked: providers echo what they were sent, and what the bot keeps
        of their words (a job's failure reason) must never hold the token."""
        ...

    async def verify_token(self) -> None:
        """One request that costs nothing; raises AuthenticationFailed when the provider rejects the token
        (and the other typed errors when it cannot tell, e.g. ProviderUnavailable). For `python -m bot check`."""
        ...
