"""Request-body validation with Discord's limits and 50035 "Invalid Form Body" errors.

Only the rules bots actually trip over are checked (lengths and counts of
content, embeds, components, modals, autocomplete choices and application
commands; ``allowed_mentions`` exclusivity; empty messages).  Every check
reports at the JSON path Discord uses, so ``discord.HTTPException.text``
reads like the real thing.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import FormErrors, cannot_send_empty_message
from .models import MessageFlag, iter_components

Path = tuple[str | int, ...]

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_EMBED_TOTAL = 6000
MAX_ROWS = 5
MAX_ROW_WIDTH = 5
MAX_CUSTOM_ID = 100
MAX_V2_COMPONENTS = 40
MAX_MODAL_TITLE = 45

# Component types that are interactive and therefore need a custom_id.
_SELECT_TYPES = {3, 5, 6, 7, 8}
_COMMAND_NAME = re.compile(r"^[-_'\w\u0900-\u097F\u0E00-\u0E7F]{1,32}$")


def _str_len(value: Any) -> int:
    return len(value) if isinstance(value, str) else 0


def validate_message(body: dict[str, Any], errors: FormErrors, prefix: Path = ()) -> None:
    """Content, embeds, components and allowed_mentions of a message create/edit body."""
    content = body.get("content")
    if isinstance(content, str) and len(content) > MAX_CONTENT:
        errors.max_length((*prefix, "content"), MAX_CONTENT)

    embeds = body.get("embeds")
    if isinstance(embeds, list):
        _validate_embeds(embeds, errors, prefix)

    flags = body.get("flags") or 0
    components = body.get("components")
    if isinstance(components, list):
        if flags & MessageFlag.IS_COMPONENTS_V2:
            _validate_v2_components(components, errors, prefix)
            if body.get("content"):
                errors.add(
                    (*prefix, "content"),
                    "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
                    "The 'content' field cannot be used when using MessageFlags.IS_COMPONENTS_V2",
                )
            if body.get("embeds"):
                errors.add(
                    (*prefix, "embeds"),
                    "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
                    "The 'embeds' field cannot be used when using MessageFlags.IS_COMPONENTS_V2",
                )
        else:
            _validate_action_rows(components, errors, prefix)
        _check_duplicate_custom_ids(components, errors, (*prefix, "components"))

    allowed = body.get("allowed_mentions")
    if isinstance(allowed, dict):
        parse = allowed.get("parse") or []
        for kind in ("users", "roles"):
            if kind in parse and allowed.get(kind):
                errors.add(
                    (*prefix, "allowed_mentions"),
                    "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                    f'parse:["{kind}"] and {kind}: [ids...] are mutually exclusive.',
                )
            if len(allowed.get(kind) or []) > 100:
                errors.max_length((*prefix, "allowed_mentions", kind), 100)


def _validate_embeds(embeds: list[Any], errors: FormErrors, prefix: Path) -> None:
    if len(embeds) > MAX_EMBEDS:
        errors.max_length((*prefix, "embeds"), MAX_EMBEDS)
    total = 0
    for i, embed in enumerate(embeds):
        path = (*prefix, "embeds", i)
        if not isinstance(embed, dict):
            errors.add(path, "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
            continue
        title, description = embed.get("title"), embed.get("description")
        if _str_len(title) > 256:
            errors.max_length((*path, "title"), 256)
        if _str_len(description) > 4096:
            errors.max_length((*path, "description"), 4096)
        total += _str_len(title) + _str_len(description)
        for key in ("url",):
            if embed.get(key) is not None and not _is_url(embed[key], allow_attachment=False):
                errors.add((*path, key), "URL_TYPE_INVALID_URL", "Not a well formed URL.")
        for key in ("image", "thumbnail"):
            media = embed.get(key)
            if isinstance(media, dict) and not _is_url(media.get("url"), allow_attachment=True):
                errors.add((*path, key, "url"), "URL_TYPE_INVALID_URL", "Not a well formed URL.")
        fields = embed.get("fields") or []
        if len(fields) > 25:
            errors.max_length((*path, "fields"), 25)
        for j, fld in enumerate(fields):
            fpath = (*path, "fields", j)
            name, value = fld.get("name"), fld.get("value")
            if not name:
                errors.required((*fpath, "name"))
            elif len(name) > 256:
                errors.max_length((*fpath, "name"), 256)
            if not value:
                errors.required((*fpath, "value"))
            elif len(value) > 1024:
                errors.max_length((*fpath, "value"), 1024)
            total += _str_len(name) + _str_len(value)
        footer = embed.get("footer")
        if isinstance(footer, dict):
            if _str_len(footer.get("text")) > 2048:
                errors.max_length((*path, "footer", "text"), 2048)
            total += _str_len(footer.get("text"))
        author = embed.get("author")
        if isinstance(author, dict):
            if _str_len(author.get("name")) > 256:
                errors.max_length((*path, "author", "name"), 256)
            total += _str_len(author.get("name"))
    if total > MAX_EMBED_TOTAL:
        errors.add(
            (*prefix, "embeds"),
            "MAX_EMBED_SIZE_EXCEEDED",
            f"Embed size exceeds maximum size of {MAX_EMBED_TOTAL}",
        )


def _is_url(value: Any, *, allow_attachment: bool) -> bool:
    if not isinstance(value, str):
        return False
    schemes = ("http://", "https://") + (("attachment://",) if allow_attachment else ())
    return value.startswith(schemes) and len(value) <= 2048


def _validate_action_rows(rows: list[Any], errors: FormErrors, prefix: Path) -> None:
    if len(rows) > MAX_ROWS:
        errors.max_length((*prefix, "components"), MAX_ROWS)
    for i, row in enumerate(rows):
        path = (*prefix, "components", i)
        if not isinstance(row, dict) or row.get("type") != 1:
            errors.add(
                (*path, "type"),
                "UNION_TYPE_CHOICES",
                'Value of field "type" must be one of (1,).',
            )
            continue
        children = row.get("components") or []
        if not 1 <= len(children) <= MAX_ROW_WIDTH:
            errors.bad_length((*path, "components"), 1, MAX_ROW_WIDTH)
        if any(c.get("type") in _SELECT_TYPES for c in children) and len(children) > 1:
            errors.add(
                (*path, "components"),
                "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                "The specified component exceeds the maximum width",
            )
        for j, child in enumerate(children):
            _validate_interactive(child, errors, (*path, "components", j))


def _validate_v2_components(components: list[Any], errors: FormErrors, prefix: Path) -> None:
    count = sum(1 for _ in iter_components(components))
    if count > MAX_V2_COMPONENTS:
        errors.add(
            (*prefix, "components"),
            "COMPONENT_MAX_TOTAL_COMPONENTS_EXCEEDED",
            f"The specified components exceed the maximum of {MAX_V2_COMPONENTS} total components",
        )
    for component in iter_components(components):
        if component.get("type") == 2 or component.get("type") in _SELECT_TYPES:
            # Paths inside nested layouts are not reconstructed; the root is enough to locate the problem.
            _validate_interactive(component, errors, (*prefix, "components"))


def _validate_interactive(component: dict[str, Any], errors: FormErrors, path: Path) -> None:
    ctype = component.get("type")
    custom_id = component.get("custom_id")
    if ctype == 2:
        style = component.get("style")
        if style == 5:
            if not component.get("url"):
                errors.required((*path, "url"))
            if custom_id is not None:
                errors.add(
                    (*path, "custom_id"),
                    "BUTTON_COMPONENT_CUSTOM_ID_NOT_ALLOWED",
                    "A custom id is not allowed",
                )
        elif style != 6 and not custom_id:
            errors.required((*path, "custom_id"))
        if _str_len(component.get("label")) > 80:
            errors.max_length((*path, "label"), 80)
    elif ctype in _SELECT_TYPES:
        if not custom_id:
            errors.required((*path, "custom_id"))
        if _str_len(component.get("placeholder")) > 150:
            errors.max_length((*path, "placeholder"), 150)
        if ctype == 3:
            options = component.get("options") or []
            if not 1 <= len(options) <= 25:
                errors.bad_length((*path, "options"), 1, 25)
            for k, opt in enumerate(options):
                for key in ("label", "value"):
                    if _str_len(opt.get(key)) > 100:
                        errors.max_length((*path, "options", k, key), 100)
    if isinstance(custom_id, str) and len(custom_id) > MAX_CUSTOM_ID:
        errors.max_length((*path, "custom_id"), MAX_CUSTOM_ID)


def _check_duplicate_custom_ids(components: list[Any], errors: FormErrors, path: Path) -> None:
    seen: set[str] = set()
    for component in iter_components(components):
        custom_id = component.get("custom_id")
        if custom_id is None:
            continue
        if custom_id in seen:
            errors.add(path, "COMPONENT_CUSTOM_ID_DUPLICATED", "Component custom id cannot be duplicated")
            return
        seen.add(custom_id)


def is_empty_message(body: dict[str, Any], attachments_count: int) -> bool:
    return not (
        (isinstance(body.get("content"), str) and body["content"].strip())
        or body.get("embeds")
        or body.get("components")
        or body.get("sticker_ids")
        or body.get("poll")
        or attachments_count
    )


def ensure_not_empty(body: dict[str, Any], attachments_count: int) -> None:
    if is_empty_message(body, attachments_count):
        raise cannot_send_empty_message()


def validate_modal(data: dict[str, Any], errors: FormErrors, prefix: Path = ("data",)) -> None:
    """The ``data`` of a type 9 (MODAL) interaction callback."""
    title = data.get("title")
    if not title:
        errors.required((*prefix, "title"))
    elif len(title) > MAX_MODAL_TITLE:
        errors.max_length((*prefix, "title"), MAX_MODAL_TITLE)
    custom_id = data.get("custom_id")
    if not custom_id:
        errors.required((*prefix, "custom_id"))
    elif len(custom_id) > MAX_CUSTOM_ID:
        errors.max_length((*prefix, "custom_id"), MAX_CUSTOM_ID)
    components = data.get("components") or []
    if not 1 <= len(components) <= 5:
        errors.bad_length((*prefix, "components"), 1, 5)
    for i, top in enumerate(components):
        path = (*prefix, "components", i)
        ttype = top.get("type")
        if ttype == 1:
            children = top.get("components") or []
            if len(children) != 1:
                errors.bad_length((*path, "components"), 1, 1)
            for j, child in enumerate(children):
                _validate_modal_input(child, errors, (*path, "components", j), in_label=False)
        elif ttype == 18:
            label = top.get("label")
            if not label:
                errors.required((*path, "label"))
            elif len(label) > 45:
                errors.max_length((*path, "label"), 45)
            if _str_len(top.get("description")) > 100:
                errors.max_length((*path, "description"), 100)
            child = top.get("component")
            if not isinstance(child, dict):
                errors.required((*path, "component"))
            else:
                _validate_modal_input(child, errors, (*path, "component"), in_label=True)
        elif ttype != 10:
            errors.add(
                (*path, "type"), "UNION_TYPE_CHOICES", 'Value of field "type" must be one of (1, 10, 18).'
            )
    _check_duplicate_custom_ids(components, errors, (*prefix, "components"))


def _validate_modal_input(
    component: dict[str, Any], errors: FormErrors, path: Path, *, in_label: bool
) -> None:
    custom_id = component.get("custom_id")
    if not custom_id:
        errors.required((*path, "custom_id"))
    elif len(custom_id) > MAX_CUSTOM_ID:
        errors.max_length((*path, "custom_id"), MAX_CUSTOM_ID)
    if component.get("type") != 4:
        return
    label = component.get("label")
    if not in_label:
        if not label:
            errors.required((*path, "label"))
        elif len(label) > 45:
            errors.max_length((*path, "label"), 45)
    if _str_len(component.get("placeholder")) > 100:
        errors.max_length((*path, "placeholder"), 100)
    if _str_len(component.get("value")) > 4000:
        errors.max_length((*path, "value"), 4000)
    for key, low in (("min_length", 0), ("max_length", 1)):
        value = component.get(key)
        if value is not None and not low <= value <= 4000:
            errors.add(
                (*path, key),
                "NUMBER_TYPE_MAX" if value > 4000 else "NUMBER_TYPE_MIN",
                f"int value should be between {low} and 4000.",
            )


def validate_autocomplete(data: dict[str, Any], errors: FormErrors, prefix: Path = ("data",)) -> None:
    choices = data.get("choices")
    if not isinstance(choices, list):
        errors.required((*prefix, "choices"))
        return
    if len(choices) > 25:
        errors.max_length((*prefix, "choices"), 25)
    for i, choice in enumerate(choices):
        name = choice.get("name")
        if not name:
            errors.required((*prefix, "choices", i, "name"))
        elif len(name) > 100:
            errors.bad_length((*prefix, "choices", i, "name"), 1, 100)
        value = choice.get("value")
        if isinstance(value, str) and len(value) > 100:
            errors.max_length((*prefix, "choices", i, "value"), 100)


def validate_command(cmd: dict[str, Any], errors: FormErrors, prefix: Path = ()) -> None:
    """One application command create payload."""
    ctype = cmd.get("type", 1)
    name = cmd.get("name")
    if not isinstance(name, str) or not name:
        errors.required((*prefix, "name"))
    elif ctype == 1 and (not _COMMAND_NAME.match(name) or name != name.lower()):
        errors.add(
            (*prefix, "name"),
            "APPLICATION_COMMAND_INVALID_NAME",
            f"Command name is invalid: {name!r}",
        )
    elif len(name) > 32:
        errors.bad_length((*prefix, "name"), 1, 32)
    description = cmd.get("description") or ""
    if ctype == 1:
        if not 1 <= len(description) <= 100:
            errors.bad_length((*prefix, "description"), 1, 100)
        _validate_command_options(cmd.get("options") or [], errors, (*prefix, "options"))
    elif description:
        errors.add(
            (*prefix, "description"),
            "APPLICATION_COMMAND_CONTEXT_MENU_DESCRIPTION_INVALID",
            "Context menu commands cannot have description",
        )


def _validate_command_options(options: list[dict[str, Any]], errors: FormErrors, path: Path) -> None:
    if len(options) > 25:
        errors.max_length(path, 25)
    names: set[str] = set()
    seen_optional = False
    for i, opt in enumerate(options):
        opath = (*path, i)
        name = opt.get("name") or ""
        if not _COMMAND_NAME.match(name) or name != name.lower():
            errors.add(
                (*opath, "name"), "APPLICATION_COMMAND_INVALID_NAME", f"Command name is invalid: {name!r}"
            )
        if name in names:
            errors.add(
                (*opath, "name"),
                "APPLICATION_COMMAND_OPTIONS_NAME_ALREADY_EXISTS",
                "Command option names must be unique",
            )
        names.add(name)
        if not 1 <= len(opt.get("description") or "") <= 100:
            errors.bad_length((*opath, "description"), 1, 100)
        if opt.get("type") in (1, 2):
            _validate_command_options(opt.get("options") or [], errors, (*opath, "options"))
            continue
        if opt.get("required"):
            if seen_optional:
                errors.add(
                    opath,
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                )
        else:
            seen_optional = True
        choices = opt.get("choices") or []
        if len(choices) > 25:
            errors.max_length((*opath, "choices"), 25)
        if choices and opt.get("autocomplete"):
            errors.add(
                (*opath, "autocomplete"),
                "APPLICATION_COMMAND_OPTION_AUTOCOMPLETE_AND_CHOICES",
                "Autocomplete cannot be set when choices are present",
            )
