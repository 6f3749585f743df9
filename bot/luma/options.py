"""A video's options as one typed value (what is stored on a job and sent to a provider), and the check of
those options against what the provider can do, made before anything is sent."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from bot.luma.capabilities import ProviderSpec
from bot.luma.types import DEFAULT_ASPECT_RATIO
from bot.luma.validation import InvalidInput

CHOOSABLE = ("model", "resolution", "duration")


@dataclass(frozen=True, slots=True)
class VideoOptions:
    """Everything about a video but its prompt and its parent. `model`, `resolution` and `duration` are None
    where the provider decides (the resellers) and hold the values used once checked."""

    aspect_ratio: str = DEFAULT_ASPECT_RATIO
    loop: bool = False
    enhancement: bool = True
    start_image_url: str | None = None
    end_image_url: str | None = None
    model: str | None = None
    resolution: str | None = None
    duration: str | None = None
    # Which of model/resolution/duration the member chose; the others are defaults, which another provider
    # (after a failover) replaces with its own.
    chosen: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if v is not None and k != "chosen"}
        if self.chosen:
            data["chosen"] = list(self.chosen)
        return data

    def requested(self) -> VideoOptions:
        """What the member asked for, without the defaults one provider filled in."""
        keep = {k: getattr(self, k) if k in self.chosen else None for k in CHOOSABLE}
        return replace(self, **keep)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> VideoOptions:
        """Tolerant of rows written by older versions (missing keys take their defaults)."""
        data = data or {}

        def text(key: str) -> str | None:
            value = data.get(key)
            return value if isinstance(value, str) and value else None

        return cls(
            aspect_ratio=text("aspect_ratio") or DEFAULT_ASPECT_RATIO,
            loop=bool(data.get("loop", False)),
            enhancement=bool(data.get("enhancement", True)),
            start_image_url=text("start_image_url"),
            end_image_url=text("end_image_url"),
            model=text("model"),
            resolution=text("resolution"),
            duration=text("duration"),
            chosen=tuple(k for k in data.get("chosen") or () if k in CHOOSABLE),
        )


@dataclass(frozen=True, slots=True)
class OptionDefaults:
    """The admin's defaults for members who choose nothing (None: the provider's own default)."""

    model: str | None = None
    resolution: str | None = None
    duration: str | None = None


def _choice(spec: ProviderSpec, what: str, value: str | None, offered: tuple[str, ...], default: str | None) -> str | None:
    if value is None:
        return default if offered else None
    if not offered:
        raise InvalidInput(f"{_cap(spec.title)} does not let you choose the {what}: leave `{what}` empty.")
    if value not in offered:
        raise InvalidInput(
            f"{_cap(spec.title)} has no {what} {value}: choose one of {', '.join(offered)}."
        )
    return value


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def check_defaults(spec: ProviderSpec, defaults: OptionDefaults) -> OptionDefaults:
    """The admin's defaults, checked against the provider (raises InvalidInput naming what it offers)."""
    return OptionDefaults(
        model=_choice(spec, "model", defaults.model, spec.models, spec.default_model),
        resolution=_choice(spec, "resolution", defaults.resolution, spec.resolutions, spec.default_resolution),
        duration=_choice(spec, "duration", defaults.duration, spec.durations, spec.default_duration),
    )


def usable_defaults(spec: ProviderSpec, defaults: OptionDefaults) -> OptionDefaults:
    """The admin's defaults where this provider offers them, its own otherwise (with several providers a
    default may suit only some of them; the settings check that it suits at least one)."""

    def pick(value: str | None, offered: tuple[str, ...], own: str | None) -> str | None:
        return value if value in offered else (own if offered else None)

    return OptionDefaults(
        model=pick(defaults.model, spec.models, spec.default_model),
        resolution=pick(defaults.resolution, spec.resolutions, spec.default_resolution),
        duration=pick(defaults.duration, spec.durations, spec.default_duration),
    )


def check_generate(spec: ProviderSpec, options: VideoOptions, defaults: OptionDefaults) -> VideoOptions:
    """The options with the provider's (or admin's) defaults filled in; refuses what the provider cannot do
    with a sentence naming what it can."""
    base = usable_defaults(spec, defaults)
    if options.aspect_ratio not in spec.aspect_ratios:
        raise InvalidInput(
            f"{_cap(spec.title)} has no {options.aspect_ratio} videos: "
            f"choose one of {', '.join(spec.aspect_ratios)}."
        )
    model = _choice(spec, "model", options.model, spec.models, base.model)
    resolution = _choice(spec, "resolution", options.resolution, spec.resolutions, base.resolution)
    duration = _choice(spec, "duration", options.duration, spec.durations, base.duration)
    if options.end_image_url and not spec.end_frame:
        raise InvalidInput(f"{_cap(spec.title)} cannot use an end frame: give a start frame only.")
    if options.loop:
        if not spec.loop:
            raise InvalidInput(f"{_cap(spec.title)} cannot make looping videos: turn `loop` off.")
        if options.end_image_url and not spec.loop_with_end_frame:
            raise InvalidInput(
                f"{_cap(spec.title)} cannot loop a video that has an end frame: turn `loop` off "
                "or leave out the end frame."
            )
        if spec.loop_durations is not None and duration not in spec.loop_durations:
            raise InvalidInput(
                f"{_cap(spec.title)} can loop only {', '.join(spec.loop_durations)} videos: "
                f"turn `loop` off or choose {' or '.join(spec.loop_durations)}."
            )
    enhancement = options.enhancement if spec.enhancement else True
    chosen = tuple(k for k in CHOOSABLE if getattr(options, k) is not None)
    return replace(
        options, model=model, resolution=resolution, duration=duration, enhancement=enhancement, chosen=chosen
    )


def check_extend(
    spec: ProviderSpec, end_image_url: str | None, defaults: OptionDefaults, parent: VideoOptions | None
) -> VideoOptions:
    """An extension keeps its parent's model and resolution where it has them (the provider's defaults
    otherwise); its length is the provider's (the Agents API bills an extension as one 5 s block)."""
    base = usable_defaults(spec, defaults)
    if end_image_url and not spec.end_frame:
        raise InvalidInput(f"{_cap(spec.title)} cannot use an end frame: leave it out.")
    model = parent.model if parent and parent.model in spec.models else base.model
    resolution = parent.resolution if parent and parent.resolution in spec.resolutions else base.resolution
    return VideoOptions(end_image_url=end_image_url, model=model, resolution=resolution)
