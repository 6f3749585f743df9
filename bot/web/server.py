"""The aiohttp application and the listening socket around it.

Each connection must send a complete request head within the read timeout (and is closed when idle that long
between requests, by aiohttp's keep-alive timeout); the socket's protocol factory caps how many connections
are open at once. So slow or idle clients cannot use up the process's file descriptors, which the Discord
connection and the database need too.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bot.metrics import METRICS, Metrics
from bot.web.callbacks import MAX_CALLBACK_BYTES, add_callback_routes

log = logging.getLogger(__name__)

# /healthz answers {"ok": bool, ...parts}; a plain bool is accepted too (tests, simple embedders).
HealthReport = dict[str, Any]
HealthCheck = Callable[[], HealthReport | bool | Awaitable[HealthReport | bool]]

_BUSY = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


@dataclass(frozen=True, slots=True)
class ServerLimits:
    # Seconds a client gets to send a complete request (headers, and a callback's body), and to stay idle
    # between requests. Providers and monitors send a few hundred bytes at once.
    read_timeout: float = 10.0
    # Open connections at once; the rest are answered 503 and closed at once. Well under the usual limit of
    # 1,024 open files, which the Discord connection, the database and the provider client share.
    max_connections: int = 256


def make_app(
    health: HealthCheck,
    *,
    engine: Any = None,
    metrics: Metrics = METRICS,
    limits: ServerLimits = ServerLimits(),
) -> web.Application:
    """The routes: /healthz and /metrics always; the callback route when `engine` is given."""
    app = web.Application(client_max_size=MAX_CALLBACK_BYTES)

    async def healthz(_: web.Request) -> web.Response:
        report = health()
        if inspect.isawaitable(report):
            report = await report
        if not isinstance(report, dict):
            report = {"ok": bool(report)}
        return web.json_response(report, status=200 if report.get("ok") else 503)

    async def metrics_page(_: web.Request) -> web.Response:
        try:
            await metrics.refresh_from_database()
        except Exception as exc:
            # The counters are still worth serving; the job gauges keep their last values.
            log.warning("metrics: could not read the job counts from the database: %s", exc)
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_page)
    if engine is not None:
        add_callback_routes(app, engine, read_timeout=limits.read_timeout)
    return app


class _Counted(asyncio.Protocol):
    """Wraps one aiohttp connection handler: counts it as open until it is lost, and closes it when a
    request's head has not fully arrived `read_timeout` after the connection opened or after the previous
    head (a slow-loris client trickling bytes never completes one). This does not rely on the keep-alive
    timer that newer aiohttp versions also start when a connection opens."""

    def __init__(self, inner: Any, server: WebServer) -> None:
        self._inner = inner
        self._server = server
        self._transport: asyncio.BaseTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._tail = b""

    def _arm(self, seconds: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(seconds, self._expire)

    def _expire(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._server.timed_out_connections += 1
            self._transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._arm(self._server.limits.read_timeout)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if b"\r\n\r\n" in self._tail + data:
            # A head arrived: the handler (and a callback's body read, which has its own timeout) runs now;
            # leave it ample time, then the next request must arrive like the first.
            self._arm(self._server.limits.read_timeout * 3)
        self._tail = (self._tail + data)[-3:]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._server.open_connections -= 1
        self._inner.connection_lost(exc)


class _Busy(asyncio.Protocol):
    """A connection over the cap: told 503 and closed before it costs anything."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(_BUSY)
        transport.close()


class WebServer:
    def __init__(self, runner: web.AppRunner, limits: ServerLimits) -> None:
        self._runner = runner
        self.limits = limits
        self.open_connections = 0
        self.refused_connections = 0
        self.timed_out_connections = 0
        self._server: asyncio.AbstractServer | None = None
        self.port = 0

    def _protocol(self) -> asyncio.Protocol:
        # Counted here, not in connection_made: one pass of the event loop may accept a whole backlog.
        if self.open_connections >= self.limits.max_connections:
            self.refused_connections += 1
            # Logged through the repeat filter of bot.logging_setup: once, then a count.
            log.warning(
                "HTTP server: %d connections open (the cap); refusing new ones", self.open_connections
            )
            return _Busy()
        self.open_connections += 1
        assert self._runner.server is not None
        return _Counted(self._runner.server(), self)

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, host, port, reuse_address=True, backlog=128)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cleanup(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._runner.cleanup()


async def start_server(
    host: str, port: int, health: HealthCheck, *, engine: Any = None, limits: ServerLimits = ServerLimits()
) -> WebServer:
    """Serve on host:port (0 picks a free port: see `.port`); stop it with `await server.cleanup()`."""
    app = make_app(health, engine=engine, limits=limits)
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=limits.read_timeout, shutdown_timeout=1.0)
    await runner.setup()
    server = WebServer(runner, limits)
    await server.start(host, port)
    log.info(
        "HTTP server listening on %s:%s (/healthz, /metrics%s)",
        host,
        server.port,
        ", provider callbacks" if engine is not None else "",
    )
    return server


async def start_callback_server(engine: Any, host: str, port: int, health: HealthCheck) -> WebServer:
    """The older entry point: the server with the callback routes."""
    return await start_server(host, port, health, engine=engine)
