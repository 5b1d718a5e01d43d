"""Cost arithmetic, in one place: billed minutes are whole minutes rounded up."""

import math
from decimal import ROUND_HALF_UP, Decimal

COST_QUANTUM = Decimal("0.0001")


def billed_minutes(seconds: float) -> int:
    """``ceil(seconds / 60)``; 0 s bills 0 minutes, 0.001 s bills 1."""
    if seconds <= 0:
        return 0
    return math.ceil(round(seconds, 6) / 60)


def total_cost(minutes: int, cost_per_minute: Decimal) -> Decimal:
    return (Decimal(minutes) * cost_per_minute).quantize(COST_QUANTUM, rounding=ROUND_HALF_UP)
