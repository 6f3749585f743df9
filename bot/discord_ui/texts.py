"""Every sentence the bot shows in Discord, in one place, so wording stays consistent and reviewable.

Functions take plain values (no discord objects) and return finished strings; user text passed in must
already be escaped with `embeds.show_prompt` where it is displayed.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from bot.store.models import FailureKind

# -- command and option descriptions (Discord limits them to 100 characters) ---------------------------

LUMA_GROUP = "Make videos with Luma Dream Machine"
GENERATE = "Generate a video from a text prompt and optional start and end frames"
EXTEND = "Continue one of the bot's videos with a new prompt"
QUOTA = "Show your credits this period and what each option costs"
HISTORY = "Show your recent videos in this server"
ADMIN_GROUP = "Manage video quotas, the budget and options in this server"
ADMIN_LIMIT = "Set the server's credits per member and the quota period"
ADMIN_ROLE_LIMIT = "Give a role its own limit (leave the limit empty to remove it)"
ADMIN_USER_LIMIT = "Give a member a personal limit (leave the limit empty to remove it)"
ADMIN_RESET = "Forget what a member used this period"
ADMIN_USAGE = "Show this period's spend by member against the budget, with the ledger as CSV"
ADMIN_BUDGET = "Cap what the whole server spends per period, in credits (empty removes the cap)"
ADMIN_OPTIONS = "Limit resolution, duration and models, and set defaults (no options: show them)"
EXTEND_MENU = "Extend video"

OPT_PROMPT = "What the video should show"
OPT_EXTEND_PROMPT = "What should happen next"
OPT_ASPECT_RATIO = "Shape of the video (default 16:9)"
OPT_LOOP = "Make the video loop seamlessly"
OPT_ENHANCEMENT = "Let Luma enhance the prompt (default on)"
OPT_START_IMAGE = "An image (png, jpeg or webp) to start from"
OPT_END_IMAGE = "An image (png, jpeg or webp) to end on"
OPT_START_IMAGE_URL = "Link to an image already online to start from"
OPT_END_IMAGE_URL = "Link to an image already online to end on"
OPT_RESOLUTION = "Picture size (dearer when larger)"
OPT_DURATION = "Length of the video"
OPT_MODEL = "Which Luma model makes the video"
OPT_VIDEO = "A video id, a video link, or a link to one of my result messages"
OPT_LIMIT = "Credits per member per period (a credit is one video at default options)"
OPT_PERIOD = "How often the quota resets (UTC)"
OPT_ROLE = "The role"
OPT_MEMBER = "The member"
OPT_ROLE_LIMIT = "Credits per period for members with this role; empty removes the role's limit"
OPT_USER_LIMIT = "Credits per period for this member; empty removes the override"
OPT_BUDGET = "Credits the whole server may spend per period; empty removes the cap, 0 switches videos off"
OPT_BUDGET_PERIOD = "How often the budget resets (UTC; default month)"
OPT_MAX_RESOLUTION = "The highest resolution members may choose (any: no limit)"
OPT_MAX_DURATION = "The longest video members may choose (any: no limit)"
OPT_MODELS = "Models members may use, comma-separated (any: all)"
OPT_DEFAULT_MODEL = "The model members get when they choose none (default: the bot's)"
OPT_DEFAULT_RESOLUTION = "The resolution members get when they choose none (default: the bot's)"
OPT_DEFAULT_DURATION = "The length members get when they choose none (default: the bot's)"

# -- buttons and the extend modal ---------------------------------------------------------------------

BUTTON_EXTEND = "Extend"
BUTTON_REGENERATE = "Regenerate"
BUTTON_RETRY = "Try again"
BUTTON_ORIGINAL = "Original"
BUTTON_DELETE = "Delete"
MODAL_TITLE = "Extend video"
MODAL_PROMPT_LABEL = "What should happen next?"
MODAL_PROMPT_PLACEHOLDER = "The camera pulls back to reveal…"

# -- job status ---------------------------------------------------------------------------------------

STATUS_TITLE_GENERATE = "Video request"
STATUS_TITLE_EXTEND = "Extension request"
RESULT_TITLE_GENERATE = "Your video is ready"
RESULT_TITLE_EXTEND = "Your extended video is ready"
FAILURE_TITLE = "No video this time"
FIELD_OPTIONS = "Options"
FIELD_STATUS = "Status"
FIELD_REQUESTED_BY = "Requested by"
FIELD_SIZE = "Size"
FIELD_IDS = "Ids"
FIELD_EXTENDS = "Extends"
FIELD_COST = "Cost"
DEFAULT_THREAD_NAME = "Luma video"


def credits(millicredits: int) -> str:
    """An exact amount of credits: 1, 2.5, 0.564."""
    whole, part = divmod(abs(millicredits), 1000)
    sign = "-" if millicredits < 0 else ""
    return f"{sign}{whole:,}" + (f".{part:03d}".rstrip("0") if part else "")


def credits_phrase(millicredits: int) -> str:
    return f"{credits(millicredits)} credit" + ("" if millicredits == 1000 else "s")


def money(micro_usd: int) -> str:
    """Dollars with cents, and more decimals only where a price has them ($0.0404)."""
    dollars, micro = divmod(micro_usd, 1_000_000)
    digits = f"{micro:06d}".rstrip("0")
    return f"${dollars:,}." + digits.ljust(2, "0")


def cost(millicredits: int, micro_usd: int | None) -> str:
    return credits_phrase(millicredits) + (f" ({money(micro_usd)})" if micro_usd is not None else "")


def job_footer(job_id: int) -> str:
    """Footer of every message about a job; delivery also uses it to recognise a result already posted."""
    return f"Job #{job_id}"


def ts_relative(when: datetime) -> str:
    return f"<t:{int(when.timestamp())}:R>"


def ts_full(when: datetime) -> str:
    return f"<t:{int(when.timestamp())}:f>"


def on_off(value: bool) -> str:
    return "on" if value else "off"


def options_line(
    *,
    aspect_ratio: str,
    loop: bool,
    enhancement: bool | None,
    start: bool,
    end: bool,
    model: str | None = None,
    resolution: str | None = None,
    duration: str | None = None,
) -> str:
    """`enhancement` None: the provider has no such switch, so it is not shown."""
    parts = [p for p in (model, resolution, duration) if p]
    parts += [f"aspect ratio {aspect_ratio}", f"loop {on_off(loop)}"]
    if enhancement is not None:
        parts.append(f"enhancement {on_off(enhancement)}")
    if start:
        parts.append("start frame")
    if end:
        parts.append("end frame")
    return " · ".join(parts)


def extend_options_line(
    *,
    parent_job_id: int | None,
    video: str | None,
    end: bool,
    model: str | None = None,
    resolution: str | None = None,
) -> str:
    source = f"job #{parent_job_id}" if parent_job_id else (f"video `{video}`" if video else "a video")
    parts = [f"extends {source}", *(p for p in (model, resolution) if p)]
    if end:
        parts.append("end frame")
    return " · ".join(parts)


def status_queued(position: int) -> str:
    if position <= 0:
        return "⏳ Queued"
    if position == 1:
        return "⏳ Queued: next in line"
    return f"⏳ Queued: position {position}"


def status_generating(started: datetime | None) -> str:
    return "🎬 Generating" + (f", started {ts_relative(started)}" if started else "")


def status_held_up(kind: str | None) -> str:
    if kind == FailureKind.BALANCE:
        return "⏸️ Waiting: the video service is out of credit; the bot's operator has been told"
    if kind == FailureKind.AUTH:
        return "⏸️ Waiting: the video service refused the bot's key; the bot's operator has been told"
    return "⏸️ Waiting: the video service is not taking work right now; your place in the queue is kept"


def status_done(finished: datetime | None, result_link: str | None) -> str:
    text = "✅ Done" + (f" {ts_relative(finished)}" if finished else "")
    return text + (f": [see the video]({result_link})" if result_link else "")


def status_deleted(finished: datetime | None) -> str:
    return status_done(finished, None) + "; the result was deleted"


def status_failed(kind: str | None, reason: str | None = None) -> str:
    return f"❌ Failed: {failure(kind, reason)}"


# "luma: HTTP 422: <detail>" → "<detail>": the provider's own words are what a member can act on.
_ERROR_PREFIX = re.compile(r"^[\w.-]+: (?:HTTP \d{3}: )?")
PROVIDER_REASON_LIMIT = 300


def provider_reason(reason: str | None) -> str | None:
    if not reason:
        return None
    text = " ".join(_ERROR_PREFIX.sub("", reason.strip()).split()).replace("`", "'")
    if len(text) > PROVIDER_REASON_LIMIT:
        text = text[: PROVIDER_REASON_LIMIT - 1] + "…"
    return text or None


def failure(kind: str | None, reason: str | None = None) -> str:
    """Why a job ended without a video, and that its unit came back. A refusal of the request itself quotes
    the provider's reason, which tells the member what to change."""
    sentences = {
        FailureKind.MODERATION: "the video service's moderation refused this prompt or image. "
        "Try wording it differently.",
        FailureKind.BALANCE: "the video service's account is out of credit. The bot's operator has been told.",
        FailureKind.AUTH: "the video service refused the bot's key. The bot's operator has been told.",
        FailureKind.INVALID: "the video service refused this request as invalid (for example an image it "
        "could not open).",
        FailureKind.PROVIDER: "the video service is down or not responding. Try again later.",
        FailureKind.TIMEOUT: "the video took too long and was given up.",
        FailureKind.QUEUE_TIMEOUT: "it waited too long in the queue (the video services were busy or down) "
        "and was never sent.",
        FailureKind.INTERRUPTED: "the bot restarted while sending this request, so it was not sent again.",
        FailureKind.UNCONFIRMED: "the video service did not confirm this request, so it may or may not have "
        "started. It was not sent again, so you are never charged twice; press Try again to send it once more.",
        FailureKind.FAILED: "the video service could not make this video.",
    }
    text = sentences.get(kind, "something went wrong while making the video.")  # type: ignore[call-overload]
    said = provider_reason(reason) if kind == FailureKind.INVALID else None
    if said:
        text += f" It said: “{said}”."
    return f"{text} Its credits were given back."


