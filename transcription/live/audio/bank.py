"""The state of every browser-mode mixer of an event loop, ticked in one vectorised step.

A :class:`~transcription.live.audio.mixer.Mixer` ticked on its own costs a Python tick per run
every 20 ms: at 50 runs that was 2,500 ticks a second and about 40% of the event loop's busy
time. Here the sources of all runs of the loop are rows of one 2-D ring buffer, their state
(read position, backlog, priming, trim window, hangover, noise floor, owning run) 1-D arrays,
and the runs' state (limiter gain, ticks) arrays too, so :meth:`MixerBank.tick` advances every
started mixer with a few numpy operations: one gather of every playing source's tick, one
reduction per run, one voice-activity pass. Per item in Python stay only what is rare (a run
whose limiter gain moves, a source whose backlog may be trimmed), each playing source's
``math.log10`` and the building of each run's ``MixTick``.

Measured on the 2-core development box, ticking 1 s of audio (50 ticks) with every source
playing: 50 runs x 1 source took 60 ms as per-run ``Mixer`` ticks and 18 ms in the bank; 50 runs
x 2 sources 106 ms and 21 ms. (Per-run sums are taken over a zero-padded [runs x sources x tick]
stack: ``np.add.reduceat`` along rows took 240 us a tick at 100 sources, a one-hot float64
matmul 175 us, the stack 30 us.)

Every rule (priming, underrun, overrun, trimming, limiter, voice activity) is the one of the
per-run mixer described in ``transcription.live.audio.mixer``; outputs are bit-identical to a
mixer ticked alone (``tests/transcription/live/test_mixer_bank.py``). Arithmetic is kept in the
same dtypes as before for that: float32 levels, float64 gains and dB, ``math.log10`` rather than
``np.log10`` (whose SIMD kernels may differ from libm in the last bit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from transcription.live.loops import PerLoop


class Member(Protocol):
    """What the bank knows of a mixer (``transcription.live.audio.mixer.Mixer``): its slot."""

    @property
    def slot(self) -> int: ...


Int16Array = npt.NDArray[np.int16]
IntArray = npt.NDArray[np.int64]
_Item = TypeVar("_Item", bound=np.generic)

_INT16_MAX = 32767
_FULL_SCALE = 32768.0
# Gain recovers from 0 to 1 over this time once the mix fits again.
_LIMITER_RELEASE_SECONDS = 0.2
_VAD_MARGIN_DB = 10.0
_VAD_HANGOVER_SECONDS = 0.3
_NOISE_FLOOR_RISE_DB_PER_SECOND = 3.0
# How long a surplus backlog must persist before it is trimmed (see the mixer's docstring). Each
# stall that underruns a source adds a tick or two of delay until the window ends; at 1 s those
# plateaus dominated the p99 at 50 runs (docs/benchmarks.md). A window still spans several
# 40 ms frames, so a surplus is only dropped after it went unused across several arrivals.
_TRIM_WINDOW_SECONDS = 0.25
# Below any real microphone's noise; keeps log10 finite for digital silence.
_MIN_LEVEL_DB = -120.0
_INITIAL_ROWS = 8
_INITIAL_RUNS = 4


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


@dataclass(frozen=True, slots=True)
class MixerConfig:
    """A validated configuration (``Mixer.__init__``); every mixer of a bank shares one."""

    sample_rate: int
    tick_seconds: float
    tick_samples: int
    jitter_samples: int
    capacity: int
    vad_threshold_db: float

    @classmethod
    def build(
        cls,
        *,
        sample_rate: int,
        tick_seconds: float,
        jitter_seconds: float,
        max_buffer_seconds: float,
        vad_threshold: float,
    ) -> MixerConfig:
        """Raises ``ValueError`` for a configuration ``Mixer.__init__`` documents as invalid."""
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
        return cls(
            sample_rate=sample_rate,
            tick_seconds=tick_seconds,
            tick_samples=tick_samples,
            jitter_samples=jitter_samples,
            capacity=capacity,
            vad_threshold_db=vad_threshold,
        )


class MixerBank(PerLoop):
    """Holds the sources of many mixers and ticks the started ones together.

    ``MixerBank.current()`` is the running loop's bank. Mixers join it when built
    (``Mixer(bank=...)``) and leave with ``Mixer.close()``; only mixers passed to :meth:`start`
    are ticked, so a mixer nobody ticks (a server-mode run) costs nothing per tick. Every mixer
    of a bank has the same configuration: the first one sets it (again once the bank is empty),
    a different one raises ``ValueError``. Not thread-safe: use it from its loop only.

    Rows of the ring buffer are freed when a source is removed and reused; the buffer doubles
    when full. Each row is ``capacity + tick`` samples wide: the first tick of the ring is
    mirrored past its end, so every tick is one contiguous window however it wraps.
    """

    def __init__(self) -> None:
        self._config: MixerConfig | None = None
        self._mixers: list[Member | None] = []
        self._free_slots: list[int] = []
        self._members = 0
        self._row_names: list[str] = []
        self._free_rows: list[int] = []
        self._next_order = 0
        self._live: IntArray | None = None
        self._started: IntArray | None = None
        # Since the last drain_counts() (rooms.metrics reads them through the ticker).
        self._gaps = 0
        self._trimmed_samples = 0

    # --- membership (called by Mixer) ----------------------------------------------------

    @property
    def members(self) -> int:
        """How many mixers belong to the bank."""
        return self._members

    def attach(self, mixer: Member, config: MixerConfig) -> int:
        """Add ``mixer`` (not started); returns its slot. ``ValueError`` on another config."""
        if self._config is None or self._members == 0:
            if self._config != config:
                self._configure(config)
        elif self._config != config:
            raise ValueError("every mixer of a bank must have the same configuration")
        if not self._free_slots:
            self._grow_runs()
        slot = self._free_slots.pop()
        self._mixers[slot] = mixer
        self._members += 1
        self._gain[slot] = 1.0
        self._ticks[slot] = 0
        self._run_started[slot] = False
        return slot

    def discard(self, mixer: Member) -> None:
        """Forget ``mixer`` and free its rows; a mixer not in the bank is ignored."""
        slot = mixer.slot
        if slot >= len(self._mixers) or self._mixers[slot] is not mixer:
            return
        for row in np.flatnonzero(self._row_used & (self._row_slot == slot)).tolist():
            self.free_row(row)
        self._run_started[slot] = False
        self._mixers[slot] = None
        self._free_slots.append(slot)
        self._members -= 1
        self._started = None

    def start(self, mixer: Member) -> None:
        """Tick ``mixer`` from now on with every :meth:`tick`."""
        self._set_started(mixer, True)

    def stop(self, mixer: Member) -> None:
        """No longer tick ``mixer`` (its sources keep buffering); unknown mixers are ignored."""
        self._set_started(mixer, False)

    def add_row(self, slot: int, name: str) -> int:
        """A fresh source of the mixer in ``slot``: empty, unprimed, quiet."""
        config = self._require_config()
        if not self._free_rows:
            self._grow_rows()
        row = self._free_rows.pop()
        self._row_used[row] = True
        self._row_slot[row] = slot
        self._row_order[row] = self._next_order
        self._next_order += 1
        self._row_names[row] = name
        self._start_at[row] = 0
        self._size[row] = 0
        self._primed[row] = False
        self._frame_samples[row] = 0
        self._hangover_left[row] = 0
        self._noise_floor_db[row] = config.vad_threshold_db - _VAD_MARGIN_DB
        self._low_water[row] = config.capacity
        self._played[row] = False
        self._unfed[row] = False
        self._live = None
        return row

    def free_row(self, row: int) -> None:
        self._row_used[row] = False
        self._free_rows.append(row)
        self._live = None

    def push(self, row: int, samples: Int16Array) -> None:
        """Append samples to ``row``'s ring, dropping its oldest past capacity."""
        capacity = self._capacity
        tick_samples = self._tick_samples
        buf = self._buf
        n = len(samples)
        if n >= capacity:
            buf[row, :capacity] = samples[n - capacity :]
            start, size = 0, capacity
            mirrored = True
        else:
            start, size = self._start_at.item(row), self._size.item(row)
            overflow = size + n - capacity
            if overflow > 0:
                start = (start + overflow) % capacity
                size -= overflow
            end = (start + size) % capacity
            first = min(n, capacity - end)
            buf[row, end : end + first] = samples[:first]
            if first < n:
                buf[row, : n - first] = samples[first:]
            size += n
            mirrored = end < tick_samples or first < n
        if mirrored:
            buf[row, capacity:] = buf[row, :tick_samples]
        self._start_at[row] = start
        self._size[row] = size
        self._unfed[row] = False
        if n > self._frame_samples.item(row):
            self._frame_samples[row] = n

    def stream_ticks(self, slot: int) -> int:
        return int(self._ticks[slot])

    def drain_counts(self) -> tuple[int, float]:
        """Gaps (a source that ran out of audio, then resumed) and seconds of quiet backlog
        trimmed since the last call; both start again from zero."""
        gaps, samples = self._gaps, self._trimmed_samples
        self._gaps = self._trimmed_samples = 0
        rate = self._config.sample_rate if self._config is not None else 1
        return gaps, samples / rate

    # --- the tick ------------------------------------------------------------------------

    def tick(self) -> dict[Member, MixTick]:
        """One tick of every started mixer, each exactly as ``Mixer.tick`` alone would give."""
        started = self._started_slots()
        if not len(started) or self._config is None:
            return {}
        config = self._config
        tick_samples = config.tick_samples
        capacity = config.capacity

        ticks_before = self._ticks[started]
        self._ticks[started] = ticks_before + 1

        rows = self._live_rows()
        size = self._size[rows]
        was_primed = self._primed[rows]
        primed = was_primed | (size >= config.jitter_samples)
        # Underrun: keep the partial remainder and wait for a full jitter allowance again.
        primed &= size >= tick_samples
        self._primed[rows] = primed
        fresh = rows[primed & ~was_primed]
        if len(fresh):
            # One that played before: a gap has ended.
            self._gaps += int(np.count_nonzero(self._played[fresh]))
            self._played[fresh] = True
            # Not judged by a trim until a frame lands (the mixer's docstring).
            self._unfed[fresh] = True
        playing_at = np.flatnonzero(primed)
        playing = rows[playing_at]
        starts = self._start_at[playing]
        frames: Int16Array = self._windows[playing, starts]
        self._start_at[playing] = (starts + tick_samples) % capacity
        left = size[playing_at] - tick_samples
        self._size[playing] = left
        self._low_water[playing] = np.minimum(self._low_water[playing], left)

        trimming = (ticks_before + 1) % self._trim_window_ticks == 0
        if trimming.any():
            self._trim_surplus(rows[np.isin(self._row_slot[rows], started[trimming])])

        active_rows, active_levels = self._voice_activity(rows, playing_at, frames)
        pcm = self._mix(started, self._row_slot[playing], frames)

        actives: dict[int, dict[str, float]] = {int(slot): {} for slot in started.tolist()}
        slots = self._row_slot[active_rows].tolist()
        for slot, row, level in zip(slots, active_rows.tolist(), active_levels, strict=True):
            actives[slot][self._row_names[row]] = level
        tick_seconds = config.tick_seconds
        mixers = self._mixers
        result: dict[Member, MixTick] = {}
        for slot, ticks, chunk in zip(started.tolist(), ticks_before.tolist(), pcm, strict=True):
            mixer = mixers[slot]
            assert mixer is not None
            result[mixer] = MixTick(pcm=chunk, start=ticks * tick_seconds, active=actives[slot])
        return result

    def _trim_surplus(self, trimmed: IntArray) -> None:
        """Drop quiet backlog of ``trimmed`` (rows whose run's window just ended) that was never
        needed during the window (the mixer's docstring): the target for the lowest backlog is
        what the source primes with (the jitter allowance in whole frames) less one frame; the
        allowance itself in a window without frames. A source that has had no frame since it
        (re)primed is not judged."""
        config = self._require_config()
        frame = self._frame_samples[trimmed]
        primes_with = -(-config.jitter_samples // np.maximum(frame, 1)) * frame
        target = np.where(frame > 0, primes_with - frame, config.jitter_samples)
        surplus = self._low_water[trimmed] - target
        self._low_water[trimmed] = config.capacity
        self._frame_samples[trimmed] = 0
        candidates = (
            self._primed[trimmed] & ~self._unfed[trimmed] & (surplus >= config.tick_samples)
        )
        capacity = config.capacity
        for row, count in zip(
            trimmed[candidates].tolist(), surplus[candidates].tolist(), strict=True
        ):
            start = int(self._start_at[row])
            first = min(count, capacity - start)
            ring = self._buf[row]
            samples = np.concatenate((ring[start : start + first], ring[: count - first]))
            as_float = samples.astype(np.float32)
            rms = math.sqrt(float(np.dot(as_float, as_float)) / count) / _FULL_SCALE
            if rms == 0 or 20.0 * math.log10(rms) < config.vad_threshold_db:
                self._start_at[row] = (start + count) % capacity
                self._size[row] -= count
                self._trimmed_samples += count

    def _voice_activity(
        self, rows: IntArray, playing_at: IntArray, frames: Int16Array
    ) -> tuple[IntArray, list[float]]:
        """Rows active in this tick, in the order their sources joined, and their levels."""
        config = self._require_config()
        speaking = np.zeros(len(rows), dtype=bool)
        level = np.zeros(len(rows), dtype=np.float64)
        if len(playing_at):
            as_float = frames.astype(np.float32)
            mean_square = np.einsum("ij,ij->i", as_float, as_float) / config.tick_samples
            levels = np.sqrt(mean_square) / _FULL_SCALE
            level[playing_at] = levels
            # math.log10, not np.log10: bit-identical to the per-run mixer (module docstring).
            level_db = np.array(
                [
                    20.0 * math.log10(value) if value > 0 else _MIN_LEVEL_DB
                    for value in levels.tolist()
                ]
            )
            playing = rows[playing_at]
            floor = self._noise_floor_db[playing]
            threshold = np.maximum(config.vad_threshold_db, floor + _VAD_MARGIN_DB)
            speaking[playing_at] = level_db > threshold
            self._noise_floor_db[playing] = np.maximum(
                self._floor_min_db, np.minimum(level_db, floor + self._floor_rise_db)
            )
        hangover = self._hangover_left[rows]
        lingering = ~speaking & (hangover > 0)
        active_at = np.flatnonzero(speaking | lingering)
        if not len(active_at):
            return active_at, []
        self._hangover_left[rows[speaking]] = self._hangover_ticks
        self._hangover_left[rows[lingering]] = hangover[lingering] - 1
        active_rows = rows[active_at]
        in_order = np.argsort(self._row_order[active_rows], kind="stable")
        return active_rows[in_order], level[active_at[in_order]].tolist()

    def _mix(self, started: IntArray, row_slots: IntArray, frames: Int16Array) -> list[bytes]:
        """Each started slot's mixed tick (int32 sum, then the limiter) as PCM16LE."""
        silence = self._silence
        gain = self._gain
        pcm: list[bytes] = [silence] * len(started)
        # Position of each started slot in ``started``, and of each playing row's slot.
        position = self._slot_position
        position[started] = np.arange(len(started))
        row_position = position[row_slots]
        order = np.argsort(row_position, kind="stable")
        sorted_position = row_position[order]
        boundary = np.diff(sorted_position, prepend=-1) != 0
        first = np.flatnonzero(boundary)
        mixing = sorted_position[first]
        quiet = np.ones(len(started), dtype=bool)
        quiet[mixing] = False
        quiet_slots = started[quiet]
        gain[quiet_slots] = np.minimum(1.0, gain[quiet_slots] + self._gain_step)
        if not len(mixing):
            return pcm
        # Each mixing slot's frames side by side, zero-padded to the most any slot has, then
        # summed: many times faster than np.add.reduceat along rows or a one-hot matmul.
        group = np.cumsum(boundary) - 1
        within = np.arange(len(order)) - first[group]
        stacked = np.zeros((len(mixing), int(within.max()) + 1, self._tick_samples), np.int16)
        stacked[group, within] = frames[order]
        mixed = stacked.sum(axis=1, dtype=np.int32)
        high = mixed.max(axis=1).astype(np.int64)
        low = mixed.min(axis=1).astype(np.int64)
        over = (high > _INT16_MAX) | (low < -_INT16_MAX - 1)
        needed = np.ones(len(mixing), dtype=np.float64)
        needed[over] = _INT16_MAX / np.maximum(high[over], -low[over])
        slots = started[mixing]
        previous = gain[slots]
        new_gain = np.where(
            needed < previous, needed, np.minimum(needed, previous + self._gain_step)
        )
        gain[slots] = new_gain
        exact = (previous == 1.0) & (new_gain == 1.0)
        out = mixed.astype("<i2")
        for index, at in enumerate(mixing.tolist()):
            if exact[index]:
                pcm[at] = out[index].tobytes()
            else:
                pcm[at] = self._limit(mixed[index], float(previous[index]), float(new_gain[index]))
        return pcm

    def _limit(self, mixed: npt.NDArray[np.int32], previous: float, new_gain: float) -> bytes:
        """A mix with the limiter engaged: instant attack, then a per-sample ramp up."""
        if new_gain < previous:
            gain: float | npt.NDArray[np.float32] = new_gain
        else:
            # Every ramp value lies between previous and the new gain, both <= needed.
            gain = previous + (new_gain - previous) * self._ramp
        scaled = np.rint(mixed * gain)
        # Only float rounding can reach past the range here; the clip is a guarantee, not a
        # limiter.
        return np.clip(scaled, -_INT16_MAX, _INT16_MAX).astype("<i2").tobytes()

    # --- storage -------------------------------------------------------------------------

    def _require_config(self) -> MixerConfig:
        assert self._config is not None, "no mixer has joined the bank"
        return self._config

    def _configure(self, config: MixerConfig) -> None:
        self._config = config
        self._capacity = config.capacity
        self._tick_samples = config.tick_samples
        self._floor_min_db = config.vad_threshold_db - _VAD_MARGIN_DB
        self._floor_rise_db = _NOISE_FLOOR_RISE_DB_PER_SECOND * config.tick_seconds
        self._hangover_ticks = round(_VAD_HANGOVER_SECONDS / config.tick_seconds)
        self._gain_step = config.tick_seconds / _LIMITER_RELEASE_SECONDS
        self._ramp = np.arange(1, config.tick_samples + 1, dtype=np.float32) / config.tick_samples
        self._silence = bytes(config.tick_samples * 2)
        self._trim_window_ticks = max(1, round(_TRIM_WINDOW_SECONDS / config.tick_seconds))
        self._buf: Int16Array = np.zeros((0, config.capacity + config.tick_samples), np.int16)
        self._row_used = np.zeros(0, dtype=bool)
        self._row_slot: IntArray = np.zeros(0, dtype=np.int64)
        self._row_order: IntArray = np.zeros(0, dtype=np.int64)
        self._start_at: IntArray = np.zeros(0, dtype=np.int64)
        self._size: IntArray = np.zeros(0, dtype=np.int64)
        self._primed = np.zeros(0, dtype=bool)
        self._frame_samples: IntArray = np.zeros(0, dtype=np.int64)
        self._low_water: IntArray = np.zeros(0, dtype=np.int64)
        self._played = np.zeros(0, dtype=bool)
        self._unfed = np.zeros(0, dtype=bool)
        self._hangover_left: IntArray = np.zeros(0, dtype=np.int64)
        self._noise_floor_db = np.zeros(0, dtype=np.float64)
        self._row_names = []
        self._free_rows = []
        self._grow_rows()
        self._live = None

    def _grow_rows(self) -> None:
        old = len(self._row_used)
        new = max(_INITIAL_ROWS, 2 * old)

        def grown(array: npt.NDArray[_Item]) -> npt.NDArray[_Item]:
            bigger = np.zeros((new, *array.shape[1:]), dtype=array.dtype)
            bigger[:old] = array
            return bigger

        self._buf = grown(self._buf)
        self._row_used = grown(self._row_used)
        self._row_slot = grown(self._row_slot)
        self._row_order = grown(self._row_order)
        self._start_at = grown(self._start_at)
        self._size = grown(self._size)
        self._primed = grown(self._primed)
        self._frame_samples = grown(self._frame_samples)
        self._low_water = grown(self._low_water)
        self._played = grown(self._played)
        self._unfed = grown(self._unfed)
        self._hangover_left = grown(self._hangover_left)
        self._noise_floor_db = grown(self._noise_floor_db)
        self._row_names.extend([""] * (new - old))
        self._free_rows.extend(range(new - 1, old - 1, -1))
        # Row r, window s: the tick_samples samples from s on (a view, never copied).
        self._windows: Int16Array = np.lib.stride_tricks.sliding_window_view(
            self._buf, self._tick_samples, axis=1
        )

    def _grow_runs(self) -> None:
        old = len(self._mixers)
        new = max(_INITIAL_RUNS, 2 * old)
        gain = np.ones(new, dtype=np.float64)
        ticks: IntArray = np.zeros(new, dtype=np.int64)
        started = np.zeros(new, dtype=bool)
        if old:
            gain[:old] = self._gain
            ticks[:old] = self._ticks
            started[:old] = self._run_started
        self._gain = gain
        self._ticks = ticks
        self._run_started = started
        self._slot_position: IntArray = np.zeros(new, dtype=np.int64)
        self._mixers.extend([None] * (new - old))
        self._free_slots.extend(range(new - 1, old - 1, -1))

    def _set_started(self, mixer: Member, started: bool) -> None:
        slot = mixer.slot
        if slot < len(self._mixers) and self._mixers[slot] is mixer:
            self._run_started[slot] = started
            self._started = None
            self._live = None

    def _started_slots(self) -> IntArray:
        if self._started is None:
            self._started = (
                np.flatnonzero(self._run_started) if self._members else np.zeros(0, dtype=np.int64)
            )
        return self._started

    def _live_rows(self) -> IntArray:
        """Rows of started mixers, ascending."""
        if self._live is None:
            self._live = np.flatnonzero(self._row_used & self._run_started[self._row_slot])
        return self._live
