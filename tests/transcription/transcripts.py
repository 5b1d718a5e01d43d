"""Stored transcripts for tests: a finished run of a session and its final segments."""

from __future__ import annotations

from sessions_app.models import VideoSession
from transcription.models import TranscriptionRun, TranscriptSegment

# (start, end, speaker identity, speaker name, text); an empty identity is the unattributed room.
Line = tuple[float, float, str, str, str]


def store_transcript(session: VideoSession, lines: list[Line]) -> list[TranscriptSegment]:
    run = TranscriptionRun.objects.create(
        session=session,
        mode=TranscriptionRun.Mode.BROWSER,
        provider="local",
        status=TranscriptionRun.Status.STOPPED,
    )
    participants = {p.identity: p for p in session.participants.all()}
    return TranscriptSegment.objects.bulk_create(
        TranscriptSegment(
            session=session,
            run=run,
            participant=participants.get(identity),
            speaker_identity=identity,
            speaker_name=name,
            utterance_id=f"u{i}",
            text=text,
            language="en",
            start_offset=start,
            end_offset=end,
        )
        for i, (start, end, identity, name, text) in enumerate(lines)
    )


def end_with_transcript(session: VideoSession, attendees: list, lines: list[Line]) -> VideoSession:
    """``session`` ENDED, with ``attendees`` (users) as its participants and ``lines`` stored."""
    from sessions_app.services import participant_upsert

    for user in attendees:
        participant_upsert(session=session, user=user)
    session.status = VideoSession.Status.ENDED
    session.save(update_fields=["status"])
    store_transcript(session, lines)
    return session
