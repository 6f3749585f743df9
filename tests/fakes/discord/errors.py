"""Discord API errors with the exact status codes and JSON bodies Discord sends.

Handlers raise :class:`APIError`; the REST layer turns it into a response.
:class:`FormErrors` builds the nested ``errors`` object of a 50035
"Invalid Form Body" answer, e.g.
``{"embeds": {"0": {"title": {"_errors": [{"code": ..., "message": ...}]}}}}``.
"""

from __future__ import annotations

from typing import Any


class APIError(Exception):
    """An error answer: HTTP ``status`` plus Discord's ``{"message", "code"}`` body."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        *,
        errors: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return body


class FormErrors:
    """Collects field errors at JSON paths and renders Discord's nested error tree."""

    def __init__(self) -> None:
        self._tree: dict[str, Any] = {}

    def add(self, path: tuple[str | int, ...], code: str, message: str) -> None:
        node = self._tree
        for part in path:
            node = node.setdefault(str(part), {})
        node.setdefault("_errors", []).append({"code": code, "message": message})

    def max_length(self, path: tuple[str | int, ...], limit: int) -> None:
        self.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")

    def bad_length(self, path: tuple[str | int, ...], low: int, high: int) -> None:
        self.add(path, "BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length.")

    def required(self, path: tuple[str | int, ...]) -> None:
        self.add(path, "BASE_TYPE_REQUIRED", "This field is required")

    def __bool__(self) -> bool:
        return bool(self._tree)

    @property
    def tree(self) -> dict[str, Any]:
        return self._tree

    def raise_if_any(self) -> None:
        if self._tree:
            raise invalid_form_body(self._tree)


def invalid_form_body(errors: dict[str, Any]) -> APIError:
    return APIError(400, 50035, "Invalid Form Body", errors=errors)


def not_found() -> APIError:
    return APIError(404, 0, "404: Not Found")


def unauthorized() -> APIError:
    return APIError(401, 0, "401: Unauthorized")


def unknown_channel() -> APIError:
    return APIError(404, 10003, "Unknown Channel")


def unknown_guild() -> APIError:
    return APIError(404, 10004, "Unknown Guild")


def unknown_member() -> APIError:
    return APIError(404, 10007, "Unknown Member")


def unknown_message() -> APIError:
    return APIError(404, 10008, "Unknown Message")


def unknown_user() -> APIError:
    return APIError(404, 10013, "Unknown User")


def unknown_webhook() -> APIError:
    return APIError(404, 10015, "Unknown Webhook")


def unknown_application_command() -> APIError:
    return APIError(404, 10063, "Unknown application command")


def unknown_interaction() -> APIError:
    return APIError(404, 10062, "Unknown interaction")


def already_acknowledged() -> APIError:
    return APIError(400, 40060, "Interaction has already been acknowledged.")


def missing_access() -> APIError:
    return APIError(403, 50001, "Missing Access")


def missing_permissions() -> APIError:
    return APIError(403, 50013, "Missing Permissions")


def cannot_edit_others_message() -> APIError:
    return APIError(403, 50005, "Cannot edit a message authored by another user")


def cannot_send_empty_message() -> APIError:
    return APIError(400, 50006, "Cannot send an empty message")


def cannot_send_to_user() -> APIError:
    return APIError(403, 50007, "Cannot send messages to this user")


def invalid_webhook_token() -> APIError:
    return APIError(401, 50027, "Invalid Webhook Token")


def thread_archived() -> APIError:
    return APIError(400, 50083, "Thread is archived")


def thread_already_created() -> APIError:
    return APIError(400, 160004, "A thread has already been created for this message")


def entity_too_large() -> APIError:
    return APIError(413, 40005, "Request entity too large")
