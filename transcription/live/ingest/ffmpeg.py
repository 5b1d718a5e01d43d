"""ffmpeg for RTMP ingest: which binary, the decoder's command line, process hygiene."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket

SAMPLE_RATE = 16000
BYTES_PER_SECOND = SAMPLE_RATE * 2
STOP_GRACE = 2.0
"""Seconds ffmpeg gets to exit after SIGTERM before SIGKILL."""


class FfmpegNotFound(Exception):
    pass


def ffmpeg_path(choice: str = "auto") -> str:
    """The ffmpeg executable for a ``TRANSCRIPTION_FFMPEG``-style choice.

    ``"system"``: ffmpeg on ``PATH``; ``"bundled"``: the binary of the ``imageio-ffmpeg`` wheel;
    ``"auto"``: system if present, else bundled. Anything else is taken as a path.
    """
    if choice in ("system", "auto"):
        found = shutil.which("ffmpeg")
        if found:
            return found
        if choice == "system":
            raise FfmpegNotFound("no ffmpeg on PATH")
    if choice in ("bundled", "auto"):
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    if os.path.isfile(choice) and os.access(choice, os.X_OK):
        return choice
    raise FfmpegNotFound(f"ffmpeg {choice!r} is neither auto, system, bundled nor an executable")


def decoder_command(ffmpeg: str) -> list[str]:
    """ffmpeg decoding FLV from its stdin to PCM16LE 16 kHz mono on its stdout.

    The input is a pipe only the ingest holds, so ffmpeg opens no socket that another local
    process could race the gate for. ``-probesize 32 -analyzeduration 0`` brings the first
    audio within ~0.3-0.5 s of the push starting (~5 s with default probing).
    """
    return [
        *(ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error"),
        *("-probesize", "32", "-analyzeduration", "0"),
        *("-f", "flv", "-i", "pipe:0"),
        *("-vn", "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "s16le", "pipe:1"),
    ]


def free_loopback_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for tests and tools: another may take it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def end_process(proc: asyncio.subprocess.Process, grace: float = STOP_GRACE) -> None:
    """Terminate ``proc``, kill it if it outlives ``grace`` seconds, and reap it (no zombie).

    Its stdin, if a pipe, is closed first: ffmpeg blocked reading it would not wake for SIGTERM.
    """
    if proc.stdin is not None:
        proc.stdin.close()
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), grace)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
