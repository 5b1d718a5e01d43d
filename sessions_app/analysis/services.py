"""Writes for session analyses and the tasks they propose.

Lifecycle: ``analysis_request`` (PENDING, task launched after commit) → ``analysis_claim``
(conditional update to RUNNING, so a task queued twice runs once) → ``analysis_execute``
(DONE, action items proposed as tasks) or ``analysis_fail`` (back to PENDING for a retry, or
FAILED). ``analysis_mark_stale`` records a transcript edit made after the analysis read it.

Tasks: the analysis proposes (PROPOSED); any member of the space accepts a proposal, editing it
if they like (``task_accept``: ACCEPTED, a task of the space that can be done) or dismisses it
(``task_dismiss``: DISMISSED, never proposed again for that session).
"""

from __future__ import annotations

import enum
import logging
import re
import threading
import time
from datetime import date, timedelta

from django.conf import settings
from django.db import IntegrityError, connections, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from identity.models import User
from rooms.errors import Conflict, DomainError, Forbidden
from rooms.jobs import job
from sessions_app.analysis import analyse
from sessions_app.analysis.confidence import mark_low_confidence, segment_confidence
from sessions_app.analysis.types import ActionItem, AnalysisInput, Utterance
from sessions_app.models import SessionAnalysis, Task, VideoSession
from sessions_app.selectors import session_can_end
from spaces.models import Space, SpaceMember

logger = logging.getLogger(__name__)

ANALYSE_SESSION = "sessions_app.tasks.analyse_session"
"""The Celery task (``sessions_app.tasks``) that runs an analysis."""
S = SessionAnalysis.Status
_RESET = {
    "status": S.PENDING,
    "provider": "",
    "summary": "",
    "topics": [],
    "action_items": [],
    "speaker_stats": [],
    "error": "",
    "attempts": 0,
    "started_at": None,
    "finished_at": None,
    "transcript_edited_at": None,
}
_SETTLE_POLL_SECONDS = 0.25


def analysis_request(*, session: VideoSession) -> SessionAnalysis:
    """Create or reset the session's analysis to PENDING and launch it after the commit."""
    defaults = {**_RESET, "created_at": timezone.now()}
    try:
        with transaction.atomic():
            analysis, _created = SessionAnalysis.objects.update_or_create(
                session=session, defaults=defaults
            )
    except IntegrityError:
        # Requested twice at once: the other request created the row; reset it too.
        SessionAnalysis.objects.filter(session=session).update(**defaults)
        analysis = SessionAnalysis.objects.get(session=session)
    session_id = session.pk
    transaction.on_commit(lambda: analysis_launch(session_id=session_id))
    return analysis


def _is_stale(analysis: SessionAnalysis) -> bool:
    """A RUNNING analysis whose worker went silent, or a PENDING one nobody picked up."""
    since = analysis.started_at if analysis.status == S.RUNNING else analysis.created_at
    limit = timedelta(seconds=settings.ANALYSIS_STALE_SECONDS)
    return since is not None and since < timezone.now() - limit


@transaction.atomic
def analysis_rerun(*, session: VideoSession, by: User) -> SessionAnalysis:
    """Run the analysis again (host or space owner, session ended, none in progress)."""
    if not session_can_end(session=session, user=by):
        raise Forbidden(
            _("Only the host or a space owner can re-run the analysis."), code="host_required"
        )
    if session.status != VideoSession.Status.ENDED:
        raise Conflict(_("The analysis runs once the session has ended."), code="session_not_ended")
    current = SessionAnalysis.objects.select_for_update().filter(session=session).first()
    if current is not None:
        busy = current.status in (S.PENDING, S.RUNNING) and not _is_stale(current)
        if busy:
            raise Conflict(_("The analysis is already in progress."), code="analysis_running")
    return analysis_request(session=session)


