"""transcription.live.audio.bank: one bank ticking many runs gives what each run's mixer alone
would, tick by tick and bit for bit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pytest

from transcription.live.audio import Mixer, MixerBank, MixTick

RATE = 16000
TICK = 320

Samples = npt.NDArray[np.int16]


@dataclass
class Scenario:
    """What happens before each tick: ``(run, source, pcm)`` pushes (``pcm`` None: the source
    leaves) and the runs that start ticking; ``closes`` maps a tick to runs whose mixer closes
    before it (a new mixer, reusing its slot in the bank, takes its sources from then on)."""

    runs: int
    ticks: int
    pushes: list[list[tuple[int, str, bytes | None]]] = field(default_factory=list)
    starts: dict[int, list[int]] = field(default_factory=dict)
    closes: dict[int, list[int]] = field(default_factory=dict)


def _signal(rng: np.random.Generator, seconds: float) -> Samples:
    """Segments of digital silence, room noise, speech-like tones and loud, clipping tones."""
    parts: list[Samples] = []
    total = round(seconds * RATE)
    while sum(len(p) for p in parts) < total:
        length = int(rng.integers(RATE // 5, 3 * RATE // 2))
        kind = rng.choice(["silence", "room", "speech", "loud"], p=[0.2, 0.3, 0.3, 0.2])
        if kind == "silence":
            part = np.zeros(length)
        elif kind == "room":
            part = rng.standard_normal(length) * 32768 * 10 ** (rng.uniform(-80, -50) / 20)
        else:
            amplitude = rng.uniform(0.85, 1.0) if kind == "loud" else rng.uniform(0.05, 0.4)
            t = np.arange(length) / RATE
            part = amplitude * 32767 * np.sin(2 * np.pi * rng.uniform(100, 900) * t)
        parts.append(np.clip(np.rint(part), -32768, 32767).astype(np.int16))
    return np.concatenate(parts)[:total]


def scenario(seed: int, *, runs: int = 7, ticks: int = 600) -> Scenario:
    rng = np.random.default_rng(seed)
    plan = Scenario(runs=runs, ticks=ticks, pushes=[[] for _ in range(ticks)])
    seconds = ticks * TICK / RATE
    burst_done = False
    for run in range(runs):
        plan.starts.setdefault(int(rng.integers(0, 15)), []).append(run)
        for index in range(int(rng.integers(1, 5))):
            source = f"r{run}-s{index}"
            audio = _signal(rng, seconds + 1)
            position, last_arrival = 0, 0.0
            present = True
            while position < len(audio):
                size = int(rng.integers(320, 1601))
                frame = audio[position : position + size]
                position += size
                delay = rng.uniform(0.0, 0.12) if rng.random() > 0.01 else rng.uniform(0.2, 0.5)
                last_arrival = max(last_arrival, position / RATE + delay)
                at = int(last_arrival * RATE) // TICK
                if at >= ticks:
                    break
                if rng.random() < 0.004:
                    # Leaves (tab closed, muted) and comes back a few frames later.
                    plan.pushes[at].append((run, source, None))
                    present = False
                elif not present and rng.random() < 0.2:
                    present = True
                if not burst_done and at > ticks // 3:
                    # A backlog arrives at once: past max_buffer_seconds, the oldest is dropped.
                    plan.pushes[at].append((run, source, audio[: 2 * RATE].tobytes()))
                    burst_done = True
                if present:
                    # An odd byte now and then: half a sample, ignored.
                    tail = b"\x01" if rng.random() < 0.02 else b""
                    plan.pushes[at].append((run, source, frame.tobytes() + tail))
    plan.closes[ticks // 2] = [0]
    return plan


Ticked = list[list[MixTick | None]]


def play(
    plan: Scenario,
    make: Callable[[], Mixer],
    tick: Callable[[list[Mixer], set[int]], dict[int, MixTick]],
) -> Ticked:
    """Every run's MixTick (None before it starts) for each tick of ``plan``."""
    mixers = [make() for _ in range(plan.runs)]
    # Which mixer carries each run of the plan: a closed run's sources move to its successor.
    carrier = list(range(plan.runs))
    started: set[int] = set()
    out: Ticked = []
    for at in range(plan.ticks):
        for run in plan.closes.get(at, []):
            mixers[carrier[run]].close()
            started.discard(carrier[run])
            mixers.append(make())
            carrier[run] = len(mixers) - 1
            started.add(carrier[run])
        started.update(carrier[run] for run in plan.starts.get(at, []))
        for run, source, pcm in plan.pushes[at]:
            if pcm is None:
                mixers[carrier[run]].remove(source)
            else:
                mixers[carrier[run]].push(source, pcm)
        ticked = tick(mixers, started)
        out.append([ticked.get(run) for run in range(len(mixers))])
    return out


