import pytest

from transcription.live.attribution import SpeakerTimeline

TICK = 0.02


def feed_ticks(timeline: SpeakerTimeline, speaker: str, start: float, end: float) -> None:
    """What the mixer does: one activity per 20 ms tick, boundaries computed as it computes them."""
    for index in range(round(start / TICK), round(end / TICK)):
        timeline.add_activity(speaker, index * TICK, index * TICK + TICK)


def interval_count(timeline: SpeakerTimeline) -> int:
    return sum(len(track.starts) for track in timeline._tracks.values())


def test_speaker_with_most_overlap_wins() -> None:
    timeline = SpeakerTimeline()
    timeline.add_activity("alice", 0.0, 2.0)
    timeline.add_activity("bob", 1.5, 5.0)
    assert timeline.attribute(1.0, 3.0) == "bob"  # bob 1.5 s, alice 1.0 s
    assert timeline.attribute(0.0, 1.8) == "alice"


def test_nobody_speaking_gives_none() -> None:
    timeline = SpeakerTimeline()
    assert timeline.attribute(0.0, 10.0) is None
    timeline.add_activity("alice", 0.0, 1.0)
    assert timeline.attribute(1.0, 3.0) is None  # activity is [0, 1): touching is not speaking
    assert timeline.attribute(5.0, 6.0) is None


def test_tie_goes_to_who_started_speaking_first_inside_the_window() -> None:
    timeline = SpeakerTimeline()
    timeline.add_activity("zoe", 0.0, 1.0)
    timeline.add_activity("adam", 3.0, 4.0)
    assert timeline.attribute(0.0, 5.0) == "zoe"

    # zoe spoke long before, but inside the window adam starts first.
    timeline.add_activity("zoe", 21.5, 22.5)
    timeline.add_activity("adam", 21.0, 22.0)
    assert timeline.attribute(20.0, 23.0) == "adam"
    # Speaking before the window does not count as starting first.
    timeline.add_activity("zoe", 28.0, 31.0)
    timeline.add_activity("adam", 30.5, 31.5)
    assert timeline.attribute(30.0, 32.0) == "zoe"


def test_exact_tie_is_broken_by_name_so_the_answer_is_stable() -> None:
    timeline = SpeakerTimeline()
    timeline.add_activity("zoe", 0.0, 1.0)
    timeline.add_activity("adam", 0.0, 1.0)
    assert timeline.attribute(0.0, 1.0) == "adam"


def test_tie_with_float_noise_still_prefers_the_earlier_speaker() -> None:
    timeline = SpeakerTimeline()
    feed_ticks(timeline, "bob", 2.0, 3.0)
    timeline.add_activity("alice", 0.0, 1.0)
    assert timeline.attribute(0.0, 4.0) == "alice"


def test_weight_scales_speaking_time() -> None:
    timeline = SpeakerTimeline()
    timeline.add_activity("loud", 0.0, 1.0, weight=0.5)
    timeline.add_activity("quiet", 0.0, 1.5, weight=0.1)
    assert timeline.attribute(0.0, 2.0) == "loud"
    with pytest.raises(ValueError):
        timeline.add_activity("x", 0.0, 1.0, weight=-1.0)


def test_zero_length_utterance_uses_a_tolerance_window() -> None:
    timeline = SpeakerTimeline()
    timeline.add_activity("alice", 4.8, 4.9)
    timeline.add_activity("bob", 5.1, 5.3)
    assert timeline.attribute(5.0, 5.0) == "bob"
    assert timeline.attribute(4.9, 4.9) == "alice"  # alice 0.1 s inside [4.65, 5.15], bob 0.05 s
    assert timeline.attribute(6.0, 6.0) is None


