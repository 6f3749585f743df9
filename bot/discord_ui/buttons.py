"""The buttons under a result: discord.py DynamicItems whose custom_id carries the job id, so they work on
messages of any age and after a restart. Anyone may press Extend and Regenerate (the work runs on the
presser's quota) and Original; Delete is for the requester and members with Manage Messages."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Self

import discord

from bot.discord_ui import flow, modals, result_actions, texts
from bot.discord_ui.errors import guarded
from bot.store.models import Job

if TYPE_CHECKING:  # for annotations only
    from bot.jobs.ports import JobView

EXTEND_ID = "luma:extend:{job_id}"
REGENERATE_ID = "luma:regen:{job_id}"
RETRY_ID = "luma:retry:{job_id}"
ORIGINAL_ID = "luma:original:{job_id}"
DELETE_ID = "luma:delete:{job_id}"
# Any of our job buttons; group 1 is the job id.
JOB_BUTTON = re.compile(r"luma:(?:extend|regen|retry|original|delete):([0-9]{1,20})")


class _JobButton:
    """What the job buttons share: a button whose custom_id carries the job id, rebuilt from that id after
    a restart. Each concrete class adds the DynamicItem template and its callback."""

    ID: str
    LABEL: str
    STYLE: discord.ButtonStyle
    EMOJI: str

    def __init__(self, job_id: int) -> None:
        super().__init__(  # type: ignore[call-arg]
            discord.ui.Button(
                label=self.LABEL, style=self.STYLE, emoji=self.EMOJI, custom_id=self.ID.format(job_id=job_id)
            )
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        return cls(int(match["job_id"]))


class ExtendButton(
    _JobButton, discord.ui.DynamicItem[discord.ui.Button], template=r"luma:extend:(?P<job_id>[0-9]{1,20})"
):
    ID, LABEL, STYLE, EMOJI = EXTEND_ID, texts.BUTTON_EXTEND, discord.ButtonStyle.primary, "➕"

    async def callback(self, interaction: discord.Interaction) -> None:
        # A modal must be the first answer, within 3 seconds: no database work before it.
        await guarded(
            interaction, interaction.response.send_modal(modals.extend_modal(self.job_id)), job_id=self.job_id
        )


class RegenerateButton(
    _JobButton, discord.ui.DynamicItem[discord.ui.Button], template=r"luma:regen:(?P<job_id>[0-9]{1,20})"
):
    ID, LABEL, STYLE, EMOJI = REGENERATE_ID, texts.BUTTON_REGENERATE, discord.ButtonStyle.secondary, "🔁"

    async def callback(self, interaction: discord.Interaction) -> None:
        await guarded(interaction, flow.regenerate(interaction, self.job_id), job_id=self.job_id)


class RetryButton(
    _JobButton, discord.ui.DynamicItem[discord.ui.Button], template=r"luma:retry:(?P<job_id>[0-9]{1,20})"
):
    ID, LABEL, STYLE, EMOJI = RETRY_ID, texts.BUTTON_RETRY, discord.ButtonStyle.secondary, "🔁"

    async def callback(self, interaction: discord.Interaction) -> None:
        await guarded(interaction, flow.regenerate(interaction, self.job_id, retry=True), job_id=self.job_id)


class OriginalButton(
    _JobButton, discord.ui.DynamicItem[discord.ui.Button], template=r"luma:original:(?P<job_id>[0-9]{1,20})"
):
    ID, LABEL, STYLE, EMOJI = ORIGINAL_ID, texts.BUTTON_ORIGINAL, discord.ButtonStyle.secondary, "🔗"

    async def callback(self, interaction: discord.Interaction) -> None:
        await guarded(interaction, result_actions.original(interaction, self.job_id), job_id=self.job_id)


class DeleteButton(
    _JobButton, discord.ui.DynamicItem[discord.ui.Button], template=r"luma:delete:(?P<job_id>[0-9]{1,20})"
):
    ID, LABEL, STYLE, EMOJI = DELETE_ID, texts.BUTTON_DELETE, discord.ButtonStyle.danger, "🗑️"

    async def callback(self, interaction: discord.Interaction) -> None:
        await guarded(interaction, result_actions.delete(interaction, self.job_id), job_id=self.job_id)


DYNAMIC_ITEMS: tuple[type[discord.ui.DynamicItem[Any]], ...] = (
    ExtendButton,
    RegenerateButton,
    RetryButton,
    OriginalButton,
    DeleteButton,
)


def result_view(job: Job | JobView) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(ExtendButton(job.id))
    view.add_item(RegenerateButton(job.id))
    view.add_item(OriginalButton(job.id))
    view.add_item(DeleteButton(job.id))
    return view


def retry_view(job: Job | JobView) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(RetryButton(job.id))
    return view


def custom_ids(components: Iterable[Any]) -> list[str]:
    """Every custom_id in a message's components (discord.py objects), at any depth."""
    found: list[str] = []
    for component in components:
        custom_id = getattr(component, "custom_id", None)
        if custom_id:
            found.append(custom_id)
        found.extend(custom_ids(getattr(component, "children", ())))
    return found


def job_id_of(message: discord.Message) -> int | None:
    """The job a message of ours is about, read from its buttons; None for any other message."""
    for custom_id in custom_ids(message.components):
        match = JOB_BUTTON.fullmatch(custom_id)
        if match:
            return int(match.group(1))
    return None
