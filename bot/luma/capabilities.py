"""What each provider API can do: its aspect ratios, models, resolutions and durations, frames, loop,
how it extends a video, callbacks and how long its result links work. The one table every check reads, so a
request a provider cannot serve is refused before anything is sent, in words that name what it can do."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

ALL_ASPECT_RATIOS: tuple[str, ...] = ("16:9", "9:16", "1:1", "4:3", "3:4", "21:9", "9:21")


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    name: str  # the setting's value and the name stored on a job
    title: str  # for people: "the Luma Agents API"
    default_base_url: str
    aspect_ratios: tuple[str, ...] = ALL_ASPECT_RATIOS
    # Empty tuples: the provider offers no choice (the resellers pick the model, size and length themselves).
    models: tuple[str, ...] = ()
    resolutions: tuple[str, ...] = ()
    durations: tuple[str, ...] = ()
    default_model: str | None = None
    default_resolution: str | None = None
    default_duration: str | None = None
    end_frame: bool = True
    loop: bool = True
    # Luma refuses loop together with an end frame ("Loop is not supported for end frame"), and the Agents
    # API also with 10 s videos.
    loop_with_end_frame: bool = True
    loop_durations: tuple[str, ...] | None = None  # None: any duration
    enhancement: bool = False
    # Luma's own APIs extend only a generation of the same account, named by its id; AceDataCloud also
    # takes the link of any earlier result.
    extend_by_url: bool = False
    callbacks: bool = False
    # Videos at once per key, as the provider documents it (None: not documented).
    max_concurrent: int | None = None
    # How long a result link works; None: long enough not to matter while a job is delivered.
    link_lifetime: timedelta | None = None
    # A new fetch of the task gives a fresh link (presigned URLs), so the generation id is the durable handle.
    fresh_links: bool = False
    # Dream Machine refuses shorter prompts ("Prompt is too short, minimum length is 3 characters").
    min_prompt_length: int = 1
    # How long its videos usually take (seconds, shortest and longest), until the bot has timed its own: lets
    # polling wait while a video cannot be ready and look closely when it may be. None: not known.
    typical_seconds: tuple[float, float] | None = None

    def ordered(self, values: tuple[str, ...]) -> str:
        return ", ".join(values)


ACEDATACLOUD = ProviderSpec(
    name="acedatacloud",
    title="AceDataCloud",
    default_base_url="https://api.acedata.cloud",
    enhancement=True,
    extend_by_url=True,
    callbacks=True,
    max_concurrent=5,  # its concurrency FAQ: 5 Luma tasks in flight per token
    link_lifetime=timedelta(days=30),
    # Its docs: 1–2 minutes; its example records: 154–156 s. The shortest is set low on purpose: a first video
    # quicker than the guess would wait for a sparse look, and the bot's own timings replace this after 5.
    typical_seconds=(45.0, 180.0),
)

UMAMI = ProviderSpec(
    name="umami",
    title="UmamiAI",
    default_base_url="https://api.umamiai.xyz/v1",
    enhancement=True,  # sent as `expand_prompt`
)

# The Luma Agents API (luma-apis.md §5): Ray 3.2, no 9:21, 5 s or 10 s, 360p draft to 1080p, presigned links
# that expire after an hour, no callbacks.
LUMA_AGENTS = ProviderSpec(
    name="luma",
    title="the Luma Agents API",
    default_base_url="https://agents.lumalabs.ai/v1",
    aspect_ratios=("16:9", "9:16", "1:1", "4:3", "3:4", "21:9"),
    models=("ray-3.2",),
    resolutions=("360p", "540p", "720p", "1080p"),
    durations=("5s", "10s"),
    default_model="ray-3.2",
    default_resolution="720p",
    default_duration="5s",
    loop_with_end_frame=False,
    loop_durations=("5s",),
    link_lifetime=timedelta(hours=1),
    fresh_links=True,
    typical_seconds=(50.0, 70.0),  # Ray 3.2 videos, as the bot's benchmark models them
)

# The Dream Machine API (luma-apis.md §2): Ray 2 and Ray Flash 2, 5 s or 9 s, 540p to 4k, callbacks.
DREAM_MACHINE = ProviderSpec(
    name="dream-machine",
    title="the Luma Dream Machine API",
    default_base_url="https://api.lumalabs.ai/dream-machine/v1",
    models=("ray-2", "ray-flash-2"),
    resolutions=("540p", "720p", "1080p", "4k"),
    durations=("5s", "9s"),
    default_model="ray-2",
    default_resolution="720p",
    default_duration="5s",
    loop_with_end_frame=False,
    callbacks=True,
    min_prompt_length=3,
)

SPECS: dict[str, ProviderSpec] = {s.name: s for s in (ACEDATACLOUD, UMAMI, LUMA_AGENTS, DREAM_MACHINE)}
PROVIDER_NAMES: tuple[str, ...] = tuple(SPECS)

# Every value any provider offers, in the order members see them.
ALL_MODELS: tuple[str, ...] = ("ray-2", "ray-flash-2", "ray-3.2")
ALL_RESOLUTIONS: tuple[str, ...] = ("360p", "540p", "720p", "1080p", "4k")
ALL_DURATIONS: tuple[str, ...] = ("5s", "9s", "10s")


def spec_for(provider: str) -> ProviderSpec:
    try:
        return SPECS[provider]
    except KeyError:
        raise ValueError(
            f"unknown Luma provider {provider!r}; expected one of {', '.join(PROVIDER_NAMES)}"
        ) from None
