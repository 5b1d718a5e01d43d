"""Browser-mode mixer: many participants' microphone frames in, one STT stream out.

Each participant's page sends PCM16LE 16 kHz mono frames (20-100 ms) over its WebSocket; they
arrive in bursts with network jitter. The run owns one :class:`Mixer` and calls :meth:`Mixer.tick`
on a fixed wall-clock cadence; every tick yields exactly ``tick_seconds`` of mixed audio for the
STT provider plus the per-source voice activity that feeds the speaker timeline
(``transcription.live.attribution.SpeakerTimeline``).

Design choices (why, not what):

* **Fixed ticks, per-source jitter buffers.** The STT stream must be continuous and its clock
  must be the run's clock, not any one browser's. A source is consumed only once it has
  buffered ``jitter_seconds`` (so bursty arrival does not turn into choppy audio); an underrun
  contributes silence and re-arms the buffer rather than playing fragments; an overrun beyond
  ``max_buffer_seconds`` drops the oldest samples so memory and latency stay bounded even when a
  browser's clock runs fast or a backlog arrives at once.
* **Latency trimming.** Every underrun inserts silence, which delays that source's later audio
  for good; without a correction its backlog (and the transcript's latency) only ratchets up to
  ``max_buffer_seconds``. So each source tracks its lowest backlog over a window
  (``_TRIM_WINDOW_SECONDS``): a surplus that was never needed during the whole window is
  dropped at the window's end — but only when that surplus is quiet (below ``vad_threshold``),
  so speech is delayed, never cut; the catch-up happens in the next pause. The lowest backlog
  is seen just before a frame lands, so the target there is the jitter allowance *less one
  frame*: right after the frame lands the source again holds its allowance, as when it was
  primed. (Aiming the low point at the full allowance kept a frame more than needed: with
  40 ms frames and a 40 ms allowance that was 40 ms of latency that absorbed no jitter.)
* **Limiter, not clipping.** The sum is computed in int32. When it would leave int16 range the
  whole tick is scaled by ``32767 / peak`` (instant attack, so nothing ever clips or wraps); the
  gain then recovers linearly over ``_LIMITER_RELEASE_SECONDS``, ramped sample by sample so the
  level does not jump at tick boundaries. With the limiter idle (gain 1.0) a lone source is
  passed through bit-exact and a mix that fits is the exact integer sum.
* **Voice activity = RMS above max(fixed threshold, adaptive noise floor + margin), with
  hangover.** The fixed threshold (``vad_threshold``, dBFS, default -45) rejects near-silence;
  the per-source noise floor follows the quietest recent ticks (drops at once, rises
  ``_NOISE_FLOOR_RISE_DB_PER_SECOND``), so a steady fan or hum stops counting as speech after a
  few seconds while speech, which keeps dipping between syllables, keeps the floor low. The floor
  is never tracked below ``vad_threshold - margin`` because the fixed threshold dominates there,
  which also bounds how long it takes to learn a new noise level after digital silence. The
  hangover bridges short pauses between words so one utterance is one activity span.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Int16Array = npt.NDArray[np.int16]

_INT16_MAX = 32767
_FULL_SCALE = 32768.0
# Gain recovers from 0 to 1 over this time once the mix fits again.
_LIMITER_RELEASE_SECONDS = 0.2
_VAD_MARGIN_DB = 10.0
_VAD_HANGOVER_SECONDS = 0.3
_NOISE_FLOOR_RISE_DB_PER_SECOND = 3.0
# How long a surplus backlog must persist before it is trimmed (see the module docstring). Each
# stall that underruns a source adds a tick or two of delay until the window ends; at 1 s those
# plateaus dominated the p99 at 50 runs (docs/benchmarks.md). A window still spans several
# 40 ms frames, so a surplus is only dropped after it went unused across several arrivals.
_TRIM_WINDOW_SECONDS = 0.25
# Below any real microphone's noise; keeps log10 finite for digital silence.
_MIN_LEVEL_DB = -120.0


@dataclass(frozen=True, slots=True)
class MixTick:
    """One tick of mixed audio.

    ``pcm`` is PCM16LE mono, always exactly one tick long (silence when nobody sends).
    ``start`` is stream time in seconds (0.0 at the first tick); the tick covers
    ``[start, start + tick_seconds)``. ``active`` maps each source considered speaking in this
    tick to its RMS level as a fraction of full scale (0 <= level <= 1; during the hangover after
    speech the level may be at or near 0).
    """

    pcm: bytes
    start: float
    active: dict[str, float]


class _RingBuffer:
    """Bounded FIFO of int16 samples; pushing past capacity drops the oldest samples."""

    __slots__ = ("_buf", "_start", "size")

    def __init__(self, capacity: int) -> None:
        self._buf: Int16Array = np.zeros(capacity, dtype=np.int16)
        self._start = 0
        self.size = 0

    def push(self, samples: Int16Array) -> None:
        capacity = len(self._buf)
        n = len(samples)
        if n >= capacity:
            self._buf[:] = samples[n - capacity :]
            self._start = 0
            self.size = capacity
            return
        overflow = self.size + n - capacity
        if overflow > 0:
            self._start = (self._start + overflow) % capacity
            self.size -= overflow
        end = (self._start + self.size) % capacity
        first = min(n, capacity - end)
        self._buf[end : end + first] = samples[:first]
        self._buf[: n - first] = samples[first:]
        self.size += n

    def discard(self, n: int) -> None:
        """Drop the ``n`` oldest samples (``n`` <= ``size``)."""
        self._start = (self._start + n) % len(self._buf)
        self.size -= n

    def peek(self, n: int) -> Int16Array:
        """A copy of the ``n`` oldest samples (``n`` <= ``size``), left in the buffer."""
        capacity = len(self._buf)
        first = min(n, capacity - self._start)
        return np.concatenate(
            (self._buf[self._start : self._start + first], self._buf[: n - first])
        )

    def pop_into(self, out: Int16Array) -> None:
        """Move ``len(out)`` samples into ``out``; the caller guarantees they are buffered."""
        capacity = len(self._buf)
        n = len(out)
        first = min(n, capacity - self._start)
        out[:first] = self._buf[self._start : self._start + first]
        out[first:] = self._buf[: n - first]
        self._start = (self._start + n) % capacity
        self.size -= n


class _Source:
    __slots__ = ("frame_samples", "hangover_left", "low_water", "noise_floor_db", "primed", "ring")

    def __init__(self, capacity: int, noise_floor_db: float) -> None:
        self.ring = _RingBuffer(capacity)
        self.primed = False
        # Largest push in the current trim window: how far the backlog dips between frames.
        self.frame_samples = 0
        self.hangover_left = 0
        self.noise_floor_db = noise_floor_db
        # Lowest backlog seen (after playing a tick) in the current trim window.
        self.low_water = capacity


class Mixer:
    """Mixes several sources' PCM16LE mono frames into one fixed-rate stream.

    Not thread-safe and does no I/O: the owner (the browser-mode run) calls :meth:`push` as
    frames arrive and :meth:`tick` once every ``tick_seconds`` of wall time, from one thread or
    one event loop.
    """

    def __init__(
        self,
        *,
        sample_rate: int = 16000,
        tick_seconds: float = 0.02,
        jitter_seconds: float = 0.1,
        max_buffer_seconds: float = 1.0,
        vad_threshold: float = -45.0,
    ) -> None:
        """Configure the stream; all durations are in seconds.

        ``jitter_seconds`` is how much a source buffers before it plays, and again after each
        underrun. Frames arrive whole, so it should cover the frame length plus typical network
        jitter; when it does not, a late frame costs a gap of only its lateness (the source
        re-primes as soon as the frame lands) and the added delay then absorbs similar jitter.
        ``max_buffer_seconds`` bounds each source's backlog, hence memory and added latency.
        ``vad_threshold`` is the fixed part of the voice-activity threshold, in dBFS RMS (a
        full-scale sine is about -3 dBFS).

        Raises ``ValueError`` when a tick is not a whole number of samples or the buffer cannot
        hold ``max(jitter_seconds, tick_seconds)`` plus one tick.
        """
        if sample_rate <= 0:
            raise ValueError("sample_rate must be positive")
        tick_exact = sample_rate * tick_seconds
        tick_samples = round(tick_exact)
        if tick_samples <= 0 or not math.isclose(tick_exact, tick_samples, abs_tol=1e-6):
            raise ValueError("tick_seconds must be a positive whole number of samples")
        if jitter_seconds < 0:
            raise ValueError("jitter_seconds must not be negative")
        # Priming needs at least one tick, or a zero jitter allowance would start a source on a
        # fragment and underrun at once.
        jitter_samples = max(round(sample_rate * jitter_seconds), tick_samples)
        capacity = round(sample_rate * max_buffer_seconds)
        if capacity < jitter_samples + tick_samples:
            raise ValueError(
                "max_buffer_seconds must hold max(jitter_seconds, tick_seconds) plus one tick"
            )

        self._sample_rate = sample_rate
        self._tick_seconds = tick_seconds
        self._tick_samples = tick_samples
        self._jitter_samples = jitter_samples
        self._capacity = capacity
        self._vad_threshold_db = vad_threshold
        self._floor_min_db = vad_threshold - _VAD_MARGIN_DB
        self._floor_rise_db = _NOISE_FLOOR_RISE_DB_PER_SECOND * tick_seconds
        self._hangover_ticks = round(_VAD_HANGOVER_SECONDS / tick_seconds)
        self._gain_step = tick_seconds / _LIMITER_RELEASE_SECONDS
        self._ramp = np.arange(1, tick_samples + 1, dtype=np.float32) / tick_samples
        self._silence = bytes(tick_samples * 2)
        self._trim_window_ticks = max(1, round(_TRIM_WINDOW_SECONDS / tick_seconds))
        self._sources: dict[str, _Source] = {}
        self._gain = 1.0
        self._ticks = 0

    @property
    def sources(self) -> tuple[str, ...]:
        """Sources currently known (pushed since they were last removed), in arrival order."""
        return tuple(self._sources)

    @property
    def stream_seconds(self) -> float:
        """Seconds of audio produced so far; also the ``start`` of the next tick."""
        return self._ticks * self._tick_seconds

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    @property
    def tick_seconds(self) -> float:
        return self._tick_seconds

    def push(self, source: str, pcm: bytes) -> None:
        """Append PCM16LE mono samples from ``source``, registering it on first use.

        A trailing odd byte cannot be a whole sample and is ignored rather than failing the run.
        Past ``max_buffer_seconds`` of backlog the oldest samples of this source are dropped.
        """
        state = self._sources.get(source)
        if state is None:
            state = _Source(self._capacity, self._floor_min_db)
            self._sources[source] = state
        count = len(pcm) // 2
        if count:
            state.ring.push(np.frombuffer(pcm, dtype="<i2", count=count))
            state.frame_samples = max(state.frame_samples, count)

    def remove(self, source: str) -> None:
        """Forget ``source`` and its buffered audio (left or muted); unknown sources are ignored.

        A later :meth:`push` from the same source starts it afresh, jitter buffer included.
        """
        self._sources.pop(source, None)

    def tick(self) -> MixTick:
        """Produce exactly one tick of mixed audio and the voice activity within it."""
        start = self._ticks * self._tick_seconds
        self._ticks += 1
        tick_samples = self._tick_samples

        names = list(self._sources)
        block: Int16Array = np.empty((len(names), tick_samples), dtype=np.int16)
        playing: list[int] = []
        for index, name in enumerate(names):
            state = self._sources[name]
            ring = state.ring
            if not state.primed and ring.size >= self._jitter_samples:
                state.primed = True
            if not state.primed:
                continue
            if ring.size < tick_samples:
                # Underrun: keep the partial remainder for later and wait for a full jitter
                # allowance again, so the next audio plays smoothly instead of in fragments.
                state.primed = False
                continue
            ring.pop_into(block[index])
            playing.append(index)
            state.low_water = min(state.low_water, ring.size)
        if self._ticks % self._trim_window_ticks == 0:
            self._trim_surplus()

        frames = block[playing]
        active = self._voice_activity(names, playing, frames)
        return MixTick(pcm=self._mix(frames), start=start, active=active)

    def _trim_surplus(self) -> None:
        """Drop quiet backlog that was never needed during a whole window.

        The target for the lowest backlog is the jitter allowance less one frame (see the
        module docstring); the surplus above it is dropped when it is quiet.
        """
        for state in self._sources.values():
            target = max(0, self._jitter_samples - state.frame_samples)
            surplus = state.low_water - target
            state.low_water = self._capacity
            state.frame_samples = 0
            if not state.primed or surplus < self._tick_samples:
                continue
            samples = state.ring.peek(surplus).astype(np.float32)
            rms = math.sqrt(float(np.dot(samples, samples)) / surplus) / _FULL_SCALE
            if rms == 0 or 20.0 * math.log10(rms) < self._vad_threshold_db:
                state.ring.discard(surplus)

    def _voice_activity(
        self, names: list[str], playing: list[int], frames: Int16Array
    ) -> dict[str, float]:
        # None marks a source that contributed nothing this tick (buffering or underrun).
        levels: list[float | None] = [None] * len(names)
        if playing:
            as_float = frames.astype(np.float32)
            mean_square = np.einsum("ij,ij->i", as_float, as_float) / self._tick_samples
            for index, value in zip(playing, np.sqrt(mean_square) / _FULL_SCALE, strict=True):
                levels[index] = float(value)

        active: dict[str, float] = {}
        for name, level in zip(names, levels, strict=True):
            state = self._sources[name]
            if level is not None:
                level_db = 20.0 * math.log10(level) if level > 0 else _MIN_LEVEL_DB
                threshold = max(self._vad_threshold_db, state.noise_floor_db + _VAD_MARGIN_DB)
                speaking = level_db > threshold
                state.noise_floor_db = max(
                    self._floor_min_db,
                    min(level_db, state.noise_floor_db + self._floor_rise_db),
                )
            else:
                # No measurement, so the noise floor is left alone.
                level = 0.0
                speaking = False
            if speaking:
                state.hangover_left = self._hangover_ticks
                active[name] = level
            elif state.hangover_left > 0:
                state.hangover_left -= 1
                active[name] = level
        return active

    def _mix(self, frames: Int16Array) -> bytes:
        count = len(frames)
        if count == 0:
            self._gain = min(1.0, self._gain + self._gain_step)
            return self._silence
        if count == 1 and self._gain == 1.0:
            return frames[0].astype("<i2", copy=False).tobytes()

        mixed = frames.sum(axis=0, dtype=np.int32)
        high, low = int(mixed.max()), int(mixed.min())
        needed = 1.0
        if high > _INT16_MAX or low < -_INT16_MAX - 1:
            needed = _INT16_MAX / max(high, -low)
        previous = self._gain
        if needed < previous:
            gain: float | npt.NDArray[np.float32] = needed
            self._gain = needed
        else:
            self._gain = min(needed, previous + self._gain_step)
            if self._gain == 1.0 and previous == 1.0:
                return mixed.astype("<i2").tobytes()
            # Every ramp value lies between previous and the new gain, both <= needed.
            gain = previous + (self._gain - previous) * self._ramp
        scaled = np.rint(mixed * gain)
        # Only float rounding can reach past the range here; the clip is a guarantee, not a
        # limiter.
        return np.clip(scaled, -_INT16_MAX, _INT16_MAX).astype("<i2").tobytes()
