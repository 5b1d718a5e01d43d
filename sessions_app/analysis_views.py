"""Pages of the analysis: the card the analysis script swaps in, and the task forms (tick off,
accept or dismiss a proposal). Any member of the task's space may use the task forms."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy
from django.views.decorators.http import require_POST

from rooms.errors import DomainError
from sessions_app import selectors
from sessions_app.analysis import services
from sessions_app.models import Task

# The accept form's owner choice that keeps the name said when it matched no member.
KEEP_OWNER = "keep"


@login_required
def analysis_card(request: HttpRequest, slug: str) -> HttpResponse:
    """The analysis card alone (``sessions/_analysis.html``), fetched by ``analysis.js``."""
    session = selectors.session_get_for_user(user=request.user, slug=slug)
    analysis = selectors.analysis_get_for_session(session=session)
    return render(request, "sessions/_analysis.html", {"session": session, "analysis": analysis})


def _back(request: HttpRequest, task: Task) -> HttpResponse:
    """To the page the form was on (``next``, same site only), else the space page."""
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect("spaces:detail", slug=task.space.slug)


@login_required
@require_POST
def task_done(request: HttpRequest, task_id: int) -> HttpResponse:
    """Tick a task off (``done=1``) or reopen it (``done=0``); back to the space page."""
    task = selectors.task_get_for_user(user=request.user, task_id=task_id)
    done = request.POST.get("done", "1") == "1"
    try:
        services.task_set_done(task=task, by=request.user, done=done)
    except DomainError as exc:
        messages.error(request, exc.message)
        return _back(request, task)
    template = _("“%(title)s” done.") if done else _("“%(title)s” reopened.")
    messages.success(request, template % {"title": task.title[:60]})
    return _back(request, task)


class TaskAcceptForm(forms.Form):
    """The proposal as shown, possibly edited. A blank title keeps the proposed one; a field
    the form did not send is left as proposed."""

    title = forms.CharField(label=gettext_lazy("Title"), max_length=500, required=False)
    assignee = forms.CharField(label=pgettext_lazy("task", "Owner"), max_length=64, required=False)
    due_phrase = forms.CharField(label=gettext_lazy("Due"), max_length=120, required=False)
    due_date = forms.DateField(label=gettext_lazy("Due date"), required=False)

    def __init__(self, *args: object, task: Task, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.task = task

    def clean_assignee(self) -> object:
        identity = self.cleaned_data["assignee"].strip()
        if "assignee" not in self.data or identity == KEEP_OWNER:
            return services.UNCHANGED
        if not identity:
            return None
        member = selectors.task_assignee_get(space=self.task.space, identity=identity)
        if member is None:
            raise forms.ValidationError(_("Pick a member of this space."))
        return member

    def edits(self) -> dict[str, object]:
        """The keyword arguments of ``services.task_accept``."""
        data = self.cleaned_data
        edits: dict[str, object] = {"assignee": data["assignee"]}
        if data["title"].strip():
            edits["title"] = data["title"]
        if "due_phrase" in self.data:
            edits["due_phrase"] = data["due_phrase"]
        if "due_date" in self.data:
            edits["due_date"] = data["due_date"]
        return edits


@login_required
@require_POST
def task_accept(request: HttpRequest, task_id: int) -> HttpResponse:
    """Accept a proposed task as shown or as edited; back to the page the form was on."""
    task = selectors.task_get_for_user(user=request.user, task_id=task_id)
    form = TaskAcceptForm(request.POST, task=task)
    if not form.is_valid():
        problems = "; ".join(str(e) for errors in form.errors.values() for e in errors)
        messages.error(request, _("The task was not accepted: %(why)s") % {"why": problems})
        return _back(request, task)
    try:
        task = services.task_accept(task=task, by=request.user, **form.edits())  # type: ignore[arg-type]
    except DomainError as exc:
        messages.error(request, exc.message)
        return _back(request, task)
    messages.success(request, _("“%(title)s” is a task now.") % {"title": task.title[:60]})
    return _back(request, task)


@login_required
@require_POST
def task_dismiss(request: HttpRequest, task_id: int) -> HttpResponse:
    """Dismiss a proposed task; back to the page the form was on."""
    task = selectors.task_get_for_user(user=request.user, task_id=task_id)
    try:
        services.task_dismiss(task=task, by=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
        return _back(request, task)
    messages.success(request, _("“%(title)s” dismissed.") % {"title": task.title[:60]})
    return _back(request, task)
