"""Writes for transcription: start and stop runs, store finals, meter usage.

The pipeline (``transcription.pipeline``) calls the ``run_*`` and ``segments_upsert``
functions (and the meter's, ``transcription.metering``) from its event loop through
``database_sync_to_async``.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from identity.models import User
from rooms.errors import Conflict, DomainError
from sessions_app.models import Participant, VideoSession
from transcription import broadcast, limits, transitions
from transcription.metering import usage_finalize
from transcription.models import TranscriptionRun, TranscriptionUsage, TranscriptSegment

logger = logging.getLogger(__name__)
S = TranscriptionRun.Status


def run_mode_for(session: VideoSession, requested: str | None = None) -> str:
    """SERVER when the session's video goes through LiveKit (egress path), BROWSER otherwise.

    ``TRANSCRIPTION_MODE`` can force either; an explicit request wins over both.
    """
    if requested == TranscriptionRun.Mode.SERVER and not session.uses_livekit:
        raise DomainError(
            "Server transcription needs LiveKit video for this session.", code="mode_unavailable"
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
    the limits (``transcription.limits.run_start_check``): ``Forbidden``/``LimitExceeded``.
    """
    from transcription import runner

    if session.status == VideoSession.Status.ENDED:
        raise Conflict("This session has ended.", code="session_ended")
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
            transaction.on_commit(lambda: runner.launch(run.pk))
            transaction.on_commit(lambda: broadcast.send_status_sync(session.pk, run))
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
    if run.status == S.STARTING and not run.control_channel:
        if transitions.transition(
            run.pk, S.FAILED if error_code else S.STOPPED, only_from=(S.STARTING,), **failure
        ):
            usage_finalize(run_id=run.pk)
    elif transitions.transition(run.pk, S.STOPPING, **failure):
        channel = run.control_channel
        if channel:
            transaction.on_commit(
                lambda: broadcast.send_run_control_sync(channel, {"type": "run.stop"})
            )
    run.refresh_from_db()
    transaction.on_commit(lambda: broadcast.send_status_sync(run.session_id, run))
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
    from transcription import runner

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
                    "error": "Transcription kept failing; start it again.",
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
            transaction.on_commit(lambda pk=run.pk: runner.launch(pk))
            logger.warning("run %s: runner went silent; restarting it", run.pk)
    for pk in done["settled"]:
        settled = TranscriptionRun.objects.get(pk=pk)
        transaction.on_commit(lambda r=settled: broadcast.send_status_sync(r.session_id, r))
    return done


def egress_stop_later(run_id: int) -> None:
    from transcription.tasks import stop_egress

    stop_egress.delay(run_id)


# --- Used by the pipeline ----------------------------------------------------------------


def run_attach(*, run_id: int, control_channel: str) -> TranscriptionRun | None:
    """Claim a STARTING run nobody has claimed yet and record where this runner listens.

    None when there is nothing to do: the run is finished, or another runner already holds it
    (a second delivery of the same task, or a relaunch racing a live runner). The claim is one
    conditional UPDATE, so of two runners exactly one wins.
    """
    updated = TranscriptionRun.objects.filter(
        pk=run_id, status=S.STARTING, control_channel=""
    ).update(control_channel=control_channel, heartbeat_at=timezone.now())
    if not updated:
        return None
    return TranscriptionRun.objects.select_related("session").get(pk=run_id)


def run_activate(*, run_id: int, control_channel: str, started_at: datetime) -> bool:
    """Claim the run for this runner: STARTING -> ACTIVE. False if somebody stopped it (or
    another runner holds it now)."""
    activated = transitions.transition(
        run_id,
        S.ACTIVE,
        only_from=(S.STARTING,),
        where={"control_channel": control_channel},
        started_at=started_at,
        heartbeat_at=started_at,
    )
    if activated:
        TranscriptionUsage.objects.filter(run_id=run_id, started_at__isnull=True).update(
            started_at=started_at
        )
    return activated


@transaction.atomic
def run_hand_off(*, run_id: int, control_channel: str) -> TranscriptionRun | None:
    """The runner's process is shutting down while the session goes on: ACTIVE -> STARTING,
    unclaimed, heartbeat now, so the next runner resumes it from the stored meter (another
    worker at once; in embedded mode the next Daphne; the supervisor if that message is lost).
    Not a failure: ``attempts`` stays. None when the run was stopped meanwhile (or another
    runner holds it now)."""
    from transcription import runner

    if not transitions.transition(
        run_id,
        S.STARTING,
        only_from=(S.ACTIVE,),
        where={"control_channel": control_channel},
        control_channel="",
        heartbeat_at=timezone.now(),
    ):
        return None
    transaction.on_commit(lambda: runner.launch_elsewhere(run_id))
    return TranscriptionRun.objects.select_related("session").get(pk=run_id)


def runs_unclaimed() -> list[int]:
    """Runs waiting for a runner (handed off, or launched where no runner was): STARTING, no
    control channel, session not ended."""
    return list(
        TranscriptionRun.objects.filter(status=S.STARTING, control_channel="")
        .exclude(session__status=VideoSession.Status.ENDED)
        .values_list("pk", flat=True)
    )


