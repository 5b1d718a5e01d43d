"""Which action items were drawn from speech the recogniser was unsure of.

Every provider gives an item the ``start`` of the transcript line it came from (the offline
analyser its segment's start, the LLM the ``[seconds]`` of its line), so the item's source
segment is found by time here, whatever the provider.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from sessions_app.analysis.types import ActionItem, Utterance

# Two segments starting this close to an item's moment are both its source.
_SAME_START = 0.05


def segment_confidence(confidence: float | None, words: Any) -> float | None:
    """The segment's confidence, else the mean of its words' confidences, else None.

    ``words`` is the segment's ``[{text, start, end, confidence}]`` as stored (anything else,
    or words without a numeric confidence, counts as no words)."""
    if confidence is not None:
        return float(confidence)
    if not isinstance(words, list):
        return None
    values = [
        float(w["confidence"])
        for w in words
        if isinstance(w, dict)
        and isinstance(w.get("confidence"), int | float)
        and not isinstance(w.get("confidence"), bool)
        and math.isfinite(w["confidence"])
    ]
    return sum(values) / len(values) if values else None


def source_utterances(start: float | None, utterances: Sequence[Utterance]) -> list[Utterance]:
    """The utterances an item said at ``start`` came from: those under way at that moment
    (a whole second allowed, as the LLM gives whole seconds), the closest start first."""
    if start is None:
        return []
    under_way = [
        u
        for u in utterances
        if math.floor(u.start) <= start < max(u.end, math.floor(u.start) + 1.0)
    ]
    if not under_way:
        return []
    nearest = min(abs(u.start - start) for u in under_way)
    return [u for u in under_way if abs(u.start - start) <= nearest + _SAME_START]


def mark_low_confidence(
    items: Iterable[ActionItem], utterances: Sequence[Utterance], *, threshold: float
) -> list[ActionItem]:
    """``items`` with ``low_confidence`` set: True when a source utterance's confidence is below
    ``threshold``. An item with no known source, or sources without a confidence, is not
    marked: nothing says the speech was unclear."""
    marked: list[ActionItem] = []
    for item in items:
        sources = source_utterances(item["start"], utterances)
        low = any(u.confidence is not None and u.confidence < threshold for u in sources)
        marked.append(ActionItem(**{**item, "low_confidence": low}))
    return marked
