"""The "Catch me up" card of the live sidebar (``sessions/_catch_up.html``).

``catch-up.js`` fetches the card alone (``?partial=1``) and swaps it in; without JavaScript the
button is a link to the same summary on a page of its own. Members of the session's space
only; outsiders get 404.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from sessions_app import selectors
from sessions_app.catch_up import REFRESH_SECONDS, catch_up_for


@login_required
def catch_up(request: HttpRequest, slug: str) -> HttpResponse:
    session = selectors.session_get_for_user(user=request.user, slug=slug)
    partial = request.GET.get("partial") == "1"
    context = {
        "session": session,
        "catch_up": catch_up_for(session=session),
        "catch_up_refresh_seconds": REFRESH_SECONDS,
        "catch_up_partial": partial,
    }
    template = "sessions/_catch_up.html" if partial else "sessions/catch_up.html"
    return render(request, template, context)
