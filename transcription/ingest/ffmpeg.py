"""ffmpeg for RTMP ingest: which binary, the listener's command line, process hygiene."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import sys

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


def listener_command(ffmpeg: str, port: int, app: str, accept_timeout: float) -> list[str]:
    """ffmpeg as a one-publisher RTMP listener on loopback, decoding to PCM16LE 16 kHz mono.

    ``-probesize 32 -analyzeduration 0`` brings the first audio from ~5 s to ~0.3-0.5 s after
    the push starts. The stream key in the URL is a placeholder: ffmpeg checks none (the gate
    does), and a secret on a command line is visible to every local user in ``ps``.
    """
    return [
        *(ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error"),
        *("-probesize", "32", "-analyzeduration", "0"),
        *("-listen", "1", "-timeout", str(max(1, round(accept_timeout)))),
        *("-i", f"rtmp://127.0.0.1:{port}/{app}/ingest"),
        *("-vn", "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "s16le", "pipe:1"),
    ]


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _proc_tcp_address(port: int) -> str:
    loopback = int.from_bytes(socket.inet_aton("127.0.0.1"), sys.byteorder)
    return f"{loopback:08X}:{port:04X}"


def connection_belongs_to(pid: int, writer: asyncio.StreamWriter) -> bool:
    """Whether the far end of ``writer``'s loopback connection is a socket of process ``pid``.

    Finds the peer socket's inode in ``/proc/net/tcp`` and looks for it among ``pid``'s open
    files. Where ``/proc`` is missing the check cannot be made and passes.
    """
    local_port = writer.get_extra_info("sockname")[1]
    peer_port = writer.get_extra_info("peername")[1]
    try:
        with open("/proc/net/tcp") as table:
            rows = [line.split() for line in table.readlines()[1:]]
    except FileNotFoundError:
        return True
    wanted = (_proc_tcp_address(peer_port), _proc_tcp_address(local_port))
    inodes = {row[9] for row in rows if len(row) > 9 and (row[1], row[2]) == wanted}
    if not inodes:
        return False
    try:
        links = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    except OSError:
        return False
    return any(f"socket:[{inode}]" in links for inode in inodes)


async def end_process(proc: asyncio.subprocess.Process, grace: float = STOP_GRACE) -> None:
    """Terminate ``proc``, kill it if it outlives ``grace`` seconds, and reap it (no zombie)."""
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
