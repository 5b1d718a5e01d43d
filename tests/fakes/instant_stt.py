"""The benchmarks' instant STT stream under a name that fits ``TranscriptionRun.provider``
(32 characters): ``STT_PROVIDER=tests.fakes.instant_stt:Instant``. It transcribes nothing,
accepts audio at once and meters it like any provider, so pipeline tests run in real time
without loading a speech model."""

from benchmarks.instant_stt import InstantSttStream as Instant

__all__ = ["Instant"]
