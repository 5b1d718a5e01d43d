"""Corrections of a stored transcript by people: text, speakers, and reverts, with history.

Who may change a session's transcript: its host or a space owner, and every member who
attended it (has a participant row). Only the host or an owner may revert a change.

Every change locks the segment rows it touches, checks the revision the editor saw
(``base_revision``: a stale one is ``409 edit_conflict`` carrying the current segment, so
nothing is lost), writes the new state on the segment — so search, exports, talk time and the
analysis read the corrected transcript with no special case — and records a
``SegmentRevision`` with the state before and after. After the commit the session's open
pages are told (``segment_updated``) and the ``transcript_edited`` event fires.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from identity.models import User
from rooms.errors import Conflict, DomainError, Forbidden
from sessions_app.models import Participant, VideoSession
from sessions_app.selectors import session_can_end
from transcription.archive.exports import UNKNOWN_SPEAKER, unknown_speaker
from transcription.events import transcript_edited
from transcription.live import broadcast
from transcription.models import SegmentRevision, TranscriptSegment

MAX_TEXT_LENGTH = 5000
MAX_NAME_LENGTH = 120
Kind = SegmentRevision.Kind


# --- who may ----------------------------------------------------------------------------------


def transcript_can_edit(*, session: VideoSession, user: User) -> bool:
    """The host, a space owner, or a member who attended the session."""
    if session_can_end(session=session, user=user):
        return True
    return Participant.objects.filter(session=session, user_id=user.pk).exists()


def transcript_can_revert(*, session: VideoSession, user: User) -> bool:
    return session_can_end(session=session, user=user)


def _require_edit(session: VideoSession, user: User) -> None:
    if not transcript_can_edit(session=session, user=user):
        raise Forbidden(
            _("Only the host and the people who attended can correct this transcript."),
            code="edit_not_allowed",
        )


# --- speakers ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Speaker:
    """A speaker label of a transcript: a participant's identity, or (no identity) a name."""

    identity: str
    name: str

    @property
    def label(self) -> str:
        return self.name.strip() or unknown_speaker()

    def segments(self, session: VideoSession) -> QuerySet[TranscriptSegment]:
        rows = TranscriptSegment.objects.filter(session=session)
        if self.identity:
            return rows.filter(speaker_identity=self.identity)
        # "Room" as the page showed it (in the reader's language) or as stored in English.
        nobody = {UNKNOWN_SPEAKER, unknown_speaker()}
        if self.label in nobody:
            return rows.filter(Q(speaker_name="") | Q(speaker_name__in=nobody), speaker_identity="")
        return rows.filter(speaker_identity="", speaker_name=self.name)


def speaker_list(*, session: VideoSession) -> list[Speaker]:
    """The distinct speaker labels of the session's transcript, in order of first words."""
    seen: dict[tuple[str, str], Speaker] = {}
    rows = TranscriptSegment.objects.filter(session=session).order_by("start_offset", "id")
    for identity, name in rows.values_list("speaker_identity", "speaker_name"):
        speaker = Speaker(identity, name)
        key = (identity, "" if identity else speaker.label)
        seen.setdefault(key, speaker)
    return list(seen.values())


def _participant_for(session: VideoSession, identity: str) -> Participant | None:
    if not identity:
        return None
    participant = Participant.objects.filter(session=session, identity=identity).first()
    if participant is None:
        raise DomainError(
            _("That person did not take part in this session."), code="not_participant"
        )
    return participant


# --- state and revisions ----------------------------------------------------------------------


def _state(segment: TranscriptSegment) -> dict[str, Any]:
    return {
        "text": segment.text,
        "speaker_identity": segment.speaker_identity,
        "speaker_name": segment.speaker_name,
        "participant": segment.participant_id,
    }


def _apply(segment: TranscriptSegment, state: dict[str, Any]) -> None:
    if state["text"] != segment.text:
        # The engine's confidence and words describe the recognised text only (a person's
        # text is not "unsure"); a revert to that text brings them back from the revision that
        # set them aside.
        segment.words = state.get("words")
        segment.confidence = state.get("confidence")
    segment.text = state["text"]
    segment.speaker_identity = state["speaker_identity"]
    segment.speaker_name = state["speaker_name"]
    segment.participant_id = state["participant"]


