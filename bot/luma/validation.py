"""Checks on user input made before anything reaches a provider: prompt, aspect ratio, image links and extend
targets. Pure functions, no network (no DNS lookups); each refusal is an InvalidInput with a sentence a
Discord user can act on."""

from __future__ import annotations

import ipaddress
import re
import string
import unicodedata
from urllib.parse import urlsplit

from bot.luma.types import ASPECT_RATIOS, MAX_PROMPT_LENGTH

# Long enough for signed CDN links (Discord attachment URLs carry ~200 characters of query string).
MAX_URL_LENGTH = 2048

# Names that resolve to this machine or a private network by convention (RFC 6761, mDNS, cloud metadata).
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain"})
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain")

# A bare provider video id: AceDataCloud and Luma use UUIDs; other resellers use shorter opaque tokens.
_VIDEO_ID = re.compile(r"[A-Za-z0-9_-]{6,128}")
_HAS_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_HOST_CHARS = frozenset(string.ascii_lowercase + string.digits + ".-_")
# NAT64's well-known prefix: 64:ff9b::7f00:1 reaches 127.0.0.1 through a NAT64 gateway.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


# What a prompt may be made of and still render as nothing in Discord (and describe nothing to the provider):
# formatting characters (zero-width space and joiners, byte-order mark, word joiner, bidi marks, tags), every
# kind of space and line separator, control characters, and the code points Unicode lists as default-ignorable
# although their category is a visible one (Hangul fillers, combining grapheme joiner, variation selectors,
# Khmer inherent vowels), plus the braille blank, which fonts draw as an empty cell.
_INVISIBLE_CATEGORIES = frozenset({"Cf", "Cc", "Cs", "Zs", "Zl", "Zp"})
_INVISIBLE_RANGES = (
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x115F, 0x1160),  # Hangul choseong and jungseong fillers
    (0x17B4, 0x17B5),  # Khmer inherent vowels
    (0x180B, 0x180F),  # Mongolian free variation selectors
    (0x2800, 0x2800),  # braille pattern blank
    (0x3164, 0x3164),  # Hangul filler
    (0xFE00, 0xFE0F),  # variation selectors
    (0xFFA0, 0xFFA0),  # halfwidth Hangul filler
    (0xFFF0, 0xFFF8),  # reserved default-ignorable
    (0xE0000, 0xE0FFF),  # tags and variation selectors supplement (assigned or reserved)
)


def _invisible(ch: str) -> bool:
    code = ord(ch)
    if any(low <= code <= high for low, high in _INVISIBLE_RANGES):
        return True
    return unicodedata.category(ch) in _INVISIBLE_CATEGORIES


def renders_as_nothing(text: str) -> bool:
    """True when `text` has no character that shows: blank, or made only of invisible and formatting ones."""
    return all(_invisible(ch) for ch in text)


class InvalidInput(ValueError):
    """User input we refuse; str(exc) is a complete sentence to show to the user."""


def validate_prompt(text: str) -> str:
    """The prompt without surrounding whitespace; refuses one that renders as nothing (blank, or only invisible
    characters) and one over MAX_PROMPT_LENGTH."""
    if not isinstance(text, str):
        raise InvalidInput("The prompt must be text.")
    prompt = text.strip()
    # A prompt of zero-width characters or Hangul fillers looks empty to everyone, yet the provider would
    # take it and the member would pay for a video of nothing.
    if renders_as_nothing(prompt):
        raise InvalidInput("The prompt is empty: describe the video you want.")
    if len(prompt) > MAX_PROMPT_LENGTH:
        raise InvalidInput(
            f"The prompt is too long: {len(prompt)} characters, and the limit is {MAX_PROMPT_LENGTH}."
        )
    return prompt


def validate_aspect_ratio(value: str) -> str:
    """One of ASPECT_RATIOS (surrounding whitespace ignored)."""
    ratio = value.strip() if isinstance(value, str) else ""
    if ratio not in ASPECT_RATIOS:
        raise InvalidInput(f"Unsupported aspect ratio {value!r}: choose one of {', '.join(ASPECT_RATIOS)}.")
    return ratio


def validate_image_url(url: str) -> str:
    """A public http(s) link to an image; refuses other schemes and hosts on private or local networks."""
    return _check_public_url(url, "image link")


def parse_extend_target(value: str) -> tuple[str | None, str | None]:
    """(video_id, video_url) for what a user gave as the video to extend: a bare id or a public http(s) link."""
    target = value.strip() if isinstance(value, str) else ""
    if not target:
        raise InvalidInput("Say which video to extend: give its id or its link.")
    if _HAS_SCHEME.match(target):
        return None, _check_public_url(target, "video link")
    if _VIDEO_ID.fullmatch(target):
        return target, None
    raise InvalidInput(
        "That is neither a video id nor a link: give the id of an earlier video "
        "(letters, digits, - and _, 6 to 128 characters) or its https link."
    )