def failure_message(user_mention: str, kind: str | None, reason: str | None = None) -> str:
    return f"{user_mention} Sorry, no video: {failure(kind, reason)}"


def result_message(user_mention: str, video_url: str | None) -> str:
    """The result posted as a link (the file could not be attached)."""
    return f"{user_mention} {video_url}" if video_url else f"{user_mention} your video is ready."


def result_attached(user_mention: str) -> str:
    return f"{user_mention} your video is ready."


def _megabytes(limit: int) -> str:
    return f"{limit / (1024 * 1024):.0f} MB"


def result_reencoded(user_mention: str, limit: int) -> str:
    return (
        f"{user_mention} your video is ready. It was re-encoded to fit the {_megabytes(limit)} upload limit "
        "here; **Original** gives the full-quality file."
    )


def result_too_large(user_mention: str, video_url: str | None, limit: int) -> str:
    """The file is over the upload limit and could not be made to fit: the link, as before."""
    where = f" {video_url}" if video_url else ""
    return f"{user_mention}{where}\n(The video is too large to attach within the {_megabytes(limit)} limit here.)"


ORIGINAL_EXPIRED = (
    "{provider} kept the full-quality file of this video for {lifetime}; that link expired on {expired}. "
    "The video attached to the result still plays."
)
ORIGINAL_UNAVAILABLE = (
    "I couldn't get a fresh link to the full-quality file right now: try again in a minute."
)
ORIGINAL_NONE = "The provider gave no link to a file for this video."
DELETE_NOT_ALLOWED = (
    "Only the member who asked for this video, or someone with Manage Messages, can delete it."
)
DELETED = "Deleted. The job stays in `/luma history`."
ALREADY_DELETED = "That result was already deleted."


