"""User-input checks made before anything reaches a provider: each refusal, and what is accepted."""

from __future__ import annotations

import pytest

from bot.luma.types import ASPECT_RATIOS, MAX_PROMPT_LENGTH
from bot.luma.validation import (
    InvalidInput,
    parse_extend_target,
    validate_aspect_ratio,
    validate_image_url,
    validate_prompt,
)

# ---- prompt ------------------------------------------------------------------------------------------------


def test_prompt_is_stripped() -> None:
    assert validate_prompt("  a cat surfing \n") == "a cat surfing"


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
def test_empty_prompt_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match="empty"):
        validate_prompt(text)


# One invisible character of each kind a prompt might be made of (see validate_prompt).
INVISIBLE = [
    "\u200b",  # zero-width space (Cf)
    "\u200c\u200d",  # zero-width non-joiner and joiner
    "\ufeff",  # byte-order mark
    "\u2060\u2061\u2064",  # word joiner, invisible operators
    "\u00ad",  # soft hyphen
    "\u061c\u200e\u200f\u202a\u202e\u2066\u2069",  # bidi marks, embeddings and isolates
    "\u180e",  # Mongolian vowel separator
    "\U000e0001\U000e0020\U000e007f",  # tag characters
    "\u00a0\u2007\u202f\u3000",  # no-break and ideographic spaces (Zs)
    "\u2028\u2029",  # line and paragraph separators (Zl, Zp)
    "\x00\x07\x1b\x7f\x85",  # control characters (Cc)
    "\u115f\u1160\u3164\uffa0",  # Hangul fillers
    "\u2800",  # braille pattern blank
    "\u034f",  # combining grapheme joiner
    "\ufe0f\ufe00\U000e0100",  # variation selectors
    "\u17b4\u17b5",  # Khmer inherent vowels (default-ignorable)
    "\U0001d173\U0001d17a",  # musical formatting characters
]


@pytest.mark.parametrize("text", INVISIBLE, ids=[repr(t) for t in INVISIBLE])
def test_prompt_that_renders_as_nothing_is_refused_as_empty(text: str) -> None:
    with pytest.raises(InvalidInput, match="empty"):
        validate_prompt(text)
    with pytest.raises(InvalidInput, match="empty"):
        validate_prompt(f" {text} \n{text}\t")


@pytest.mark.parametrize(
    "text",
    [
        "a\u200bcat",  # visible text with an invisible character inside
        "\U0001f469\u200d\U0001f680",  # an emoji sequence joined with ZWJ
        "\u2764\ufe0f",  # an emoji with its presentation selector
        "\uace0\uc591\uc774",  # Hangul syllables (not fillers)
        "\u732b",  # a CJK ideograph
        "e\u0301",  # a letter with a combining accent
        "\u2801",  # a braille pattern with a dot
    ],
)
def test_prompt_with_something_visible_is_kept_as_typed(text: str) -> None:
    assert validate_prompt(text) == text


def test_prompt_at_the_limit_is_accepted() -> None:
    text = "x" * MAX_PROMPT_LENGTH
    assert validate_prompt(text) == text


def test_prompt_over_the_limit_is_refused_with_limit_and_length() -> None:
    with pytest.raises(InvalidInput) as info:
        validate_prompt("y" * (MAX_PROMPT_LENGTH + 17))
    message = str(info.value)
    assert str(MAX_PROMPT_LENGTH) in message
    assert str(MAX_PROMPT_LENGTH + 17) in message


def test_prompt_length_is_counted_after_stripping() -> None:
    text = "   " + "z" * MAX_PROMPT_LENGTH + "   "
    assert len(validate_prompt(text)) == MAX_PROMPT_LENGTH


def test_invalid_input_is_a_value_error() -> None:
    assert issubclass(InvalidInput, ValueError)


# ---- aspect ratio ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ratio", ASPECT_RATIOS)
def test_every_documented_aspect_ratio_is_accepted(ratio: str) -> None:
    assert validate_aspect_ratio(ratio) == ratio


@pytest.mark.parametrize("ratio", ["2:1", "16x9", "", "16:9:1", "9/16"])
def test_other_aspect_ratios_are_refused_with_the_choices(ratio: str) -> None:
    with pytest.raises(InvalidInput) as info:
        validate_aspect_ratio(ratio)
    assert "16:9" in str(info.value) and "9:21" in str(info.value)


# ---- image links -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://cdn.discordapp.com/attachments/1/2/cat.png?ex=66&is=65&hm=ab12",
        "http://example.com/a.jpg",
        "HTTPS://Example.COM/a.jpg",
        "https://example.com:8443/a.jpg",
        "https://8.8.8.8/a.png",
        "https://[2606:4700:4700::1111]/a.png",
        "https://my_bucket.s3.amazonaws.com/a.png",
        "https://bücher.example/a.png",
        "https://example.com./a.png",
        "https://localhost.example.com/a.png",
    ],
)
def test_public_http_links_are_accepted(url: str) -> None:
    assert validate_image_url(url) == url