def test_active_speakers_are_open_until_the_set_changes() -> None:
    timeline = SpeakerTimeline()
    timeline.set_active_speakers(["alice"], at=1.0)
    # Still open: alice counts up to the end of any later window.
    assert timeline.attribute(2.0, 3.0) == "alice"
    assert timeline.attribute(0.0, 0.9) is None
    # Repeating a speaker who is already active keeps their original start.
    timeline.set_active_speakers(["alice"], at=3.5)
    assert timeline.attribute(2.0, 3.0) == "alice"

    timeline.set_active_speakers(["alice", "bob"], at=4.0)
    timeline.set_active_speakers(["bob"], at=5.0)  # alice closed at 5.0, bob stays open from 4.0
    assert timeline.attribute(5.0, 6.0) == "bob"
    assert timeline.attribute(3.0, 5.0) == "alice"  # alice 2.0 s, bob 1.0 s

    timeline.set_active_speakers([], at=7.0)
    assert timeline.attribute(7.5, 9.0) is None
    assert timeline.attribute(5.0, 9.0) == "bob"


def test_active_speaker_events_and_mixer_activity_share_one_timeline() -> None:
    timeline = SpeakerTimeline()
    timeline.set_active_speakers(["alice"], at=0.0)
    feed_ticks(timeline, "bob", 1.0, 4.0)
    timeline.set_active_speakers([], at=2.0)
    assert timeline.attribute(0.0, 4.0) == "bob"  # bob 3.0 s, alice 2.0 s
    assert timeline.attribute(0.0, 1.5) == "alice"


def test_adjacent_activity_merges_so_ten_minutes_of_ticks_stay_small() -> None:
    timeline = SpeakerTimeline()
    # Ten minutes of alternating 10 s turns, fed tick by tick as the mixer does.
    for turn in range(60):
        feed_ticks(timeline, "alice" if turn % 2 == 0 else "bob", turn * 10.0, turn * 10.0 + 10.0)
    assert interval_count(timeline) == 60
    assert timeline.attribute(12.0, 18.0) == "bob"
    assert timeline.attribute(595.0, 600.0) == "bob"

    steady = SpeakerTimeline()
    feed_ticks(steady, "alice", 0.0, 600.0)
    assert interval_count(steady) == 1


def test_out_of_order_and_overlapping_activity_is_merged() -> None:
    timeline = SpeakerTimeline()
    timeline.add_activity("alice", 2.0, 3.0)
    timeline.add_activity("alice", 0.0, 1.0)
    timeline.add_activity("alice", 0.5, 2.5)
    assert interval_count(timeline) == 1
    # Overlapping reports add up: alice has 1.0 + 2.0 + 1.0 weighted seconds over [0, 3), which
    # beats aaron's 3.0 (an exact tie would go to aaron by name).
    timeline.add_activity("aaron", 0.0, 3.0)
    assert timeline.attribute(0.0, 3.0) == "alice"


def test_prune_forgets_old_activity_and_bounds_memory() -> None:
    timeline = SpeakerTimeline()
    for second in range(100):
        timeline.add_activity(f"speaker-{second % 7}", second, second + 0.5)
    timeline.prune(before=90.0)
    assert interval_count(timeline) == 10
    assert timeline.attribute(0.0, 89.0) is None
    assert timeline.attribute(95.0, 95.6) == "speaker-4"


def test_prune_keeps_speakers_who_are_still_active() -> None:
    timeline = SpeakerTimeline()
    timeline.set_active_speakers(["alice"], at=0.0)
    timeline.prune(before=100.0)
    assert timeline.attribute(200.0, 201.0) == "alice"


def test_retention_prunes_automatically() -> None:
    timeline = SpeakerTimeline(retention_seconds=60.0)
    # Two hours of speech with a pause every second, so nothing merges.
    for second in range(7200):
        timeline.add_activity("alice", second, second + 0.5)
    assert interval_count(timeline) <= 60 * 1.1 + 1
    assert timeline.attribute(7100.0, 7199.0) == "alice"
    assert timeline.attribute(0.0, 7000.0) is None