def analysis_launch(*, session_id: int) -> None:
    """Start the task: on the Celery queue, or in a background thread without a broker."""
    analyse_session = job(ANALYSE_SESSION)
    if settings.ANALYSIS_RUNNER == "thread":
        threading.Thread(
            target=_run_in_thread, args=(session_id,), name=f"analysis-{session_id}", daemon=True
        ).start()
    else:
        # Eager Celery runs the task right here, in the thread that ended the session — under
        # Channels the one thread that also serves the runners' database calls — so it must
        # not sit waiting for those runs to finish.
        wait = not analyse_session.app.conf.task_always_eager
        try:
            analyse_session.delay(session_id, wait_for_transcript=wait)
        except Exception:
            # The session has ended all the same; the analysis stays PENDING, and a host can
            # re-run it once it is stale.
            logger.exception("could not queue the analysis of session %s", session_id)


def _run_in_thread(session_id: int) -> None:
    try:
        job(ANALYSE_SESSION).apply(args=(session_id,))
    finally:
        # This thread's database connections are never reused by a request: close them.
        connections.close_all()


def analysis_claim(*, session_id: int) -> SessionAnalysis | None:
    """Take the session's PENDING (or stale RUNNING) analysis; None when there is nothing to do
    or another worker has it."""
    now = timezone.now()
    stale_before = now - timedelta(seconds=settings.ANALYSIS_STALE_SECONDS)
    claimed = (
        SessionAnalysis.objects.filter(session_id=session_id)
        .filter(Q(status=S.PENDING) | Q(status=S.RUNNING, started_at__lt=stale_before))
        .update(status=S.RUNNING, started_at=now, finished_at=None, attempts=F("attempts") + 1)
    )
    if not claimed:
        return None
    return SessionAnalysis.objects.select_related("session__space").get(session_id=session_id)


def _transcription_live(session_id: int) -> bool:
    from transcription.models import TranscriptionRun

    fresh = timezone.now() - timedelta(seconds=settings.TRANSCRIPTION_STALE_SECONDS)
    return TranscriptionRun.objects.filter(
        session_id=session_id,
        status__in=TranscriptionRun.UNFINISHED,
        heartbeat_at__gte=fresh,
    ).exists()


def transcript_wait_settled(*, session_id: int) -> None:
    """Wait (bounded by ``ANALYSIS_SETTLE_SECONDS``) while a live run still flushes finals."""
    deadline = time.monotonic() + settings.ANALYSIS_SETTLE_SECONDS
    while time.monotonic() < deadline and _transcription_live(session_id):
        time.sleep(_SETTLE_POLL_SECONDS)


def analysis_input(*, session: VideoSession) -> AnalysisInput:
    from transcription.models import TranscriptSegment

    rows = (
        TranscriptSegment.objects.filter(session=session)
        .order_by("start_offset", "id")
        .values_list(
            "speaker_identity",
            "speaker_name",
            "text",
            "start_offset",
            "end_offset",
            "confidence",
            "words",
            "language",
        )
    )
    utterances = [
        Utterance(identity, name, text, start, end, segment_confidence(confidence, words), language)
        for identity, name, text, start, end, confidence, words, language in rows
    ]
    names = list(session.participants.values_list("name", flat=True))
    names += [m.user.name for m in session.space.memberships.select_related("user")]
    # A session fixed to one language tells the language of segments that stored none.
    languages = session.languages if isinstance(session.languages, list) else []
    return AnalysisInput(
        utterances=utterances,
        known_names=list(dict.fromkeys(names)),
        language=languages[0] if len(languages) == 1 and isinstance(languages[0], str) else "",
    )


def analysis_execute(
    *, analysis: SessionAnalysis, wait_for_transcript: bool = True
) -> SessionAnalysis:
    """Analyse the transcript of a claimed analysis, store the result and propose its action
    items as tasks (those said in speech below ``TRANSCRIPT_LOW_CONFIDENCE`` marked so).

    With ``wait_for_transcript``, live runs are first given time to flush their last finals.
    A result is stored only while the row is still this claim (RUNNING, same ``started_at``):
    a re-run requested meanwhile wins.
    """
    session = analysis.session
    if wait_for_transcript:
        transcript_wait_settled(session_id=session.pk)
    data = analysis_input(session=session)
    result = analyse(data)
    items = mark_low_confidence(
        result.action_items, data.utterances, threshold=settings.TRANSCRIPT_LOW_CONFIDENCE
    )
    with transaction.atomic():
        stored = SessionAnalysis.objects.filter(
            pk=analysis.pk, status=S.RUNNING, started_at=analysis.started_at
        ).update(
            status=S.DONE,
            provider=result.provider,
            summary=result.summary,
            topics=result.topics,
            action_items=items,
            speaker_stats=list(result.speaker_stats),
            error=result.note,
            finished_at=timezone.now(),
        )
        if stored:
            tasks_sync_from_analysis(analysis=analysis, items=items)
    analysis.refresh_from_db()
    return analysis


