"""Typed provider errors. Messages carry the provider's words and trace id, never a token."""

from __future__ import annotations


class LumaError(Exception):
    """Base of every provider error. `retryable` tells the engine whether trying later can help."""

    retryable = False

    def __init__(
        self, message: str, *, status: int | None = None, code: str | None = None, trace_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.trace_id = trace_id

    def __str__(self) -> str:
        parts = [self.message]
        if self.status is not None:
            parts.append(f"status={self.status}")
        if self.code:
            parts.append(f"code={self.code}")
        if self.trace_id:
            parts.append(f"trace_id={self.trace_id}")
        return " ".join(parts)


class InvalidRequest(LumaError):
    """We sent something the provider refuses (400/404/422); sending it again will not help."""


class ModerationRefused(LumaError):
    """The provider's moderation refused the prompt or a frame."""


class AuthenticationFailed(LumaError):
    """The API token is missing, wrong, expired or disabled: the operator must act."""


class BalanceExhausted(LumaError):
    """The provider account's balance or quota is used up: the operator must top it up."""


class RateLimited(LumaError):
    """Too many requests or too many tasks in flight; `retry_after` is the provider's hint in seconds."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ProviderUnavailable(LumaError):
    """5xx, timeouts, dropped connections, bodies that are not JSON: the provider may recover.

    `maybe_submitted` is True when a create request (generate/extend) may have reached the provider before the
    answer was lost, so a paid task may exist: the caller must not simply submit it again.
    """

    retryable = True

    def __init__(self, message: str, *, maybe_submitted: bool = False, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.maybe_submitted = maybe_submitted


class TaskNotFound(LumaError):
    """The provider does not know this task id."""
