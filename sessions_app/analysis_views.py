"""Pages of the analysis: the card the analysis script swaps in, and the task tick-off form."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from sessions_app import selectors
from sessions_app.analysis import services


@login_required
def analysis_card(request: HttpRequest, slug: str) -> HttpResponse:
    """The analysis card alone (``sessions/_analysis.html``), fetched by ``analysis.js``."""
    session = selectors.session_get_for_user(user=request.user, slug=slug)
    analysis = selectors.analysis_get_for_session(session=session)
    return render(request, "sessions/_analysis.html", {"session": session, "analysis": analysis})


@login_required
@require_POST
def task_done(request: HttpRequest, task_id: int) -> HttpResponse:
    """Tick a task off (``done=1``) or reopen it (``done=0``); back to the space page."""
    task = selectors.task_get_for_user(user=request.user, task_id=task_id)
    done = request.POST.get("done", "1") == "1"
    services.task_set_done(task=task, by=request.user, done=done)
    messages.success(request, f"“{task.title[:60]}” {'done' if done else 'reopened'}.")
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect("spaces:detail", slug=task.space.slug)
