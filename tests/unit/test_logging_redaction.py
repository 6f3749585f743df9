"""The bot's log handler blanks configured secrets wherever they appear: message, arguments, tracebacks."""

from __future__ import annotations

import io
import logging

from bot.logging_setup import RedactSecrets

SECRET = "sk-live-0123456789"


def capture() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecrets([SECRET]))
    logger = logging.getLogger(f"redaction-test-{id(stream)}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    return logger, stream


def test_secret_in_arguments_and_message_is_blanked():
    logger, stream = capture()
    logger.warning("token %s rejected", SECRET)
    logger.warning(f"header Bearer {SECRET}")
    assert SECRET not in stream.getvalue()
    assert stream.getvalue().count("***") == 2


def test_secret_in_a_logged_traceback_is_blanked():
    logger, stream = capture()
    try:
        raise RuntimeError(f"request failed with Authorization: Bearer {SECRET}")
    except RuntimeError:
        logger.exception("provider call failed")
    assert SECRET not in stream.getvalue()
    assert "RuntimeError" in stream.getvalue()
