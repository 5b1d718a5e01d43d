"""The finished-session page: transcript by speaker turns, search, jump-to-time, talk time,
cost, analysis and downloads, as spoken or in a caption language (``?lang=ru``: stored
translations, stale ones marked, re-translation with the LLM). ``views.session_detail`` serves
it once a session has ENDED; ``session_translate`` is its re-translate form."""

from __future__ import annotations

import re
from dataclasses import replace
from html import unescape
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from rooms import llm
from rooms.errors import DomainError
from sessions_app.models import VideoSession
from sessions_app.selectors import (
    analysis_get_for_session,
    participant_list,
    segment_language_map,
    segment_languages_are_mixed,
    session_can_end,
    session_get_for_user,
)
from spaces.languages import language_label
from transcription.archive import edits, retranslate, transcript, translated
from transcription.selectors import providers_for_session
from transcription.translation import CAPTION_LANGUAGES, caption_language_clean

DOWNLOADS = [
    ("txt", _("Text")),
    ("srt", "SubRip (SRT)"),
    ("vtt", "WebVTT"),
    ("json", "JSON"),
    ("md", "Markdown"),
]
# What the finished page says about who made the transcript and how far to trust it.
ENGINES = {
    "local": (
        _("the offline Whisper engine"),
        _(
            "Usually right on clear speech; names, rare words and crosstalk can come out wrong. "
            "Words it was unsure of are underlined with dots."
        ),
    ),
    "gladia": (
        "Gladia",
        _("A cloud speech service: few errors on clear speech; check names and numbers."),
    ),
}
_OFFSET = re.compile(r"^(?:(?:(\d{1,3}):)?(\d{1,3}):)?(\d{1,6})(?:\.\d*)?$")


def parse_offset(raw: str) -> int | None:
    """``"1:05:30"``, ``"65:30"`` or ``"3930"`` → seconds; None when it is not a time."""
    match = _OFFSET.match(raw.strip())
    if match is None:
        return None
    hours, minutes, seconds = (int(part) if part else 0 for part in match.groups())
    if ((minutes or hours) and seconds >= 60) or (hours and minutes >= 60):
        return None
    return hours * 3600 + minutes * 60 + seconds


def _page_number(raw: str | None, page_count: int) -> int:
    try:
        page = int(raw or 1)
    except ValueError:
        page = 1
    return min(max(1, page), page_count)


def _query_prefix(query: str, language: str = "") -> str:
    """What page links carry so that the search stays highlighted and the language stays:
    ``"q=...&lang=ru&"`` or ``""``."""
    params = {name: value for name, value in (("q", query), ("lang", language)) if value}
    return urlencode(params) + "&" if params else ""


def _shown_language(raw: str | None) -> tuple[str, str]:
    """The caption language asked for with ``?lang=`` ("" for the original), and what is
    wrong with it ("" when nothing)."""
    try:
        return caption_language_clean((raw or "").strip()[:16]), ""
    except DomainError as exc:
        return "", exc.message


def _languages_context(
    session: VideoSession, language: str, query: str, page: int, *, has_transcript: bool
) -> dict[str, object]:
    """The language switch (Original and the languages the session has translations in),
    the state of the shown translation and what the re-translate form needs."""
    codes = translated.translation_languages(session=session)
    if language and language not in codes:
        codes.append(language)

    def href(code: str) -> str:
        params = {"q": query, "page": str(page), "lang": code}
        return "?" + urlencode({name: value for name, value in params.items() if value})

    switch = [{"code": "", "label": gettext("Original"), "href": href(""), "current": not language}]
    switch += [
        {
            "code": code,
            "label": language_label(code),
            "href": href(code),
            "current": code == language,
        }
        for code in sorted(codes, key=lambda code: language_label(code).casefold())
    ]
    state = translated.translation_state(session=session, language=language) if language else None
    can_translate = llm.enabled() and has_transcript
    return {
        "language": language,
        "language_label": language_label(language) if language else "",
        "language_switch": switch if len(switch) > 1 else [],
        "translation": state,
        "untranslated": state.pending - state.stale if state else 0,
        "can_translate": can_translate,
        "translate_choices": [
            (code, language_label(code))
            for code in CAPTION_LANGUAGES
            if code not in codes and code not in (session.languages or [])
        ]
        if can_translate
        else [],
    }


