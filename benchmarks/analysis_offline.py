"""Time of the offline session analysis on a generated long meeting.

A synthetic meeting (``tests/sessions_app/synthetic_meeting.py``: four speakers, four planted
topics, five planted action items, ~20,000 words for 2 hours) is analysed ``--repeat`` times
by ``sessions_app.analysis.offline.analyse``, the function the Celery task runs; reports the
median, p95, p99 and worst time, the time per stage, and checks the planted topics and owners
were found.

    .venv/bin/python -m benchmarks.analysis_offline --minutes 120 --repeat 20
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

from benchmarks.harness import ROOT, machine

sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rooms.settings")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=int, default=120)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    from sessions_app.analysis import offline
    from sessions_app.analysis.actions import extract_action_items
    from sessions_app.analysis.text import sentences_of
    from sessions_app.analysis.types import AnalysisInput, Utterance
    from tests.sessions_app.synthetic_meeting import PLANTED, SPEAKERS, TOPICS, meeting

    lines = meeting(minutes=args.minutes)
    utterances = [Utterance(i, n, text, s, e) for s, e, i, n, text in lines]
    names = [name for _, name in SPEAKERS]
    data = AnalysisInput(utterances=utterances, known_names=names)
    words = sum(len(u.text.split()) for u in utterances)
    sentences = sentences_of(utterances)

    totals: list[float] = []
    stages: dict[str, list[float]] = {"summary": [], "topics": [], "actions": [], "stats": []}
    result = None
    for _ in range(args.repeat):
        began = time.perf_counter()
        result = offline.analyse(data)
        totals.append(time.perf_counter() - began)
        # The stages again one by one, for the breakdown.
        t0 = time.perf_counter()
        topics = offline.extract_topics(utterances, names=names)
        t1 = time.perf_counter()
        offline.summarise(sentences_of(utterances), topics)
        t2 = time.perf_counter()
        extract_action_items(sentences, known_names=names)
        t3 = time.perf_counter()
        offline.speaker_stats(utterances)
        t4 = time.perf_counter()
        for key, value in zip(stages, (t2 - t1, t1 - t0, t3 - t2, t4 - t3), strict=True):
            stages[key].append(value)

    assert result is not None
    found = {item["text"]: item for item in result.action_items}
    owners_ok = all(
        p.text in found and found[p.text]["owner"] == p.owner and found[p.text]["due"] == p.due
        for p in PLANTED
    )
    report = {
        "machine": machine(),
        "minutes": args.minutes,
        "utterances": len(utterances),
        "sentences": len(sentences),
        "words": words,
        "runs": len(totals),
        "total_s": {
            "median": round(statistics.median(totals), 3),
            "p95": round(_pct(totals, 0.95), 3),
            "p99": round(_pct(totals, 0.99), 3),
            "max": round(max(totals), 3),
        },
        "stage_median_s": {k: round(statistics.median(v), 3) for k, v in stages.items()},
        "planted_topics_found": sorted(set(TOPICS) & set(result.topics)),
        "topics": result.topics,
        "planted_items_with_owner_and_due": owners_ok,
        "action_items": len(result.action_items),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
