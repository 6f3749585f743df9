"""What a video costs: the price table (prices.toml, or the admin's LUMA_PRICES_FILE) and its conversion into
credits. Amounts are integers: prices in micro-dollars, credits in millicredits, so no rounding drifts."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from bot.luma.capabilities import SPECS, ProviderSpec
from bot.luma.options import OptionDefaults, VideoOptions, usable_defaults

SHIPPED_PRICES = Path(__file__).with_name("prices.toml")
MICRO_USD = 1_000_000  # micro-dollars per dollar
CREDIT = 1000  # millicredits per credit
UNKNOWN = "unknown"


class PriceFileError(ValueError):
    """The price file cannot be used; the message names the file and what is wrong, in one line."""


@dataclass(frozen=True, slots=True)
class ProviderPrices:
    provider: str
    flat: int | None = None  # micro-USD per video for providers without priced options (None: unknown)
    # (model, resolution, duration) → micro-USD
    table: dict[tuple[str, str, str], int] = field(default_factory=dict)
    extend_duration: str | None = None

    def price(
        self, *, extend: bool, model: str | None, resolution: str | None, duration: str | None
    ) -> int | None:
        if not self.table:
            return self.flat
        if extend:
            duration = self.extend_duration
        return self.table.get((model or "", resolution or "", duration or ""))


@dataclass(frozen=True, slots=True)
class PriceTable:
    providers: dict[str, ProviderPrices]

    def price(self, provider: str, options: VideoOptions, *, extend: bool = False) -> int | None:
        """Micro-USD for one video with these (checked) options, or None where the price is unknown."""
        prices = self.providers.get(provider)
        if prices is None:
            return None
        return prices.price(
            extend=extend, model=options.model, resolution=options.resolution, duration=options.duration
        )


@dataclass(frozen=True, slots=True)
class Cost:
    millicredits: int
    micro_usd: int | None  # None: the provider publishes no price


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


class Pricing:
    """Prices requests in credits. A credit is the price of the default video of `credit_provider` (with
    the admin's LUMA_DEFAULT_* options), so limits set in videos keep meaning videos at default options.
    Without a `credit_provider` each job's own provider's default video is the credit."""

    def __init__(
        self,
        table: PriceTable | None = None,
        *,
        credit_provider: str | None = None,
        credit_defaults: OptionDefaults | None = None,
    ) -> None:
        self.table = table or load_prices(None)
        self.credit_provider = credit_provider
        self.credit_defaults = credit_defaults or OptionDefaults()

    def credit_price(self, provider: str) -> int | None:
        """Micro-USD of one credit (None: credits count videos)."""
        name = self.credit_provider or provider
        spec = SPECS.get(name)
        if spec is None:
            return None
        d = usable_defaults(spec, self.credit_defaults if name == self.credit_provider else OptionDefaults())
        price = self.table.price(
            name, VideoOptions(model=d.model, resolution=d.resolution, duration=d.duration)
        )
        return price or None

    def cost(self, provider: str, options: VideoOptions, *, extend: bool = False) -> Cost:
        price = self.table.price(provider, options, extend=extend)
        unit = self.credit_price(provider)
        if price is None or unit is None:
            return Cost(CREDIT, price)
        # Rounded up: a member is never charged less than the provider bills.
        return Cost(ceil_div(price * CREDIT, unit), price)

    def option_costs(
        self,
        spec: ProviderSpec,
        models: tuple[str, ...],
        resolutions: tuple[str, ...],
        durations: tuple[str, ...],
    ) -> list[tuple[str, str, str, Cost]]:
        """(model, resolution, duration, cost) for every combination given, for the members' price list."""
        return [
            (m, r, d, self.cost(spec.name, VideoOptions(model=m, resolution=r, duration=d)))
            for m in models
            for r in resolutions
            for d in durations
        ]


# -- loading ---------------------------------------------------------------------------------------------


def _micro_usd(text: Any, where: str) -> int | None:
    if text == UNKNOWN:
        return None
    if not isinstance(text, str | int):
        raise PriceFileError(f'{where}: write the price as a string, e.g. "0.30" (or "unknown")')
    try:
        amount = Decimal(str(text))
    except InvalidOperation:
        raise PriceFileError(f"{where}: {text!r} is not a price") from None
    if not amount.is_finite() or amount < 0:
        raise PriceFileError(f"{where}: {text!r} is not a price")
    micro = amount * MICRO_USD
    if micro != micro.to_integral_value():
        raise PriceFileError(f"{where}: {text!r} has more than 6 decimals")
    return int(micro)


def _provider_prices(name: str, section: Any) -> ProviderPrices:
    spec = SPECS[name]
    if not isinstance(section, dict):
        raise PriceFileError(f"[{name}] must be a table")
    if not spec.models:
        unknown = set(section) - {"video"}
        if unknown or "video" not in section:
            raise PriceFileError(
                f'[{name}] offers no choice of model, size or length: give only video = "<price>" (or "unknown")'
            )
        return ProviderPrices(name, flat=_micro_usd(section["video"], f"[{name}] video"))
    extend = section.get("extend")
    if extend not in spec.durations:
        raise PriceFileError(f"[{name}] extend must be one of {', '.join(spec.durations)}")
    table: dict[tuple[str, str, str], int] = {}
    for model, by_resolution in section.items():
        if model == "extend":
            continue
        if model not in spec.models or not isinstance(by_resolution, dict):
            raise PriceFileError(f"[{name}] has no model {model!r}: use {', '.join(spec.models)}")
        for resolution, by_duration in by_resolution.items():
            if resolution not in spec.resolutions or not isinstance(by_duration, dict):
                raise PriceFileError(
                    f"[{name}.{model}] has no resolution {resolution!r}: use {', '.join(spec.resolutions)}"
                )
            for duration, text in by_duration.items():
                if duration not in spec.durations:
                    raise PriceFileError(
                        f"[{name}.{model}] {resolution}: no duration {duration!r}: use {', '.join(spec.durations)}"
                    )
                price = _micro_usd(text, f"[{name}.{model}] {resolution} {duration}")
                if price is None:
                    raise PriceFileError(f"[{name}.{model}] {resolution} {duration}: give a price")
                table[model, resolution, duration] = price
    for model in spec.models:
        for resolution in spec.resolutions:
            for duration in spec.durations:
                if (model, resolution, duration) not in table:
                    raise PriceFileError(f"[{name}] has no price for {model} {resolution} {duration}")
    return ProviderPrices(name, table=table, extend_duration=extend)


def _read(path: Path) -> dict[str, ProviderPrices]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PriceFileError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PriceFileError(f"{path}: not valid TOML ({exc})") from None
    result = {}
    for name, section in data.items():
        if name not in SPECS:
            raise PriceFileError(f"{path}: unknown provider [{name}]; use {', '.join(SPECS)}")
        try:
            result[name] = _provider_prices(name, section)
        except PriceFileError as exc:
            raise PriceFileError(f"{path}: {exc}") from None
    return result


def load_prices(path: str | Path | None) -> PriceTable:
    """The shipped prices, with the providers named in `path` (the admin's file) replaced by its own."""
    providers = _read(SHIPPED_PRICES)
    if path:
        providers.update(_read(Path(path)))
    return PriceTable(providers)
