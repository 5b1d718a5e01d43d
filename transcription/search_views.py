"""Search pages: across every space of the signed-in person (``/search/``) and within one space
(``/spaces/<slug>/search/``). Server-rendered: a GET form, hits grouped by session, pages."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from sessions_app.models import VideoSession
from sessions_app.selectors import session_get_for_user
from spaces.languages import KNOWN_LANGUAGES, language_choices
from spaces.models import Space
from spaces.selectors import space_get_for_user, space_list_for_user
from transcription.archive.transcript import QUERY_MAX_LENGTH
from transcription.search import (
    MATCHES_RANKED,
    PER_PAGE_DEFAULT,
    group_by_session,
    search_segments,
    session_scope,
)

SESSIONS_LISTED = 100
"""The most recent sessions the session filter offers (a session passed in is always kept)."""
FILTERS = ("space", "session", "speaker", "from", "to", "language")


class SearchForm(forms.Form):
    q = forms.CharField(label=_("Search"), max_length=QUERY_MAX_LENGTH, required=False)
    space = forms.SlugField(label=_("Space"), max_length=80, required=False)
    session = forms.CharField(label=_("Session"), max_length=32, required=False)
    speaker = forms.CharField(label=_("Speaker"), max_length=120, required=False)
    date_from = forms.DateField(label=_("From"), required=False)
    date_to = forms.DateField(label=_("To"), required=False)
    language = forms.ChoiceField(label=_("Language"), required=False)
    page = forms.IntegerField(min_value=1, max_value=MATCHES_RANKED, required=False)

    def __init__(self, data: Any, **kwargs: Any) -> None:
        # The page's parameters are named like the API's: ``from`` and ``to``.
        data = data.copy()
        for name, field in (("from", "date_from"), ("to", "date_to")):
            if name in data:
                data[field] = data.pop(name)[-1]
        super().__init__(data, **kwargs)
        self.fields["language"].choices = [("", _("Any language")), *language_choices()]

    def clean_language(self) -> str:
        value = self.cleaned_data["language"]
        return value if value in KNOWN_LANGUAGES else ""

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", _("The last day is before the first."))
        return data


def pager(page: int, pages: int) -> list[int | None]:
    """The page numbers a pager links: the first, the last and two on each side of ``page``,
    with None where numbers are left out (``…``)."""
    pages = min(pages, MATCHES_RANKED)
    shown = sorted({1, pages, *range(page - 2, page + 3)} & set(range(1, pages + 1)))
    numbers: list[int | None] = []
    for number in shown:
        if numbers and number != numbers[-1] + 1:
            numbers.append(None)
        numbers.append(number)
    return numbers


def _session_choices(scope: Any, chosen: VideoSession | None) -> list[VideoSession]:
    sessions = list(scope.exclude(status=VideoSession.Status.CREATED)[:SESSIONS_LISTED])
    if chosen is not None and all(s.pk != chosen.pk for s in sessions):
        sessions.insert(0, chosen)
    return sessions


def _search_page(request: HttpRequest, *, space: Space | None) -> HttpResponse:
    form = SearchForm(request.GET)
    valid = form.is_valid()
    data = form.cleaned_data if valid else {}
    user = request.user
    if space is None and data.get("space"):
        space_filter = space_get_for_user(user=user, slug=data["space"])
    else:
        space_filter = space
    session = session_get_for_user(user=user, slug=data["session"]) if data.get("session") else None
    query = " ".join(data.get("q", "").split())
    result = None
    if valid and query:
        result = search_segments(
            user=user,
            query=query,
            space=space_filter,
            session=session,
            speaker=data.get("speaker") or "",
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            language=data.get("language") or "",
            page=data.get("page") or 1,
            per_page=PER_PAGE_DEFAULT,
        )
    # What the pager's links keep: everything but the page.
    kept = {k: v for k, v in request.GET.items() if k != "page" and v and k in ("q", *FILTERS)}
    context = {
        "form": form,
        "space": space,
        "space_filter": space_filter,
        "spaces": [] if space is not None else list(space_list_for_user(user=user)),
        "sessions": _session_choices(session_scope(user=user, space=space_filter), session),
        "chosen_session": session,
        "query": query,
        "result": result,
        "groups": group_by_session(result.hits) if result else [],
        "page_numbers": pager(result.page, result.pages) if result else [],
        "keep": urlencode(kept),
        "filtering": any(request.GET.get(name) for name in FILTERS),
    }
    return render(request, "search/search.html", context, status=200 if valid else 400)


@login_required
def search_all(request: HttpRequest) -> HttpResponse:
    """Search every space the signed-in person belongs to."""
    return _search_page(request, space=None)


@login_required
def search_space(request: HttpRequest, slug: str) -> HttpResponse:
    """Search one space (members only: anyone else gets 404)."""
    return _search_page(request, space=space_get_for_user(user=request.user, slug=slug))
