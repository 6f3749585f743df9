"""The HTTP server providers call back on, plus `/healthz` for the operator's monitoring.

A callback URL is `/callbacks/luma/<job id>/<secret>`, the secret being unguessable and per job (providers
sign nothing). The body is read only to check which task it names; the result itself is fetched from the
provider by the engine, so a forged body can never inject a video.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.jobs.engine import CallbackOutcome, JobEngine

log = logging.getLogger(__name__)

# A provider's callback is a task record of a few KB; anything far larger is not one.
MAX_CALLBACK_BYTES = 64 * 1024

HealthCheck = Callable[[], bool | Awaitable[bool]]

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


def make_app(engine: JobEngine, health: HealthCheck) -> web.Application:
    app = web.Application(client_max_size=MAX_CALLBACK_BYTES)

    async def callback(request: web.Request) -> web.Response:
        try:
            job_id = int(request.match_info["job_id"])
        except ValueError:
            return web.json_response({"error": "not found"}, status=404)
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return web.json_response({"error": "body too large"}, status=413)
        try:
            body = json.loads(raw) if raw else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            return web.json_response({"error": "body is not JSON"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"error": "body must be a JSON object"}, status=400)
        outcome = await engine.handle_callback(job_id, request.match_info["secret"], _task_id_of(body))
        if outcome is not CallbackOutcome.ACCEPTED:
            # Never log the secret: the path carries it.
            log.info("callback for job %s refused: %s", job_id, outcome.value)
        return web.json_response({"result": outcome.value}, status=_STATUS[outcome])

    async def healthz(_: web.Request) -> web.Response:
        ok = health()
        if inspect.isawaitable(ok):
            ok = await ok
        return web.json_response({"ok": bool(ok)}, status=200 if ok else 503)

    app.router.add_post("/callbacks/luma/{job_id}/{secret}", callback)
    app.router.add_get("/healthz", healthz)
    return app


async def start_callback_server(engine: JobEngine, host: str, port: int, health: HealthCheck) -> web.AppRunner:
    """Serve callbacks and /healthz on host:port; stop it with `await runner.cleanup()`."""
    runner = web.AppRunner(make_app(engine, health), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("callback server listening on %s:%s", host, port)
    return runner


async def database_healthy() -> bool:
    from tortoise import connections

    try:
        for conn in connections.all():
            await conn.execute_query("SELECT 1")
    except Exception:
        return False
    return True
