"""The price table and credits: every option of every provider has a price, the admin's file replaces the
shipped one and is checked at start, and the server's limits on options refuse what they do not allow."""

from __future__ import annotations

import itertools

import pytest

from bot.discord_ui import texts
from bot.luma.capabilities import SPECS, spec_for
from bot.luma.options import (
    OptionDefaults,
    ServerOptions,
    VideoOptions,
    check_generate,
    check_server,
    check_server_options,
    server_defaults,
)
from bot.luma.prices import CREDIT, PriceFileError, Pricing, load_prices
from bot.luma.validation import InvalidInput
from bot.settings import SettingsError, load_settings


def every_option_set():
    for spec in SPECS.values():
        if not spec.models:
            yield spec.name, None, None, None
        for combo in itertools.product(spec.models, spec.resolutions, spec.durations):
            yield spec.name, *combo


@pytest.mark.parametrize(("provider", "model", "resolution", "duration"), list(every_option_set()))
def test_every_option_set_of_every_provider_has_a_price_in_credits(provider, model, resolution, duration):
    cost = Pricing(credit_provider=provider).cost(
        provider, VideoOptions(model=model, resolution=resolution, duration=duration)
    )
    assert cost.millicredits > 0
    if SPECS[provider].models:
        assert cost.micro_usd is not None and cost.micro_usd > 0
    else:  # the resellers publish no dollar price: one credit per video
        assert (cost.millicredits, cost.micro_usd) == (CREDIT, None)


@pytest.mark.parametrize(
    ("provider", "resolution", "duration", "credits", "usd"),
    [
        ("luma", "540p", "5s", 500, 150_000),
        ("luma", "720p", "5s", 1000, 300_000),  # the default video: one credit
        ("luma", "1080p", "10s", 12_000, 3_600_000),  # 24 times the 540p 5 s video
        ("luma", "360p", "5s", 500, 150_000),  # unpublished: priced as 540p
        ("dream-machine", "720p", "5s", 1000, 710_000),
        ("dream-machine", "4k", "9s", 16_155, 11_470_000),  # rounded up, never down
    ],
)
def test_published_prices_in_credits(provider, resolution, duration, credits, usd):
    model = spec_for(provider).default_model
    cost = Pricing(credit_provider=provider).cost(
        provider, VideoOptions(model=model, resolution=resolution, duration=duration)
    )
    assert (cost.millicredits, cost.micro_usd) == (credits, usd)


def test_a_credit_is_the_admins_default_video():
    pricing = Pricing(credit_provider="luma", credit_defaults=OptionDefaults(resolution="1080p"))
    assert pricing.credit_price("luma") == 1_200_000
    cheap = pricing.cost("luma", VideoOptions(model="ray-3.2", resolution="540p", duration="5s"))
    assert cheap.millicredits == 125


def test_an_extension_on_the_agents_api_is_one_5s_block():
    pricing = Pricing(credit_provider="luma")
    cost = pricing.cost("luma", VideoOptions(model="ray-3.2", resolution="1080p"), extend=True)
    assert (cost.millicredits, cost.micro_usd) == (4000, 1_200_000)


def test_the_admins_file_replaces_the_providers_it_names(tmp_path):
    path = tmp_path / "prices.toml"
    path.write_text('[acedatacloud]\nvideo = "0.25"\n')
    table = load_prices(path)
    assert table.price("acedatacloud", VideoOptions()) == 250_000
    assert table.price("luma", VideoOptions(model="ray-3.2", resolution="720p", duration="5s")) == 300_000


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ('[luma]\nextend = "5s"\n[luma."ray-3.2"]\n"720p" = { "5s" = "0.30" }\n', "no price for ray-3.2 360p 5s"),
        ("[acedatacloud]\nvideo = 0.1\n", "write the price as a string"),
        ('[acedatacloud]\nvideo = "0.0000001"\n', "more than 6 decimals"),
        ('[acedatacloud]\nvideo = "-1"\n', "is not a price"),
        ('[sora]\nvideo = "1"\n', "unknown provider [sora]"),
        ("[acedatacloud\n", "not valid TOML"),
    ],
)
def test_a_bad_price_file_is_refused_naming_the_problem(tmp_path, content, words):
    path = tmp_path / "prices.toml"
    path.write_text(content)
    with pytest.raises(PriceFileError) as err:
        load_prices(path)
    assert words in str(err.value) and str(path) in str(err.value)


