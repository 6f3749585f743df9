"""The `/luma generate` options as the configured providers offer them: their own aspect ratios, models,
resolutions and durations as choices (the first provider's default marked), and no option at all for what
none of them can do, so a member is never offered a value that every provider would refuse."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from discord import app_commands

from bot.luma.capabilities import (
    ALL_ASPECT_RATIOS,
    ALL_DURATIONS,
    ALL_MODELS,
    ALL_RESOLUTIONS,
    ProviderSpec,
)
from bot.luma.options import OptionDefaults, usable_defaults
from bot.luma.types import DEFAULT_ASPECT_RATIO


def _choices(values: list[str], default: str | None) -> list[app_commands.Choice[str | int | float]]:
    # Typed as discord.py's parameter table holds choices (a list is invariant), though every value is a str.
    return [app_commands.Choice(name=f"{v} (default)" if v == default else v, value=v) for v in values]


def _union(every: tuple[str, ...], offered: Sequence[tuple[str, ...]]) -> list[str]:
    return [v for v in every if any(v in values for values in offered)]


def offer_provider_options(
    command: app_commands.Command, specs: Sequence[ProviderSpec], defaults: OptionDefaults
) -> None:
    """Fit `command`'s options to `specs` (in order of preference). `command` must be this cog instance's own
    copy: discord.py copies the parameter table per cog, and each entry is replaced, never edited, so other
    bots in the same process (the tests run several) keep theirs."""
    first = usable_defaults(specs[0], defaults)
    params = command._params  # discord.py keeps no public way to change a parameter's choices
    offered = {
        "aspect_ratio": _choices(
            _union(ALL_ASPECT_RATIOS, [s.aspect_ratios for s in specs]), DEFAULT_ASPECT_RATIO
        ),
        "model": _choices(_union(ALL_MODELS, [s.models for s in specs]), first.model),
        "resolution": _choices(_union(ALL_RESOLUTIONS, [s.resolutions for s in specs]), first.resolution),
        "duration": _choices(_union(ALL_DURATIONS, [s.durations for s in specs]), first.duration),
    }
    for name, choices in offered.items():
        if name not in params:
            continue
        if choices:
            params[name] = dataclasses.replace(params[name], choices=choices)
        else:
            del params[name]  # the callback's own default (None: the provider decides) applies
    if not any(s.enhancement for s in specs):
        params.pop("enhancement", None)
    if not any(s.end_frame for s in specs):
        params.pop("end_image", None)
        params.pop("end_image_url", None)
    if not any(s.loop for s in specs):
        params.pop("loop", None)