def shared_bank(plan: Scenario) -> Ticked:
    bank = MixerBank()

    def tick(mixers: list[Mixer], started: set[int]) -> dict[int, MixTick]:
        for run in started:
            bank.start(mixers[run])
        ticked = bank.tick()
        return {run: ticked[mixers[run]] for run in started}

    return play(plan, lambda: Mixer(bank=bank), tick)


def private_banks(plan: Scenario, make: Callable[[], Mixer] = Mixer) -> Ticked:
    def tick(mixers: list[Mixer], started: set[int]) -> dict[int, MixTick]:
        return {run: mixers[run].tick() for run in started}

    return play(plan, make, tick)


@pytest.mark.parametrize("seed", [1, 2])
def test_a_shared_bank_ticks_each_run_as_its_own_mixer_would(seed: int) -> None:
    plan = scenario(seed)
    shared, alone = shared_bank(plan), private_banks(plan)
    compared = 0
    for at, (mixed, expected) in enumerate(zip(shared, alone, strict=True)):
        for run, (got, want) in enumerate(zip(mixed, expected, strict=True)):
            assert got == want, (at, run)
            if want is not None:
                # dict equality ignores order; the speaker timeline sees arrival order.
                assert list(got.active) == list(want.active), (at, run)  # type: ignore[union-attr]
                compared += 1
    assert compared > plan.runs * plan.ticks * 0.9
    # The scenario reaches every branch: clipping, voice activity, leaving sources.
    ticks = [t for row in alone for t in row if t is not None]
    assert any(t.active for t in ticks)
    assert any(np.abs(np.frombuffer(t.pcm, "<i2")).max() > 32000 for t in ticks)


def test_only_started_mixers_are_ticked() -> None:
    bank = MixerBank()
    ticked, idle = Mixer(bank=bank), Mixer(bank=bank)
    idle.push("a", bytes(TICK * 2 * 10))
    bank.start(ticked)
    assert set(bank.tick()) == {ticked}
    assert idle.stream_seconds == 0.0
    bank.stop(ticked)
    assert bank.tick() == {}


def test_a_shared_mixer_cannot_tick_alone_and_a_closed_one_frees_its_rows() -> None:
    bank = MixerBank()
    first, second = Mixer(bank=bank), Mixer(bank=bank)
    with pytest.raises(RuntimeError):
        first.tick()
    for index in range(20):  # past the initial rows: the buffer grows
        first.push(f"s{index}", bytes(TICK * 2))
    second.close()
    second.close()
    assert bank.members == 1
    first.close()
    third = Mixer(bank=bank, jitter_seconds=0.2)  # an empty bank takes a new configuration
    with pytest.raises(ValueError):
        Mixer(bank=bank)
    third.push("a", bytes(TICK * 2))
    assert third.tick().pcm == bytes(TICK * 2)


def test_pushes_after_close_are_ignored() -> None:
    mixer = Mixer()
    mixer.close()
    mixer.push("a", bytes(TICK * 2))
    assert mixer.sources == ()