def test_a_bad_price_file_stops_the_bot_with_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DISCORD_TOKEN", "d")
    monkeypatch.setenv("LUMA_API_TOKEN", "l")
    monkeypatch.setenv("LUMA_PRICES_FILE", str(tmp_path / "missing.toml"))
    with pytest.raises(SettingsError) as err:
        load_settings()
    message = str(err.value)
    assert "\n" not in message and message.startswith("Invalid settings: LUMA_PRICES_FILE ")
    assert "cannot be read" in message


# -- the server's limits on options -------------------------------------------------------------------

LUMA = spec_for("luma")


def test_a_resolution_above_the_servers_limit_is_refused_naming_what_is_allowed():
    server = ServerOptions(max_resolution="720p")
    chosen = check_generate(LUMA, VideoOptions(resolution="1080p"), OptionDefaults())
    with pytest.raises(InvalidInput) as err:
        check_server(LUMA, chosen, server)
    assert "up to 720p" in str(err.value) and "360p, 540p, 720p" in str(err.value)


def test_a_duration_and_a_model_beyond_the_limits_are_refused():
    with pytest.raises(InvalidInput, match="choose 5s"):
        check_server(LUMA, VideoOptions(model="ray-3.2", duration="10s"), ServerOptions(max_duration="5s"))
    dream = spec_for("dream-machine")
    with pytest.raises(InvalidInput, match="use ray-flash-2"):
        check_server(dream, VideoOptions(model="ray-2"), ServerOptions(models=("ray-flash-2",)))


def test_members_who_choose_nothing_get_the_server_default_within_its_limits():
    assert server_defaults(LUMA, OptionDefaults(), ServerOptions(resolution="540p")).resolution == "540p"
    # The provider's default (720p) is above the limit: the largest allowed size instead, never a refusal.
    chosen = server_defaults(LUMA, OptionDefaults(), ServerOptions(max_resolution="540p"))
    assert chosen.resolution == "540p"
    options = check_generate(LUMA, VideoOptions(), chosen)
    check_server(LUMA, options, ServerOptions(max_resolution="540p"))


def test_an_admins_settings_are_checked_against_the_provider_and_themselves():
    with pytest.raises(InvalidInput, match="has no model ray-2"):
        check_server_options(LUMA, ServerOptions(models=("ray-2",)))
    with pytest.raises(InvalidInput, match="beyond this server's limits"):
        check_server_options(LUMA, ServerOptions(max_resolution="540p", resolution="1080p"))
    with pytest.raises(InvalidInput, match="nothing as small as"):
        check_server_options(spec_for("dream-machine"), ServerOptions(max_resolution="360p"))


def test_server_options_survive_their_json():
    server = ServerOptions(max_resolution="720p", max_duration="5s", models=("ray-3.2",), resolution="540p")
    assert ServerOptions.from_json(server.to_json()) == server


# -- how amounts are shown ----------------------------------------------------------------------------


def test_credits_and_money_are_shown_exactly():
    assert [texts.credits(m) for m in (0, 500, 1000, 12_000, 564, 1_234_500)] == ["0", "0.5", "1", "12", "0.564", "1,234.5"]
    assert [texts.money(m) for m in (300_000, 3_600_000, 40_400, 0)] == ["$0.30", "$3.60", "$0.0404", "$0.00"]
    assert texts.cost(12_000, 3_600_000) == "12 credits ($3.60)" and texts.cost(1000, None) == "1 credit"