def analysis_fail(*, analysis: SessionAnalysis, error: str, final: bool) -> None:
    """Record a failed attempt: back to PENDING for the next retry, or FAILED for good."""
    SessionAnalysis.objects.filter(
        pk=analysis.pk, status=S.RUNNING, started_at=analysis.started_at
    ).update(
        status=S.FAILED if final else S.PENDING,
        error=error[:2000],
        finished_at=timezone.now() if final else None,
    )


def analysis_mark_stale(*, session: VideoSession) -> bool:
    """Record that the session's transcript changed: an analysis that had already read it is
    then stale (``SessionAnalysis.is_stale``), and the finished page says so and offers the
    re-run. Call it whenever a person edits the transcript (in the edit's transaction or after
    it). A re-run clears the mark. False when the session has no analysis (nothing to mark)."""
    marked = SessionAnalysis.objects.filter(session=session).update(
        transcript_edited_at=timezone.now()
    )
    return bool(marked)


# --- Tasks ------------------------------------------------------------------------------------


class MemberMatcher:
    """Matches an owner's name to a member of the space: display name, else unique first name."""

    def __init__(self, space: Space) -> None:
        self._full: dict[str, User] = {}
        firsts: dict[str, list[User]] = {}
        for membership in space.memberships.select_related("user"):
            user = membership.user
            self._full.setdefault(user.name.lower(), user)
            firsts.setdefault(user.name.split(" ")[0].lower(), []).append(user)
        self._first = {k: v[0] for k, v in firsts.items() if len(v) == 1}

    def match(self, owner: str | None) -> User | None:
        if not owner:
            return None
        key = " ".join(owner.split()).lower()
        return self._full.get(key) or self._first.get(key) or self._first.get(key.split(" ")[0])


_NON_WORD = re.compile(r"\W+")
TS = Task.Status


def task_title_key(title: str) -> str:
    """A title normalised for matching: case, punctuation and spacing ignored."""
    return _NON_WORD.sub(" ", title.lower()).strip()


def tasks_sync_from_analysis(*, analysis: SessionAnalysis, items: list[ActionItem]) -> None:
    """Propose ``items`` as tasks of the session's space.

    Items are matched to the session's tasks by normalised proposed title. A new item becomes a
    PROPOSED task; a proposal already made is refreshed (owner, due, moment, low confidence).
    An item a person accepted or dismissed is left exactly as they decided: it is not proposed
    again and not changed. Proposals of an earlier run that this run no longer makes are
    deleted. Runs inside the caller's transaction; running it twice creates nothing twice.
    """
    session = analysis.session
    matcher = MemberMatcher(session.space)
    existing: dict[str, Task] = {}
    # People's decisions first: a decided task wins a title over a stray proposal.
    tasks = Task.objects.filter(session=session).order_by("id")
    for task in sorted(tasks, key=lambda t: t.status == TS.PROPOSED):
        existing.setdefault(task_title_key(task.proposed_title or task.title), task)
    kept: set[int] = set()
    for item in items:
        title = item["text"].strip()[:500]
        key = task_title_key(title)
        if not key:
            continue
        task = existing.get(key)
        if task is not None and task.status != TS.PROPOSED:
            continue
        fields = {
            "analysis": analysis,
            "title": title,
            "proposed_title": title,
            "assignee": matcher.match(item["owner"]),
            "owner_name": (item["owner"] or "")[:120],
            "due_phrase": (item["due"] or "")[:120],
            "start_seconds": item["start"],
            "low_confidence": bool(item.get("low_confidence", False)),
        }
        if task is None:
            task = Task.objects.create(
                space=session.space, session=session, status=TS.PROPOSED, **fields
            )
            existing[key] = task
        else:
            Task.objects.filter(pk=task.pk).update(**fields)
        kept.add(task.pk)
    Task.objects.filter(session=session, status=TS.PROPOSED).exclude(pk__in=kept).delete()


