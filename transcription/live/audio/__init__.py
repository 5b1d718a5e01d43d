"""Audio handling for transcription runs that is independent of any transport."""

from transcription.live.audio.bank import MixerBank, MixTick
from transcription.live.audio.mixer import Mixer

__all__ = ["MixTick", "Mixer", "MixerBank"]
