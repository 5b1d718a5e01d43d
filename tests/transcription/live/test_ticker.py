"""transcription.live.ticker: one clock per loop; a late tick lets in-flight frames land first."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from transcription.live.audio import Mixer, MixerBank, MixTick
from transcription.live.ticker import Ticker


class Recorder:
    """A pipeline that records, at each tick, whether the frame in flight had landed."""

    def __init__(self, landed: list[bool]) -> None:
        self.landed = landed
        self.seen: list[bool] = []
        self.mixer = Mixer(bank=MixerBank.current())

    async def on_tick(self, mixed: MixTick) -> None:
        self.seen.append(self.landed[0])

    def on_tick_failed(self, exc: BaseException) -> None:
        raise AssertionError(f"tick failed: {exc!r}")


def _hops(loop: asyncio.AbstractEventLoop, n: int, done: Any) -> None:
    """``done`` after ``n`` loop iterations, as a frame crossing socket -> consumer -> run."""
    if n == 0:
        done()
    else:
        loop.call_soon(_hops, loop, n - 1, done)


@pytest.mark.asyncio
@pytest.mark.parametrize(("yields", "sees_the_frame"), [(0, False), (12, True)])
async def test_the_first_tick_after_a_stall_sees_frames_read_during_it(
    settings, yields: int, sees_the_frame: bool
) -> None:
    settings.TRANSCRIPTION_TICK_SECONDS = 0.02
    settings.TRANSCRIPTION_CATCH_UP_YIELDS = yields
    loop = asyncio.get_running_loop()
    landed = [False]
    pipeline = Recorder(landed)
    ticker = Ticker()
    ticker.add(pipeline)
    try:
        await asyncio.sleep(0.1)  # ticking on time
        assert len(pipeline.seen) >= 2 and not any(pipeline.seen)
        ticks_before = 0

        def stall() -> None:
            nonlocal ticks_before
            ticks_before = len(pipeline.seen)
            time.sleep(0.1)  # the loop is busy: the next ticks are late
            # A frame that reached its socket meanwhile, five iterations from its mixer.
            _hops(loop, 5, lambda: landed.__setitem__(0, True))

        loop.call_soon(stall)
        async with asyncio.timeout(5):
            while not ticks_before or len(pipeline.seen) == ticks_before or not landed[0]:
                await asyncio.sleep(0.005)
        assert pipeline.seen[ticks_before] is sees_the_frame, (ticks_before, pipeline.seen)
    finally:
        ticker.discard(pipeline)
        await asyncio.sleep(0.05)


@pytest.mark.asyncio
async def test_one_clock_ticks_every_pipeline_of_the_loop(settings) -> None:
    settings.TRANSCRIPTION_TICK_SECONDS = 0.01
    ticker = Ticker()
    pipelines = [Recorder([False]) for _ in range(3)]
    for pipeline in pipelines:
        ticker.add(pipeline)
    await asyncio.sleep(0.2)
    for pipeline in pipelines:
        ticker.discard(pipeline)
    counts = [len(p.seen) for p in pipelines]
    assert min(counts) >= 10, counts
    assert max(counts) - min(counts) <= 1, counts


class Listener:
    """A pipeline that records, at each tick, whether its mix carried any audio."""

    def __init__(self) -> None:
        self.mixer = Mixer(bank=MixerBank.current())
        self.heard: list[bool] = []

    async def on_tick(self, mixed: MixTick) -> None:
        self.heard.append(any(mixed.pcm))

    def on_tick_failed(self, exc: BaseException) -> None:
        raise AssertionError(f"tick failed: {exc!r}")


@pytest.mark.asyncio
async def test_gaps_and_trimmed_audio_reach_the_metrics(settings) -> None:
    from prometheus_client import REGISTRY

    def sample(name: str) -> float:
        return REGISTRY.get_sample_value(name) or 0.0

    async def until(condition: Any) -> None:
        async with asyncio.timeout(5):
            while not condition():
                await asyncio.sleep(0.01)

    settings.TRANSCRIPTION_TICK_SECONDS = 0.02
    gaps_before = sample("rooms_mixer_gaps_total")
    trimmed_before = sample("rooms_mixer_trimmed_seconds_total")
    pipeline = Listener()
    ticker = Ticker()
    ticker.add(pipeline)
    quiet = (b"\x03\x00") * 640  # 40 ms at -80 dBFS: quiet, but not digital silence
    try:
        for _ in range(3):
            pipeline.mixer.push("a", quiet)
        # It plays, then runs dry.
        await until(lambda: True in pipeline.heard and not pipeline.heard[-1])
        # Half a second at once, then a frame every 40 ms: the source resumes (a gap ends)
        # holding far more than it needs, and the quiet surplus is trimmed once a window has
        # seen it.
        for _ in range(12):
            pipeline.mixer.push("a", quiet)

        async def feed() -> None:
            while True:
                await asyncio.sleep(0.04)
                pipeline.mixer.push("a", quiet)

        feeding = asyncio.create_task(feed())
        try:
            await until(lambda: sample("rooms_mixer_trimmed_seconds_total") > trimmed_before)
        finally:
            feeding.cancel()
    finally:
        ticker.discard(pipeline)
        await asyncio.sleep(0.05)
    # At least the one gap (exact counts: the bank's tests); a late feed on a busy machine
    # may add another.
    assert sample("rooms_mixer_gaps_total") - gaps_before >= 1
    # Of the 480 ms, at least what the source keeps at its low point (80 ms) stays.
    assert 0.02 <= sample("rooms_mixer_trimmed_seconds_total") - trimmed_before <= 0.4
