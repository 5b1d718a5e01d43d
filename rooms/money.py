"""Money as people read it: one helper and one currency (``settings.CURRENCY``) everywhere.

Costs are stored and returned by the API as Decimals with 4 places
(``transcription.usage.pricing``); pages and the admin show them through :func:`format_money`:

- **cents, and more only when the amount has more**: at least 2 decimals and at most 4 (the
  meter's precision, rounded half up like it), trailing zeros dropped: ``$0.02``,
  ``$1,234.50``, ``$0.025``, ``$0.0125`` (a rate), ``$0.0005``. So a figure is never rounded
  away from what was billed, a small cost never reads as ``$0.00``, and the amounts on a page
  add up to its total;
- the digits follow the active language's number format (``1,234.50`` in English,
  ``1 234,50`` in Russian); the symbol goes before the number in English and after it, with a
  no-break space, elsewhere (``$0.02``, ``0,02 $``). A currency without a known symbol is
  written with its code (``CHF 0.02``).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.conf import settings
from django.utils import formats
from django.utils.translation import get_language

NBSP = "\u00a0"
# Costs are metered to 4 places (transcription.usage.pricing.COST_PLACES).
MAX_PLACES = 4
SYMBOLS = {
    "USD": "$",
    "EUR": "€",
    "GBP": "£",
    "RUB": "₽",
    "JPY": "¥",
    "CNY": "¥",
    "INR": "₹",
    "KZT": "₸",
    "UAH": "₴",
}


def _decimal(amount: Decimal | int | float | str | None) -> Decimal:
    if amount is None or amount == "":
        return Decimal(0)
    try:
        return amount if isinstance(amount, Decimal) else Decimal(str(amount))
    except InvalidOperation as exc:
        raise ValueError(f"not an amount of money: {amount!r}") from exc


def _places(value: Decimal) -> int:
    """Cents, plus the meter's two further places where the amount has them."""
    exact = value.quantize(Decimal(1).scaleb(-MAX_PLACES), rounding=ROUND_HALF_UP)
    return max(2, -int(exact.normalize().as_tuple().exponent))


def format_money(amount: Decimal | int | float | str | None, currency: str | None = None) -> str:
    """``amount`` written with its currency (default ``settings.CURRENCY``), e.g. ``$0.02``.

    ``None`` (no rows) reads as zero.
    """
    value = _decimal(amount)
    code = (currency or settings.CURRENCY).upper()
    places = _places(value)
    rounded = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    digits = formats.number_format(abs(rounded), places, use_l10n=True, force_grouping=True)
    sign = "-" if rounded < 0 else ""
    symbol = SYMBOLS.get(code)
    language = (get_language() or settings.LANGUAGE_CODE).lower()
    if language.startswith("en"):
        return f"{sign}{symbol}{digits}" if symbol else f"{sign}{code}{NBSP}{digits}"
    return f"{sign}{digits}{NBSP}{symbol or code}"
