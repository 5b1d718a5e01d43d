from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from rooms.errors import DomainError
from sessions_app import selectors, services
from sessions_app.finished import session_finished
from sessions_app.forms import SessionCreateForm
from spaces.selectors import space_get_for_user


@login_required
@require_POST
def session_create(request: HttpRequest, slug: str) -> HttpResponse:
    space = space_get_for_user(user=request.user, slug=slug)
    form = SessionCreateForm(request.POST, space=space)
    if not form.is_valid():
        for field, errors in form.errors.items():
            if field == "title":
                messages.error(request, _("A session needs a title of at most 200 characters."))
            else:
                for error in errors:
                    messages.error(request, error)
        return redirect("spaces:detail", slug=space.slug)
    try:
        session = services.session_create(
            space=space,
            by=request.user,
            title=form.cleaned_data["title"],
            languages=form.languages_chosen(),
            peer_to_peer=form.wants_peer_to_peer(),
        )
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("spaces:detail", slug=space.slug)
    return redirect("sessions:detail", slug=session.slug)


# While a run is active the page's "Cost of this session" box reads the usage again this often:
# billed minutes change at most once a minute (``billed = ceil(seconds / 60)``).
COST_REFRESH_SECONDS = 60


@login_required
def session_detail(request: HttpRequest, slug: str) -> HttpResponse:
    session = selectors.session_get_for_user(user=request.user, slug=slug)
    if session.is_ended:
        return session_finished(request, session)
    can_end = selectors.session_can_end(session=session, user=request.user)
    page_config = {
        "slug": session.slug,
        "status": session.status,
        "identity": request.user.identity,
        "name": request.user.name,
        "canEnd": can_end,
        "livekitEnabled": session.uses_livekit,
        "videoMode": "livekit" if session.uses_livekit else "mesh",
        "meshMaxPeers": settings.MESH_MAX_PARTICIPANTS,
        # Everyone on this page has joined (a participant), so may correct finals shown.
        "lowConfidence": settings.TRANSCRIPT_LOW_CONFIDENCE,
        # Who is in the session: read on every (re)connect, then kept live by the transcript
        # socket's `participants` messages.
        "participantsUrl": reverse("api-participant-list", args=[session.slug]),
        # The cost box (shown to those who may end the session) follows the meter.
        "usageUrl": reverse("api-session-usage", args=[session.slug]) if can_end else None,
        "costRefreshSeconds": COST_REFRESH_SECONDS,
    }
    participants = list(selectors.participant_list(session=session))
    context = {
        "session": session,
        # Those in the session first, then those who have left; each in the order they came.
        "participants": sorted(participants, key=lambda p: p.left_at is not None),
        "present_count": sum(p.left_at is None for p in participants),
        "can_end": can_end,
        "page_config": page_config,
    }
    return render(request, "sessions/detail.html", context)


@login_required
@require_POST
def session_end(request: HttpRequest, slug: str) -> HttpResponse:
    session = selectors.session_get_for_user(user=request.user, slug=slug)
    try:
        services.session_end(session=session, by=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("The session has ended."))
    return redirect("sessions:detail", slug=session.slug)
