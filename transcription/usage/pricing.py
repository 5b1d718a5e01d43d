"""Cost arithmetic, in one place: billed minutes are whole minutes rounded up.

The same rules run in Python (one run's meter) and in SQL (reports over many rows, see
``transcription/usage/reports.py``): minutes round up per run or per participant connection,
and a cost is minutes * rate rounded half up to 4 decimal places.
"""

import math
from decimal import ROUND_HALF_UP, Decimal

COST_QUANTUM = Decimal("0.0001")
COST_PLACES = 4


def billed_minutes(seconds: float) -> int:
    """``ceil(seconds / 60)``; 0 s bills 0 minutes, 0.001 s bills 1."""
    if seconds <= 0:
        return 0
    return math.ceil(round(seconds, 6) / 60)


def format_clock(seconds: float | None) -> str:
    """Metered time as people read it next to billed minutes: ``93`` → ``1:33``, ``3725`` →
    ``1:02:05`` (whole seconds, rounded down; billing rounds up per run)."""
    total = max(0, int(seconds or 0))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def total_cost(minutes: int, cost_per_minute: Decimal) -> Decimal:
    return (Decimal(minutes) * cost_per_minute).quantize(COST_QUANTUM, rounding=ROUND_HALF_UP)


def video_cost(participant_minutes: int, cost_per_participant_minute: Decimal) -> Decimal:
    """The LiveKit estimate: participant-minutes times the price of one, like ``total_cost``."""
    return total_cost(participant_minutes, cost_per_participant_minute)


def quantize_cost(amount: Decimal | int | None) -> Decimal:
    """A sum of costs as shown and returned: exactly 4 places, ``None`` (no rows) as zero."""
    return Decimal(amount or 0).quantize(COST_QUANTUM, rounding=ROUND_HALF_UP)


def translation_cost(characters: int, cost_per_million_characters: Decimal) -> Decimal:
    """Translated characters times the price of a million of them, like ``total_cost``."""
    amount = Decimal(characters) * cost_per_million_characters / Decimal(1_000_000)
    return amount.quantize(COST_QUANTUM, rounding=ROUND_HALF_UP)
