"""What a member asks for, before validation, and how it becomes a storable job.

Everything here runs before any provider request: bad input, and anything the provider cannot do, is refused
with a sentence for the user, and nothing is reserved or charged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from bot.luma.capabilities import SPECS, ProviderSpec, spec_for
from bot.luma.options import (
    OptionDefaults,
    ServerOptions,
    VideoOptions,
    check_extend,
    check_generate,
    check_server,
    server_defaults,
)
from bot.luma.types import DEFAULT_ASPECT_RATIO
from bot.luma.validation import (
    MAX_URL_LENGTH,
    InvalidInput,
    parse_extend_target,
    validate_aspect_ratio,
    validate_image_url,
    validate_prompt,
)
from bot.store import jobs as store
from bot.store.models import Job, JobAction, JobState
from bot.store.quotas import video_options


@dataclass(frozen=True, slots=True)
class JobRequest:
    guild_id: int
    channel_id: int
    user_id: int
    prompt: str
    action: JobAction = JobAction.GENERATE
    role_ids: tuple[int, ...] = ()
    aspect_ratio: str = DEFAULT_ASPECT_RATIO
    loop: bool = False
    enhancement: bool = True
    start_image_url: str | None = None
    end_image_url: str | None = None
    # None: the admin's default, else the provider's.
    model: str | None = None
    resolution: str | None = None
    duration: str | None = None
    # Extend: either one of our jobs (from a reply, button or message link) or what the user typed.
    parent_job_id: int | None = None
    extend_target: str | None = None
    thread_id: int | None = None
    source_message_id: int | None = None


def _link_key(url: str) -> str:
    """A result link without its query string: presigned links (the Agents API) change their signature on
    every fetch, but the path names the file."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


async def resolve_parent(
    request: JobRequest, spec: ProviderSpec
) -> tuple[Job | None, str | None, str | None]:
    """(parent job, video id, video url) of the video to extend; refuses videos we cannot extend. Only this
    server's jobs are looked up: another server's video is treated as one the bot does not know."""
    if request.parent_job_id is not None:
        parent = await store.get_job(request.parent_job_id)
        if (
            parent is None
            or parent.guild_id != request.guild_id
            or parent.state != JobState.COMPLETED
            or not (parent.video_id or parent.video_url)
        ):
            raise InvalidInput("That message has no finished video to extend.")
        return _usable_parent(parent, spec)
    if not request.extend_target:
        raise InvalidInput("Say which video to extend: give its id or its link.")
    parent = await _known_video(request.guild_id, request.extend_target)
    if parent is not None:
        # One of this server's own results: it is extended by its id, so its link is never sent anywhere.
        return _usable_parent(parent, spec)
    video_id, video_url = parse_extend_target(request.extend_target)
    if video_id is not None:
        # An id we never produced cannot be checked and the provider would refuse it after we reserved a unit.
        raise InvalidInput(
            f"I don't know a video with the id `{video_id}`: use the id or link of one of my videos."
        )
    if not spec.extend_by_url:
        raise InvalidInput(
            f"That link is not one of my videos in this server, and {spec.title} can only extend its own "
            "videos: use the link, id or message of a video I made here."
        )
    return None, None, video_url


async def _known_video(guild_id: int, target: str) -> Job | None:
    """This server's finished job whose video has this id or link (a presigned link matches whatever its
    signature now is)."""
    target = target.strip()
    if not target or len(target) > MAX_URL_LENGTH:
        return None
    if "://" in target:
        try:
            prefix = _link_key(target)
        except ValueError:
            return None  # not a link at all; parse_extend_target says why
        return await store.find_by_video(guild_id, video_url=target, url_prefix=prefix)
    return await store.find_by_video(guild_id, video_id=target)


