"""Cost arithmetic: billed minutes are ``ceil(seconds / 60)``; cost is Decimal, 4 places.

Floating error: durations are floats summed from audio ticks, so a run of exactly one minute
can be metered as ``60.00000000000378`` s. ``billed_minutes`` rounds to 6 decimals before the
ceiling, which treats anything within half a microsecond of a minute boundary as on it: such
excess is float noise, not audio (the meter's finest unit is a 20 ms tick). So
``60.0000001`` s bills 1 minute while ``60.000001`` s (a whole microsecond over) bills 2.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from transcription.live.ingest import BYTES_PER_SECOND
from transcription.usage.pricing import billed_minutes, quantize_cost, total_cost, video_cost


@pytest.mark.parametrize(
    ("seconds", "minutes"),
    [
        (0, 0),
        (0.0, 0),
        (-5.0, 0),
        (0.001, 1),
        (59, 1),
        (59.9999, 1),
        (60, 1),
        (60.0000001, 1),  # below the 6-decimal rounding: float noise, not a second minute
        (60.000001, 2),  # a whole microsecond over is audio: the next minute starts
        (61, 2),
        (119.999, 2),
        (120, 2),
        (3 * 3600, 180),
        (3 * 3600 + 0.5, 181),
        (10 * 3600, 600),
    ],
)
def test_billed_minutes_are_whole_minutes_rounded_up(seconds, minutes):
    assert billed_minutes(seconds) == minutes


@pytest.mark.parametrize("hours", [1, 3, 8, 10])
def test_a_duration_metered_from_20ms_ticks_bills_exactly_its_minutes(hours):
    # The pipeline meters audio from the integer count of bytes it sent (never by summing
    # float ticks, which drifts: 8 h of ``+= 0.02`` is 28800.0000005 s and would bill 481).
    audio_bytes = hours * 3600 * 50 * 640  # 20 ms ticks of PCM16 at 16 kHz
    assert billed_minutes(audio_bytes / BYTES_PER_SECOND) == hours * 60


@pytest.mark.parametrize(
    ("minutes", "per_minute", "expected"),
    [
        (0, Decimal("0.01"), Decimal("0.0000")),
        (1, Decimal("0.01"), Decimal("0.0100")),
        (2, Decimal("0.01"), Decimal("0.0200")),
        (180, Decimal("0.01"), Decimal("1.8000")),
        (600, Decimal("0.01"), Decimal("6.0000")),
        (1, Decimal("0.0125"), Decimal("0.0125")),
        (3, Decimal("0.0125"), Decimal("0.0375")),
        (600, Decimal("0.0125"), Decimal("7.5000")),
        # Half a quantum rounds up (ROUND_HALF_UP), where banker's rounding would go to even.
        (1, Decimal("0.00125"), Decimal("0.0013")),
        (1, Decimal("0.00135"), Decimal("0.0014")),
        (1, Decimal("0.00005"), Decimal("0.0001")),
        (1, Decimal("0.00004999"), Decimal("0.0000")),
    ],
)
def test_total_cost_is_minutes_times_rate_rounded_half_up_to_4_places(
    minutes, per_minute, expected
):
    cost = total_cost(minutes, per_minute)
    assert isinstance(cost, Decimal)
    assert cost == expected
    assert cost.as_tuple().exponent == -4, "stored and shown with exactly 4 decimal places"


@pytest.mark.parametrize(
    ("participant_minutes", "per_minute", "expected"),
    [
        (0, Decimal("0.0005"), Decimal("0.0000")),
        (1, Decimal("0.0005"), Decimal("0.0005")),
        (41, Decimal("0.0005"), Decimal("0.0205")),
        (10 * 60 * 50, Decimal("0.0005"), Decimal("15.0000")),  # 50 people for 10 hours
        (1, Decimal("0.00005"), Decimal("0.0001")),  # half a quantum rounds up
        (3, Decimal("0.00001"), Decimal("0.0000")),
    ],
)
def test_video_cost_is_participant_minutes_times_rate_4_places(
    participant_minutes, per_minute, expected
):
    cost = video_cost(participant_minutes, per_minute)
    assert cost == expected
    assert cost.as_tuple().exponent == -4


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        (None, "0.0000"),
        (0, "0.0000"),
        (Decimal("1.5"), "1.5000"),
        (Decimal("0.00005"), "0.0001"),
        (Decimal("123456.78904"), "123456.7890"),
    ],
)
def test_sums_of_costs_are_shown_with_4_places_and_none_is_zero(amount, expected):
    assert str(quantize_cost(amount)) == expected
