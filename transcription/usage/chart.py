"""Geometry of the server-rendered per-day usage chart (inline SVG, no JavaScript).

Input is a per-day series from ``transcription.usage.reports`` (at most one entry per day);
days without usage between the first and the last are drawn as empty slots so the time axis
stays true.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

CHART_HEIGHT = 120
BAR_WIDTH = 10
BAR_GAP = 2
MAX_DAYS = 400
# The axis shows at least this many days, the last one at the right: a single day of usage is
# one bar, not a block stretched across the chart.
MIN_DAYS = 14


def day_chart(days: list[dict[str, Any]]) -> dict[str, Any]:
    """Bars for minutes and cost (transcription + translation + video, where given) on a shared
    day axis."""
    if not days:
        return {"empty": True}
    by_date = {d["date"]: d for d in days}
    first, last = days[0]["date"], days[-1]["date"]
    span = min((last - first).days + 1, MAX_DAYS)
    start = last - timedelta(days=span - 1)
    slots = []
    for offset in range(span):
        day = start + timedelta(days=offset)
        entry = by_date.get(day, {})
        cost = sum(
            (entry.get(key, Decimal("0")) for key in ("cost", "translation_cost", "video_cost")),
            Decimal("0"),
        )
        slots.append({"date": day, "minutes": entry.get("minutes", 0), "cost": cost})
    max_minutes = max(s["minutes"] for s in slots) or 1
    max_cost = max(s["cost"] for s in slots) or Decimal("1")
    step = BAR_WIDTH + BAR_GAP
    axis = max(span, MIN_DAYS)
    bars = []
    for index, slot in enumerate(slots, start=axis - span):
        minutes_h = round(CHART_HEIGHT * slot["minutes"] / max_minutes, 1)
        cost_h = round(float(CHART_HEIGHT * slot["cost"] / max_cost), 1)
        bars.append(
            {
                **slot,
                "x": index * step,
                "minutes_y": CHART_HEIGHT - minutes_h,
                "minutes_h": minutes_h,
                "cost_y": CHART_HEIGHT - cost_h,
                "cost_h": cost_h,
            }
        )
    return {
        "empty": False,
        "bars": bars,
        "width": axis * step,
        "height": CHART_HEIGHT,
        "bar_width": BAR_WIDTH,
        "first": slots[0]["date"],
        "last": slots[-1]["date"],
        "max_minutes": max(s["minutes"] for s in slots),
        "max_cost": max(s["cost"] for s in slots),
    }
