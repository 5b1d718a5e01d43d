"""Typed environment readers: good values parse, bad values stop start-up loudly."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured

from rooms.env import (
    env_bool,
    env_choice,
    env_decimal,
    env_float,
    env_int,
    env_list,
    env_secret,
    env_str,
)

VAR = "ROOMS_TEST_VARIABLE"


@pytest.fixture(autouse=True)
def _unset(monkeypatch):
    monkeypatch.delenv(VAR, raising=False)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True),
        ("true", True),
        (" TRUE ", True),
        ("yes", True),
        ("on", True),
        ("0", False),
        ("false", False),
        ("No", False),
        ("off", False),
    ],
)
def test_env_bool_parses_the_usual_spellings(monkeypatch, raw, expected):
    monkeypatch.setenv(VAR, raw)

    assert env_bool(VAR, not expected) is expected


@pytest.mark.parametrize("default", [True, False])
def test_env_bool_blank_gives_the_default_never_a_silent_false(monkeypatch, default):
    monkeypatch.setenv(VAR, "  ")

    assert env_bool(VAR, default) is default


def test_env_bool_unset_gives_the_default():
    assert env_bool(VAR, True) is True
    assert env_bool(VAR, False) is False


@pytest.mark.parametrize("raw", ["maybe", "2", "truee", "y e s"])
def test_env_bool_rejects_anything_else(monkeypatch, raw):
    monkeypatch.setenv(VAR, raw)

    with pytest.raises(ImproperlyConfigured, match=VAR):
        env_bool(VAR, False)


def test_env_int_parses_an_integer(monkeypatch):
    monkeypatch.setenv(VAR, " 42 ")

    assert env_int(VAR, 1) == 42


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_env_int_unset_or_blank_gives_the_default(monkeypatch, raw):
    if raw is not None:
        monkeypatch.setenv(VAR, raw)

    assert env_int(VAR, 7) == 7


@pytest.mark.parametrize("raw", ["ten", "1.5", "3e2", "0x10"])
def test_env_int_rejects_a_non_integer(monkeypatch, raw):
    monkeypatch.setenv(VAR, raw)

    with pytest.raises(ImproperlyConfigured, match="must be an integer"):
        env_int(VAR, 1)


def test_env_int_rejects_a_value_below_the_minimum(monkeypatch):
    monkeypatch.setenv(VAR, "59")

    with pytest.raises(ImproperlyConfigured, match=">= 60"):
        env_int(VAR, 3600, minimum=60)


def test_env_int_accepts_the_minimum_itself(monkeypatch):
    monkeypatch.setenv(VAR, "60")

    assert env_int(VAR, 3600, minimum=60) == 60


def test_env_float_parses_and_checks_the_minimum(monkeypatch):
    monkeypatch.setenv(VAR, "0.25")
    assert env_float(VAR, 1.0, minimum=0.1) == 0.25

    monkeypatch.setenv(VAR, "0.01")
    with pytest.raises(ImproperlyConfigured, match=r">= 0\.1"):
        env_float(VAR, 1.0, minimum=0.1)

    monkeypatch.setenv(VAR, "fast")
    with pytest.raises(ImproperlyConfigured, match="must be a number"):
        env_float(VAR, 1.0)


def test_env_decimal_parses_exactly(monkeypatch):
    monkeypatch.setenv(VAR, "0.015")

    assert env_decimal(VAR, "0.01") == Decimal("0.015")


def test_env_decimal_unset_gives_the_default():
    assert env_decimal(VAR, "0.01") == Decimal("0.01")


@pytest.mark.parametrize("raw", ["cheap", "1,5", "NaN", "Infinity", "-0.01"])
def test_env_decimal_rejects_bad_negative_and_non_finite_values(monkeypatch, raw):
    monkeypatch.setenv(VAR, raw)

    with pytest.raises(ImproperlyConfigured, match=VAR):
        env_decimal(VAR, "0.01")


def test_env_secret_in_development_falls_back_to_the_dev_default():
    assert env_secret(VAR, dev_default="dev-secret", required=False) == "dev-secret"


def test_env_secret_required_but_unset_is_refused():
    with pytest.raises(ImproperlyConfigured, match=f"{VAR} must be set"):
        env_secret(VAR, dev_default="dev-secret", required=True)


def test_env_secret_required_but_blank_is_refused(monkeypatch):
    monkeypatch.setenv(VAR, "   ")

    with pytest.raises(ImproperlyConfigured, match=f"{VAR} must be set"):
        env_secret(VAR, dev_default="dev-secret", required=True)


@pytest.mark.parametrize("required", [True, False])
def test_env_secret_that_is_too_short_is_refused_even_in_development(monkeypatch, required):
    monkeypatch.setenv(VAR, "x" * 31)

    with pytest.raises(ImproperlyConfigured, match="at least 32 characters"):
        env_secret(VAR, dev_default="dev-secret", required=required)


def test_env_secret_long_enough_is_returned(monkeypatch):
    monkeypatch.setenv(VAR, "s" * 50)

    assert env_secret(VAR, dev_default="dev", required=True, min_length=50) == "s" * 50


def test_env_list_splits_on_commas_and_drops_blanks(monkeypatch):
    monkeypatch.setenv(VAR, " a.example.com, ,b.example.com,")

    assert env_list(VAR) == ["a.example.com", "b.example.com"]


def test_env_str_strips_whitespace(monkeypatch):
    monkeypatch.setenv(VAR, "  value \n")

    assert env_str(VAR) == "value"


def test_env_choice_accepts_a_listed_value_and_defaults_when_unset(monkeypatch):
    assert env_choice(VAR, "auto", ("auto", "SERVER")) == "auto"

    monkeypatch.setenv(VAR, " SERVER ")
    assert env_choice(VAR, "auto", ("auto", "SERVER")) == "SERVER"


def test_env_choice_blank_gives_the_default(monkeypatch):
    monkeypatch.setenv(VAR, "")

    assert env_choice(VAR, "auto", ("auto", "SERVER")) == "auto"


@pytest.mark.parametrize("raw", ["server", "other"])
def test_env_choice_rejects_anything_unlisted(monkeypatch, raw):
    monkeypatch.setenv(VAR, raw)

    with pytest.raises(ImproperlyConfigured, match="must be one of auto, SERVER"):
        env_choice(VAR, "auto", ("auto", "SERVER"))