def run_ingest_ready(*, run_id: int, port: int | None) -> None:
    TranscriptionRun.objects.filter(pk=run_id).update(ingest_port=port)


def run_egress_started(*, run_id: int, egress_id: str, status: str) -> None:
    TranscriptionRun.objects.filter(pk=run_id).update(egress_id=egress_id, egress_status=status)


def participant_name(*, session_id: int, identity: str) -> str | None:
    """The display name of a session's participant, for attributing finals."""
    return (
        Participant.objects.filter(session_id=session_id, identity=identity)
        .values_list("name", flat=True)
        .first()
    )


def runs_heartbeat(*, owners: dict[int, str]) -> dict[int, str]:
    """Stamp the heartbeat of every live run this runner still holds (one UPDATE for all).

    ``owners``: run id -> the runner's control channel. Returns the status of each run still
    held; a run that vanished, or that another runner holds now, is missing from the result.
    """
    held = TranscriptionRun.objects.filter(transitions.held_by(owners))
    held.filter(status__in=TranscriptionRun.UNFINISHED).update(heartbeat_at=timezone.now())
    return dict(held.values_list("pk", "status"))


@transaction.atomic
def run_finish(
    *, run_id: int, control_channel: str, error_code: str = "", error: str = ""
) -> TranscriptionRun:
    """End the run this runner holds: FAILED when there is an error (given, or recorded when
    it was asked to stop), else STOPPED; usage is finalised. A run already finished, or held
    by another runner now, is left as it is (its meter is not this runner's to close)."""
    if not error_code:
        recorded = TranscriptionRun.objects.filter(pk=run_id).values_list("error_code", "error")
        error_code, error = recorded.first() or ("", "")
    target = S.FAILED if error_code else S.STOPPED
    if transitions.transition(
        run_id,
        target,
        where={"control_channel": control_channel},
        error_code=error_code[:32],
        error=error,
    ):
        usage_finalize(run_id=run_id)
    return TranscriptionRun.objects.get(pk=run_id)


@dataclass(frozen=True, slots=True)
class FinalSegment:
    session_id: int
    run_id: int
    utterance_id: str
    text: str
    language: str
    start_offset: float
    end_offset: float
    speaker_identity: str | None
    speaker_name: str | None
    confidence: float | None = None
    words: list[dict[str, Any]] | None = None


def segments_upsert(*, finals: list[FinalSegment], active_session_ids: Collection[int] = ()) -> int:
    """Store ``finals`` (of any sessions) in ONE statement; a final stored twice stays one row.

    Speaker identities are resolved to participants of their session with one query. Speech
    is activity: ``active_session_ids`` (the caller's choice, at most once a minute each) are
    touched so they are not ended as inactive.
    """
    from sessions_app.services import sessions_touch

    if not finals:
        return 0
    # One row per (session, utterance) per statement: PostgreSQL refuses to upsert a row twice
    # in one INSERT ... ON CONFLICT. The last version of a final wins.
    finals = list({(f.session_id, f.utterance_id): f for f in finals}.values())
    with transaction.atomic():
        # A final delivered again (a restarted run, a retried flush) never undoes what people
        # corrected since. The rows it would overwrite are locked first (an edit in progress
        # is waited for, and its revision then read), and corrected ones are skipped. New
        # finals have no row yet, so this is one indexed read that locks nothing.
        existing = (
            TranscriptSegment.objects.select_for_update()
            .filter(
                session_id__in={f.session_id for f in finals},
                utterance_id__in={f.utterance_id for f in finals},
            )
            .values_list("session_id", "utterance_id", "revision")
        )
        corrected = {(s, u) for s, u, revision in existing if revision}
        finals = [f for f in finals if (f.session_id, f.utterance_id) not in corrected]
        _segments_write(finals)
    if active_session_ids:
        sessions_touch(session_ids=active_session_ids)
    return len(finals)


def _segments_write(finals: list[FinalSegment]) -> None:
    if not finals:
        return
    wanted = {(f.session_id, f.speaker_identity) for f in finals if f.speaker_identity}
    participants: dict[tuple[int, str], int] = {}
    if wanted:
        rows = Participant.objects.filter(
            session_id__in={session_id for session_id, _ in wanted},
            identity__in={identity for _, identity in wanted},
        ).values_list("session_id", "identity", "id")
        participants = {(session_id, identity): pk for session_id, identity, pk in rows}
    segments = [
        TranscriptSegment(
            session_id=f.session_id,
            run_id=f.run_id,
            participant_id=participants.get((f.session_id, f.speaker_identity or "")),
            speaker_identity=f.speaker_identity or "",
            speaker_name=f.speaker_name or "",
            utterance_id=f.utterance_id,
            text=f.text,
            language=f.language,
            start_offset=f.start_offset,
            end_offset=f.end_offset,
            confidence=f.confidence,
            words=f.words,
        )
        for f in finals
    ]
    TranscriptSegment.objects.bulk_create(
        segments,
        update_conflicts=True,
        unique_fields=["session", "utterance_id"],
        update_fields=[
            "run",
            "participant",
            "speaker_identity",
            "speaker_name",
            "text",
            "language",
            "start_offset",
            "end_offset",
            "confidence",
            "words",
        ],
    )
