"""One fixed clock per event loop for every browser-mode run it carries."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from django.conf import settings

from rooms import logging_setup, metrics
from transcription.live.audio import Mixer, MixTick
from transcription.live.loops import PerLoop


class Ticked(Protocol):
    """What the ticker drives (a ``RunPipeline``)."""

    @property
    def mixer(self) -> Mixer:
        """Ticked by its bank while the ticker drives the pipeline."""

    async def on_tick(self, mixed: MixTick) -> None:
        """Send one tick of mixed audio."""

    def on_tick_failed(self, exc: BaseException) -> None:
        """Told once when ``on_tick`` raised; the ticker no longer drives it."""


class Ticker(PerLoop):
    """One fixed clock for every run of an event loop.

    A timer wake-up costs more than mixing a tick: with a clock per run, 50 runs meant 2,500
    wake-ups a second. One wake-up here ticks every run, and their mixers in one vectorised
    step (``MixerBank.tick``; every run's mixer is normally in the loop's bank). When the loop
    falls behind it catches up tick by tick (audio time stays wall time), but more than a second
    behind it skips. Each tick's gaps and trimmed audio go to ``rooms.metrics`` (nothing is
    written in a tick that had none).
    """

    def __init__(self) -> None:
        self.pipelines: set[Ticked] = set()
        self._task: asyncio.Task[None] | None = None

    def add(self, pipeline: Ticked) -> None:
        self.pipelines.add(pipeline)
        pipeline.mixer.bank.start(pipeline.mixer)
        if self._task is None or self._task.done():
            # Shared by every run of the loop: it must not log as the first run's.
            self._task = asyncio.get_running_loop().create_task(
                self._loop(), context=logging_setup.unbound_context()
            )

    def discard(self, pipeline: Ticked) -> None:
        self.pipelines.discard(pipeline)
        pipeline.mixer.bank.stop(pipeline.mixer)

    async def _loop(self) -> None:
        tick = settings.TRANSCRIPTION_TICK_SECONDS
        catch_up_yields = settings.TRANSCRIPTION_CATCH_UP_YIELDS
        next_at = time.monotonic()
        while self.pipelines:
            next_at += tick
            delay = next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -1.0:
                next_at = time.monotonic()
            if time.monotonic() - next_at > tick / 2:
                # Late (the loop was busy): frames that reached the sockets meanwhile are still
                # a few loop iterations from their mixers (socket -> consumer -> channel ->
                # run). Let them land before mixing. Without this the first tick after a stall
                # and the catch-up ticks behind it underran those sources, each underrun adding
                # a tick of delay until the trim window ended (docs/benchmarks.md).
                for _ in range(catch_up_yields):
                    await asyncio.sleep(0)
            try:
                mixed = self._mix()
            except Exception as exc:
                for pipeline in list(self.pipelines):
                    self.discard(pipeline)
                    pipeline.on_tick_failed(exc)
                continue
            for pipeline in list(self.pipelines):
                try:
                    await pipeline.on_tick(mixed[pipeline.mixer])
                except Exception as exc:
                    self.discard(pipeline)
                    pipeline.on_tick_failed(exc)

    def _mix(self) -> dict[Mixer, MixTick]:
        """One tick of every driven pipeline's mixer: one step per bank (normally the loop's
        ``MixerBank``; a pipeline built outside a running loop has a bank of its own)."""
        mixed: dict[Mixer, MixTick] = {}
        for bank in {pipeline.mixer.bank for pipeline in self.pipelines}:
            mixed.update(bank.tick())
            metrics.mixer_observed(*bank.drain_counts())
        return mixed
