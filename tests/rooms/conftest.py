"""Fixtures shared with the transcription tests: the embedded runner."""

from tests.transcription.conftest import embedded_runner

__all__ = ["embedded_runner"]