def original_link(url: str, expires: datetime | None) -> str:
    tail = f" (works until {ts_relative(expires)})" if expires else ""
    return f"The full-quality file: {url}{tail}"


def lifetime(delta: timedelta) -> str:
    days = delta.total_seconds() / 86400
    if days >= 1:
        return f"{days:.0f} days"
    hours = delta.total_seconds() / 3600
    return f"{hours:.0f} hour" + ("" if round(hours) == 1 else "s")


def dm_result_prefix(guild_name: str | None) -> str:
    where = f" in **{guild_name}**" if guild_name else ""
    return f"I couldn't post in the thread{where}, so here is your result."


def size(width: int | None, height: int | None) -> str:
    return f"{width}×{height}" if width and height else "unknown"


def ids(job_id: int, video_id: str | None) -> str:
    return f"job #{job_id}" + (f" · video `{video_id}`" if video_id else "")


# -- answers to commands ------------------------------------------------------------------------------


def _costs(price: str | None) -> str:
    return f" It costs {price}; you pay only if the video is delivered." if price else ""


def queued_here(link: str, position: int, price: str | None = None) -> str:
    if position == 1:
        where = " (next in line)"
    elif position > 1:
        where = f" (position {position} in the queue)"
    else:
        where = ""
    return f"Got it{where}.{_costs(price)} Follow it here: {link}"


