"""The modal that asks for an extension's prompt. Its custom_id carries the job id and its submission is
handled by a listener (cogs/events.py), not by a live Modal object, so a submit after a restart still works."""

from __future__ import annotations

import re
from typing import Any

import discord

from bot.discord_ui import texts

EXTEND_MODAL_ID = "luma:extend-modal:{job_id}"
EXTEND_MODAL = re.compile(r"luma:extend-modal:([0-9]{1,20})")
PROMPT_INPUT_ID = "prompt"
# Discord's cap for a text input; prompts may be longer only through the slash command.
MODAL_PROMPT_MAX = 4000


def extend_modal(job_id: int) -> discord.ui.Modal:
    modal = discord.ui.Modal(title=texts.MODAL_TITLE, custom_id=EXTEND_MODAL_ID.format(job_id=job_id))
    prompt: discord.ui.TextInput[discord.ui.Modal] = discord.ui.TextInput(
        custom_id=PROMPT_INPUT_ID,
        style=discord.TextStyle.paragraph,
        required=True,
        max_length=MODAL_PROMPT_MAX,
        placeholder=texts.MODAL_PROMPT_PLACEHOLDER,
    )
    modal.add_item(discord.ui.Label(text=texts.MODAL_PROMPT_LABEL, component=prompt))
    # Stopped before sending: discord.py then does not keep it in memory to dispatch to, and the listener
    # handles every submission the same way, before and after a restart.
    modal.stop()
    return modal


def modal_job_id(interaction: discord.Interaction) -> int | None:
    data: Any = interaction.data or {}
    match = EXTEND_MODAL.fullmatch(str(data.get("custom_id", "")))
    return int(match.group(1)) if match else None


def submitted_value(components: Any, custom_id: str = PROMPT_INPUT_ID) -> str:
    """The value of the text input `custom_id` in a modal submission (inside labels or action rows)."""
    for component in components or ():
        if not isinstance(component, dict):
            continue
        if component.get("custom_id") == custom_id and "value" in component:
            return str(component.get("value") or "")
        nested = list(component.get("components") or [])
        if isinstance(component.get("component"), dict):
            nested.append(component["component"])
        value = submitted_value(nested, custom_id)
        if value:
            return value
    return ""
