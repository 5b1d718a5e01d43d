"""Usage pages: "My usage" for every user, and a space's usage for its owners."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from rooms.errors import DomainError, Forbidden
from transcription.usage import reports as usage
from transcription.usage.reports import Period


def _period_or_error(request: HttpRequest) -> tuple[Period, str | None]:
    """The ``?from=&to=`` period, or all time with the reason the given one was refused."""
    try:
        period = usage.period_parse(start=request.GET.get("from"), end=request.GET.get("to"))
    except DomainError as exc:
        return Period(), exc.message
    return period, None


@login_required
def my_usage(request: HttpRequest) -> HttpResponse:
    period, error = _period_or_error(request)
    report = usage.user_report(user=request.user, period=period)
    context = {"report": report, "period_error": error, "query": request.GET}
    return render(request, "usage/my_usage.html", context, status=400 if error else 200)


@login_required
def space_usage(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        space = usage.space_get_for_owner(user=request.user, slug=slug)
    except Forbidden as exc:
        raise PermissionDenied(exc.message) from exc
    period, error = _period_or_error(request)
    report = usage.space_report(space=space, period=period)
    context = {"space": space, "report": report, "period_error": error, "query": request.GET}
    return render(request, "usage/space_usage.html", context, status=400 if error else 200)
