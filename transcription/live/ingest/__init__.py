"""Audio sources for server (egress) mode: an RTMP listener per run that yields PCM16 16 kHz."""

from transcription.live.ingest.ffmpeg import BYTES_PER_SECOND, FfmpegNotFound, ffmpeg_path
from transcription.live.ingest.gate import RtmpRefused
from transcription.live.ingest.ports import PortPool, PortsExhausted
from transcription.live.ingest.rtmp import IngestStatus, NoPublisher, RtmpIngest

__all__ = [
    "BYTES_PER_SECOND",
    "FfmpegNotFound",
    "IngestStatus",
    "NoPublisher",
    "PortPool",
    "PortsExhausted",
    "RtmpIngest",
    "RtmpRefused",
    "ffmpeg_path",
]