def queued_ephemeral_no_status(price: str | None = None) -> str:
    return f"Got it.{_costs(price)} I couldn't post a status message here; the result will come here or to your DMs."


def quota(*, used: int, remaining: int, held: int, limit: int, period: str, resets_at: datetime) -> str:
    """Amounts in millicredits."""
    return (
        f"You have used **{credits(used)}** of **{credits(limit)}** credits this {period}; "
        f"**{credits(remaining)}** left"
        + (f", and **{credits(held)}** held by videos in progress" if held else "")
        + f".\nYour quota resets {ts_relative(resets_at)} ({ts_full(resets_at)})."
    )


def quota_budget(*, remaining: int, budget: int, period: str) -> str:
    return f"The server's budget has **{credits(remaining)}** of **{credits(budget)}** credits left this {period}."


def credit_meaning(default_video: str | None, credit_price: int | None) -> str:
    if default_video is None:
        return "A credit is one video." + (f" (about {money(credit_price)})" if credit_price else "")
    return f"A credit is the price of one {default_video} video" + (
        f" ({money(credit_price)})." if credit_price else "."
    )


def price_list(title: str, header: list[str], rows: list[list[str]]) -> str:
    """A small fixed-width table: what each option costs in credits."""
    table = [header, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in table
    ]
    return f"{title}\n```\n" + "\n".join(lines) + "\n```"


def flat_price(price: str) -> str:
    return f"Every video costs {price} here."


def quota_exceeded(
    *, limit: int, period: str, used: int, held: int, resets_at: datetime, cost: int = 1000
) -> str:
    """Amounts in millicredits."""
    if limit == 0:
        return f"Video making is turned off for you in this server. Quotas reset {ts_relative(resets_at)}."
    running = f" ({credits(held)} held by videos in progress)" if held else ""
    left = max(0, limit - used - held)
    if left == 0:
        return (
            f"You've used all {credits(limit)} credits for this {period}{running}. "
            f"Your quota resets {ts_relative(resets_at)}."
        )
    return (
        f"This video costs {credits_phrase(cost)} and you have {credits(left)} left for this {period}{running}: "
        f"choose a smaller or shorter video, or wait until your quota resets {ts_relative(resets_at)}."
    )