def _change_id() -> str:
    return secrets.token_hex(8)


def _record(
    segments: Iterable[tuple[TranscriptSegment, dict[str, Any]]],
    *,
    kind: str,
    by: User,
    change: str,
    reverts: str = "",
) -> list[TranscriptSegment]:
    """Write each ``(segment, new state)`` that differs, with its revision; the changed ones.

    Must run inside a transaction that holds the segments' row locks.
    """
    changed = []
    for segment, after in segments:
        before = _state(segment)
        if before == {k: v for k, v in after.items() if k not in ("words", "confidence")}:
            continue
        if after["text"] != before["text"]:
            before["words"], before["confidence"] = segment.words, segment.confidence
        _apply(segment, after)
        segment.revision += 1
        segment.save(
            update_fields=[
                "text",
                "words",
                "confidence",
                "speaker_identity",
                "speaker_name",
                "participant",
                "revision",
            ]
        )
        SegmentRevision.objects.create(
            segment=segment,
            session_id=segment.session_id,
            change=change,
            number=segment.revision,
            kind=kind,
            by=by,
            reverts=reverts,
            before=before,
            after=after,
        )
        changed.append(segment)
    if changed:
        session_id = changed[0].session_id
        payloads = [broadcast.segment_payload(s) for s in changed]
        transaction.on_commit(lambda: _announce(session_id, payloads))
    return changed


def _announce(session_id: int, payloads: list[dict[str, Any]]) -> None:
    for payload in payloads:
        broadcast.send_segment_updated_sync(session_id, payload)
    transcript_edited.send(sender=TranscriptSegment, session_id=session_id)


def _locked(session: VideoSession, rows: QuerySet[TranscriptSegment]) -> list[TranscriptSegment]:
    return list(rows.filter(session=session).select_for_update().order_by("id"))


# --- the operations ---------------------------------------------------------------------------


@transaction.atomic
def segment_edit(
    *,
    session: VideoSession,
    utterance_id: str,
    by: User,
    base_revision: int,
    text: str | None = None,
    speaker_identity: str | None = None,
) -> TranscriptSegment:
    """Correct one segment's text and/or give it to another participant (``""``: nobody).

    ``base_revision`` is the segment's revision the editor started from: if somebody changed
    it since, ``Conflict`` (409, ``edit_conflict``) carries the current segment instead.
    """
    _require_edit(session, by)
    [segment] = _locked(session, TranscriptSegment.objects.filter(utterance_id=utterance_id)) or [
        None
    ]
    if segment is None:
        raise DomainError(_("No such segment in this session."), code="not_found", status=404)
    if segment.revision != base_revision:
        raise Conflict(
            _("Somebody changed this segment while you were editing it: here is its current text."),
            code="edit_conflict",
            data={"current": broadcast.segment_payload(segment)},
        )
    after = _state(segment)
    kind = Kind.SPEAKER
    if text is not None:
        text = " ".join(text.split())
        if not text:
            raise DomainError(_("A segment cannot be empty."), code="text_required")
        if len(text) > MAX_TEXT_LENGTH:
            raise DomainError(
                _("A segment holds at most %(count)d characters.") % {"count": MAX_TEXT_LENGTH},
                code="text_too_long",
            )
        if text != segment.text:
            after["text"], kind = text, Kind.TEXT
    if speaker_identity is not None and speaker_identity != segment.speaker_identity:
        participant = _participant_for(session, speaker_identity)
        after["speaker_identity"] = speaker_identity
        after["speaker_name"] = participant.name if participant else ""
        after["participant"] = participant.pk if participant else None
    _record([(segment, after)], kind=kind, by=by, change=_change_id())
    return segment


