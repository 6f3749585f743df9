"""What a member asks for, before validation, and how it becomes a storable job.

Everything here runs before any provider request: bad input is refused with a sentence for the user and
nothing is reserved or charged.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.luma.types import DEFAULT_ASPECT_RATIO
from bot.luma.validation import (
    InvalidInput,
    parse_extend_target,
    validate_aspect_ratio,
    validate_image_url,
    validate_prompt,
)
from bot.store import jobs as store
from bot.store.models import Job, JobAction, JobState


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
    # Extend: either one of our jobs (from a reply, button or message link) or what the user typed.
    parent_job_id: int | None = None
    extend_target: str | None = None
    thread_id: int | None = None
    source_message_id: int | None = None


async def resolve_parent(request: JobRequest) -> tuple[Job | None, str | None, str | None]:
    """(parent job, video id, video url) of the video to extend; refuses videos we cannot extend."""
    if request.parent_job_id is not None:
        parent = await store.get_job(request.parent_job_id)
        if parent is None or parent.state != JobState.COMPLETED or not (parent.video_id or parent.video_url):
            raise InvalidInput("That message has no finished video to extend.")
        return parent, parent.video_id, parent.video_url
    if not request.extend_target:
        raise InvalidInput("Say which video to extend: give its id or its link.")
    video_id, video_url = parse_extend_target(request.extend_target)
    parent = await store.find_by_video(video_id=video_id, video_url=video_url)
    if parent is not None:
        return parent, parent.video_id, parent.video_url
    if video_id is not None:
        # An id we never produced cannot be checked and the provider would refuse it after we reserved a unit.
        raise InvalidInput(f"I don't know a video with the id `{video_id}`: use the id or link of one of my videos.")
    return None, None, video_url


async def build_new_job(request: JobRequest, *, provider: str) -> store.NewJob:
    prompt = validate_prompt(request.prompt)
    options: dict = {}
    parent = None
    video_id = video_url = None
    if request.action == JobAction.EXTEND:
        if request.end_image_url:
            options["end_image_url"] = validate_image_url(request.end_image_url)
        parent, video_id, video_url = await resolve_parent(request)
        if provider == "umami" and not video_id:
            raise InvalidInput("This bot's provider can only extend its own videos, by id.")
    else:
        options["aspect_ratio"] = validate_aspect_ratio(request.aspect_ratio or DEFAULT_ASPECT_RATIO)
        options["loop"] = bool(request.loop)
        options["enhancement"] = bool(request.enhancement)
        if request.start_image_url:
            options["start_image_url"] = validate_image_url(request.start_image_url)
        if request.end_image_url:
            options["end_image_url"] = validate_image_url(request.end_image_url)
    return store.NewJob(
        guild_id=request.guild_id,
        channel_id=request.channel_id,
        user_id=request.user_id,
        action=request.action,
        prompt=prompt,
        provider=provider,
        options=options,
        role_ids=tuple(request.role_ids),
        thread_id=request.thread_id,
        source_message_id=request.source_message_id,
        parent_id=parent.id if parent else None,
        parent_video_id=video_id,
        parent_video_url=video_url,
    )
