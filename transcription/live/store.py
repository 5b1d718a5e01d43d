"""Writes of a running run: claiming it, its heartbeat and hand-off, its finals and their
translations, and the caption languages it translates into.

The pipeline (``transcription.live.pipeline``) and its batcher call these from their event loop
through ``database_sync_to_async``. Starting and stopping runs is ``transcription.services``.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from sessions_app.models import Participant, VideoSession
from transcription.events import speech_stored
from transcription.live import transitions
from transcription.live.launch import launch_elsewhere
from transcription.models import (
    SegmentTranslation,
    TranscriptionRun,
    TranscriptionUsage,
    TranscriptSegment,
)
from transcription.usage.metering import usage_finalize
from transcription.usage.translation_meter import TranslationCounts, translation_checkpoint

logger = logging.getLogger(__name__)
S = TranscriptionRun.Status


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
    if not transitions.transition(
        run_id,
        S.STARTING,
        only_from=(S.ACTIVE,),
        where={"control_channel": control_channel},
        control_channel="",
        heartbeat_at=timezone.now(),
    ):
        return None
    transaction.on_commit(lambda: launch_elsewhere(run_id))
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
        speech_stored.send(sender=TranscriptSegment, session_ids=list(active_session_ids))
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


# --- translations ---------------------------------------------------------------------------


def caption_languages(*, session_ids: Collection[int]) -> dict[int, set[str]]:
    """The caption languages chosen by the people present in each session (one query for all):
    participants who have not left, whose user picked a language other than the original."""
    if not session_ids:
        return {}
    rows = (
        Participant.objects.filter(
            session_id__in=session_ids, left_at__isnull=True, user__isnull=False
        )
        .exclude(user__caption_language="")
        .values_list("session_id", "user__caption_language")
        .distinct()
    )
    languages: dict[int, set[str]] = {}
    for session_id, language in rows:
        languages.setdefault(session_id, set()).add(language)
    return languages


@dataclass(frozen=True, slots=True)
class FinalTranslation:
    """A final in one more language, as the provider (or the LLM) translated it live."""

    session_id: int
    run_id: int
    utterance_id: str
    language: str
    text: str
    source: str  # SegmentTranslation.Source: "gladia" | "llm"


def translations_upsert(*, translations: list[FinalTranslation]) -> list[FinalTranslation]:
    """Store ``translations`` (of any sessions) in one statement, one row per segment and
    language: a translation sent again replaces the text. Returns those whose final is not
    stored yet (the caller keeps them for a later round).

    A live translation is of the text as recognised, revision 0 of its segment: once people
    corrected the original it is stale (``source_revision`` < ``revision``). A translation made
    from a corrected text (re-translated, ``source_revision`` > 0) is never replaced by a live
    one sent again.
    """
    if not translations:
        return []
    latest = {(t.session_id, t.utterance_id, t.language): t for t in translations}
    stored = TranscriptSegment.objects.filter(
        session_id__in={t.session_id for t in latest.values()},
        utterance_id__in={t.utterance_id for t in latest.values()},
    ).values_list("session_id", "utterance_id", "id")
    segments = {(session_id, utterance_id): pk for session_id, utterance_id, pk in stored}
    waiting = [t for t in latest.values() if (t.session_id, t.utterance_id) not in segments]
    found = [t for t in latest.values() if (t.session_id, t.utterance_id) in segments]
    if not found:
        return waiting
    kept = set(
        SegmentTranslation.objects.filter(
            segment_id__in={segments[(t.session_id, t.utterance_id)] for t in found},
            source_revision__gt=0,
        ).values_list("segment_id", "language")
    )
    rows = [
        SegmentTranslation(
            session_id=t.session_id,
            segment_id=segments[(t.session_id, t.utterance_id)],
            language=t.language,
            text=t.text,
            source=t.source,
            source_revision=0,
        )
        for t in found
        if (segments[(t.session_id, t.utterance_id)], t.language) not in kept
    ]
    if rows:
        SegmentTranslation.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["segment", "language"],
            update_fields=["text", "source", "source_revision", "updated_at"],
        )
    return waiting


def translations_checkpoint(
    *,
    meters: Mapping[int, tuple[str, Mapping[str, TranslationCounts]]],
    owners: dict[int, str],
) -> None:
    """Persist the translation meters of several runs (run id -> (provider, totals per
    language)), of the runs this runner still holds (``owners``, as ``runs_heartbeat``)."""
    meters = {run_id: meter for run_id, meter in meters.items() if meter[1]}
    if not meters:
        return
    held = TranscriptionRun.objects.filter(transitions.held_by(owners), pk__in=meters)
    for run_id in held.values_list("pk", flat=True):
        provider, counts = meters[run_id]
        translation_checkpoint(run_id=run_id, provider=provider, counts=counts)
