"""LOG_FORMAT=json: one JSON object per line with job_id, provider and task_id as fields, tokens still blanked;
and a message repeated in a burst is logged once, then with a count."""

from __future__ import annotations

import json
import logging

import pytest

from bot.logging_setup import RepeatFilter, configure_logging

TOKEN = "sk-live-json-log-token-1234"


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_job_provider_and_task_and_never_the_token(capsys, restore_logging):
    configure_logging("INFO", [TOKEN], fmt="json", provider="acedatacloud")
    log = logging.getLogger("bot.jobs.engine")
    log.info("job %s: submitted as task %s", 41, "task-abc-1")
    log.info("job %s: delivered (%s)", 41, "completed")
    log.warning("provider said: bad token %s", TOKEN)
    try:
        raise ValueError(f"boom {TOKEN}")
    except ValueError:
        log.exception("job %s: failed", 42)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(line.get("job_id"), line.get("provider"), line.get("task_id")) for line in lines] == [
        (41, "acedatacloud", "task-abc-1"),
        (41, "acedatacloud", "task-abc-1"),  # remembered from the earlier line about the job
        (None, None, None),
        (42, "acedatacloud", None),
    ]
    assert lines[0]["level"] == "INFO" and lines[0]["logger"] == "bot.jobs.engine"
    assert "ValueError" in lines[3]["exc"]
    assert TOKEN not in json.dumps(lines)


def test_a_message_repeated_in_a_burst_is_logged_once_then_with_its_count():
    passed: list[str] = []

    def record(at: float) -> logging.LogRecord:
        rec = logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "socket.accept() out of system resource",
                                None, None)
        rec.created = at
        return rec

    repeat = RepeatFilter(window=60)
    for i in range(115_000):
        rec = record(1000 + i * 0.0002)  # 115,000 in 23 s
        if repeat.filter(rec):
            passed.append(rec.getMessage())
    later = record(1100)
    assert repeat.filter(later)
    passed.append(later.getMessage())
    assert passed == [
        "socket.accept() out of system resource",
        "socket.accept() out of system resource (repeated 114999 more times in 100s)",
    ]
    other = logging.LogRecord("bot", logging.ERROR, __file__, 1, "something else", None, None)
    assert repeat.filter(other)
