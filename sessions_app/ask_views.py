"""The question box of the space page and the finished page (``sessions/_ask.html``).

A plain form: without JavaScript it posts here and gets the answer on a page of its own
(``sessions/ask.html``); ``ask.js`` posts the same form with ``partial=1`` and swaps the box,
answer included, in place. Members of the space only (outsiders get 404). The same rate limit
as ``POST /api/spaces/<slug>/ask``, one count for both. Nothing is stored, and the answer is
never cached.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from rooms.throttles import ScopedPostThrottle
from sessions_app.ask import MAX_QUESTION_CHARS, THROTTLE_SCOPE, ask, ask_session_get
from spaces.selectors import space_get_for_user


class AskForm(forms.Form):
    question = forms.CharField(max_length=MAX_QUESTION_CHARS)


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def space_ask(request: HttpRequest, slug: str) -> HttpResponse:
    """GET: the question box on its own page; POST: the answer (``partial=1``: the box
    alone). ``session`` names a session of the space (the finished page's); ``scope=space``
    asks the whole space from there."""
    space = space_get_for_user(user=request.user, slug=slug)
    data = request.POST if request.method == "POST" else request.GET
    session_slug = data.get("session", "")[:32]
    session = (
        ask_session_get(user=request.user, space=space, slug=session_slug) if session_slug else None
    )
    scope = "session" if session is not None and data.get("scope") != "space" else "space"
    partial = data.get("partial") == "1"
    context: dict[str, Any] = {
        "space": space,
        "session": session,
        "ask_scope": scope,
        "ask_partial": partial,
        "ask_question": data.get("question", "")[:MAX_QUESTION_CHARS],
    }
    status = 200
    retry_after = None
    if request.method == "POST":
        throttle = ScopedPostThrottle()
        form = AskForm(request.POST)
        view = SimpleNamespace(throttle_scope=THROTTLE_SCOPE)
        if not throttle.allow_request(request, view):  # type: ignore[arg-type]
            status, retry_after = 429, throttle.wait()
            context["ask_error"] = _(
                "You asked many questions in a short time. Try again in %(seconds)s s."
            ) % {"seconds": retry_after}
        elif not form.is_valid():
            status = 400
            context["ask_error"] = _("Write a question of at most %(count)s characters.") % {
                "count": MAX_QUESTION_CHARS
            }
        else:
            context["ask_answer"] = ask(
                user=request.user,
                space=space,
                question=form.cleaned_data["question"],
                session=session if scope == "session" else None,
            )
    template = "sessions/_ask.html" if partial else "sessions/ask.html"
    response = render(request, template, context, status=status)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response
