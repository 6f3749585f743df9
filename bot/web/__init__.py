"""The bot's HTTP server: `/healthz` and `/metrics` always, and the provider callback routes when callbacks
are on. It faces the internet (through a reverse proxy), so it answers garbage with a 4xx and caps how many
connections, and for how long, anyone may hold."""

from bot.web.server import ServerLimits, WebServer, make_app, start_server

__all__ = ["ServerLimits", "WebServer", "make_app", "start_server"]
