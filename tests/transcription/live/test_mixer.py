import numpy as np
import numpy.typing as npt
import pytest

from transcription.live.audio.mixer import Mixer, MixTick

RATE = 16000
TICK = 320  # 20 ms at 16 kHz, the mixer's default tick
JITTER = 1600  # 100 ms, the default jitter allowance

Samples = npt.NDArray[np.int16]


def sine(seconds: float, *, amplitude: float, freq: float = 440.0, phase: float = 0.0) -> Samples:
    t = np.arange(round(seconds * RATE)) / RATE
    return np.rint(amplitude * 32767 * np.sin(2 * np.pi * freq * t + phase)).astype(np.int16)


def noise(seconds: float, *, rms_dbfs: float, seed: int = 0) -> Samples:
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(round(seconds * RATE)) * 32768 * 10 ** (rms_dbfs / 20)
    return np.clip(np.rint(values), -32768, 32767).astype(np.int16)


def pcm(samples: Samples) -> bytes:
    return samples.astype("<i2").tobytes()


def samples_of(tick: MixTick) -> Samples:
    return np.frombuffer(tick.pcm, dtype="<i2")


def run_in_lockstep(mixer: Mixer, streams: dict[str, Samples]) -> list[MixTick]:
    """Each source pushes one tick per tick after pre-filling the jitter allowance."""
    length = min(len(s) for s in streams.values())
    for name, stream in streams.items():
        mixer.push(name, pcm(stream[:JITTER]))
    ticks = []
    for offset in range(JITTER, length + JITTER, TICK):
        ticks.append(mixer.tick())
        for name, stream in streams.items():
            chunk = stream[offset : offset + TICK]
            if len(chunk):
                mixer.push(name, pcm(chunk))
    return ticks


def test_output_length_is_exactly_one_tick() -> None:
    mixer = Mixer()
    rng = np.random.default_rng(1)
    for index in range(200):
        if index % 3:
            size = int(rng.integers(1, 1700))
            mixer.push("a", pcm(noise(size / RATE, rms_dbfs=-20, seed=index)))
        tick = mixer.tick()
        assert len(tick.pcm) == TICK * 2
        assert tick.start == pytest.approx(index * 0.02)
    assert mixer.stream_seconds == pytest.approx(200 * 0.02)


def test_silence_when_nobody_sends() -> None:
    mixer = Mixer()
    tick = mixer.tick()
    assert tick.pcm == bytes(TICK * 2)
    assert tick.active == {}

    # A registered source still filling its jitter buffer contributes nothing yet.
    mixer.push("a", pcm(sine(0.05, amplitude=0.5)))
    tick = mixer.tick()
    assert tick.pcm == bytes(TICK * 2)
    assert tick.active == {}


def test_single_source_passes_through_unchanged() -> None:
    source = noise(2.0, rms_dbfs=-10, seed=2)  # loud enough to touch full scale
    mixer = Mixer()
    ticks = run_in_lockstep(mixer, {"a": source})
    out = np.concatenate([samples_of(t) for t in ticks])
    np.testing.assert_array_equal(out[: len(source)], source)


def test_quiet_sources_mix_to_the_exact_sum() -> None:
    a = sine(1.0, amplitude=0.3, freq=300)
    b = noise(1.0, rms_dbfs=-25, seed=3)
    ticks = run_in_lockstep(Mixer(), {"a": a, "b": b})
    out = np.concatenate([samples_of(t) for t in ticks])[: len(a)]
    np.testing.assert_array_equal(out, a.astype(np.int32) + b)


