"""Logging for the bot process: plain text or one JSON object per line, a filter that blanks every configured
secret, and one that logs a message repeated in a burst once, with a count, instead of flooding the log."""

from __future__ import annotations

import json
import logging
import re
from collections import OrderedDict
from collections.abc import Iterable
from datetime import UTC, datetime

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class RedactSecrets(logging.Filter):
    """Replaces secret values anywhere in a record's final message (arguments included) with ***."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s and len(s) >= 4]

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        redacted = message
        for secret in self.secrets:
            redacted = redacted.replace(secret, "***")
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            for secret in self.secrets:
                text = text.replace(secret, "***")
            record.exc_text, record.exc_info = text, None
        for key in _FIELDS:
            value = getattr(record, key, None)
            if isinstance(value, str):
                for secret in self.secrets:
                    value = value.replace(secret, "***")
                setattr(record, key, value)
        return True


class RepeatFilter(logging.Filter):
    """The same message from the same logger within `window` seconds is logged once; the next time it comes
    after the window, it carries the count of those left out. (An exhausted file limit once made asyncio log
    `socket.accept() out of system resource` 115,000 times in 30 s.)"""

    def __init__(self, window: float = 60.0, max_keys: int = 1000) -> None:
        super().__init__()
        self.window = window
        self.max_keys = max_keys
        # (logger, level, message) → [time it was last let through, how many were left out since]
        self._seen: OrderedDict[tuple[str, int, str], list[float]] = OrderedDict()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, record.getMessage())
        entry = self._seen.get(key)
        now = record.created
        if entry is not None and now - entry[0] < self.window:
            entry[1] += 1
            return False
        if entry is not None and entry[1]:
            record.msg = f"{key[2]} (repeated {int(entry[1])} more times in {now - entry[0]:.0f}s)"
            record.args = None
        self._seen[key] = [now, 0]
        self._seen.move_to_end(key)
        while len(self._seen) > self.max_keys:
            self._seen.popitem(last=False)
        return True


# Fields of a JSON line beyond the basics, taken from `extra=` when a call passes them, else from the message.
_FIELDS = ("job_id", "provider", "task_id")
# Every log line about a job starts "job <id>:" and names its task as "task <id>" (one name for one thing).
_JOB = re.compile(r"\bjob (\d+)\b")
_TASK = re.compile(r"\btask ([\w.:-]+)")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, job_id, provider, task_id (when known), and the
    traceback as `exc`. The stdlib suffices for this (python-json-logger would add a dependency for the same
    20 lines), and the record reaches it already redacted. A job's task id, once logged, is remembered (for
    the last few thousand jobs) so later lines about the job carry it too."""

    def __init__(self, provider: str | None = None) -> None:
        super().__init__()
        self.provider = provider
        self._tasks: OrderedDict[int, str] = OrderedDict()

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        out: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        job_id = getattr(record, "job_id", None)
        if job_id is None and (match := _JOB.search(message)):
            job_id = int(match.group(1))
        task_id = getattr(record, "task_id", None)
        if task_id is None and job_id is not None and (match := _TASK.search(message)):
            task_id = match.group(1)
        if job_id is not None:
            job_id = int(job_id)
            if task_id is not None:
                self._remember(job_id, str(task_id))
            else:
                task_id = self._tasks.get(job_id)
            out["job_id"] = job_id
        provider = getattr(record, "provider", None) or (self.provider if job_id is not None else None)
        if provider is not None:
            out["provider"] = provider
        if task_id is not None:
            out["task_id"] = str(task_id)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        return json.dumps(out, ensure_ascii=False, default=str)

    def _remember(self, job_id: int, task_id: str) -> None:
        self._tasks[job_id] = task_id
        self._tasks.move_to_end(job_id)
        if len(self._tasks) > 5000:
            self._tasks.popitem(last=False)


def configure_logging(
    level: str, secrets: Iterable[str] = (), *, fmt: str = "text", provider: str | None = None
) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(provider) if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    # Redact first: the repeat filter and the formatter only ever see clean text.
    handler.addFilter(RedactSecrets(secrets))
    handler.addFilter(RepeatFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # discord.py's own INFO lines are useful; its DEBUG gateway dumps are not.
    logging.getLogger("discord").setLevel(max(logging.INFO, root.level))
    logging.getLogger("tortoise").setLevel(logging.WARNING)
    logging.getLogger("aiosqlite").setLevel(logging.WARNING)
    # aiohttp's web server logs every client that hangs up mid-request; the repeat filter keeps it short.
    logging.getLogger("aiohttp.server").setLevel(logging.WARNING)
