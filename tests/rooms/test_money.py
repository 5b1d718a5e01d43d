"""One money format (``rooms.money.format_money``): the currency setting, cents and at most
the meter's 4 places, the active language's digits."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal

import pytest
from django.template import Context, Template
from django.utils import translation

from rooms.money import format_money
from tests.live import ROOT


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (Decimal("0.0200000000000000"), "$0.02"),  # an SQLite sum of decimals
        (Decimal("0.0200"), "$0.02"),
        (0, "$0.00"),
        (None, "$0.00"),
        ("0.0100", "$0.01"),
        (Decimal("0.025"), "$0.025"),
        (Decimal("0.0125"), "$0.0125"),  # a rate per minute
        (Decimal("0.0005"), "$0.0005"),  # a LiveKit participant-minute
        (Decimal("0.66251"), "$0.6625"),  # rounded half up to the meter's 4 places
        (Decimal("0.00004"), "$0.00"),
        (Decimal("1234.5"), "$1,234.50"),
        (Decimal("-0.02"), "-$0.02"),
        (0.1, "$0.10"),
    ],
)
def test_amounts_read_as_cents_and_never_lose_what_was_billed(settings, amount, text):
    settings.CURRENCY = "USD"
    assert format_money(amount) == text


def test_the_currency_comes_from_the_setting_or_the_caller(settings):
    settings.CURRENCY = "EUR"
    assert format_money(Decimal("0.02")) == "€0.02"
    assert format_money(Decimal("0.02"), "GBP") == "£0.02"
    assert format_money(Decimal("0.02"), "CHF") == "CHF\u00a00.02"  # no symbol: the code


def test_russian_writes_russian_digits_and_puts_the_symbol_after(settings):
    settings.CURRENCY = "USD"
    with translation.override("ru"):
        assert format_money(Decimal("1234.5")) == "1\u00a0234,50\u00a0$"
        assert format_money(Decimal("0.02"), "RUB") == "0,02\u00a0₽"


def test_the_template_filter_is_the_same_helper(settings):
    settings.CURRENCY = "USD"
    html = Template("{% load usage_tags %}{{ cost|money }}").render(
        Context({"cost": Decimal("0.0200000000000000")})
    )
    assert html == "$0.02"


def test_a_bad_currency_setting_stops_the_start():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "rooms.settings", "CURRENCY": "dollars"}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "CURRENCY must be an ISO 4217 code" in result.stderr


def test_not_an_amount_is_an_error():
    with pytest.raises(ValueError, match="not an amount of money"):
        format_money("twelve")
