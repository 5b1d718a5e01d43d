"""``{% load usage_tags %}{% session_cost session %}``: a session's full cost, for its pages."""

from typing import Any

from django import template

from sessions_app.models import VideoSession
from transcription.usage import session_cost as session_cost_get
from transcription.usage_chart import day_chart

register = template.Library()


@register.inclusion_tag("usage/_session_cost.html")
def session_cost(session: VideoSession) -> dict[str, Any]:
    """Transcription cost, the video estimate and their total (the caller checked access)."""
    return {"session": session, "cost": session_cost_get(session=session)}


@register.inclusion_tag("usage/_day_chart.html")
def usage_day_chart(days: list[dict[str, Any]], label: str = "Daily usage") -> dict[str, Any]:
    """Server-rendered bars of minutes and cost per day (no JavaScript)."""
    return {"chart": day_chart(days), "label": label}
