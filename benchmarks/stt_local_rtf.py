"""Real-time factor of the offline engine: decode seconds per audio second, per stream.

Feeds the speech fixture (20.5 s) as fast as the engine takes it through the real
``LocalSttStream`` (pocketsphinx in a child process), for 1 and then N concurrent streams,
repeated; reports median and worst RTF and the WER of each pass.

    .venv/bin/python -m benchmarks.stt_local_rtf --repeat 5 --concurrency 1,2,4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import time

import numpy as np
import soundfile

from benchmarks.harness import ROOT, machine

sys.path.insert(0, str(ROOT))

FIXTURE = ROOT / "tests" / "fixtures" / "speech"


def reference() -> str:
    text = (FIXTURE / "README.md").read_text()
    match = re.search(r"checks:\s*\n\s*\n\s+(.+)\n", text)
    assert match
    return match.group(1).strip()


async def one_pass(pcm: bytes) -> tuple[float, str]:
    from transcription.stt.local import LocalSttStream

    stream = LocalSttStream(languages=["en"])
    await stream.start()
    finals: list[str] = []

    async def collect() -> None:
        async for event in stream.events():
            if event.is_final:
                finals.append(event.text)

    collector = asyncio.create_task(collect())
    started = time.perf_counter()
    for offset in range(0, len(pcm), 1280):
        await stream.send_audio(pcm[offset : offset + 1280])
    await stream.close()
    await collector
    return time.perf_counter() - started, " ".join(finals)


async def run(concurrency: int, repeat: int, pcm: bytes) -> dict:
    import jiwer

    audio_seconds = len(pcm) / 32000
    rtfs, wers = [], []
    for _ in range(repeat):
        results = await asyncio.gather(*(one_pass(pcm) for _ in range(concurrency)))
        for elapsed, text in results:
            rtfs.append(elapsed / audio_seconds)
            wers.append(jiwer.wer(reference(), re.sub(r"[^\w\s']", " ", text.lower())))
    return {
        "concurrent_streams": concurrency,
        "passes": len(rtfs),
        "rtf_median": round(statistics.median(rtfs), 3),
        "rtf_max": round(max(rtfs), 3),
        "wer_median": round(statistics.median(wers), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--concurrency", default="1,2,4")
    args = parser.parse_args()
    samples, rate = soundfile.read(FIXTURE / "two_cities_opening.flac", dtype="int16")
    assert rate == 16000
    pcm = np.ascontiguousarray(samples).tobytes()
    results = [asyncio.run(run(int(c), args.repeat, pcm)) for c in args.concurrency.split(",")]
    print(json.dumps({"machine": machine(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
