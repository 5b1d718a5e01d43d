"""Active-speaker timeline: who was speaking when, in stream time, for one run.

Fed in browser mode by the mixer's per-source voice activity (one ``add_activity`` per tick per
active source) and in server mode by the clients' LiveKit ``ActiveSpeakersChanged`` events
(``set_active_speakers``); both may feed the same timeline. Each final utterance is attributed
with :meth:`SpeakerTimeline.attribute`. Times are seconds of stream time; any offset between
the event clock and the stream (egress delay) is applied by the caller.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence

# Float slack when deciding whether two intervals touch: tick boundaries computed as
# ``i * tick`` and ``start + tick`` differ in the last bits.
_TOUCH_EPSILON = 1e-6
# A zero-length utterance is attributed over this much stream time either side of it.
_POINT_TOLERANCE_SECONDS = 0.25


class _Track:
    """One speaker's closed intervals: sorted, disjoint, with adjacent ones merged.

    ``masses[i]`` is the weighted speaking time of interval ``i`` (sum of duration * weight of
    what was merged into it); a partial overlap takes its share pro rata, so merging keeps
    totals exact and only averages the weight inside an interval.
    """

    __slots__ = ("ends", "masses", "starts")

    def __init__(self) -> None:
        self.starts: list[float] = []
        self.ends: list[float] = []
        self.masses: list[float] = []

    def add(self, start: float, end: float, mass: float) -> None:
        # Intervals [first, last) are those that overlap or touch the new one.
        first = bisect_left(self.ends, start - _TOUCH_EPSILON)
        last = bisect_right(self.starts, end + _TOUCH_EPSILON)
        if first < last:
            start = min(start, self.starts[first])
            end = max(end, self.ends[last - 1])
            mass += math.fsum(self.masses[first:last])
        self.starts[first:last] = [start]
        self.ends[first:last] = [end]
        self.masses[first:last] = [mass]

    def score(self, start: float, end: float) -> tuple[float, float | None]:
        """Weighted speaking time inside ``[start, end]`` and when it first begins there."""
        total = 0.0
        first_start: float | None = None
        index = bisect_right(self.ends, start)
        while index < len(self.starts) and self.starts[index] < end:
            lo = max(self.starts[index], start)
            overlap = min(self.ends[index], end) - lo
            if overlap > 0:
                duration = self.ends[index] - self.starts[index]
                total += self.masses[index] * overlap / duration
                if first_start is None:
                    first_start = lo
            index += 1
        return total, first_start

    def prune(self, before: float) -> None:
        count = bisect_right(self.ends, before)
        del self.starts[:count], self.ends[:count], self.masses[:count]


class SpeakerTimeline:
    """Who spoke when in one run's stream, and who said a given utterance.

    Not thread-safe; owned by the run. Memory stays small: adjacent activity of one speaker is
    merged into one interval, and intervals that ended more than ``retention_seconds`` before the
    newest reported time are pruned automatically (utterances are attributed within seconds, so
    the default ten minutes is ample).
    """

    def __init__(self, *, retention_seconds: float = 600.0) -> None:
        if retention_seconds <= 0:
            raise ValueError("retention_seconds must be positive")
        self._retention = retention_seconds
        self._tracks: dict[str, _Track] = {}
        # Speakers named by the last set_active_speakers call, with when each became active.
        self._open: dict[str, float] = {}
        self._latest = -math.inf
        self._pruned_before = -math.inf

    def add_activity(self, speaker: str, start: float, end: float, weight: float = 1.0) -> None:
        """Record that ``speaker`` spoke over ``[start, end)`` of stream time.

        ``weight`` scales how much that time counts (1.0 = plain speaking time; the mixer's level
        may be passed instead). Empty intervals and zero weights add nothing; a negative weight
        raises ``ValueError``. Intervals may arrive in any order; ones that overlap or touch an
        existing interval of the same speaker are merged with it and their weighted times add.
        """
        if weight < 0:
            raise ValueError("weight must not be negative")
        if end <= start or weight == 0:
            return
        track = self._tracks.get(speaker)
        if track is None:
            track = self._tracks[speaker] = _Track()
        track.add(start, end, (end - start) * weight)
        self._advance(end)

    def set_active_speakers(self, speakers: Sequence[str], at: float) -> None:
        """Make exactly ``speakers`` the active set from ``at`` on (server mode).

        Speakers leaving the set get their open interval closed at ``at`` (as weight-1.0
        activity); speakers joining it are open from ``at`` until a later call drops them;
        speakers staying in it keep their original start. An empty sequence closes everyone.
        """
        current = set(speakers)
        for speaker in [name for name in self._open if name not in current]:
            self.add_activity(speaker, self._open.pop(speaker), at)
        for speaker in speakers:
            self._open.setdefault(speaker, at)
        self._advance(at)

    def attribute(self, start: float, end: float) -> str | None:
        """The speaker with the most (weighted) speaking time inside ``[start, end]``.

        Open intervals from :meth:`set_active_speakers` count up to ``end``. Returns ``None``
        when nobody spoke in the window. Ties (within float noise) go to the speaker who started
        speaking first inside the window, then to the smaller name so the answer is stable. An
        utterance with ``end <= start`` is looked up over ``start`` +/- 0.25 s, since a point has
        no duration to overlap.
        """
        if end <= start:
            start, end = (
                start - _POINT_TOLERANCE_SECONDS,
                start + _POINT_TOLERANCE_SECONDS,
            )

        best: tuple[float, float, str] | None = None
        for speaker in self._tracks.keys() | self._open.keys():
            total, first_start = self._score(speaker, start, end)
            if first_start is None:
                continue
            if best is None or _beats(total, first_start, speaker, best):
                best = (total, first_start, speaker)
        return None if best is None else best[2]

    def prune(self, before: float) -> None:
        """Forget closed activity that ended at or before ``before``.

        Open intervals (speakers still active) are kept whatever their start.
        """
        for speaker in list(self._tracks):
            track = self._tracks[speaker]
            track.prune(before)
            if not track.starts:
                del self._tracks[speaker]
        self._pruned_before = max(self._pruned_before, before)

    def _score(self, speaker: str, start: float, end: float) -> tuple[float, float | None]:
        track = self._tracks.get(speaker)
        total, first_start = track.score(start, end) if track else (0.0, None)
        since = self._open.get(speaker)
        if since is not None and since < end:
            lo = max(since, start)
            if end > lo:
                total += end - lo
                first_start = lo if first_start is None else min(first_start, lo)
        return total, first_start

    def _advance(self, now: float) -> None:
        self._latest = max(self._latest, now)
        horizon = self._latest - self._retention
        # Pruning walks every speaker, so do it once per tenth of the retention, not per tick.
        if horizon - self._pruned_before >= self._retention / 10:
            self.prune(horizon)


def _beats(total: float, first_start: float, speaker: str, best: tuple[float, float, str]) -> bool:
    best_total, best_first_start, best_speaker = best
    if not math.isclose(total, best_total, rel_tol=1e-9, abs_tol=1e-9):
        return total > best_total
    if first_start != best_first_start:
        return first_start < best_first_start
    return speaker < best_speaker