@transaction.atomic
def speaker_rename(*, session: VideoSession, by: User, speaker: Speaker, name: str) -> int:
    """Show ``speaker`` as ``name`` throughout the session's transcript (e.g. "Room" → a
    name). The speaker's identity, if any, is kept. Returns how many segments changed."""
    _require_edit(session, by)
    name = " ".join(name.split())
    if not name or len(name) > MAX_NAME_LENGTH:
        raise DomainError(
            _("A speaker's name has 1 to %(count)d characters.") % {"count": MAX_NAME_LENGTH},
            code="invalid_name",
        )
    segments = _locked(session, speaker.segments(session))
    if not segments:
        raise DomainError(_("No such speaker in this transcript."), code="not_found", status=404)
    changes = [(s, {**_state(s), "speaker_name": name}) for s in segments]
    return len(_record(changes, kind=Kind.RENAME, by=by, change=_change_id()))


@transaction.atomic
def speakers_merge(*, session: VideoSession, by: User, source: Speaker, target: Speaker) -> int:
    """Give every segment of ``source`` to ``target`` (one person shown as two speakers)."""
    _require_edit(session, by)
    if (source.identity, source.label) == (target.identity, target.label):
        raise DomainError(_("Choose two different speakers to merge."), code="same_speaker")
    segments = _locked(session, source.segments(session))
    reference = target.segments(session).first()
    if not segments or reference is None:
        raise DomainError(_("No such speaker in this transcript."), code="not_found", status=404)
    into = {
        "speaker_identity": reference.speaker_identity,
        "speaker_name": reference.speaker_name,
        "participant": reference.participant_id,
    }
    changes = [(s, {**_state(s), **into}) for s in segments]
    return len(_record(changes, kind=Kind.MERGE, by=by, change=_change_id()))


@transaction.atomic
def change_revert(*, session: VideoSession, by: User, change: str) -> int:
    """Undo ``change`` (host or owner): its segments get back the state they had before it.

    Later changes to those segments stay in the history; the revert is a change of its own.
    """
    if not transcript_can_revert(session=session, user=by):
        raise Forbidden(_("Only the host can revert changes."), code="revert_not_allowed")
    revisions = list(SegmentRevision.objects.filter(session=session, change=change).order_by("-id"))
    if not revisions:
        raise DomainError(_("No such change in this session."), code="not_found", status=404)
    locked = {
        s.pk: s
        for s in _locked(
            session, TranscriptSegment.objects.filter(pk__in=[r.segment_id for r in revisions])
        )
    }
    changes = [(locked[r.segment_id], dict(r.before)) for r in revisions if r.segment_id in locked]
    return len(_record(changes, kind=Kind.REVERT, by=by, change=_change_id(), reverts=change))


# --- reads ------------------------------------------------------------------------------------


def revision_list(
    *, session: VideoSession, utterance_id: str | None = None
) -> QuerySet[SegmentRevision]:
    """The session's changes, newest first (the caller checked access to ``session``)."""
    rows = SegmentRevision.objects.filter(session=session).select_related("by", "segment")
    if utterance_id is not None:
        rows = rows.filter(segment__utterance_id=utterance_id)
    return rows.order_by("-created_at", "-id")


@dataclass(frozen=True, slots=True)
class ChangeSummary:
    """One action on the transcript, as the history lists it."""

    change: str
    kind: str
    kind_label: str
    by: str | None
    at: object
    segments: int
    before: dict[str, Any]
    after: dict[str, Any]
    reverts: str


def change_summaries(*, session: VideoSession, limit: int = 50) -> list[ChangeSummary]:
    """The latest ``limit`` changes of the session, newest first, one per action."""
    found: dict[str, list[SegmentRevision]] = {}
    for revision in revision_list(session=session)[: limit * 20]:
        if revision.change not in found and len(found) >= limit:
            break
        found.setdefault(revision.change, []).append(revision)
    return [
        ChangeSummary(
            change=change,
            kind=rows[0].kind,
            kind_label=rows[0].get_kind_display(),
            by=rows[0].by.name if rows[0].by else None,
            at=rows[0].created_at,
            segments=len(rows),
            before=rows[-1].before,
            after=rows[-1].after,
            reverts=rows[0].reverts,
        )
        for change, rows in found.items()
    ]
