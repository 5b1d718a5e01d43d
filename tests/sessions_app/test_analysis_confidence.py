"""Which action items come from speech the recogniser was unsure of, whatever the provider."""

from __future__ import annotations

import math

import pytest

from sessions_app.analysis.confidence import (
    mark_low_confidence,
    segment_confidence,
    source_utterances,
)
from sessions_app.analysis.types import ActionItem, Utterance
from sessions_app.models import SessionAnalysis, Task
from sessions_app.services import session_end
from tests.fakes.llm import FakeLlm
from tests.sessions_app.analysis_support import store_lines


def _u(start: float, end: float, confidence: float | None, who: str = "Ann") -> Utterance:
    return Utterance(f"u-{who}", who, f"{who} at {start}", start, end, confidence)


def _item(start: float | None) -> ActionItem:
    return ActionItem(text="Send the deck", owner=None, due=None, start=start)


@pytest.mark.parametrize(
    ("confidence", "words", "expected"),
    [
        (0.8, [{"confidence": 0.1}], 0.8),
        (None, [{"confidence": 0.2}, {"confidence": 0.6}], 0.4),
        # Words without a usable confidence do not count.
        (None, [{"confidence": 0.5}, {"confidence": None}, {"confidence": True}, {}], 0.5),
        (None, [{"confidence": "high"}, {"confidence": math.nan}, "word"], None),
        (None, [], None),
        (None, None, None),
        (None, {"confidence": 0.1}, None),
    ],
)
def test_segment_confidence_is_the_engines_else_its_words_mean(confidence, words, expected):
    assert segment_confidence(confidence, words) == pytest.approx(expected)


def test_an_item_is_traced_to_the_segment_it_was_said_in():
    lines = [_u(0.0, 5.0, 0.9), _u(5.4, 9.0, 0.3), _u(9.5, 12.0, 0.9)]

    # The offline analyser gives the segment's start rounded; the LLM whole seconds.
    assert source_utterances(5.4, lines) == [lines[1]]
    assert source_utterances(5.0, lines) == [lines[1]]
    assert source_utterances(9.0, lines) == [lines[2]]
    assert source_utterances(None, lines) == []
    assert source_utterances(60.0, lines) == []


def test_crosstalk_takes_the_segment_starting_closest_to_the_item():
    lines = [_u(10.0, 30.0, 0.2, "Ann"), _u(20.2, 24.0, 0.95, "Bob")]

    assert source_utterances(20.2, lines) == [lines[1]]
    assert mark_low_confidence([_item(20.2)], lines, threshold=0.6)[0]["low_confidence"] is False
    assert mark_low_confidence([_item(12.0)], lines, threshold=0.6)[0]["low_confidence"] is True


def test_marking_keeps_the_items_and_flags_only_unsure_ones():
    lines = [_u(0.0, 4.0, 0.9), _u(4.0, 8.0, 0.45), _u(8.0, 12.0, None)]
    items = [_item(0.0), _item(4.0), _item(8.0), _item(None)]

    marked = mark_low_confidence(items, lines, threshold=0.6)

    assert [i["low_confidence"] for i in marked] == [False, True, False, False]
    assert [i["start"] for i in marked] == [0.0, 4.0, 8.0, None]
    assert "low_confidence" not in items[0], "the provider's items are not changed in place"


def test_llm_items_are_marked_from_the_line_they_cite(
    video_session, owner, settings, django_capture_on_commit_callbacks
):
    store_lines(
        video_session,
        [
            (2.0, 10.0, "u-a", "Ann", "Welcome to the pricing review."),
            (12.7, 16.0, "u-b", "Bob", "I will send the pricing sheet by Friday."),
            (16.5, 20.0, "u-a", "Ann", "I will book the room for the workshop."),
        ],
        confidence={0: 0.95, 1: 0.35, 2: 0.97},
    )
    with FakeLlm(api_key="sk-test") as fake:
        settings.LLM_BASE_URL = fake.base_url
        settings.LLM_API_KEY = "sk-test"
        settings.LLM_MODEL = "fake-model-1"
        settings.ANALYSIS_PROVIDER = "llm"
        settings.ANALYSIS_RUNNER = "celery"
        with django_capture_on_commit_callbacks(execute=True):
            session_end(session=video_session, by=owner)

    analysis = SessionAnalysis.objects.get(session=video_session)
    assert analysis.provider == "llm"
    # The LLM cites whole seconds: [12] is the 12.7 s line, [16] the 16.5 s one.
    assert [(i["start"], i["low_confidence"]) for i in analysis.action_items] == [
        (12.0, True),
        (16.0, False),
    ]
    low = dict(Task.objects.values_list("title", "low_confidence"))
    assert low == {
        "I will send the pricing sheet by Friday.": True,
        "I will book the room for the workshop.": False,
    }