class Unchanged(enum.Enum):
    """``task_accept``'s default for a field the person left as proposed."""

    UNCHANGED = "unchanged"


UNCHANGED = Unchanged.UNCHANGED


def _not_proposed(task: Task) -> Conflict:
    """Why ``task`` is no longer a proposal to decide on."""
    status = Task.objects.filter(pk=task.pk).values_list("status", flat=True).first()
    if status == TS.ACCEPTED:
        message = _("This task was already accepted.")
    elif status == TS.DISMISSED:
        message = _("This proposal was dismissed.")
    else:
        message = _("This proposal is gone: the analysis was run again without it.")
    return Conflict(message, code="task_not_proposed")


def task_accept(
    *,
    task: Task,
    by: User,
    title: str | None = None,
    assignee: User | Unchanged | None = UNCHANGED,
    due_phrase: str | None = None,
    due_date: date | Unchanged | None = UNCHANGED,
) -> Task:
    """Make a proposed task a task of its space, with the person's edits.

    Any member of the space may accept (the caller fetched ``task`` through
    ``task_get_for_user``). ``title``: None keeps the proposed one; it may not be blank.
    ``assignee``: a member of the space, None for nobody (the owner's name said is dropped), or
    left unchanged. ``due_phrase``: None keeps it, "" clears it. Raises ``Conflict``
    (``task_not_proposed``) when it was accepted or dismissed meanwhile (by someone else).
    """
    fields: dict[str, object] = {}
    if title is not None:
        title = " ".join(title.split())[:500]
        if not title:
            raise DomainError(_("A task needs a title."), code="title_blank")
        fields["title"] = title
    if assignee is None:
        fields.update(assignee=None, owner_name="")
    elif not isinstance(assignee, Unchanged):
        if not SpaceMember.objects.filter(space_id=task.space_id, user_id=assignee.pk).exists():
            raise DomainError(
                _("A task can be assigned to a member of its space only."),
                code="assignee_not_member",
            )
        fields.update(assignee=assignee, owner_name=assignee.name[:120])
    if due_phrase is not None:
        fields["due_phrase"] = " ".join(due_phrase.split())[:120]
    if not isinstance(due_date, Unchanged):
        fields["due_date"] = due_date
    accepted = Task.objects.filter(pk=task.pk, status=TS.PROPOSED).update(
        status=TS.ACCEPTED, accepted_by=by, accepted_at=timezone.now(), **fields
    )
    if not accepted:
        raise _not_proposed(task)
    task.refresh_from_db()
    return task


def task_dismiss(*, task: Task, by: User) -> Task:
    """Dismiss a proposed task: it is no task of the space, and a re-run of the analysis does
    not propose it again. Any member of the space may dismiss (the caller fetched ``task``
    through ``task_get_for_user``). Raises ``Conflict`` (``task_not_proposed``) when it was
    accepted or dismissed meanwhile."""
    dismissed = Task.objects.filter(pk=task.pk, status=TS.PROPOSED).update(
        status=TS.DISMISSED, dismissed_by=by, dismissed_at=timezone.now()
    )
    if not dismissed:
        raise _not_proposed(task)
    task.refresh_from_db()
    return task


def task_set_done(*, task: Task, by: User, done: bool) -> Task:
    """Tick an accepted task off (or reopen it). The caller checked that ``by`` is a member of
    its space. Raises ``Conflict`` (``task_not_accepted``) for a proposal or a dismissed one."""
    if task.status != TS.ACCEPTED:
        raise Conflict(
            _("Only an accepted task can be ticked off: accept the proposal first."),
            code="task_not_accepted",
        )
    task.done = done
    task.done_at = timezone.now() if done else None
    task.done_by = by if done else None
    task.save(update_fields=["done", "done_at", "done_by"])
    return task
