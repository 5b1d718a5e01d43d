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