def budget_exceeded(*, budget: int, period: str, used: int, held: int, resets_at: datetime, cost: int) -> str:
    """The server as a whole has spent its budget; whatever the member's own allowance."""
    if budget == 0:
        return "Video making is switched off in this server: its budget is 0 credits. Ask an admin."
    left = max(0, budget - used - held)
    return (
        f"This server's video budget for this {period} can't cover this video ({credits_phrase(cost)}; "
        f"{credits(left)} of {credits(budget)} left). It resets {ts_full(resets_at)} ({ts_relative(resets_at)})."
    )


HISTORY_EMPTY = "You haven't made any videos in this server yet. Try `/luma generate`."
HISTORY_TITLE = "Your recent videos"


def history_line(
    *,
    job_id: int,
    state: str,
    prompt: str,
    created: datetime,
    result_link: str | None,
    video_url: str | None,
    parent_id: int | None,
    deleted: bool = False,
) -> str:
    icon = {"completed": "✅", "failed": "❌", "running": "🎬", "submitting": "🎬", "queued": "⏳"}.get(
        state, "•"
    )
    links = []
    if deleted:
        links.append("🗑️ deleted")
    elif result_link:
        links.append(f"[message]({result_link})")
    if video_url:
        links.append(f"[video]({video_url})")
    chain = f" ↳ extends #{parent_id}" if parent_id else ""
    tail = (" · " + " · ".join(links)) if links else ""
    return f"{icon} **#{job_id}** {state}{chain} {ts_relative(created)}: {prompt}{tail}"


# -- admin ---------------------------------------------------------------------------------------------


def admin_limit_set(limit: int, period: str) -> str:
    return (
        f"Members of this server can now spend **{limit}** credits per {period} "
        "(a credit is one video at default options; dearer options count for more)."
    )


def admin_role_limit_set(role_mention: str, limit: int | None) -> str:
    if limit is None:
        return f"{role_mention} no longer has its own limit."
    return f"Members with {role_mention} can now spend **{limit}** credits per period (the highest role limit wins)."


def admin_user_limit_set(user_mention: str, limit: int | None) -> str:
    if limit is None:
        return f"{user_mention} no longer has a personal limit."
    return f"{user_mention} can now spend **{limit}** credits per period, whatever their roles."


def admin_budget_set(budget: int | None, period: str, credit_price: int | None) -> str:
    """`budget` in credits."""
    if budget is None:
        return f"This server no longer has a budget; its spend is still counted per {period}."
    if budget == 0:
        return "Video making is switched off in this server until you set a budget above 0."
    about = f" (about {money(budget * credit_price)})" if credit_price else ""
    return (
        f"This server may now spend **{budget:,}** credits per {period}{about}. What it already spent this "
        f"{period} counts; a request the budget can't cover is refused before anything is sent."
    )


def admin_options(lines: list[str]) -> str:
    return "Video options in this server:\n" + "\n".join(f"- {line}" for line in lines)


def admin_no_options(provider: str) -> str:
    return f"{provider} offers no choice of model, resolution or length, so there is nothing to limit."


def admin_usage_total(*, used: int, held: int, spent: int | None, budget: int | None, period: str) -> str:
    """Amounts in millicredits and micro-USD."""
    money_part = f" ({money(spent)})" if spent is not None else ""
    held_part = f", {credits(held)} held by videos in progress" if held else ""
    cap = f" of a budget of **{credits(budget)}**" if budget is not None else " (no budget set)"
    return f"**Total this {period}: {credits_phrase(used)} spent{money_part}{cap}{held_part}.**"


def admin_reset(user_mention: str) -> str:
    return f"{user_mention}'s usage for this period is reset (videos in progress stay reserved)."


