"""The `/luma generate` options as the configured provider offers them: its own aspect ratios, models,
resolutions and durations as choices (the default marked), and no option at all for what it cannot do, so a
member is never offered a value that would only be refused."""

from __future__ import annotations

import dataclasses

from discord import app_commands

from bot.luma.capabilities import ProviderSpec
from bot.luma.options import OptionDefaults, check_defaults
from bot.luma.types import DEFAULT_ASPECT_RATIO


def _choices(values: tuple[str, ...], default: str | None) -> list[app_commands.Choice[str]]:
    return [app_commands.Choice(name=f"{v} (default)" if v == default else v, value=v) for v in values]


def offer_provider_options(command: app_commands.Command, spec: ProviderSpec, defaults: OptionDefaults) -> None:
    """Fit `command`'s options to `spec`. `command` must be this cog instance's own copy: discord.py copies
    the parameter table per cog, and each entry is replaced, never edited, so other bots in the same process
    (the tests run several) keep theirs."""
    chosen = check_defaults(spec, defaults)
    params = command._params  # discord.py keeps no public way to change a parameter's choices
    offered = {
        "aspect_ratio": _choices(spec.aspect_ratios, DEFAULT_ASPECT_RATIO),
        "model": _choices(spec.models, chosen.model),
        "resolution": _choices(spec.resolutions, chosen.resolution),
        "duration": _choices(spec.durations, chosen.duration),
    }
    for name, choices in offered.items():
        if name not in params:
            continue
        if choices:
            params[name] = dataclasses.replace(params[name], choices=choices)
        else:
            del params[name]  # the callback's own default (None: the provider decides) applies
    if not spec.enhancement:
        params.pop("enhancement", None)
    if not spec.end_frame:
        params.pop("end_image", None)
        params.pop("end_image_url", None)
    if not spec.loop:
        params.pop("loop", None)
