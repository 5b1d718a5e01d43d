"""Access-checked reads of sessions: only members of the session's space see it."""

import uuid

from django.db.models import F, QuerySet
from django.http import Http404

from identity.models import User
from sessions_app.models import Participant, SessionAnalysis, Task, VideoSession
from spaces.models import Space, SpaceMember
from transcription.models import TranscriptSegment


def session_list_for_space(*, space: Space) -> QuerySet[VideoSession]:
    """Sessions of a space; the caller has already checked membership via a space selector."""
    return space.sessions.select_related("created_by").order_by("-created_at")


def session_list_for_user(*, user: User) -> QuerySet[VideoSession]:
    return (
        VideoSession.objects.filter(space__memberships__user=user)
        .select_related("space", "created_by")
        .order_by("-created_at")
    )


def session_get_for_user(*, user: User, slug: str) -> VideoSession:
    """The session if ``user`` is a member of its space (``membership`` attached), else 404."""
    if not user.is_authenticated:
        raise Http404("No such session")
    session = VideoSession.objects.select_related("space", "created_by").filter(slug=slug).first()
    if session is None:
        raise Http404("No such session")
    membership = SpaceMember.objects.filter(space_id=session.space_id, user_id=user.pk).first()
    if membership is None:
        raise Http404("No such session")
    session.membership = membership  # type: ignore[attr-defined]
    return session


def session_can_end(*, session: VideoSession, user: User) -> bool:
    """The host (creator) or an owner of the space may end a session."""
    if session.created_by_id == user.pk:
        return True
    return SpaceMember.objects.filter(
        space_id=session.space_id, user_id=user.pk, role=SpaceMember.Role.OWNER
    ).exists()


def participant_list(*, session: VideoSession) -> QuerySet[Participant]:
    return session.participants.select_related("user").order_by("joined_at")


def analysis_get_for_session(*, session: VideoSession) -> SessionAnalysis | None:
    """The session's analysis, or None before one was requested.

    No access check: the caller fetched ``session`` through an access-checked selector.
    """
    return SessionAnalysis.objects.filter(session_id=session.pk).first()


def session_is_host(*, session: VideoSession, user: User) -> bool:
    """Whether ``user`` may re-run the session's analysis: the host or a space owner."""
    return session_can_end(session=session, user=user)


def task_list_for_space(
    *, space: Space, done: bool | None = None, status: str = Task.Status.ACCEPTED
) -> QuerySet[Task]:
    """Tasks of a space in one state (open first); the caller has already checked membership.

    By default the space's tasks proper: the accepted ones. ``status=PROPOSED`` lists what
    the analyses propose and nobody has accepted or dismissed yet.
    """
    tasks = space.tasks.filter(status=status).select_related(
        "assignee", "session", "done_by", "accepted_by", "dismissed_by"
    )
    if done is not None:
        tasks = tasks.filter(done=done)
    # Latest session first, and within a session in the order they were said.
    return tasks.order_by(
        "done", F("session__ended_at").desc(nulls_last=True), "start_seconds", "id"
    )


def task_list_for_session(*, session: VideoSession) -> QuerySet[Task]:
    """Every task the session's analysis proposed, in any state, in the order they were said;
    the caller fetched ``session`` through an access-checked selector."""
    return session.tasks.select_related("assignee", "accepted_by", "dismissed_by").order_by(
        "start_seconds", "id"
    )


def task_assignee_get(*, space: Space, identity: str) -> User | None:
    """The member of ``space`` whose participant identity (``u-<hex>``) is ``identity``, else
    None (no such person, or not a member: the caller cannot tell which)."""
    hex_id = identity.removeprefix("u-")
    try:
        public_id = uuid.UUID(hex=hex_id)
    except ValueError:
        return None
    if not identity.startswith("u-") or public_id.hex != hex_id.lower():
        return None
    return User.objects.filter(public_id=public_id, memberships__space=space).first()


def task_get_for_user(*, user: User, task_id: int) -> Task:
    """The task if ``user`` is a member of its space, else 404."""
    if not user.is_authenticated:
        raise Http404("No such task")
    task = (
        Task.objects.select_related("space", "session", "assignee")
        .filter(pk=task_id, space__memberships__user_id=user.pk)
        .first()
    )
    if task is None:
        raise Http404("No such task")
    return task


def segment_languages_are_mixed(*, session: VideoSession) -> bool:
    """Whether the session's stored finals were recognised in more than one language (those
    with no language recorded aside); the caller fetched ``session`` through an
    access-checked selector."""
    languages = (
        TranscriptSegment.objects.filter(session_id=session.pk)
        .exclude(language="")
        .order_by()  # else the model's ordering joins the DISTINCT
        .values_list("language", flat=True)
        .distinct()
    )
    return len(languages[:2]) > 1


def segment_language_map(*, session: VideoSession, utterance_ids: list[str]) -> dict[str, str]:
    """``{utterance id: language}`` of those of the session's finals (none recorded: left
    out)."""
    return dict(
        TranscriptSegment.objects.filter(session_id=session.pk, utterance_id__in=utterance_ids)
        .exclude(language="")
        .values_list("utterance_id", "language")
    )
