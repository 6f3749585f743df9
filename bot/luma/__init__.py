"""Clients for the HTTP APIs that sell Luma Dream Machine. aiohttp only; knows nothing of Discord."""

from bot.luma.errors import (
    AuthenticationFailed,
    BalanceExhausted,
    InvalidRequest,
    LumaError,
    ModerationRefused,
    ProviderUnavailable,
    RateLimited,
    TaskNotFound,
)
from bot.luma.types import (
    ASPECT_RATIOS,
    DEFAULT_ASPECT_RATIO,
    MAX_PROMPT_LENGTH,
    ExtendRequest,
    GenerateRequest,
    TaskResult,
    TaskState,
)

__all__ = [
    "ASPECT_RATIOS", "DEFAULT_ASPECT_RATIO", "MAX_PROMPT_LENGTH", "AuthenticationFailed", "BalanceExhausted",
    "ExtendRequest", "GenerateRequest", "InvalidRequest", "LumaError", "ModerationRefused",
    "ProviderUnavailable", "RateLimited", "TaskNotFound", "TaskResult", "TaskState",
]
