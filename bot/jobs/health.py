"""Provider and key health, learnt from real traffic.

A provider whose creates fail (5xx, timeouts, dropped connections, error pages, an unconfirmed create)
becomes unhealthy at once: new jobs go to the next provider. After a cool-down that grows while failures go
on, one create is let through as a probe; only a create that succeeds makes it healthy again. A key whose
answer means "spent or busy" (429, 402, a used-up balance, a refused token) rests while the provider's other
keys go on. Moderation refusals and invalid requests say nothing about health. Poll troubles are tracked
apart and never end a create incident. The operator gets one log line when an incident starts and one when
it ends. Each process learns this on its own, from its own traffic.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.jobs.policy import Backoff
from bot.store.models import FailureKind

log = logging.getLogger(__name__)

# Success rates are shown over this window.
RATE_WINDOW = timedelta(hours=1)
# Enough outcomes to tell a rate without letting a busy hour grow memory without bound.
MAX_OUTCOMES = 2000


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Outcomes:
    items: deque[tuple[datetime, bool]] = field(default_factory=lambda: deque(maxlen=MAX_OUTCOMES))

    def add(self, ok: bool, now: datetime) -> None:
        self.items.append((now, ok))

    def rate(self, now: datetime) -> float | None:
        recent = [ok for at, ok in self.items if now - at <= RATE_WINDOW]
        return sum(recent) / len(recent) if recent else None


@dataclass
class ProviderState:
    name: str
    healthy: bool = True
    since: datetime = field(default_factory=utcnow)
    failures: int = 0
    cooldown_until: datetime | None = None
    probing: bool = False
    last_error: str | None = None
    polling_ok: bool = True
    poll_failures: int = 0
    creates: _Outcomes = field(default_factory=_Outcomes)
    polls: _Outcomes = field(default_factory=_Outcomes)


@dataclass
class KeyState:
    id: str
    provider: str
    masked: str
    resting_until: datetime | None = None
    rest_reason: FailureKind | None = None
    since: datetime = field(default_factory=utcnow)
    failures: int = 0
    last_error: str | None = None
    creates: _Outcomes = field(default_factory=_Outcomes)


class Health:
    def __init__(self, keys: Iterable[Any], backoff: Backoff) -> None:
        self.backoff = backoff
        self.providers: dict[str, ProviderState] = {}
        self.keys: dict[str, KeyState] = {}
        for key in keys:
            self.providers.setdefault(key.provider, ProviderState(key.provider))
            self.keys[key.id] = KeyState(key.id, key.provider, key.masked)

    # -- what may be sent -------------------------------------------------------------------------------

    def can_create(self, provider: str, now: datetime | None = None) -> bool:
        """Healthy, or unhealthy with its cool-down over and no probe out yet."""
        state = self.providers[provider]
        if state.healthy:
            return True
        now = now or utcnow()
        return not state.probing and (state.cooldown_until is None or now >= state.cooldown_until)

    def key_available(self, key_id: str, now: datetime | None = None) -> bool:
        state = self.keys[key_id]
        return state.resting_until is None or (now or utcnow()) >= state.resting_until

    def begin_create(self, provider: str) -> None:
        """A create is about to go out; to an unhealthy provider it is the one probe."""
        state = self.providers[provider]
        if not state.healthy:
            state.probing = True

    def held_up_by(self, providers: Iterable[str], now: datetime | None = None) -> FailureKind | None:
        """Why jobs that may go only to `providers` cannot go now (None: some provider may take them)."""
        now = now or utcnow()
        reasons: list[FailureKind] = []
        for name in providers:
            state = self.providers.get(name)
            if state is None:
                continue
            keys = [k for k in self.keys.values() if k.provider == name]
            if self.can_create(name, now) and any(self.key_available(k.id, now) for k in keys):
                return None
            if not state.healthy:
                reasons.append(FailureKind.PROVIDER)
            else:
                reasons.extend(k.rest_reason or FailureKind.PROVIDER for k in keys)
        return reasons[0] if reasons else FailureKind.PROVIDER

    def next_change(self) -> datetime | None:
        """When a cool-down or a rest ends: the dispatcher looks again then."""
        now = utcnow()
        times = [p.cooldown_until for p in self.providers.values() if not p.healthy and p.cooldown_until]
        times += [k.resting_until for k in self.keys.values() if k.resting_until]
        future = [t for t in times if t > now]
        return min(future) if future else None

    # -- what happened ----------------------------------------------------------------------------------

    def create_succeeded(self, key_id: str, now: datetime | None = None) -> bool:
        """True when this success ends an incident (the caller tells the waiting members)."""
        now = now or utcnow()
        key = self.keys[key_id]
        key.creates.add(True, now)
        state = self.providers[key.provider]
        state.creates.add(True, now)
        ended = False
        if key.resting_until is not None or key.failures:
            if key.rest_reason is not None:
                log.warning(
                    "provider incident (%s) on %s key %s is over", key.rest_reason, key.provider, key.masked
                )
                ended = True
            key.resting_until, key.rest_reason, key.failures, key.since = None, None, 0, now
        if not state.healthy:
            log.warning("provider incident (unhealthy since %s) on %s is over", state.since, state.name)
            state.healthy, state.since = True, now
            ended = True
        state.failures, state.probing, state.cooldown_until = 0, False, None
        return ended

    def create_failed(self, provider: str, error: str, now: datetime | None = None) -> bool:
        """The provider failed a create (its trouble, not the request's). True when an incident starts."""
        now = now or utcnow()
        state = self.providers[provider]
        state.creates.add(False, now)
        state.failures += 1
        state.last_error = error
        state.probing = False
        state.cooldown_until = now + timedelta(seconds=self.backoff.delay(state.failures))
        if state.healthy:
            state.healthy, state.since = False, now
            log.error(
                "provider incident (unhealthy) on %s: %s; new jobs go to the next provider, a probe follows "
                "in %.0fs",
                provider,
                error,
                (state.cooldown_until - now).total_seconds(),
            )
            return True
        return False

    def rest_key(
        self,
        key_id: str,
        reason: FailureKind,
        error: str,
        seconds: float | None = None,
        now: datetime | None = None,
    ) -> bool:
        """The key is spent or busy: it rests (for the provider's hint, else a growing backoff) while other
        keys go on. True when this starts an incident for the key."""
        now = now or utcnow()
        key = self.keys[key_id]
        key.creates.add(False, now)
        key.failures += 1
        key.last_error = error
        self.providers[key.provider].probing = False
        wait = seconds if seconds is not None else self.backoff.delay(key.failures)
        key.resting_until = now + timedelta(seconds=wait)
        started = key.rest_reason != reason
        if started:
            key.rest_reason, key.since = reason, now
            level = logging.WARNING if reason == FailureKind.PROVIDER else logging.ERROR
            log.log(
                level,
                "provider incident (%s) on %s key %s: %s; the key rests while others work",
                reason,
                key.provider,
                key.masked,
                error,
            )
        return started

    def create_neutral(self, provider: str) -> None:
        """A refusal of the request itself (moderation, invalid input): the probe is over, health unchanged."""
        self.providers[provider].probing = False

    def poll_succeeded(self, provider: str, now: datetime | None = None) -> None:
        state = self.providers.get(provider)
        if state is None:
            return
        state.polls.add(True, now or utcnow())
        if not state.polling_ok:
            log.warning("provider incident (polling) on %s is over", provider)
        state.polling_ok, state.poll_failures = True, 0

    def poll_failed(self, provider: str, error: str, now: datetime | None = None) -> int:
        """Returns how many polls in a row have failed (for the backoff)."""
        state = self.providers.get(provider)
        if state is None:
            return 1
        state.polls.add(False, now or utcnow())
        state.poll_failures += 1
        state.last_error = error
        if state.polling_ok:
            log.error("provider incident (polling) on %s: %s; backing off", provider, error)
            state.polling_ok = False
        return state.poll_failures

    # -- what admins see --------------------------------------------------------------------------------

    def report(
        self, running: dict[str, int], slots: dict[str, int], now: datetime | None = None
    ) -> list[dict]:
        """Each provider and its keys: health and since when, running tasks and slots, the last error and
        the success rate over the last hour. The same facts for /luma-admin providers and /healthz."""
        now = now or utcnow()
        out = []
        for state in self.providers.values():
            keys = [k for k in self.keys.values() if k.provider == state.name]
            out.append(
                {
                    "provider": state.name,
                    "healthy": state.healthy,
                    "since": state.since.isoformat(),
                    "polling_ok": state.polling_ok,
                    "last_error": state.last_error,
                    "create_success_rate": state.creates.rate(now),
                    "poll_success_rate": state.polls.rate(now),
                    "keys": [
                        {
                            "key": k.masked,
                            # In an incident until a create succeeds, though it is tried again after each rest.
                            "available": k.rest_reason is None and self.key_available(k.id, now),
                            "resting_until": k.resting_until.isoformat() if k.resting_until else None,
                            "rest_reason": str(k.rest_reason) if k.rest_reason else None,
                            "since": k.since.isoformat(),
                            "running": running.get(k.id, 0),
                            "slots": slots.get(k.id, 0),
                            "last_error": k.last_error,
                            "create_success_rate": k.creates.rate(now),
                        }
                        for k in keys
                    ],
                }
            )
        return out
