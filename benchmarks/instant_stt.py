"""An STT stream that answers instantly, for measuring the pipeline's own overhead.

The benchmark's speaker marks some audio frames with ``MAGIC`` followed by a sequence number;
as soon as a marked chunk reaches the provider, this stream emits a final whose text is that
number. Everything between the client's frame and the transcript event is then Rooms' work.
Select it with ``STT_PROVIDER=benchmarks.instant_stt:InstantSttStream``.
"""

from __future__ import annotations

import secrets
import time

import numpy as np

from transcription.live.stt.base import END_OF_EVENTS, SttEvent, SttStream

# Tiny values: a marked frame stays below the voice-activity threshold, like silence.
MAGIC = np.array([7, -7, 11, -11], dtype=np.int16)
DIGITS = 4  # seq in base 32, one digit per sample
MAGIC_BYTES = MAGIC.astype("<i2").tobytes()
MARK_BYTES = 2 * (len(MAGIC) + DIGITS)


def marked_frame(seq: int, samples: int = 640) -> bytes:
    """A silent frame that starts with the marker and ``seq``."""
    frame = np.zeros(samples, dtype=np.int16)
    frame[:4] = MAGIC
    for digit in range(DIGITS):
        frame[4 + digit] = (seq >> (5 * digit)) & 31
    return frame.tobytes()


def silent_frame(samples: int = 640) -> bytes:
    return bytes(samples * 2)


class InstantSttStream(SttStream):
    def __init__(self, *, languages: list[str], sample_rate: int = 16000, **_: object) -> None:
        super().__init__(sample_rate=sample_rate)
        self._token = secrets.token_hex(4)
        self._tail = b""

    async def start(self) -> None:
        return None

    async def send_audio(self, pcm: bytes) -> None:
        t = self.audio_seconds
        self._accepted_bytes += len(pcm)
        # A marker may straddle two chunks (the mixer's ticks need not align with frames):
        # search the previous chunk's tail too. A substring search (C) rather than numpy: this
        # fake must cost next to nothing, so that what is measured is the server's work.
        data = self._tail + pcm
        at = data.find(MAGIC_BYTES)
        while at >= 0 and at + MARK_BYTES <= len(data):
            if at % 2 == len(self._tail) % 2 and at + MARK_BYTES > len(self._tail):
                digits = np.frombuffer(data, dtype="<i2", count=DIGITS, offset=at + 8)
                seq = sum(int(digits[d]) << (5 * d) for d in range(DIGITS))
                # perf_counter is CLOCK_MONOTONIC: comparable with the client process's clock.
                self._events.put_nowait(
                    SttEvent(
                        utterance_id=f"i{self._token}-{seq}",
                        text=f"{seq} {time.perf_counter():.6f}",
                        is_final=True,
                        start=t,
                        end=t + 0.04,
                        language="en",
                    )
                )
            at = data.find(MAGIC_BYTES, at + 2)
        self._tail = data[-(MARK_BYTES - 2) :]

    async def close(self) -> None:
        self._events.put_nowait(END_OF_EVENTS)
