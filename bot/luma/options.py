"""A video's options as one typed value (what is stored on a job and sent to a provider), and the check of
those options against what the provider can do, made before anything is sent."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from bot.luma.capabilities import ALL_RESOLUTIONS, ProviderSpec
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
        keep: dict[str, Any] = {k: getattr(self, k) if k in self.chosen else None for k in CHOOSABLE}
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


def _choice(
    spec: ProviderSpec, what: str, value: str | None, offered: tuple[str, ...], default: str | None
) -> str | None:
    if value is None:
        return default if offered else None
    if not offered:
        raise InvalidInput(f"{_cap(spec.title)} does not let you choose the {what}: leave `{what}` empty.")
    if value not in offered:
        raise InvalidInput(f"{_cap(spec.title)} has no {what} {value}: choose one of {', '.join(offered)}.")
    return value


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def check_defaults(spec: ProviderSpec, defaults: OptionDefaults) -> OptionDefaults:
    """The admin's defaults, checked against the provider (raises InvalidInput naming what it offers)."""
    return OptionDefaults(
        model=_choice(spec, "model", defaults.model, spec.models, spec.default_model),
        resolution=_choice(
            spec, "resolution", defaults.resolution, spec.resolutions, spec.default_resolution
        ),
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


# -- the server's own limits and defaults (/luma-admin options) -------------------------------------------


def resolution_rank(value: str) -> int:
    return ALL_RESOLUTIONS.index(value) if value in ALL_RESOLUTIONS else len(ALL_RESOLUTIONS)


def duration_seconds(value: str) -> int:
    return int(value.rstrip("s")) if value.rstrip("s").isdigit() else 10**6


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """What a server's admins allow (None / empty: anything the provider offers) and what members who choose
    nothing get (None: the bot's LUMA_DEFAULT_*, else the provider's default)."""

    max_resolution: str | None = None
    max_duration: str | None = None
    models: tuple[str, ...] = ()
    model: str | None = None
    resolution: str | None = None
    duration: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if v}
        if self.models:
            data["models"] = list(self.models)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> ServerOptions:
        data = data or {}

        def text(key: str) -> str | None:
            value = data.get(key)
            return value if isinstance(value, str) and value else None

        models = data.get("models") or ()
        return cls(
            max_resolution=text("max_resolution"),
            max_duration=text("max_duration"),
            models=tuple(m for m in models if isinstance(m, str)),
            model=text("model"),
            resolution=text("resolution"),
            duration=text("duration"),
        )

    def allowed_models(self, spec: ProviderSpec) -> tuple[str, ...]:
        return tuple(m for m in spec.models if not self.models or m in self.models)

    def allowed_resolutions(self, spec: ProviderSpec) -> tuple[str, ...]:
        if self.max_resolution is None:
            return spec.resolutions
        top = resolution_rank(self.max_resolution)
        return tuple(r for r in spec.resolutions if resolution_rank(r) <= top)

    def allowed_durations(self, spec: ProviderSpec) -> tuple[str, ...]:
        if self.max_duration is None:
            return spec.durations
        top = duration_seconds(self.max_duration)
        return tuple(d for d in spec.durations if duration_seconds(d) <= top)


def _fit(value: str | None, allowed: tuple[str, ...], offered: tuple[str, ...]) -> str | None:
    """A default the server's limits allow: `value` when allowed, else the largest allowed value (the
    provider lists its values smallest first), else the first offered."""
    if not offered:
        return None
    if value in allowed:
        return value
    return allowed[-1] if allowed else value


def server_defaults(spec: ProviderSpec, defaults: OptionDefaults, server: ServerOptions) -> OptionDefaults:
    """What a member who chooses nothing gets in this server: the server's default, else the bot's, else the
    provider's, brought within the server's limits, so choosing nothing is never refused."""
    base = usable_defaults(spec, defaults)
    model = server.model if server.model in spec.models else base.model
    resolution = server.resolution if server.resolution in spec.resolutions else base.resolution
    duration = server.duration if server.duration in spec.durations else base.duration
    allowed_models = server.allowed_models(spec)
    return OptionDefaults(
        model=model if model in allowed_models or not allowed_models else allowed_models[0],
        resolution=_fit(resolution, server.allowed_resolutions(spec), spec.resolutions),
        duration=_fit(duration, server.allowed_durations(spec), spec.durations),
    )


def check_server(
    spec: ProviderSpec, options: VideoOptions, server: ServerOptions, *, extend: bool = False
) -> None:
    """Refuse options beyond the server's limits, naming what is allowed. `options` are already checked
    against the provider (defaults filled in)."""
    what = "Extending that video would use" if extend else "You chose"
    if options.model is not None and options.model not in server.allowed_models(spec):
        allowed = server.allowed_models(spec)
        raise InvalidInput(
            f"{what} the model {options.model}, which this server does not allow: "
            + (
                f"use {' or '.join(allowed)}."
                if allowed
                else "it allows none that this provider offers; ask an admin."
            )
        )
    if options.resolution is not None and options.resolution not in server.allowed_resolutions(spec):
        allowed = server.allowed_resolutions(spec)
        raise InvalidInput(
            f"{what} {options.resolution}; this server allows videos up to {server.max_resolution}: "
            + (f"choose {', '.join(allowed)}." if allowed else "ask an admin.")
        )
    if options.duration is not None and options.duration not in server.allowed_durations(spec):
        allowed = server.allowed_durations(spec)
        raise InvalidInput(
            f"{what} {options.duration}; this server allows videos up to {server.max_duration}: "
            + (f"choose {', '.join(allowed)}." if allowed else "ask an admin.")
        )


def check_server_options(spec: ProviderSpec, server: ServerOptions) -> ServerOptions:
    """An admin's settings, checked against the provider and against themselves (raises InvalidInput naming
    what is possible)."""
    for model in server.models:
        if model not in spec.models:
            raise InvalidInput(
                f"{_cap(spec.title)} has no model {model}: choose among {', '.join(spec.models)}."
            )
    if not server.allowed_resolutions(spec):
        raise InvalidInput(
            f"{_cap(spec.title)} makes nothing as small as {server.max_resolution}: its smallest is {spec.resolutions[0]}."
        )
    if not server.allowed_durations(spec):
        raise InvalidInput(
            f"{_cap(spec.title)} makes nothing as short as {server.max_duration}: its shortest is {spec.durations[0]}."
        )
    checks = (
        ("model", server.model, spec.models, server.allowed_models(spec)),
        ("resolution", server.resolution, spec.resolutions, server.allowed_resolutions(spec)),
        ("duration", server.duration, spec.durations, server.allowed_durations(spec)),
    )
    for what, value, offered, allowed in checks:
        if value is None:
            continue
        if value not in offered:
            raise InvalidInput(
                f"{_cap(spec.title)} has no {what} {value}: choose one of {', '.join(offered)}."
            )
        if value not in allowed:
            raise InvalidInput(
                f"The default {what} {value} is beyond this server's limits: choose one of {', '.join(allowed)}."
            )
    return server
