"""The finals a process buffers while the database is away are bounded."""

from __future__ import annotations

from typing import Any

from transcription.live.batching import RunBatcher
from transcription.live.store import FinalSegment


def _final(n: int) -> FinalSegment:
    return FinalSegment(
        session_id=1,
        run_id=1,
        utterance_id=f"u{n}",
        text=f"utterance {n}",
        language="en",
        start_offset=float(n),
        end_offset=n + 0.9,
        speaker_identity=None,
        speaker_name=None,
    )


def test_past_the_bound_the_oldest_pending_finals_are_dropped_and_counted(settings: Any) -> None:
    settings.TRANSCRIPTION_MAX_PENDING_FINALS = 100
    batcher = RunBatcher()
    for n in range(150):
        batcher.add_final(_final(n))
    assert len(batcher.pending) == 100
    assert batcher.dropped == 50
    assert [key[1] for key in batcher.pending] == [f"u{n}" for n in range(50, 150)]


def test_a_newer_version_of_a_pending_final_replaces_it_without_dropping(settings: Any) -> None:
    settings.TRANSCRIPTION_MAX_PENDING_FINALS = 100
    batcher = RunBatcher()
    for n in range(100):
        batcher.add_final(_final(n))
    batcher.add_final(_final(0))
    assert len(batcher.pending) == 100 and batcher.dropped == 0