def test_two_loud_sources_never_clip_or_wrap() -> None:
    a = sine(2.0, amplitude=0.95, freq=220)
    b = sine(2.0, amplitude=0.95, freq=330)
    ticks = run_in_lockstep(Mixer(), {"a": a, "b": b})
    out = np.concatenate([samples_of(t) for t in ticks])[: len(a)].astype(np.float64)
    ideal = a.astype(np.float64) + b

    # Wrapping would flip signs; the sum peaks near 62000, far outside int16.
    loud = np.abs(ideal) > 2000
    assert np.all(np.sign(out[loud]) == np.sign(ideal[loud]))
    # Hard clipping would flatten every peak; scaling keeps the waveform's shape.
    assert np.corrcoef(out, ideal)[0, 1] > 0.999
    assert np.count_nonzero(np.abs(out) >= 32767) < len(ticks)
    assert np.abs(out).max() > 20000  # scaled down, not muted


def test_gain_recovers_after_overlap_and_a_lone_source_is_exact_again() -> None:
    a = sine(2.0, amplitude=0.9, freq=200)
    b = np.concatenate([sine(0.5, amplitude=0.9, freq=250), np.zeros(RATE * 3 // 2, np.int16)])
    mixer = Mixer()
    ticks = run_in_lockstep(mixer, {"a": a, "b": b})
    out = np.concatenate([samples_of(t) for t in ticks])[: len(a)]

    overlap = out[: RATE // 2]
    assert np.abs(overlap.astype(np.int32)).max() <= 32767
    # Release takes 0.2 s; after it, the remaining mix is a plus digital silence: exact.
    np.testing.assert_array_equal(out[RATE:], a[RATE:])


def play_arrivals(mixer: Mixer, arrivals: list[tuple[float, Samples]], seconds: float) -> Samples:
    """Tick every 20 ms of simulated wall time, pushing each frame once it has arrived."""
    out: list[Samples] = []
    next_frame = 0
    for index in range(round(seconds / 0.02)):
        now = index * 0.02
        while next_frame < len(arrivals) and arrivals[next_frame][0] <= now:
            mixer.push("a", pcm(arrivals[next_frame][1]))
            next_frame += 1
        out.append(samples_of(mixer.tick()))
    return np.concatenate(out)


def test_jitter_buffer_absorbs_bursty_arrival() -> None:
    rng = np.random.default_rng(4)
    source = noise(6.0, rms_dbfs=-20, seed=5)
    # 20-40 ms frames, sent when captured, delayed 0-80 ms, delivered in order (WebSocket):
    # frame plus jitter stays within the 100 ms allowance plus one tick.
    arrivals: list[tuple[float, Samples]] = []
    position, last_arrival = 0, 0.0
    while position < len(source):
        size = int(rng.choice([320, 640]))
        frame = source[position : position + size]
        position += size
        last_arrival = max(last_arrival, position / RATE + rng.uniform(0.0, 0.08))
        arrivals.append((last_arrival, frame))

    audio = play_arrivals(Mixer(), arrivals, 7.0)
    first = int(np.flatnonzero(audio)[0] - np.flatnonzero(source)[0])
    # After the initial buffering, the source plays back-to-back: no inserted gaps.
    np.testing.assert_array_equal(audio[first : first + len(source)], source)


def test_network_stall_costs_a_short_gap_and_loses_no_audio() -> None:
    source = noise(3.0, rms_dbfs=-20, seed=9)
    frames = [source[start : start + TICK] for start in range(0, len(source), TICK)]

    def arrival(index: int) -> float:
        # Frames are captured every 20 ms; those sent during a 300 ms stall land together after.
        captured = (index + 1) * 0.02
        return 1.3 if 1.0 <= captured < 1.3 else captured

    arrivals = [(arrival(index), frame) for index, frame in enumerate(frames)]

    audio = play_arrivals(Mixer(), arrivals, 4.0)
    ticks = audio.reshape(-1, TICK)
    playing = np.flatnonzero(np.any(ticks != 0, axis=1))
    played = ticks[playing[0] : playing[-1] + 1]
    silent_ticks = np.flatnonzero(~np.any(played != 0, axis=1))
    # The buffered ~100 ms absorbs part of the stall; the rest is one gap (~220 ms), after which
    # the held-back frames play in full.
    assert 8 <= len(silent_ticks) <= 13
    assert np.all(np.diff(silent_ticks) == 1)
    np.testing.assert_array_equal(played[np.any(played != 0, axis=1)].ravel(), source)


def test_underrun_yields_silence_and_rearms_the_jitter_buffer() -> None:
    mixer = Mixer()
    tone = sine(1.0, amplitude=0.5)
    mixer.push("a", pcm(tone[:JITTER]))
    played = [samples_of(mixer.tick()) for _ in range(5)]
    np.testing.assert_array_equal(np.concatenate(played), tone[:JITTER])

    assert mixer.tick().pcm == bytes(TICK * 2)
    mixer.push("a", pcm(tone[JITTER : JITTER + 2 * TICK]))
    # Two ticks' worth is less than the jitter allowance, so the source keeps waiting.
    assert mixer.tick().pcm == bytes(TICK * 2)
    mixer.push("a", pcm(tone[JITTER + 2 * TICK : 2 * JITTER]))
    np.testing.assert_array_equal(samples_of(mixer.tick()), tone[JITTER : JITTER + TICK])


def test_overrun_drops_oldest_and_bounds_latency() -> None:
    mixer = Mixer(max_buffer_seconds=1.0)
    backlog = noise(3.0, rms_dbfs=-20, seed=6)
    mixer.push("a", pcm(backlog))

    out = np.concatenate([samples_of(mixer.tick()) for _ in range(50)])
    # Only the newest second was kept: playback resumes 2 s in and the backlog drains in 1 s.
    np.testing.assert_array_equal(out, backlog[2 * RATE :])
    assert mixer.tick().pcm == bytes(TICK * 2)


def test_overrun_across_pushes_drops_only_the_oldest_samples() -> None:
    mixer = Mixer(max_buffer_seconds=1.0)
    backlog = noise(1.3, rms_dbfs=-20, seed=10)
    mixer.push("a", pcm(backlog[: RATE * 8 // 10]))
    mixer.push("a", pcm(backlog[RATE * 8 // 10 :]))

    out = np.concatenate([samples_of(mixer.tick()) for _ in range(50)])
    np.testing.assert_array_equal(out, backlog[RATE * 3 // 10 :])


def test_voice_activity_marks_only_the_speaking_source() -> None:
    a = sine(1.0, amplitude=0.3)  # about -13 dBFS
    b = noise(1.0, rms_dbfs=-70, seed=7)  # a quiet room
    ticks = run_in_lockstep(Mixer(), {"a": a, "b": b})
    for tick in ticks[:-1]:
        assert set(tick.active) == {"a"}
        assert tick.active["a"] == pytest.approx(0.3 / np.sqrt(2), rel=0.01)


def test_voice_activity_hangover_bridges_short_pauses_then_ends() -> None:
    silence = np.zeros(RATE, np.int16)
    speech = np.concatenate(
        [
            sine(0.5, amplitude=0.3),
            silence[: RATE // 10],
            sine(0.3, amplitude=0.3),
            silence,
        ]
    )
    ticks = run_in_lockstep(Mixer(), {"a": speech})
    speaking = ["a" in t.active for t in ticks]
    # 0.5 s + 0.1 s pause + 0.3 s: one unbroken span of 45 ticks, then 0.3 s of hangover.
    assert speaking[:60] == [True] * 60
    assert not any(speaking[61:])


def test_steady_background_noise_stops_counting_as_speech() -> None:
    fan = noise(12.0, rms_dbfs=-35, seed=8)  # louder than the fixed -45 dBFS threshold
    speech = fan.astype(np.int32)
    speech[10 * RATE : 11 * RATE] += sine(1.0, amplitude=0.3)
    ticks = run_in_lockstep(Mixer(), {"a": speech.astype(np.int16)})
    speaking = ["a" in t.active for t in ticks]
    assert speaking[0]  # until the floor has adapted, loud noise counts
    assert not any(speaking[8 * 50 : 10 * 50])
    assert all(speaking[10 * 50 : 11 * 50])


def test_removed_source_stops_contributing_and_can_rejoin() -> None:
    mixer = Mixer()
    mixer.push("a", pcm(sine(0.5, amplitude=0.5)))
    mixer.push("b", pcm(sine(0.5, amplitude=0.5, freq=300)))
    assert mixer.sources == ("a", "b")
    mixer.remove("a")
    mixer.remove("nobody")
    assert mixer.sources == ("b",)
    b_only = sine(0.5, amplitude=0.5, freq=300)
    np.testing.assert_array_equal(samples_of(mixer.tick()), b_only[:TICK])

    mixer.push("a", pcm(sine(0.05, amplitude=0.5)))
    # Rejoined with a fresh jitter buffer: 50 ms is not enough to play yet.
    np.testing.assert_array_equal(samples_of(mixer.tick()), b_only[TICK : 2 * TICK])


def test_trailing_odd_byte_is_ignored() -> None:
    mixer = Mixer(jitter_seconds=0.02)
    tone = sine(0.02, amplitude=0.5)
    mixer.push("a", pcm(tone) + b"\x7f")
    np.testing.assert_array_equal(samples_of(mixer.tick()), tone)
    assert mixer.tick().pcm == bytes(TICK * 2)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tick_seconds": 0.0201},  # not a whole number of samples
        {"tick_seconds": 0.0},
        {"jitter_seconds": -0.1},
        {"jitter_seconds": 1.0, "max_buffer_seconds": 1.0},  # could never start playing
    ],
)
def test_invalid_configuration_is_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Mixer(**kwargs)  # type: ignore[arg-type]


def _marker_delay(stall_level_dbfs: float) -> float:
    """Seconds between a loud marker's arrival and its playback, 3 s after a 300 ms stall."""
    background = noise(6.0, rms_dbfs=stall_level_dbfs, seed=4)
    marker_at = round(4.5 * RATE)
    background[marker_at : marker_at + TICK] = sine(TICK / RATE, amplitude=0.8)
    frames = [background[start : start + TICK] for start in range(0, len(background), TICK)]

    def arrival(index: int) -> float:
        captured = (index + 1) * 0.02
        return 1.3 if 1.0 <= captured < 1.3 else captured

    audio = play_arrivals(Mixer(), [(arrival(i), f) for i, f in enumerate(frames)], 7.0)
    played_at = int(np.flatnonzero(np.abs(audio) > 20000)[0])
    return (played_at - marker_at) / RATE - 0.02


def test_quiet_backlog_after_a_stall_is_trimmed_back_to_the_jitter_allowance() -> None:
    # Without trimming, the ~220 ms gap would delay everything after it for good.
    assert _marker_delay(-70) <= 0.1 + 0.04


def test_speech_backlog_is_never_trimmed() -> None:
    # Loud audio keeps its delay (no speech is cut); it catches up in the next pause instead.
    assert _marker_delay(-20) >= 0.25


def test_quiet_backlog_is_trimmed_to_the_allowance_less_one_frame() -> None:
    # 40 ms frames, 40 ms allowance (the page's frame size): once the stall's backlog is
    # trimmed, a frame plays at the first tick after it lands — the allowance is what the
    # source holds right after a frame lands, not at its low point before the next one.
    frame = 2 * TICK
    background = noise(6.0, rms_dbfs=-70, seed=4)
    marker_at = round(4.48 * RATE)
    background[marker_at : marker_at + frame] = sine(frame / RATE, amplitude=0.8)
    frames = [background[start : start + frame] for start in range(0, len(background), frame)]

    def arrival(index: int) -> float:
        captured = (index + 1) * 0.04
        return 1.3 if 1.0 <= captured < 1.3 else captured

    audio = play_arrivals(
        Mixer(jitter_seconds=0.04), [(arrival(i), f) for i, f in enumerate(frames)], 7.0
    )
    played_at = int(np.flatnonzero(np.abs(audio) > 20000)[0])
    landed_at = marker_at + frame
    assert (played_at - landed_at) / RATE <= 0.02


@pytest.mark.parametrize("phase", [0.0, 0.004, 0.009, 0.013, 0.017])
@pytest.mark.parametrize("lateness", [0.0, 0.07])
def test_quiet_frames_that_keep_within_the_allowance_are_never_trimmed(
    phase: float, lateness: float
) -> None:
    # 40 ms frames (the page's) and the default 100 ms allowance, which is not a whole number
    # of frames: a source primes with three frames (120 ms). Quiet audio arriving on time, or
    # late by less than that less one frame (80 ms), must reach the stream whole: neither the
    # priming's extra 20 ms nor the lateness it absorbs is surplus to trim.
    frame = 2 * TICK
    source = noise(6.0, rms_dbfs=-70, seed=6)
    rng = np.random.default_rng(round(phase * 1000))
    arrivals: list[tuple[float, Samples]] = []
    last_arrival = 0.0
    for index, start in enumerate(range(0, len(source), frame)):
        late = lateness if index % 7 == 3 else rng.uniform(0.0, lateness / 4)
        # In order, as over a WebSocket: a late frame holds back the ones behind it.
        last_arrival = max(last_arrival, phase + (start + frame) / RATE + late)
        arrivals.append((last_arrival, source[start : start + frame]))

    audio = play_arrivals(Mixer(), arrivals, 7.0)
    first = int(np.flatnonzero(audio)[0] - np.flatnonzero(source)[0])
    np.testing.assert_array_equal(audio[first : first + len(source)], source)


@pytest.mark.parametrize("joins_at_tick", range(13))
def test_a_source_joining_a_running_stream_keeps_its_on_time_quiet_audio(
    joins_at_tick: int,
) -> None:
    # The stream has been ticking for a while when the source's first frame lands, at each
    # tick of a trim window (12 ticks) and one more. Its frames then come on time. At the tick
    # it primes it still holds all it primed with: a window ending there, before another frame
    # has landed, must not take that for surplus and cut on-time audio.
    frame = 2 * TICK
    source = noise(3.0, rms_dbfs=-70, seed=7)
    joined = 1.0 + joins_at_tick * 0.02 + 0.001
    arrivals = [
        (joined + (start + frame) / RATE, source[start : start + frame])
        for start in range(0, len(source), frame)
    ]
    audio = play_arrivals(Mixer(), arrivals, 5.0)
    first = int(np.flatnonzero(audio)[0] - np.flatnonzero(source)[0])
    np.testing.assert_array_equal(audio[first : first + len(source)], source)


def test_every_sample_pushed_is_played_or_trimmed_and_the_gap_is_counted() -> None:
    # Quiet frames on time, but those captured in [2.0, 2.15) s land together at 2.155 s: the
    # source runs dry (one gap), then holds what the stall delayed, which is trimmed. What the
    # bank reports must add up: samples played + samples trimmed = samples pushed.
    frame = 2 * TICK
    source = noise(5.0, rms_dbfs=-55, seed=11)
    source[source == 0] = 1  # every sample that plays is seen in the output
    arrivals = []
    for start in range(0, len(source), frame):
        captured = (start + frame) / RATE
        landed = 2.15 if 2.0 <= captured < 2.15 else captured
        arrivals.append((landed + 0.005, source[start : start + frame]))
    mixer = Mixer()
    assert mixer.bank.drain_counts() == (0, 0.0)

    audio = play_arrivals(mixer, arrivals, 6.0)

    gaps, trimmed_seconds = mixer.bank.drain_counts()
    trimmed = round(trimmed_seconds * RATE)
    assert gaps == 1
    assert trimmed >= TICK
    assert np.count_nonzero(audio) + trimmed == len(source)
    assert mixer.bank.drain_counts() == (0, 0.0)