def session_finished(request: HttpRequest, session: VideoSession) -> HttpResponse:
    """Render the page of an ended session the caller may see (checked by the caller)."""
    index = transcript.transcript_index(session=session)
    query = transcript.normalize_query(request.GET.get("q"))
    language, language_error = _shown_language(request.GET.get("lang"))
    prefix = _query_prefix(query, language)
    jump_error = ""
    raw_jump = request.GET.get("t", "").strip()
    if raw_jump:
        seconds = parse_offset(raw_jump)
        turn = index.turn_at(seconds) if seconds is not None else None
        if turn is not None:
            page = index.page_of_turn(turn.index)
            url = reverse("sessions:detail", kwargs={"slug": session.slug})
            return HttpResponseRedirect(f"{url}?{prefix}page={page}#t-{turn.anchor}")
        jump_error = (
            gettext("Enter a time like 1:05:30, 12:40 or 95.")
            if seconds is None
            else gettext("There is no transcript to jump in.")
        )
    page = _page_number(request.GET.get("page"), index.page_count)
    search = (
        transcript.transcript_search(session=session, index=index, query=query, language=language)
        if query
        else None
    )
    turns = transcript.turn_page(
        session=session, index=index, page=page, search=search, language=language
    )
    if segment_languages_are_mixed(session=session):
        turns = _with_languages(session, turns)
    context = {
        "session": session,
        "turns": turns,
        "turn_count": len(index.spans),
        "segment_count": len(index.segment_ids),
        "page": page,
        "pages": range(1, index.page_count + 1),
        "page_count": index.page_count,
        "query": query,
        "query_prefix": prefix,
        "language_prefix": _query_prefix("", language),
        "language_error": language_error,
        **_languages_context(
            session, language, query, page, has_transcript=bool(index.segment_ids)
        ),
        "search": search,
        "search_shown": transcript.SEARCH_HITS_SHOWN,
        "jump_error": jump_error,
        "jump_value": raw_jump[:20],
        "talk_times": transcript.talk_time_list(session=session, index=index),
        "analysis": analysis_get_for_session(session=session),
        "downloads": DOWNLOADS,
        "download_query": f"?{urlencode({'lang': language})}" if language else "",
        "engines": [
            ENGINES.get(provider, (provider, ""))
            for provider in providers_for_session(session=session)
        ],
        "edit_config": _edit_config(request, session),
        "changes": edits.change_summaries(session=session),
    }
    return render(request, "sessions/finished.html", context)


# The start of a segment's element as ``transcription.archive.marks.segment_html`` writes it.
_SEGMENT_START = re.compile(r'<span (class="seg(?: [^"]*)?" data-uid="([^"]*)")')


def _with_languages(
    session: VideoSession, turns: list[transcript.PageTurn]
) -> list[transcript.PageTurn]:
    """``turns`` with each segment's language: a small tag before it ("RU", named in its
    title) and ``lang`` on the segment, so that a screen reader reads it in that language.

    Only for a session whose finals are in more than one language. The tag sits outside the
    segment's element, whose text is what a correction edits.
    """
    found = {unescape(m[1]) for turn in turns for m in _SEGMENT_START.findall(turn.html)}
    languages = segment_language_map(session=session, utterance_ids=sorted(found))

    def tagged(match: re.Match[str]) -> str:
        language = languages.get(unescape(match[2]))
        if not language:
            return match[0]
        return format_html(
            '<span class="badge seg-lang" lang="{}" title="{}">{}</span> <span lang="{}" {}',
            language,
            language_label(language),
            language.upper(),
            language,
            mark_safe(match[1]),  # noqa: S308 - as escaped by segment_html
        )

    # Still safe: the turn's markup was, and every piece put into it is escaped.
    return [
        replace(turn, html=mark_safe(_SEGMENT_START.sub(tagged, turn.html)))  # noqa: S308
        for turn in turns
    ]


def _edit_config(request: HttpRequest, session: VideoSession) -> dict[str, object]:
    """What ``static/js/transcript-edit.js`` needs: may this person edit or revert (the
    rules of ``transcription.archive.edits``, read here with two queries), and to whom a
    segment may go."""
    participants = list(participant_list(session=session))
    can_revert = session_can_end(session=session, user=request.user)
    can_edit = can_revert or any(p.user_id == request.user.pk for p in participants)
    return {
        "slug": session.slug,
        "can_edit": can_edit,
        "can_revert": can_revert,
        "participants": [{"identity": p.identity, "name": p.name} for p in participants]
        if can_edit
        else [],
        "edits_ws_path": f"/ws/sessions/{session.slug}/edits/",
        "api": reverse("api-segment-list", kwargs={"slug": session.slug}),
        "low_confidence": settings.TRANSCRIPT_LOW_CONFIDENCE,
    }


@login_required
@require_POST
def session_translate(request: HttpRequest, slug: str) -> HttpResponse:
    """Translate the stale and missing segments of an ended session into ``language`` with
    the LLM (members of its space: others get 404), then show the page in that language."""
    session = session_get_for_user(user=request.user, slug=slug)
    try:
        language = caption_language_clean(request.POST.get("language", ""))
    except DomainError as exc:
        return HttpResponseBadRequest(exc.message, content_type="text/plain; charset=utf-8")
    if not language:
        return HttpResponseBadRequest(
            gettext("Choose the language to translate into."),
            content_type="text/plain; charset=utf-8",
        )
    url = (
        reverse("sessions:detail", kwargs={"slug": session.slug})
        + "?"
        + urlencode({"lang": language})
    )
    name = language_label(language)
    if not llm.enabled():
        messages.error(request, gettext("Translating needs an LLM configured on this server."))
        return HttpResponseRedirect(url)
    if not session.is_ended:
        messages.error(request, gettext("A session is re-translated after it has ended."))
        return HttpResponseRedirect(url)
    result = retranslate.session_retranslate(session=session, language=language, by=request.user)
    done = ngettext(
        "%(count)s line was translated into %(language)s.",
        "%(count)s lines were translated into %(language)s.",
        result.translated,
    ) % {"count": result.translated, "language": name}
    if result.error:
        messages.error(
            request,
            gettext("The LLM could not translate: %(reason)s. Nothing was lost.")
            % {"reason": result.error}
            + " "
            + done,
        )
    elif result.remaining:
        more = ngettext(
            "%(count)s more line is left: press “Re-translate” again.",
            "%(count)s more lines are left: press “Re-translate” again.",
            result.remaining,
        ) % {"count": result.remaining}
        messages.success(request, f"{done} {more}")
    else:
        messages.success(request, done)
    return HttpResponseRedirect(url)
