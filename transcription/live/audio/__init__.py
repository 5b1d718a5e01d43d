"""Audio handling for transcription runs that is independent of any transport."""

from transcription.live.audio.mixer import Mixer, MixTick

__all__ = ["MixTick", "Mixer"]
