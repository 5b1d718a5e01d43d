"""Writes for transcription runs: start, stop, supervise, and LiveKit's egress events.

A run is started through ``transcription.live.launch``; what a running run writes (claim,
heartbeat, hand-off, finals) is ``transcription.live.store``.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from identity.models import User
from rooms.errors import Conflict, DomainError
from rooms.jobs import job
from sessions_app.models import VideoSession
from transcription.live import broadcast, transitions
from transcription.live.launch import launch
from transcription.models import TranscriptionRun, TranscriptionUsage
from transcription.usage import limits
from transcription.usage.metering import usage_finalize

logger = logging.getLogger(__name__)
S = TranscriptionRun.Status


def run_mode_for(session: VideoSession, requested: str | None = None) -> str:
    """SERVER when the session's video goes through LiveKit (egress path), BROWSER otherwise.

    ``TRANSCRIPTION_MODE`` can force either; an explicit request wins over both.
    """
    if requested == TranscriptionRun.Mode.SERVER and not session.uses_livekit:
        raise DomainError(
            _("Server transcription needs LiveKit video for this session."),
            code="mode_unavailable",
        )
    if requested:
        return requested
    forced = settings.TRANSCRIPTION_MODE
    if forced in (TranscriptionRun.Mode.SERVER, TranscriptionRun.Mode.BROWSER):
        return forced
    if session.uses_livekit:
        return TranscriptionRun.Mode.SERVER
    return TranscriptionRun.Mode.BROWSER


def run_start(*, session: VideoSession, by: User, mode: str | None = None) -> TranscriptionRun:
    """Start transcribing ``session``, or return the run already in progress (never two).

    The caller has checked that ``by`` is a member of the session's space. The runner is
    launched after commit, so it never sees a run that was rolled back. A new run must pass
    the limits (``transcription.usage.limits.run_start_check``): ``Forbidden``/``LimitExceeded``.
    """
    if session.status == VideoSession.Status.ENDED:
        raise Conflict(_("This session has ended."), code="session_ended")
    existing = TranscriptionRun.objects.filter(
        session=session, status__in=TranscriptionRun.UNFINISHED
    ).first()
    if existing is not None:
        return existing
    mode = run_mode_for(session, mode)
    provider = settings.STT_PROVIDER
    try:
        with transaction.atomic():
            limits.starter_lock(by=by)
            # A start of the same user may have won the lock, and this session, meanwhile.
            existing = TranscriptionRun.objects.filter(
                session=session, status__in=TranscriptionRun.UNFINISHED
            ).first()
            if existing is not None:
                return existing
            limits.run_start_check(session=session, by=by)
            run = TranscriptionRun.objects.create(
                session=session,
                mode=mode,
                provider=provider,
                languages=list(session.languages or []),
                started_by=by,
            )
            TranscriptionUsage.objects.create(
                session=session,
                run=run,
                user=by,
                provider=provider,
                cost_per_minute=settings.TRANSCRIPTION_COST_PER_MINUTE,
            )
            # STARTING is out (Redis has it) before the run is queued: the runner's ACTIVE,
            # published on the same group, then always comes after it. The other way round a
            # quick runner's ACTIVE could reach the pages first, and the stale STARTING made
            # every socket drop its microphone's frames for the whole run
            # (docs/benchmarks.md, issue 20).
            transaction.on_commit(lambda: broadcast.send_status_sync(session.pk, run))
            transaction.on_commit(lambda: launch(run.pk))
    except IntegrityError:
        # Another request started one between our check and insert: the constraint chose it.
        existing = TranscriptionRun.objects.filter(
            session=session, status__in=TranscriptionRun.UNFINISHED
        ).first()
        if existing is None:
            raise
        return existing
    return run


@transaction.atomic
def run_stop(*, run: TranscriptionRun, reason: str = "", error_code: str = "") -> TranscriptionRun:
    """Ask ``run`` to stop: it flushes its finals and usage, then becomes STOPPED — or FAILED
    with ``reason`` shown to users when ``error_code`` is given (e.g. its egress failed).

    A run whose runner never claimed it (STARTING, no control channel) is settled directly, so
    a stop never leaves a run stuck in an unfinished status.
    """
    run.refresh_from_db()
    if run.is_finished:
        return run
    failure = {"error_code": error_code[:32], "error": reason} if error_code else {}
    stop_runner = ""
    if run.status == S.STARTING and not run.control_channel:
        if transitions.transition(
            run.pk, S.FAILED if error_code else S.STOPPED, only_from=(S.STARTING,), **failure
        ):
            usage_finalize(run_id=run.pk)
    elif transitions.transition(run.pk, S.STOPPING, **failure):
        stop_runner = run.control_channel
    run.refresh_from_db()
    # The status is out before the runner is told to stop (as STARTING before the launch in
    # ``run_start``): the runner's STOPPED then always comes after this STOPPING.
    transaction.on_commit(lambda: broadcast.send_status_sync(run.session_id, run))
    if stop_runner:
        transaction.on_commit(
            lambda: broadcast.send_run_control_sync(stop_runner, {"type": "run.stop"})
        )
    return run


def runs_stop_for_session(*, session_id: int) -> None:
    for run in TranscriptionRun.objects.filter(
        session_id=session_id, status__in=TranscriptionRun.UNFINISHED
    ):
        run_stop(run=run, reason="session ended")


EGRESS_FAILURES = {
    "EGRESS_FAILED": "LiveKit egress failed",
    "EGRESS_ABORTED": "LiveKit egress was aborted",
    "EGRESS_LIMIT_REACHED": "LiveKit egress reached its limit",
}


def egress_event_handle(*, egress_id: str, status: str, error: str = "") -> None:
    """An egress of ours changed (webhook): record it; a failed or finished egress ends the run.

    A run whose egress ended must never stay "active" (it would block every later start).
    """
    run = TranscriptionRun.objects.filter(egress_id=egress_id).first() if egress_id else None
    if run is None:
        return
    TranscriptionRun.objects.filter(pk=run.pk).update(egress_status=status)
    if status in EGRESS_FAILURES:
        reason = EGRESS_FAILURES[status] + (f": {error}" if error else ".")
        run_stop(run=run, reason=reason, error_code="egress")
    elif status == "EGRESS_COMPLETE":
        run_stop(run=run)


MAX_RESTARTS = 5


@transaction.atomic
def runs_supervise() -> dict[str, list[int]]:
    """Find runs whose runner went silent (worker killed, task lost) and act (Celery beat).

    A live session's run is restarted (idempotent upserts and the stored meter make that
    safe); a run that was stopping, or whose session ended, is settled so it never blocks the
    next start. Each action is a conditional update on the heartbeat the supervisor saw, so
    two supervisors racing never both act.
    """
    stale_before = timezone.now() - timedelta(seconds=settings.TRANSCRIPTION_STALE_SECONDS)
    stale = TranscriptionRun.objects.filter(status__in=TranscriptionRun.UNFINISHED).filter(
        Q(heartbeat_at__lt=stale_before) | Q(heartbeat_at__isnull=True, created_at__lt=stale_before)
    )
    done: dict[str, list[int]] = {"restarted": [], "settled": []}
    for run in stale.select_related("session"):
        seen = {"heartbeat_at": run.heartbeat_at}
        ended = run.session.status == VideoSession.Status.ENDED
        if run.status == S.STOPPING or ended or run.attempts >= MAX_RESTARTS:
            error = {}
            if run.attempts >= MAX_RESTARTS and not (run.status == S.STOPPING or ended):
                error = {
                    "error_code": "internal",
                    "error": gettext_noop("Transcription kept failing; start it again."),
                }
            target = S.FAILED if error or run.error_code else S.STOPPED
            if transitions.transition(run.pk, target, where=seen, **error):
                usage_finalize(run_id=run.pk)
                done["settled"].append(run.pk)
                if run.egress_id:
                    transaction.on_commit(lambda pk=run.pk: egress_stop_later(pk))
        elif transitions.transition(
            run.pk,
            S.STARTING,
            only_from=(S.STARTING, S.ACTIVE),
            where=seen,
            control_channel="",
            heartbeat_at=timezone.now(),
            attempts=F("attempts") + 1,
        ):
            done["restarted"].append(run.pk)
            transaction.on_commit(lambda pk=run.pk: launch(pk))
            logger.warning("run %s: runner went silent; restarting it", run.pk)
    for pk in done["settled"]:
        settled = TranscriptionRun.objects.get(pk=pk)
        transaction.on_commit(lambda r=settled: broadcast.send_status_sync(r.session_id, r))
    return done


def egress_stop_later(run_id: int) -> None:
    job("transcription.tasks.stop_egress").delay(run_id)
