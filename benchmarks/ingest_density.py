"""RTMP ingest density: how many concurrent ingests one machine decodes in real time.

Each of N runs gets an :class:`RtmpIngest` (publish gate + ffmpeg listener + PCM reader) fed by
an ffmpeg pusher sending pre-encoded AAC/FLV at real time with ``-c copy`` (what the fake egress
does; the real egress runs elsewhere). A reader consumes every run's PCM as a pipeline would.
After a warm-up, each run's decoded audio over S wall seconds tells whether it kept real time.

    .venv/bin/python -m benchmarks.ingest_density --streams 10,25,50,75 --seconds 30

Reported per N: CPU per ingest (its ffmpeg listener, plus this process's share: the gate's
splice and the PCM readers) as a fraction of one core, the pushers' CPU separately, listener
memory (PSS), and the runs that kept real time (decoded >= 97 % of wall time, lag growing by
<= 0.25 s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.harness import ROOT, cpu_seconds, machine

sys.path.insert(0, str(ROOT))

from tests.fakes.livekit import FIXTURE, encode_flv
from transcription.live.ingest import BYTES_PER_SECOND, PortPool, RtmpIngest, ffmpeg_path
from transcription.live.ingest.ffmpeg import end_process

REAL_TIME_RATIO = 0.97
MAX_LAG_GROWTH = 0.25


@dataclass
class Stream:
    ingest: RtmpIngest
    pusher: asyncio.subprocess.Process | None = None
    bytes: int = 0
    reader: asyncio.Task[None] | None = None
    marks: list[tuple[float, int]] = field(default_factory=list)

    async def read(self) -> None:
        async for chunk in self.ingest.chunks():
            self.bytes += len(chunk)

    def mark(self) -> None:
        self.marks.append((time.monotonic(), self.bytes))


def _pss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _push(ffmpeg: str, flv: Path, url: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *(ffmpeg, "-hide_banner", "-loglevel", "quiet", "-nostdin", "-re", "-stream_loop", "-1"),
        *("-i", str(flv), "-c", "copy", "-f", "flv", url),
        stdin=asyncio.subprocess.DEVNULL,
    )


async def measure(n: int, seconds: float, flv: Path, ffmpeg: str) -> dict[str, object]:
    pool = PortPool(48000, 48999)
    streams = [
        Stream(RtmpIngest(stream_key=f"bench-{i}", ports=pool, chunk_bytes=640)) for i in range(n)
    ]
    await asyncio.gather(*(s.ingest.start() for s in streams))
    try:
        for stream in streams:
            stream.reader = asyncio.ensure_future(stream.read())
            stream.pusher = await _push(ffmpeg, flv, stream.ingest.url())
        deadline = time.monotonic() + 30
        while any(s.bytes == 0 for s in streams) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        started = sum(1 for s in streams if s.bytes)
        await asyncio.sleep(2.0)  # warm-up: every pipe flowing, start-up bursts over

        def cpu() -> tuple[float, float, float]:
            listeners = sum(cpu_seconds(p) for s in streams if (p := s.ingest.ffmpeg_pid))
            pushers = sum(cpu_seconds(s.pusher.pid) for s in streams if s.pusher)
            return listeners, _self_cpu(), pushers

        cpu0, t0 = cpu(), time.monotonic()
        for stream in streams:
            stream.mark()
        await asyncio.sleep(seconds)
        cpu1, t1 = cpu(), time.monotonic()
        for stream in streams:
            stream.mark()
        pss = [_pss_mb(p) for s in streams if (p := s.ingest.ffmpeg_pid)]
        restarts = sum(s.ingest.restarts for s in streams)
    finally:
        for stream in streams:
            if stream.pusher is not None:
                await end_process(stream.pusher)
        await asyncio.gather(*(s.ingest.stop() for s in streams))
        await asyncio.gather(*(s.reader for s in streams if s.reader), return_exceptions=True)

    wall = t1 - t0
    ratios, lag_growth = [], []
    for stream in streams:
        (a_t, a_b), (b_t, b_b) = stream.marks[-2:]
        audio = (b_b - a_b) / BYTES_PER_SECOND
        ratios.append(audio / (b_t - a_t))
        lag_growth.append((b_t - a_t) - audio)
    kept = sum(
        1
        for ratio, lag in zip(ratios, lag_growth, strict=True)
        if ratio >= REAL_TIME_RATIO and lag <= MAX_LAG_GROWTH
    )
    listener_cpu = (cpu1[0] - cpu0[0]) / wall
    process_cpu = (cpu1[1] - cpu0[1]) / wall
    return {
        "streams": n,
        "seconds": round(wall, 2),
        "started": started,
        "kept_real_time": kept,
        "all_kept_real_time": kept == n,
        "min_ratio": round(min(ratios), 4),
        "max_lag_growth_s": round(max(lag_growth), 3),
        "cpu_per_ingest": round((listener_cpu + process_cpu) / n, 4),
        "cpu_per_listener": round(listener_cpu / n, 4),
        "cpu_gate_and_readers_per_ingest": round(process_cpu / n, 4),
        "cpu_pushers_per_stream": round((cpu1[2] - cpu0[2]) / wall / n, 4),
        "listener_pss_mb": round(sum(pss) / len(pss), 1) if pss else None,
        "ffmpeg_restarts": restarts,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", default="10,25,50,75", help="comma-separated counts")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--ffmpeg", default="auto", help="auto, system, bundled or a path")
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ffmpeg = ffmpeg_path(args.ffmpeg)
    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as tmp:
        flv = encode_flv(FIXTURE, Path(tmp) / "egress.flv", ffmpeg=ffmpeg)
        results = [
            asyncio.run(measure(int(n), args.seconds, flv, ffmpeg)) for n in args.streams.split(",")
        ]
    print(json.dumps({"machine": machine(), "ffmpeg": ffmpeg, "results": results}, indent=2))


if __name__ == "__main__":
    main()
