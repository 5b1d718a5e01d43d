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

    async def start(self) -> None:
        return None

    async def send_audio(self, pcm: bytes) -> None:
        t = self.audio_seconds
        self._accepted_bytes += len(pcm)
        samples = np.frombuffer(pcm, dtype=np.int16)
        hits = np.flatnonzero(samples[: -4 - DIGITS] == MAGIC[0])
        for i in hits:
            if np.array_equal(samples[i : i + 4], MAGIC):
                seq = sum(int(samples[i + 4 + d]) << (5 * d) for d in range(DIGITS))
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

    async def close(self) -> None:
        self._events.put_nowait(END_OF_EVENTS)
