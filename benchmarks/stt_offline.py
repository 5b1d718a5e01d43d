"""The offline engine (Whisper + Silero VAD) per recording and under concurrent sessions.

Two measurements through the real ``LocalSttStream`` and its decoder process:

* **accuracy** — each recording fed as fast as the engine takes it: WER, the decoder's CPU
  seconds per audio second (RTF), utterances, for each encoder-window floor asked for;
* **sessions** — N concurrent sessions, each playing the opening and the continuation back
  to back (44.4 s of continuous speech) at real time, staggered, sharing one decoder process
  (one core): finals latency after the end of each utterance (p50/p95/max), partials,
  CPU core-seconds per audio second (this process's VAD and bookkeeping plus the decoder),
  audio dropped. Then the decoder's RSS and model load time.

    .venv/bin/python -m benchmarks.stt_offline --windows 10,15,30 --sessions 1,2,4,6,8

``--extra PATH=REFERENCE`` adds a recording (any format PyAV reads) to the accuracy table.

The machine is shared: report ``uptime`` with the numbers, and repeat.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.harness import ROOT, machine

sys.path.insert(0, str(ROOT))

FIXTURES = ROOT / "tests" / "fixtures" / "speech"
RECORDINGS = ("two_cities_opening.flac", "two_cities_continuation.flac")
CHUNK = 1280  # 40 ms
OPTIONS: dict = {}  # the stream options every pass uses (model, language)


def references() -> list[str]:
    return [
        " ".join(block.split())
        for block in re.findall(r"\n\n {4}(\S.+)\n", (FIXTURES / "README.md").read_text())
    ]


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s']", " ", text.lower()).split())


def load(path: Path) -> bytes:
    from faster_whisper import decode_audio

    samples = decode_audio(str(path), sampling_rate=16000)
    return (np.clip(samples, -1, 1 - 1 / 32768) * 32768).astype("<i2").tobytes()


def cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def one_pass(pcm: bytes, **options) -> tuple[list, float]:
    from transcription.live.stt.local import LocalSttStream

    stream = LocalSttStream(**OPTIONS, **options)
    await stream.start()
    events = []

    async def collect() -> None:
        async for event in stream.events():
            events.append(event)

    collector = asyncio.create_task(collect())
    for offset in range(0, len(pcm), CHUNK):
        await stream.send_audio(pcm[offset : offset + CHUNK])
    await stream.close()
    await collector
    return events, stream.decoder_cpu_seconds


async def accuracy(recordings: list[tuple[str, bytes, str]], windows: list[float]) -> list:
    import jiwer

    rows = []
    for window in windows:
        for name, pcm, ref in recordings:
            events, cpu = await one_pass(pcm, min_window_seconds=window)
            finals = [e for e in events if e.is_final]
            text = normalise(" ".join(e.text for e in finals))
            seconds = len(pcm) / 32000
            rows.append(
                {
                    "recording": name,
                    "min_window": window,
                    "seconds": round(seconds, 2),
                    "words": len(ref.split()),
                    "wer": round(jiwer.wer(ref, text), 3),
                    "utterances": len(finals),
                    "decoder_cpu_s": round(cpu, 2),
                    "rtf": round(cpu / seconds, 3),
                    "mean_confidence": round(
                        statistics.mean(e.confidence for e in finals if e.confidence), 3
                    ),
                    "text": text,
                }
            )
    return rows


async def session(pcm: bytes, delay: float, results: dict, **options) -> None:
    from transcription.live.stt.local import LocalSttStream

    await asyncio.sleep(delay)
    stream = LocalSttStream(**OPTIONS, **options)
    await stream.start()
    began = time.perf_counter()
    latencies, partials = [], 0

    async def collect() -> None:
        nonlocal partials
        async for event in stream.events():
            now = time.perf_counter() - began
            if event.is_final:
                latencies.append(now - event.end)
            else:
                partials += 1

    collector = asyncio.create_task(collect())
    for offset in range(0, len(pcm), CHUNK):
        await stream.send_audio(pcm[offset : offset + CHUNK])
        ahead = (offset + CHUNK) / 32000 - (time.perf_counter() - began)
        if ahead > 0:
            await asyncio.sleep(ahead)
    await stream.close()
    await collector
    results["latencies"] += latencies
    results["partials"] += partials
    results["finals"] += len(latencies)
    results["dropped"] += stream.dropped_audio_seconds
    results["job_cpu"] += stream.decoder_cpu_seconds
    results["job_wall"] += stream.decoder_wall_seconds
    results["audio"] += len(pcm) / 32000


async def sessions(count: int, pcm: bytes, **options) -> dict:
    from transcription.live.stt.local import LocalSttStream

    warm = LocalSttStream(**OPTIONS, **options)
    await warm.start()
    await warm.close()
    assert warm._pool is not None
    pid = warm._pool.pids[0]
    results = {
        "latencies": [],
        "partials": 0,
        "finals": 0,
        "dropped": 0.0,
        "audio": 0.0,
        "job_cpu": 0.0,
        "job_wall": 0.0,
    }
    own, decoder = time.process_time(), cpu_of(pid)
    # Staggered starts: sessions do not pause in lockstep.
    await asyncio.gather(*(session(pcm, i * 5.0 / count, results, **options) for i in range(count)))
    own, decoder = time.process_time() - own, cpu_of(pid) - decoder
    latencies = sorted(results["latencies"])
    return {
        "sessions": count,
        "finals": results["finals"],
        "partials": results["partials"],
        "latency_p50_s": round(statistics.median(latencies), 3),
        "latency_p95_s": round(latencies[max(0, int(0.95 * len(latencies)) - 1)], 3),
        "latency_max_s": round(latencies[-1], 3),
        "cpu_core_s_per_audio_s": round((own + decoder) / results["audio"], 3),
        "of_which_decoder": round(decoder / results["audio"], 3),
        "dropped_audio_s": round(results["dropped"], 2),
        # Above 1: the decoder waited for a core (other processes on the machine).
        "decoder_wall_per_cpu": round(results["job_wall"] / max(results["job_cpu"], 1e-9), 2),
        "decoder_rss_mb": round(rss_mb(pid), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--windows", default="10", help="encoder-window floors (s)")
    parser.add_argument("--sessions", default="1,2,4", help="concurrent real-time sessions")
    parser.add_argument("--session-window", type=float, default=10.0)
    parser.add_argument("--partial-seconds", type=float, default=2.0)
    parser.add_argument("--extra", action="append", default=[], help="PATH=reference")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--model-dir", help="another CTranslate2 Whisper model directory")
    parser.add_argument("--language", default="en", help="the sessions' language code")
    args = parser.parse_args()

    refs = references()
    recordings = [
        (name, load(FIXTURES / name), ref) for name, ref in zip(RECORDINGS, refs, strict=True)
    ]
    for extra in args.extra:
        path, _, ref = extra.partition("=")
        recordings.append((Path(path).name, load(Path(path)), normalise(ref)))
    out: dict = {"machine": machine(), "load_before": os.getloadavg()}
    started = time.perf_counter()
    from transcription.live.stt.local import default_model_dir
    from transcription.live.stt.whisper_pool import get_pool

    model_dir = args.model_dir or default_model_dir()
    pool = get_pool(model_dir=model_dir)
    pool.start()
    OPTIONS.update(model_dir=model_dir, languages=[args.language])
    out["model_load_s"] = pool.load_seconds
    out["first_start_wall_s"] = round(time.perf_counter() - started, 2)
    if not args.skip_accuracy:
        windows = [float(w) for w in args.windows.split(",")]
        out["accuracy"] = asyncio.run(accuracy(recordings, windows))
    speech = recordings[0][1] + recordings[1][1]
    out["sessions"] = [
        asyncio.run(
            sessions(
                int(n),
                speech,
                min_window_seconds=args.session_window,
                partial_seconds=args.partial_seconds,
            )
        )
        for n in args.sessions.split(",")
    ]
    out["load_after"] = os.getloadavg()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
