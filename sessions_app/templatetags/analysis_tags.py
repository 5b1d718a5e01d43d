"""Template helpers for the session analysis partial (``sessions/_analysis.html``)."""

from django import template

from identity.models import User
from sessions_app.models import VideoSession
from sessions_app.selectors import session_can_end

register = template.Library()


@register.simple_tag
def analysis_can_rerun(session: VideoSession, user: User) -> bool:
    """The host or a space owner may re-run an analysis (the page already checked membership)."""
    return bool(user.is_authenticated and session_can_end(session=session, user=user))


@register.filter
def clock(seconds: float | int | None) -> str:
    """``83.4`` → ``1:23``; ``3725`` → ``1:02:05``."""
    if seconds is None:
        return ""
    total = max(int(seconds), 0)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@register.filter
def whole_seconds(seconds: float | int | None) -> int:
    """A transcript moment as the session page's ``?t=`` jump takes it: whole seconds."""
    return max(int(seconds or 0), 0)
