"""Template helpers of the session pages (``sessions/detail.html``, ``sessions/finished.html``)."""

from django import template

from sessions_app.languages import languages_summary

register = template.Library()


@register.filter
def session_languages(codes: list[str] | None) -> str:
    """``session.languages`` as the page header says it: ``"Language: Russian"``."""
    return languages_summary(list(codes or []))
