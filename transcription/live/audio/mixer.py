"""Browser-mode mixer: many participants' microphone frames in, one STT stream out.

Each participant's page sends PCM16LE 16 kHz mono frames (20-100 ms) over its WebSocket; they
arrive in bursts with network jitter. The run owns one :class:`Mixer`, ticked on a fixed
wall-clock cadence; every tick yields exactly ``tick_seconds`` of mixed audio for the STT
provider plus the per-source voice activity that feeds the speaker timeline
(``transcription.live.attribution.SpeakerTimeline``). The state of every mixer of an event loop
lives in one :class:`~transcription.live.audio.bank.MixerBank`, which ticks them all in one
vectorised step (``bank.tick()``, driven by ``transcription.live.ticker``); a mixer with a bank of
its own ticks alone with :meth:`Mixer.tick`. The rules below and their constants live in the
bank module.

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
  (``_TRIM_WINDOW_SECONDS``): a surplus that was never needed during the whole window is dropped
  at the window's end — but only when that surplus is quiet (below ``vad_threshold``), so speech
  is delayed, never cut; the catch-up happens in the next pause. The windows are the run's, and
  a source that has had no frame since it (re)primed is not judged: the tick it primes in, it
  still holds all it primed with, and a window ending there took that for surplus and cut a tick
  of on-time audio (at the benchmark's synchronised start, 1 source in 12: 11–32 trims per 100 ×
  2 run; docs/benchmarks.md). Windows of each source's own, from the tick it first plays, fixed
  that too, but put every window's end on a frame boundary for the page's 40 ms frames, so a
  source's trims took a frame's first 20 ms, where the benchmark's markers sit: all 11 markers
  lost in 15 runs fell where 240 ms windows meet 200 ms markers. The lowest backlog is seen just
  before a frame lands, so the target there is what the source primes with *less one frame*:
  right after the frame lands the source again holds what it held when it was primed. Frames
  arrive whole, so a source primes with the allowance rounded up to whole frames: 120 ms for the
  page's 40 ms frames and the default 100 ms. (Aiming the low point at the full allowance kept a
  frame more than needed: with 40 ms frames and a 40 ms allowance that was 40 ms of latency that
  absorbed no jitter. Aiming it at the allowance itself less a frame trimmed the priming's extra
  20 ms at the first window's end, quiet audio that was on time, and left a frame 60 ms of
  lateness instead of 80.)
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

import numpy as np

from transcription.live.audio.bank import MixerBank, MixerConfig, MixTick

__all__ = ["MixTick", "Mixer"]


class Mixer:
    """Mixes several sources' PCM16LE mono frames into one fixed-rate stream.

    Not thread-safe and does no I/O: the owner (the browser-mode run) calls :meth:`push` as
    frames arrive, and either :meth:`tick` once every ``tick_seconds`` of wall time (a mixer with
    a bank of its own) or has its bank ticked (``MixerBank.start`` then ``MixerBank.tick``), from
    one thread or one event loop.
    """

    def __init__(
        self,
        *,
        sample_rate: int = 16000,
        tick_seconds: float = 0.02,
        jitter_seconds: float = 0.1,
        max_buffer_seconds: float = 1.0,
        vad_threshold: float = -45.0,
        bank: MixerBank | None = None,
    ) -> None:
        """Configure the stream; all durations are in seconds.

        ``jitter_seconds`` is how much a source buffers before it plays, and again after each
        underrun. Frames arrive whole, so it should cover the frame length plus typical network
        jitter; when it does not, a late frame costs a gap of only its lateness (the source
        re-primes as soon as the frame lands) and the added delay then absorbs similar jitter.
        ``max_buffer_seconds`` bounds each source's backlog, hence memory and added latency.
        ``vad_threshold`` is the fixed part of the voice-activity threshold, in dBFS RMS (a
        full-scale sine is about -3 dBFS). ``bank`` holds the mixer's state (a private one when
        omitted); :meth:`close` leaves it.

        Raises ``ValueError`` when a tick is not a whole number of samples, the buffer cannot
        hold ``max(jitter_seconds, tick_seconds)`` plus one tick, or ``bank`` holds mixers of
        another configuration.
        """
        config = MixerConfig.build(
            sample_rate=sample_rate,
            tick_seconds=tick_seconds,
            jitter_seconds=jitter_seconds,
            max_buffer_seconds=max_buffer_seconds,
            vad_threshold=vad_threshold,
        )
        self._config = config
        self._bank = bank if bank is not None else MixerBank()
        self._sources: dict[str, int] = {}
        self._closed = False
        self.slot = self._bank.attach(self, config)

    @property
    def bank(self) -> MixerBank:
        return self._bank

    @property
    def sources(self) -> tuple[str, ...]:
        """Sources currently known (pushed since they were last removed), in arrival order."""
        return tuple(self._sources)

    @property
    def stream_seconds(self) -> float:
        """Seconds of audio produced so far; also the ``start`` of the next tick."""
        if self._closed:
            return 0.0
        return self._bank.stream_ticks(self.slot) * self._config.tick_seconds

    @property
    def sample_rate(self) -> int:
        return self._config.sample_rate

    @property
    def tick_seconds(self) -> float:
        return self._config.tick_seconds

    def push(self, source: str, pcm: bytes) -> None:
        """Append PCM16LE mono samples from ``source``, registering it on first use.

        A trailing odd byte cannot be a whole sample and is ignored rather than failing the run.
        Past ``max_buffer_seconds`` of backlog the oldest samples of this source are dropped.
        After :meth:`close` pushes are ignored (frames still in flight when the run ended).
        """
        if self._closed:
            return
        row = self._sources.get(source)
        if row is None:
            row = self._sources[source] = self._bank.add_row(self.slot, source)
        count = len(pcm) // 2
        if count:
            self._bank.push(row, np.frombuffer(pcm, dtype="<i2", count=count))

    def remove(self, source: str) -> None:
        """Forget ``source`` and its buffered audio (left or muted); unknown sources are ignored.

        A later :meth:`push` from the same source starts it afresh, jitter buffer included.
        """
        row = self._sources.pop(source, None)
        if row is not None:
            self._bank.free_row(row)

    def tick(self) -> MixTick:
        """Produce exactly one tick of mixed audio and the voice activity within it.

        Raises ``RuntimeError`` when the bank holds other mixers (their ticks come from
        ``bank.tick()``) or the mixer is closed.
        """
        if self._closed or self._bank.members != 1:
            raise RuntimeError("tick a shared mixer through its bank")
        self._bank.start(self)
        return self._bank.tick()[self]

    def close(self) -> None:
        """Leave the bank, freeing every source's buffer; idempotent."""
        if not self._closed:
            self._closed = True
            self._sources.clear()
            self._bank.discard(self)