def _usable_parent(parent: Job, spec: ProviderSpec) -> tuple[Job, str | None, str | None]:
    """A generation belongs to the account that made it: a video of another provider can be continued only
    by a provider that takes any video's link, and only while that link lasts."""
    if parent.provider != spec.name:
        made_by = SPECS[parent.provider].title if parent.provider in SPECS else parent.provider
        lasting_link = parent.video_url and not (
            parent.provider in SPECS and SPECS[parent.provider].fresh_links
        )
        if not (spec.extend_by_url and lasting_link):
            raise InvalidInput(
                f"That video was made with {made_by}, and this bot now uses {spec.title}, "
                "which can only extend its own videos."
            )
        return parent, None, parent.video_url
    if not spec.extend_by_url and not parent.video_id:
        raise InvalidInput("That video has no id the provider can extend.")
    return parent, parent.video_id, None if parent.video_id else parent.video_url


async def build_new_job(
    request: JobRequest, *, providers: Sequence[str], defaults: OptionDefaults | None = None
) -> store.NewJob:
    """Check a request against the configured providers (in order of preference) and the server's own limits,
    and say which provider would make it: a new video goes to the first that can (the dispatcher may still
    choose another that can, when that one is down or full); an extension goes to the provider and key that
    made its parent."""
    defaults = defaults or OptionDefaults()
    prompt = validate_prompt(request.prompt)
    key_id = None
    parent: Job | None = None
    video_id = video_url = None
    # The server's own limits and defaults apply before anything is reserved; a member who chooses nothing
    # gets the server's defaults, brought within its limits.
    server = ServerOptions.from_json(await video_options(request.guild_id))
    if request.action == JobAction.EXTEND:
        end = validate_image_url(request.end_image_url) if request.end_image_url else None
        spec = await _provider_of_parent(request, providers)
        _check_prompt_length(prompt, spec)
        parent, video_id, video_url = await resolve_parent(request, spec)
        parent_options = VideoOptions.from_json(parent.options) if parent is not None else None
        options = check_extend(spec, end, server_defaults(spec, defaults, server), parent_options)
        check_server(spec, options, server, extend=True)
        if parent is not None and parent.provider == spec.name:
            key_id = parent.key_id
    else:
        wanted = VideoOptions(
            aspect_ratio=validate_aspect_ratio(request.aspect_ratio or DEFAULT_ASPECT_RATIO),
            loop=bool(request.loop),
            enhancement=bool(request.enhancement),
            start_image_url=validate_image_url(request.start_image_url) if request.start_image_url else None,
            end_image_url=validate_image_url(request.end_image_url) if request.end_image_url else None,
            model=request.model or None,
            resolution=request.resolution or None,
            duration=request.duration or None,
        )
        refusal: InvalidInput | None = None
        for name in providers:
            spec = spec_for(name)
            try:
                _check_prompt_length(prompt, spec)
                options = check_generate(spec, wanted, server_defaults(spec, defaults, server))
                check_server(spec, options, server)
            except InvalidInput as exc:
                refusal = refusal or exc  # the preferred provider's words name what it can do
                continue
            break
        else:
            assert refusal is not None
            raise refusal
    return store.NewJob(
        guild_id=request.guild_id,
        channel_id=request.channel_id,
        user_id=request.user_id,
        action=request.action,
        prompt=prompt,
        provider=spec.name,
        options=options.to_json(),
        role_ids=tuple(request.role_ids),
        thread_id=request.thread_id,
        source_message_id=request.source_message_id,
        parent_id=parent.id if parent else None,
        parent_video_id=video_id,
        parent_video_url=video_url,
        key_id=key_id,
    )


def _check_prompt_length(prompt: str, spec: ProviderSpec) -> None:
    if len(prompt) < spec.min_prompt_length:
        raise InvalidInput(
            f"The prompt is too short: {spec.title} needs at least {spec.min_prompt_length} characters."
        )


async def _provider_of_parent(request: JobRequest, providers: Sequence[str]) -> ProviderSpec:
    """The provider an extension goes to: its parent's, when this bot still uses it; else the preferred one
    (which may continue another provider's video by its link, or will refuse it clearly)."""
    parent = None
    if request.parent_job_id is not None:
        parent = await store.get_job(request.parent_job_id)
    if parent is not None and parent.guild_id == request.guild_id and parent.provider in providers:
        return spec_for(parent.provider)
    if parent is None and request.extend_target:
        found = await _known_video(request.guild_id, request.extend_target)
        if found is not None and found.provider in providers:
            return spec_for(found.provider)
    return spec_for(providers[0])
