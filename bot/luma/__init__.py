"""Clients for the HTTP APIs that sell Luma Dream Machine. aiohttp only; knows nothing of Discord."""

from bot.luma.base import LumaClient
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
from bot.luma.http import RetryPolicy
from bot.luma.providers import DEFAULT_BASE_URLS, PROVIDERS, make_client
from bot.luma.providers.acedatacloud import AceDataCloudClient
from bot.luma.providers.umami import UmamiClient
from bot.luma.types import (
    ASPECT_RATIOS,
    DEFAULT_ASPECT_RATIO,
    MAX_PROMPT_LENGTH,
    ExtendRequest,
    GenerateRequest,
    TaskResult,
    TaskState,
)
from bot.luma.validation import (
    InvalidInput,
    parse_extend_target,
    validate_aspect_ratio,
    validate_image_url,
    validate_prompt,
)

__all__ = [
    "ASPECT_RATIOS",
    "DEFAULT_ASPECT_RATIO",
    "MAX_PROMPT_LENGTH",
    "AuthenticationFailed",
    "BalanceExhausted",
    "ExtendRequest",
    "GenerateRequest",
    "InvalidRequest",
    "LumaError",
    "ModerationRefused",
    "ProviderUnavailable",
    "RateLimited",
    "TaskNotFound",
    "TaskResult",
    "TaskState",
    # clients
    "DEFAULT_BASE_URLS",
    "PROVIDERS",
    "AceDataCloudClient",
    "LumaClient",
    "RetryPolicy",
    "UmamiClient",
    "make_client",
    # input checks
    "InvalidInput",
    "parse_extend_target",
    "validate_aspect_ratio",
    "validate_image_url",
    "validate_prompt",
]