def _check_public_url(url: str, what: str) -> str:
    if not isinstance(url, str) or not url.strip():
        raise InvalidInput(f"The {what} is empty.")
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise InvalidInput(
            f"The {what} is too long: {len(url)} characters, and the limit is {MAX_URL_LENGTH}."
        )
    # Whitespace, control characters and backslashes are read differently by different URL parsers, which is
    # how a link that looks public gets fetched from somewhere else.
    if any(ch.isspace() or unicodedata.category(ch) == "Cc" or ch == "\\" for ch in url):
        raise InvalidInput(f"The {what} contains spaces or characters a link cannot have.")
    try:
        parts = urlsplit(url)
        port = parts.port  # parsing it raises ValueError for a port that is not a number in range
    except ValueError:
        raise InvalidInput(f"The {what} is not a valid link.") from None
    del port
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidInput(f"The {what} must start with http:// or https://.")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput(f"The {what} must not contain a user name or password.")
    host = parts.hostname
    if not host:
        raise InvalidInput(f"The {what} has no host name.")
    bracketed = "[" in parts.netloc
    host = _normalise_host(host, what)
    refusal = _host_refusal(host, bracketed)
    if refusal:
        raise InvalidInput(f"The {what} points to {refusal}; use a public link.")
    return url


def host_refusal(host: str) -> str | None:
    """Why a URL's host (a name or a literal address, without brackets) is not a public internet host, or None.
    No DNS lookup: a caller that connects must also check the addresses the name resolves to
    (`address_refusal`)."""
    try:
        host = _normalise_host(host, "host")
    except InvalidInput:
        return "a host name that is not valid"
    return _host_refusal(host, bracketed=False)


def address_refusal(address: str) -> str | None:
    """Why an IP address, as a resolver returns it, is not a public internet address, or None."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "an address that is not valid"
    return _ip_refusal(ip)


def _normalise_host(host: str, what: str) -> str:
    if not host.isascii():
        # The same IDNA step HTTP clients take: fullwidth "１２７.０.０.１" becomes "127.0.0.1" here too.
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise InvalidInput(f"The {what} has a host name that is not valid.") from None
    host = host.lower()
    if host.endswith(".") and not host.endswith(".."):
        host = host[:-1]
    return host


def _host_refusal(host: str, bracketed: bool) -> str | None:
    """Why `host` (lowercase ASCII) is not a public internet host, or None when it is acceptable."""
    if bracketed or ":" in host:
        try:
            return _ip_refusal(ipaddress.IPv6Address(host))
        except ValueError:
            return "an address that is not valid"
    if "%" in host:
        return "a host name that is not valid"
    try:
        return _ip_refusal(ipaddress.IPv4Address(host))
    except ValueError:
        pass
    if _ends_in_number(host):
        # WHATWG URL rules (which HTTP clients and browsers follow) read "2130706433", "0x7f.1" or "0177.1" as
        # IPv4 addresses, so must we.
        number = _parse_ipv4_number_host(host)
        if number is None:
            return "an address that is not valid"
        return _ip_refusal(ipaddress.IPv4Address(number))
    if not set(host) <= _HOST_CHARS or ".." in host or host.startswith("."):
        return "a host name that is not valid"
    if host in _LOCAL_NAMES or host.endswith(_LOCAL_SUFFIXES):
        return "this machine or a local network"
    return None


def _ip_refusal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or (ip.sixtofour if ip.sixtofour else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            inner = _ip_refusal(embedded)
            if inner:
                return inner
    if ip.is_loopback:
        return "this machine (a loopback address)"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_private:
        return "a private network address"
    if ip.is_reserved or not ip.is_global:
        return "a reserved address"
    return None


def _ends_in_number(host: str) -> bool:
    labels = host.split(".")
    if labels[-1] == "" and len(labels) > 1:
        labels.pop()
    last = labels[-1]
    if last and all(ch in string.digits for ch in last):
        return True
    return last[:2] == "0x" and all(ch in string.hexdigits for ch in last[2:])


def _parse_ipv4_number_host(host: str) -> int | None:
    """WHATWG's IPv4 parser: 1–4 dot-separated numbers in decimal, 0x-hex or 0-octal; the last one fills the
    remaining bytes. Returns the 32-bit address, or None when it is not a valid address."""
    parts = host.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    if not 1 <= len(parts) <= 4:
        return None
    numbers: list[int] = []
    for part in parts:
        number = _parse_ipv4_number(part)
        if number is None:
            return None
        numbers.append(number)
    if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        return None
    address = numbers[-1]
    for i, n in enumerate(numbers[:-1]):
        address += n << (8 * (3 - i))
    return address


def _parse_ipv4_number(part: str) -> int | None:
    # Explicit digit sets: int() would also accept "+1", " 1" and "1_0".
    if not part:
        return None
    if part[:2] == "0x":
        digits, base, allowed = part[2:], 16, string.hexdigits
    elif len(part) > 1 and part[0] == "0":
        digits, base, allowed = part[1:], 8, string.octdigits
    else:
        digits, base, allowed = part, 10, string.digits
    if not digits:
        return 0  # "0x" alone is 0 in WHATWG's parser
    if not all(ch in allowed for ch in digits):
        return None
    return int(digits, base)
