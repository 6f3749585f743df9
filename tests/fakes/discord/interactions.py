"""Interaction lifecycle: records, the 3 s acknowledgement rule, callbacks and webhook follow-ups.

Rules enforced (with Discord's real error bodies):

* a callback after ``ack_deadline`` seconds -> 404 ``10062 Unknown interaction``;
* a second callback -> 400 ``40060 Interaction has already been acknowledged.``;
* callback types must fit the interaction type (e.g. 7 only for components);
* webhook calls (``@original``, follow-ups) before the interaction was acknowledged
  -> 404 ``10015 Unknown Webhook``; after ``token_ttl`` -> 401 ``50027 Invalid Webhook Token``;
* after a type 5 defer, the first follow-up replaces the "thinking" message (keeping
  the defer's ephemerality) instead of creating a new message, as on Discord.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import payloads
from .errors import (
    FormErrors,
    already_acknowledged,
    invalid_webhook_token,
    unknown_channel,
    unknown_interaction,
    unknown_message,
    unknown_webhook,
)
from .messages import File, create_message, edit_message, prepare_components
from .models import Message, MessageFlag, MessageType, Rejection
from .state import World
from .validation import validate_autocomplete, validate_modal

if TYPE_CHECKING:
    from .gateway import Gateway


class InteractionType:
    PING = 1
    APPLICATION_COMMAND = 2
    MESSAGE_COMPONENT = 3
    APPLICATION_COMMAND_AUTOCOMPLETE = 4
    MODAL_SUBMIT = 5


class CallbackType:
    PONG = 1
    CHANNEL_MESSAGE_WITH_SOURCE = 4
    DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE = 5
    DEFERRED_UPDATE_MESSAGE = 6
    UPDATE_MESSAGE = 7
    APPLICATION_COMMAND_AUTOCOMPLETE_RESULT = 8
    MODAL = 9
    LAUNCH_ACTIVITY = 12


# Which callback types each interaction type accepts. 6/7 on a modal submit need a source message.
_ALLOWED_CALLBACKS: dict[int, set[int]] = {
    InteractionType.PING: {1},
    InteractionType.APPLICATION_COMMAND: {4, 5, 9, 12},
    InteractionType.MESSAGE_COMPONENT: {4, 5, 6, 7, 9, 12},
    InteractionType.APPLICATION_COMMAND_AUTOCOMPLETE: {8},
    InteractionType.MODAL_SUBMIT: {4, 5, 6, 7},
}


class InteractionRejected(AssertionError):
    """Raised by :meth:`InteractionRecord.wait_response` once the interaction can no longer be answered.

    That is: the ack deadline passed without an accepted callback.  ``rejections``
    lists the bot's refused attempts (e.g. a 50035 body, or 10062 for being late).
    """

    def __init__(self, record: InteractionRecord) -> None:
        attempts = "; ".join(
            f"{r.status} {r.code} {r.message} ({r.method} {r.path})" for r in record.rejections
        )
        super().__init__(
            f"interaction {record.describe()} was not acknowledged within its deadline"
            + (f"; rejected attempts: {attempts}" if attempts else "; the bot never answered")
        )
        self.rejections = list(record.rejections)
        self.rejection = self.rejections[0] if self.rejections else None


class InteractionRecord:
    """One interaction the fake dispatched, and everything the bot did in answer.

    Test-facing: ``await record.wait_response()`` (the first accepted callback
    body), ``await record.wait_followups(n)``, ``await record.wait_original()``,
    ``await record.wait_modal()``, ``await record.wait_rejection()``;
    ``record.original`` / ``record.followups`` / ``record.callbacks`` /
    ``record.rejections`` / ``record.payload`` (the INTERACTION_CREATE body).
    """

    def __init__(
        self,
        world: World,
        *,
        id: int,
        token: str,
        type: int,
        payload: dict[str, Any],
        guild_id: int | None,
        channel_id: int,
        user_id: int,
        created_at: float,
        ack_deadline: float,
        token_ttl: float,
        source_message_id: int | None = None,
        command_name: str | None = None,
        command_type: int | None = None,
        custom_id: str | None = None,
        triggering: InteractionRecord | None = None,
    ) -> None:
        self._world = world
        self.id = id
        self.token = token
        self.type = type
        self.payload = payload
        self.guild_id = guild_id
        self.channel_id = channel_id
        self.user_id = user_id
        self.created_at = created_at
        self.ack_deadline_at = created_at + ack_deadline
        self.expires_at = created_at + token_ttl
        self.source_message_id = source_message_id
        self.command_name = command_name
        self.command_type = command_type
        self.custom_id = custom_id
        self.triggering = triggering
        self.response_type: int | None = None
        self.acknowledged_at: float | None = None
        self.callbacks: list[dict[str, Any]] = []
        self.rejections: list[Rejection] = []
        self.original_message_id: int | None = None
        self.followup_ids: list[int] = []
        self.modal: dict[str, Any] | None = None
        self.choices: list[dict[str, Any]] | None = None

    def describe(self) -> str:
        what = self.command_name or self.custom_id or f"type {self.type}"
        return f"{self.id} ({what})"

    def __repr__(self) -> str:
        return f"<InteractionRecord {self.describe()} response_type={self.response_type}>"

    # ------------------------------------------------------------------ state

    @property
    def acknowledged(self) -> bool:
        return self.response_type is not None

    @property
    def response(self) -> dict[str, Any] | None:
        """The first accepted callback body (``{"type": ..., "data": ...}``)."""
        return self.callbacks[0] if self.callbacks else None

    @property
    def original(self) -> Message | None:
        """The original response message (type 4/5 message, or the component's message after 6/7)."""
        if self.original_message_id is None:
            return None
        return self._world.messages.get(self.original_message_id)

    @property
    def followups(self) -> list[Message]:
        return [self._world.messages[m] for m in self.followup_ids if m in self._world.messages]

    @property
    def message_ids(self) -> set[int]:
        ids = set(self.followup_ids)
        if self.original_message_id is not None:
            ids.add(self.original_message_id)
        return ids

    def deadline_passed(self, now: float | None = None) -> bool:
        now = asyncio.get_running_loop().time() if now is None else now
        return now > self.ack_deadline_at

    @property
    def expired(self) -> bool:
        """True once the ack deadline passed without any accepted callback."""
        return not self.acknowledged and self.deadline_passed()

    @property
    def token_expired(self) -> bool:
        """True once the interaction token's lifetime (``token_ttl``) is over."""
        return asyncio.get_running_loop().time() > self.expires_at

    # ------------------------------------------------------------------ waiting

    async def wait_response(self, timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109
        """The first accepted callback body.

        Raises :class:`InteractionRejected` as soon as the ack deadline passed
        without one (a refused-but-retried attempt inside the deadline is fine).
        """

        def check() -> dict[str, Any] | None:
            if self.callbacks:
                return self.callbacks[0]
            if self.deadline_passed():
                # Nothing can acknowledge it any more: fail now, with the refused attempts, not at the timeout.
                raise InteractionRejected(self)
            return None

        return await self._world.notifier.wait_for(
            check, timeout, f"a response to interaction {self.describe()}"
        )

    async def wait_followups(self, n: int = 1, timeout: float = 5.0) -> list[Message]:  # noqa: ASYNC109
        """The first ``n`` follow-up messages (a follow-up replacing a "thinking" defer counts)."""
        await self._world.notifier.wait_for(
            lambda: len(self.followup_ids) >= n, timeout, f"{n} follow-up(s) to interaction {self.describe()}"
        )
        return self.followups[:n]

    async def wait_original(
        self,
        predicate: Callable[[Message], bool] | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> Message:
        """The original response message, once it exists (and satisfies ``predicate(message)``)."""

        def check() -> Message | None:
            msg = self.original
            if msg is None or (predicate is not None and not predicate(msg)):
                return None
            return msg

        return await self._world.notifier.wait_for(check, timeout, f"original response of {self.describe()}")

    async def wait_modal(self, timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109
        """The ``data`` of the modal the bot opened (callback type 9), ids filled in like Discord."""
        await self.wait_response(timeout)
        if self.modal is None:
            raise AssertionError(
                f"interaction {self.describe()} was answered with type {self.response_type}, not a modal"
            )
        return self.modal

    async def wait_rejection(self, timeout: float = 5.0) -> Rejection:  # noqa: ASYNC109
        """The first refused callback/webhook call (e.g. 10062 after the ack deadline)."""
        return await self._world.notifier.wait_for(
            lambda: self.rejections[0] if self.rejections else None,
            timeout,
            f"a rejected response to interaction {self.describe()}",
        )

    # ------------------------------------------------------------------ message stamping

    def stamp(self, message: Message) -> None:
        """Mark ``message`` as this interaction's response (webhook author, metadata, type)."""
        world = self._world
        user = world.users[self.user_id]
        message.webhook_id = world.application_id
        message.application_id = world.application_id
        message.interaction_id = self.id
        owners = {"0": str(self.guild_id) if self.guild_id is not None else "0"}
        metadata: dict[str, Any] = {
            "id": str(self.id),
            "type": self.type,
            "user": payloads.user(user),
            "authorizing_integration_owners": owners,
        }
        if self.type == InteractionType.APPLICATION_COMMAND:
            metadata["name"] = self.command_name
            metadata["command_type"] = self.command_type
            message.type = (
                MessageType.CHAT_INPUT_COMMAND if self.command_type == 1 else MessageType.CONTEXT_MENU_COMMAND
            )
        elif self.source_message_id is not None:
            metadata["interacted_message_id"] = str(self.source_message_id)
        if self.original_message_id is not None and self.original_message_id != message.id:
            metadata["original_response_message_id"] = str(self.original_message_id)
        message.interaction_metadata = metadata
        if self.type == InteractionType.APPLICATION_COMMAND:
            message.interaction_legacy = {
                "id": str(self.id),
                "type": self.type,
                "name": self.command_name,
                "user": payloads.user(user),
            }


class InteractionService:
    """Creates interaction records and implements the callback/webhook endpoints' semantics."""

    def __init__(self, world: World, gateway: Gateway, *, ack_deadline: float, token_ttl: float) -> None:
        self.world = world
        self.gateway = gateway
        self.ack_deadline = ack_deadline
        self.token_ttl = token_ttl
        self._timers: list[asyncio.TimerHandle] = []

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def register(self, record: InteractionRecord) -> InteractionRecord:
        # A session that is momentarily disconnected still counts: the event is buffered and
        # replayed on RESUME, as on Discord.
        if not any(s.ready for s in self.gateway.live_sessions):
            raise RuntimeError("no bot has a gateway session with the fake (did it finish IDENTIFY?)")
        self.world.interactions[record.id] = record
        self.world.interactions_by_token[record.token] = record
        loop = asyncio.get_running_loop()
        # Wake waiters when the deadline and the token expiry pass so predicates on them re-run.
        self._timers.append(loop.call_at(record.ack_deadline_at + 0.001, self.world.notifier.notify))
        self._timers.append(loop.call_at(record.expires_at + 0.001, self.world.notifier.notify))
        self.gateway.dispatch("INTERACTION_CREATE", record.payload)
        return record

    def cancel_timers(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    # ------------------------------------------------------------------ callback

    def callback(self, record: InteractionRecord, body: dict[str, Any], files: list[File]) -> dict[str, Any]:
        now = self.now()
        if record.acknowledged:
            raise already_acknowledged()
        if record.deadline_passed(now):
            raise unknown_interaction()
        ctype = body.get("type")
        allowed = set(_ALLOWED_CALLBACKS.get(record.type, set()))
        if record.type == InteractionType.MODAL_SUBMIT and record.source_message_id is None:
            allowed -= {6, 7}
        if ctype not in allowed:
            errors = FormErrors()
            choices = ", ".join(str(c) for c in sorted(allowed))
            errors.add(("type",), "BASE_TYPE_CHOICES", f"Value must be one of {{{choices}}}.")
            errors.raise_if_any()
        data = body.get("data") or {}
        world = self.world
        message: Message | None = None
        if ctype == CallbackType.CHANNEL_MESSAGE_WITH_SOURCE:
            message = create_message(
                world,
                self._channel(record),
                world.bot_user,
                data,
                files,
                prefix=("data",),
                interaction=record,
            )
            record.original_message_id = message.id
        elif ctype == CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE:
            flags = MessageFlag.LOADING | (int(data.get("flags") or 0) & MessageFlag.EPHEMERAL)
            message = Message(
                id=world.ids.next(),
                channel_id=record.channel_id,
                guild_id=record.guild_id,
                author=world.bot_user,
                flags=int(flags),
            )
            record.stamp(message)
            world.store_message(message)
            world.emit_message("MESSAGE_CREATE", message)
            record.original_message_id = message.id
        elif ctype == CallbackType.DEFERRED_UPDATE_MESSAGE:
            record.original_message_id = record.source_message_id
        elif ctype == CallbackType.UPDATE_MESSAGE:
            source = world.messages.get(record.source_message_id or 0)
            if source is None or source.deleted:
                raise unknown_message()
            message = edit_message(world, source, data, files, prefix=("data",))
            record.original_message_id = source.id
        elif ctype == CallbackType.APPLICATION_COMMAND_AUTOCOMPLETE_RESULT:
            errors = FormErrors()
            validate_autocomplete(data, errors)
            errors.raise_if_any()
            record.choices = list(data["choices"])
        elif ctype == CallbackType.MODAL:
            errors = FormErrors()
            validate_modal(data, errors)
            errors.raise_if_any()
            modal = copy.deepcopy(data)
            modal["components"] = prepare_components(modal.get("components"))
            record.modal = modal
        record.response_type = ctype
        record.acknowledged_at = now
        record.callbacks.append(body)
        world.notifier.notify()
        return self._callback_response(record, ctype, message)

    def _callback_response(
        self, record: InteractionRecord, ctype: int, message: Message | None
    ) -> dict[str, Any]:
        interaction: dict[str, Any] = {"id": str(record.id), "type": record.type}
        resource: dict[str, Any] = {"type": ctype}
        if message is not None:
            interaction["response_message_id"] = str(message.id)
            interaction["response_message_loading"] = message.loading
            interaction["response_message_ephemeral"] = message.ephemeral
            if ctype in (CallbackType.CHANNEL_MESSAGE_WITH_SOURCE, CallbackType.UPDATE_MESSAGE):
                resource["message"] = payloads.message(self.world, message)
        return {"interaction": interaction, "resource": resource}

    def _channel(self, record: InteractionRecord):
        channel = self.world.channels.get(record.channel_id)
        if channel is None:
            raise unknown_channel()
        return channel

    # ------------------------------------------------------------------ webhooks (interaction tokens)

    def resolve_token(self, application_id: int, token: str) -> InteractionRecord:
        record = self.world.interactions_by_token.get(token)
        if record is None or application_id != self.world.application_id:
            raise unknown_webhook()
        if self.now() > record.expires_at:
            raise invalid_webhook_token()
        if not record.acknowledged:
            # The interaction webhook only exists once the interaction was acknowledged in time.
            raise unknown_webhook()
        return record

    def webhook_message(self, record: InteractionRecord, message_ref: str) -> Message:
        if message_ref == "@original":
            mid = record.original_message_id
        else:
            mid = int(message_ref) if message_ref.isdigit() else None
            if mid not in record.message_ids:
                mid = None
        message = self.world.messages.get(mid) if mid is not None else None
        if message is None or message.deleted:
            raise unknown_message()
        return message

    def followup(self, record: InteractionRecord, body: dict[str, Any], files: list[File]) -> Message:
        world = self.world
        original = record.original
        if (
            record.response_type == CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
            and original is not None
            and original.loading
            and not original.deleted
        ):
            # Discord turns the first follow-up after a "thinking" defer into the original response.
            message = edit_message(world, original, body, files, finish_loading=True)
        else:
            message = create_message(
                world, self._channel(record), world.bot_user, body, files, interaction=record
            )
        record.followup_ids.append(message.id)
        world.notifier.notify()
        return message

    def edit(
        self, record: InteractionRecord, message: Message, body: dict[str, Any], files: list[File]
    ) -> Message:
        return edit_message(self.world, message, body, files, finish_loading=message.loading)
