"""``{% load usage_tags %}``: a session's cost, the day chart, and money and durations as read.

``{% session_cost session %}`` renders a session's full cost; ``{{ amount|money }}`` writes an
amount with the currency (``rooms.money.format_money``); ``{{ seconds|clock }}`` and
``{{ start|elapsed:end }}`` write a duration as ``m:ss`` (``h:mm:ss`` from one hour on).
"""

from datetime import datetime
from decimal import Decimal
from typing import Any

from django import template
from django.conf import settings
from django.utils.translation import gettext

from rooms.money import format_money
from sessions_app.models import VideoSession
from transcription.usage.chart import day_chart
from transcription.usage.pricing import format_clock
from transcription.usage.reports import session_cost as session_cost_get

register = template.Library()


@register.inclusion_tag("usage/_session_cost.html")
def session_cost(session: VideoSession) -> dict[str, Any]:
    """Transcription cost, the video estimate and their total (the caller checked access)."""
    return {"session": session, "cost": session_cost_get(session=session)}


@register.inclusion_tag("usage/_day_chart.html")
def usage_day_chart(days: list[dict[str, Any]], label: str = "") -> dict[str, Any]:
    """Server-rendered bars of minutes and cost per day (no JavaScript)."""
    return {"chart": day_chart(days), "label": label or gettext("Daily usage")}


@register.filter
def money(amount: Decimal | int | float | str | None) -> str:
    """``{{ cost|money }}`` → ``$0.02`` in ``settings.CURRENCY`` (see ``rooms.money``)."""
    return format_money(amount)


@register.simple_tag
def currency_code() -> str:
    """``{% currency_code as currency %}``: the ISO code amounts are in (``settings.CURRENCY``)."""
    return settings.CURRENCY


@register.filter
def clock(seconds: float | int | None) -> str:
    """``93`` → ``1:33``; ``3725`` → ``1:02:05`` (``transcription.usage.pricing.format_clock``)."""
    return format_clock(seconds)


@register.filter
def elapsed(start: datetime | None, end: datetime | None) -> str:
    """``{{ session.started_at|elapsed:session.ended_at }}`` → ``1:33``; empty if either is
    missing."""
    if start is None or end is None:
        return ""
    return clock((end - start).total_seconds())
