"""The provider-neutral shapes the rest of the bot uses: what we ask a provider for, and what a task is."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

# Luma's documented list (official API, AceDataCloud's MCP and CLI); 16:9 is the default everywhere.
ASPECT_RATIOS: tuple[str, ...] = ("16:9", "9:16", "1:1", "4:3", "3:4", "21:9", "9:21")
DEFAULT_ASPECT_RATIO = "16:9"
# Luma refuses longer prompts: "Prompt is too long, maximum length is 5000 characters".
MAX_PROMPT_LENGTH = 5000


class TaskFailure(enum.StrEnum):
    """What a failed task means for the job, whatever words the provider used."""

    MODERATION = "moderation"  # another prompt or frame is needed
    TRANSIENT = "transient"  # worth one more try (Agents: generation_failed, output_not_found)
    BALANCE = "balance"  # the account is out of funds: the operator must act; the job can wait
    INVALID = "invalid"  # the request itself was refused (bad frame, unsupported format)
    OTHER = "other"


class TaskState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (TaskState.COMPLETED, TaskState.FAILED)


@dataclass(frozen=True, slots=True)
class GenerateRequest:
    prompt: str
    aspect_ratio: str = DEFAULT_ASPECT_RATIO
    loop: bool = False
    enhancement: bool = True
    start_image_url: str | None = None
    end_image_url: str | None = None
    callback_url: str | None = None
    # Luma's own APIs: None leaves the choice to the provider (the resellers ignore these).
    model: str | None = None
    resolution: str | None = None
    duration: str | None = None
    # A stable opaque id of the member (never their Discord id): Luma attributes a moderation violation to it.
    user_id: str | None = None


@dataclass(frozen=True, slots=True)
class ExtendRequest:
    """Continue an earlier video, named by the provider's video id (Luma: the generation id) or by its URL
    (exactly one of them)."""

    prompt: str
    video_id: str | None = None
    video_url: str | None = None
    end_image_url: str | None = None
    callback_url: str | None = None
    model: str | None = None
    resolution: str | None = None
    user_id: str | None = None


@dataclass(frozen=True, slots=True)
class TaskResult:
    """One provider task, normalised: the only task shape code outside `bot/luma` ever sees."""

    task_id: str
    state: TaskState
    video_id: str | None = None
    video_url: str | None = None
    video_width: int | None = None
    video_height: int | None = None
    thumbnail_url: str | None = None
    thumbnail_width: int | None = None
    thumbnail_height: int | None = None
    failure_reason: str | None = None
    # True when the failure is a moderation refusal, so the user can be told why in plain words.
    moderated: bool = False
    # The provider's own code (Agents: failure_code) and what it means for the job.
    failure_code: str | None = None
    failure: TaskFailure | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