def test_image_link_is_stripped() -> None:
    assert validate_image_url("  https://example.com/a.png ") == "https://example.com/a.png"


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "data:image/png;base64,iVBORw0KGgo=",
        "ftp://example.com/a.png",
        "javascript:alert(1)",
        "gopher://example.com/",
        "example.com/a.png",
    ],
)
def test_non_http_schemes_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput, match="http:// or https://"):
        validate_image_url(url)


@pytest.mark.parametrize("url", ["https://", "http:///a.png", "https://:443/a.png"])
def test_links_without_host_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput, match="host"):
        validate_image_url(url)


@pytest.mark.parametrize(
    "url",
    [
        # names
        "http://localhost/a.png",
        "http://LOCALHOST./a.png",
        "http://foo.localhost/a.png",
        "http://printer.local/a.png",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://localhost.localdomain/",
        # IPv4 in the usual spelling
        "http://127.0.0.1/a.png",
        "http://127.8.9.10:8080/a.png",
        "http://10.0.0.5/a.png",
        "http://172.16.3.4/a.png",
        "http://192.168.1.1/a.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
        "http://240.0.0.1/",
        "http://255.255.255.255/",
        "http://100.64.0.1/",
        # IPv4 in the spellings URL parsers also accept
        "http://2130706433/",
        "http://0x7f.1/",
        "http://0x7f000001/",
        "http://0177.0.0.1/",
        "http://127.1/",
        "http://0/",
        "http://3232235777/",
        "http://１２７.０.０.１/",
        # IPv6
        "http://[::1]/",
        "http://[::]/",
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "http://[fd12:3456::1]/",
        "http://[ff02::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]/",
        "http://[::ffff:10.1.2.3]/",
        "http://[64:ff9b::7f00:1]/",
        "http://[2002:7f00:1::]/",
    ],
)
def test_local_and_private_hosts_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput, match="public link"):
        validate_image_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://1.2.3.4.5/",
        "http://256.1.1.1/",
        "http://0x1g.1/",
        "http://%31%32%37.0.0.1/",
        "http://[not-an-ip]/",
        "http://exa_mple..com/",
    ],
)
def test_hosts_that_are_not_valid_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput):
        validate_image_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://exa mple.com/a.png",
        "http://example.com/a b.png",
        "http://example.com\\@127.0.0.1/",
        "http://example.com/\x00.png",
    ],
)
def test_spaces_and_control_characters_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput, match="characters"):
        validate_image_url(url)


def test_credentials_in_the_link_are_refused() -> None:
    with pytest.raises(InvalidInput, match="user name or password"):
        validate_image_url("http://user:pw@example.com/a.png")


def test_bad_port_is_refused() -> None:
    with pytest.raises(InvalidInput, match="not a valid link"):
        validate_image_url("http://example.com:99999/a.png")


def test_overlong_link_is_refused() -> None:
    with pytest.raises(InvalidInput, match="too long"):
        validate_image_url("https://example.com/" + "a" * 3000)


# ---- extend target -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["6a97ba3e-7e4a-4fe9-a7c5-1c6e1e2f4d10", "abc_DEF-123", "a" * 128, "clxyz1"]
)
def test_bare_ids_are_video_ids(value: str) -> None:
    assert parse_extend_target(value) == (value, None)


def test_id_is_stripped() -> None:
    assert parse_extend_target("  abcdef123 ") == ("abcdef123", None)


@pytest.mark.parametrize(
    "value", ["https://platform.cdn.acedata.cloud/luma/x.mp4", "http://storage.cdn-luma.com/a/video.mp4?x=1"]
)
def test_public_links_are_video_urls(value: str) -> None:
    assert parse_extend_target(value) == (None, value)


@pytest.mark.parametrize(
    "value",
    ["", "   ", "abc", "a" * 129, "two words", "id/with/slash", "www.example.com/v.mp4", "<@1234567>"],
)
def test_other_targets_are_refused(value: str) -> None:
    with pytest.raises(InvalidInput):
        parse_extend_target(value)


@pytest.mark.parametrize(
    "value", ["http://127.0.0.1/v.mp4", "http://[::1]/v.mp4", "ftp://example.com/v.mp4", "file:///v.mp4"]
)
def test_extend_links_follow_the_same_host_rules(value: str) -> None:
    with pytest.raises(InvalidInput, match="video link"):
        parse_extend_target(value)
