"""Money as members and admins see it: the price list of `/luma quota`, the server's option settings of
`/luma-admin options`, and the ledger of `/luma-admin usage` as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from bot.discord_ui import texts
from bot.luma.capabilities import ProviderSpec
from bot.luma.options import OptionDefaults, ServerOptions, VideoOptions, check_defaults, server_defaults
from bot.luma.prices import Pricing
from bot.store.quotas import LedgerLine


def _decimal(amount: int | None, scale: int) -> str:
    """An exact decimal from an integer amount (millicredits: scale 1000; micro-USD: 1_000_000)."""
    if amount is None:
        return ""
    digits = len(str(scale)) - 1
    whole, part = divmod(amount, scale)
    return f"{whole}.{part:0{digits}d}".rstrip("0").rstrip(".")


def credit_line(spec: ProviderSpec, pricing: Pricing, defaults: OptionDefaults) -> str:
    d = check_defaults(spec, defaults)
    video = " ".join(v for v in (d.model, d.resolution, d.duration) if v) or None
    return texts.credit_meaning(video, pricing.credit_price(spec.name))


def price_list(spec: ProviderSpec, pricing: Pricing, server: ServerOptions, defaults: OptionDefaults) -> str:
    """What each option this server allows costs, in credits: one table per model, resolutions down and
    durations across."""
    if not spec.models:
        cost = pricing.cost(spec.name, VideoOptions())
        return texts.flat_price(texts.cost(cost.millicredits, cost.micro_usd))
    chosen = server_defaults(spec, defaults, server)
    durations = server.allowed_durations(spec)
    parts = []
    for model in server.allowed_models(spec):
        rows = []
        for resolution in server.allowed_resolutions(spec):
            cells = [resolution]
            for duration in durations:
                cost = pricing.cost(
                    spec.name, VideoOptions(model=model, resolution=resolution, duration=duration)
                )
                cells.append(texts.credits(cost.millicredits))
            rows.append(cells)
        title = f"**{model}**" + (
            " (default)" if model == chosen.model and len(server.allowed_models(spec)) > 1 else ""
        )
        parts.append(texts.price_list(f"{title}: credits per video", ["", *durations], rows))
    return "\n".join(parts)


def options_summary(spec: ProviderSpec, server: ServerOptions, defaults: OptionDefaults) -> list[str]:
    chosen = server_defaults(spec, defaults, server)
    return [
        f"models: {', '.join(server.allowed_models(spec)) or 'none'}",
        f"resolutions up to: {server.max_resolution or 'any'} ({', '.join(server.allowed_resolutions(spec))})",
        f"durations up to: {server.max_duration or 'any'} ({', '.join(server.allowed_durations(spec))})",
        f"members who choose nothing get: {' '.join(v for v in (chosen.model, chosen.resolution, chosen.duration) if v)}",
    ]


CSV_COLUMNS = (
    "entry_id",
    "job_id",
    "user_id",
    "created_at",
    "settled_at",
    "state",
    "action",
    "provider",
    "model",
    "resolution",
    "duration",
    "credits_reserved",
    "credits_charged",
    "price_usd",
    "actual_usd",
)


def ledger_csv(lines: Iterable[LedgerLine]) -> bytes:
    """The ledger as CSV, amounts as exact decimals (credits, US dollars); times in UTC, ISO 8601."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for line in lines:
        writer.writerow(
            [
                line.entry_id,
                line.job_id,
                line.user_id,
                line.created_at.isoformat(),
                line.settled_at.isoformat() if line.settled_at else "",
                str(line.state),
                line.action,
                line.provider,
                line.model or "",
                line.resolution or "",
                line.duration or "",
                _decimal(line.amount, 1000),
                _decimal(line.charged, 1000),
                _decimal(line.price, 1_000_000),
                _decimal(line.actual_price, 1_000_000),
            ]
        )
    return buffer.getvalue().encode("utf-8")
