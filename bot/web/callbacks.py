"""The route providers call back on: `/callbacks/luma/<job id>/<secret>`.

The secret is unguessable and per job (providers sign nothing). The body is read only to check which task it
names; the result itself is fetched from the provider by the engine, so a forged body can never inject a video.
Anything malformed (a job id that is no database id, a body that is too big, too slow, too deep or not JSON)
gets a 4xx before the database is asked anything.
"""

from __future__ import annotations

import asyncio
import json
import logging

from aiohttp import web

from bot.jobs.engine import CallbackOutcome, JobEngine

log = logging.getLogger(__name__)

# A provider's callback is a task record of a few KB; anything far larger is not one.
MAX_CALLBACK_BYTES = 64 * 1024
# Job ids are positive 64-bit database ids; a longer or larger number would overflow the query (a 500).
_MAX_JOB_ID = 2**63 - 1
# Our secrets are 64 characters or fewer (the column's size); a longer one cannot match.
_MAX_SECRET_CHARS = 64

_STATUS = {
    CallbackOutcome.ACCEPTED: 200,
    CallbackOutcome.UNKNOWN: 404,
    CallbackOutcome.MISMATCH: 409,
    CallbackOutcome.STALE: 409,
}


def _task_id_of(body: object) -> str | None:
    """The task a callback body names, in AceDataCloud's (`task_id`) or Luma's (`id`) shape."""
    if not isinstance(body, dict):
        return None
    for key in ("task_id", "id"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
    data = body.get("data")
    return _task_id_of(data) if isinstance(data, dict) else None


def _job_id(text: str) -> int | None:
    # isdigit() also accepts other scripts' digits and int() would parse them: only ASCII 0-9 is an id.
    if not text or len(text) > 19 or not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if 0 < value <= _MAX_JOB_ID else None


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def add_callback_routes(app: web.Application, engine: JobEngine, *, read_timeout: float) -> None:
    async def callback(request: web.Request) -> web.Response:
        job_id = _job_id(request.match_info["job_id"])
        secret = request.match_info["secret"]
        if job_id is None or len(secret) > _MAX_SECRET_CHARS:
            return _error(404, "not found")
        if request.content_length is not None and request.content_length > MAX_CALLBACK_BYTES:
            return _error(413, "body too large")
        try:
            # A sender that trickles its body holds a connection: it gets the same time as for its headers.
            async with asyncio.timeout(read_timeout):
                raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _error(413, "body too large")
        except TimeoutError:
            return _error(408, "body too slow")
        try:
            body = json.loads(raw) if raw else None
        except (UnicodeDecodeError, ValueError):
            return _error(400, "body is not JSON")
        except RecursionError:
            # json.loads recurses per nesting level: 64 KiB of "[" is 65,536 levels.
            return _error(400, "body is nested too deeply")
        if not isinstance(body, dict):
            return _error(400, "body must be a JSON object")
        outcome = await engine.handle_callback(job_id, secret, _task_id_of(body))
        if outcome is not CallbackOutcome.ACCEPTED:
            # Never log the secret: the path carries it.
            log.info("callback for job %s refused: %s", job_id, outcome.value)
        return web.json_response({"result": outcome.value}, status=_STATUS[outcome])

    app.router.add_post("/callbacks/luma/{job_id}/{secret}", callback)