ADMIN_USAGE_EMPTY = "Nobody has made a video in this server this period."


def admin_usage_title(period: str) -> str:
    return f"Spend this {period}"


def admin_usage_line(user_mention: str, used: int, held: int, spent: int | None = None) -> str:
    """Amounts in millicredits and micro-USD."""
    return (
        f"{user_mention}: {credits_phrase(used)}"
        + (f" ({money(spent)})" if spent is not None else "")
        + (f", {credits(held)} held" if held else "")
    )


ADMIN_USAGE_CSV_NOTE = "The attached CSV is this period's ledger: one line per request."


# -- refusals and errors -------------------------------------------------------------------------------

GUILD_ONLY = "This works in servers only."
NEEDS_MANAGE_GUILD = "Only members with the Manage Server permission can use the bot's admin commands."
NOT_A_RESULT = "That message is not one of my videos: use it on a message where I posted a video."
NOT_A_RESULT_HERE = "That link is not to one of my videos in this server."
NOT_A_MESSAGE_LINK = (
    "That Discord link does not lead to a message: copy it with Copy Message Link on one of my videos."
)
UNKNOWN_JOB = "I don't know that video any more."
RETRY_ONLY_REQUESTER = (
    "Only the member who asked for this video can retry it; use Regenerate on a finished one."
)
ATTACHMENT_NOT_IMAGE = "The {what} must be a png, jpeg or webp image."
ATTACHMENT_TOO_BIG = "The {what} is {size} MiB; the limit is {limit} MiB."
FRAME_TWICE = "Give the {what} as an attachment or as a link, not both."
CANNOT_POST = (
    "I can't post in this channel: I need View Channel, Send Messages (in threads: Send Messages in Threads) "
    "and Embed Links here. Ask an admin, or use me in another channel."
)
SHUTTING_DOWN = "The bot is restarting; try again in a minute."
FORBIDDEN = "Discord refused me the permission to do that here."
REPLY_UNREADABLE = (
    "I can't read replies that don't ping me: keep the @mention on when you reply to extend a video."
)
RATE_LIMITED = "Slow down a little, then try again."


def something_went_wrong(ref: str) -> str:
    return f"Something went wrong on my side (ref `{ref}`). The bot's operator can look it up."


# -- /luma-admin providers ----------------------------------------------------------------------------------

ADMIN_PROVIDERS = "Which video services and keys are healthy, busy or resting"
ADMIN_PROVIDERS_TITLE = "Video services"
ADMIN_PROVIDERS_NOTE = (
    "In order of preference: a new video goes to the first healthy one with a free slot. Health is learnt from "
    "this bot's own requests; rates cover the last hour."
)


def provider_heading(position: int, name: str) -> str:
    return f"{position}. {name}"


def _rate(value: float | None) -> str:
    return "no requests" if value is None else f"{round(value * 100)}% ok"


def _since(iso: str) -> str:
    return ts_relative(datetime.fromisoformat(iso))


def provider_report(report: dict) -> str:
    """One provider's health and keys, for admins (keys shown by their last 4 characters only)."""
    state = (
        "✅ healthy" if report["healthy"] else "⚠️ unhealthy (jobs go to the next service; a probe follows)"
    )
    lines = [
        f"{state} since {_since(report['since'])}",
        f"creates: {_rate(report['create_success_rate'])} · polls: {_rate(report['poll_success_rate'])}"
        + ("" if report["polling_ok"] else " (polling is failing)"),
    ]
    if report["last_error"]:
        lines.append(f"last error: {report['last_error'][:200]}")
    for key in report["keys"]:
        status = "available" if key["available"] else f"resting ({key['rest_reason'] or 'busy'})"
        line = f"key `{key['key']}`: {key['running']}/{key['slots']} running · {status}"
        if key["last_error"]:
            line += f" · last error: {key['last_error'][:120]}"
        lines.append(line)
    return "\n".join(lines)
