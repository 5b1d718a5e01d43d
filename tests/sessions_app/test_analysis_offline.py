"""The offline analyser: summary, topics, action items and speaker stats."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sessions_app.analysis import offline
from sessions_app.analysis.actions import due_phrase
from sessions_app.analysis.text import sentences_of
from sessions_app.analysis.types import AnalysisInput, Utterance
from tests.sessions_app.analysis_support import (
    MEETING_LINES,
    PLANNING,
    speech_fixture_reference,
)
from tests.sessions_app.synthetic_meeting import PLANTED, SPEAKERS, TOPICS, meeting


def _utterances(lines) -> list[Utterance]:
    return [
        Utterance(identity, name, text, start, end) for start, end, identity, name, text in lines
    ]


def test_speech_fixture_summary_is_made_of_its_own_sentences_and_topics_are_its_themes():
    reference = speech_fixture_reference()
    # The speech recogniser's endpointing cuts the reading into clauses like these.
    clauses = re.split(r" (?=it was )", reference)
    utterances = [
        Utterance("u-reader", "Reader", clause, i * 2.0, i * 2.0 + 1.8)
        for i, clause in enumerate(clauses)
    ]
    result = offline.analyse(AnalysisInput(utterances=utterances, known_names=["Reader"]))

    summary_sentences = [s.strip() for s in re.split(r"(?<=\.)\s+", result.summary) if s]
    assert 1 <= len(summary_sentences) <= 5
    for sentence in summary_sentences:
        assert sentence.rstrip(".").lower() in clauses
    assert {"age", "epoch", "season"} <= set(result.topics)
    assert not {"was", "the", "it", "of"} & set(result.topics)
    assert result.provider == "offline"
    assert result.action_items == []


def test_two_hour_meeting_names_planted_topics_and_owners_within_the_time_budget():
    lines = meeting(minutes=120)
    words = sum(len(line[4].split()) for line in lines)
    assert words >= 18000
    data = AnalysisInput(utterances=_utterances(lines), known_names=[n for _, n in SPEAKERS])

    began = time.perf_counter()
    result = offline.analyse(data)
    elapsed = time.perf_counter() - began

    # ≤ 5 s is the target on this shared box (benchmarks/analysis_offline.py); the test
    # allows for a loaded machine.
    assert elapsed < 20
    assert set(TOPICS) <= set(result.topics[:6])
    found = {item["text"]: item for item in result.action_items}
    for planted in PLANTED:
        assert planted.text in found, planted.text
        assert found[planted.text]["owner"] == planted.owner
        assert found[planted.text]["due"] == planted.due
    assert len(result.action_items) == len(PLANTED)
    # The summary speaks about the planted topics, in sentences of the transcript.
    all_sentences = {s.text for s in sentences_of(data.utterances)}
    assert sum(topic in result.summary for topic in TOPICS) >= 3
    for sentence in re.split(r"(?<=\.)\s+", result.summary):
        assert sentence in all_sentences


NAMES = ["Alice Smith", "Bob Jones", "Carol King"]


@pytest.mark.parametrize(
    ("speaker", "said", "owner", "due"),
    [
        ("Alice Smith", "I'll send the budget to finance by Friday.", "Alice Smith", "by Friday"),
        ("Alice Smith", "Okay, so I will draft the agenda tomorrow.", "Alice Smith", "tomorrow"),
        ("Bob Jones", "I'm going to migrate the wiki next week.", "Bob Jones", "next week"),
        ("Bob Jones", "Bob will update the roadmap next week.", "Bob Jones", "next week"),
        ("Alice Smith", "Carol will order the laptops on March 3.", "Carol King", "on March 3"),
        (
            "Alice Smith",
            "Bob, can you review the contract by the end of the month?",
            "Bob Jones",
            "by the end of the month",
        ),
        ("Carol King", "Alice, could you please share the slides?", "Alice Smith", None),
        ("Carol King", "Dana, can you draft the press release by Monday?", "Dana", "by Monday"),
        (
            "Carol King",
            "We need to fix the login bug before the next meeting.",
            None,
            "before the next meeting",
        ),
        ("Bob Jones", "Let's schedule a follow-up with legal this week.", None, "this week"),
        (
            "Alice Smith",
            "Action item: Carol to book the venue by the 12th of May.",
            "Carol King",
            "by the 12th of May",
        ),
        (
            "Alice Smith",
            "Action item - renew the domain within two weeks.",
            None,
            "within two weeks",
        ),
        ("Bob Jones", "Sounds good, I'll ping the vendor today.", "Bob Jones", "today"),
        ("Bob Jones", "We'll publish the changelog on Thursday.", None, "on Thursday"),
    ],
)
def test_action_item_owner_and_due_are_parsed(speaker, said, owner, due):
    utterances = [Utterance("u-x", speaker, said, 12.5, 16.0)]
    result = offline.analyse(AnalysisInput(utterances=utterances, known_names=NAMES))
    assert len(result.action_items) == 1, result.action_items
    item = result.action_items[0]
    assert item["owner"] == owner
    assert item["due"] == due
    assert item["start"] == 12.5
    assert item["text"] in said


@pytest.mark.parametrize(
    "said",
    [
        "I'll be honest, the numbers look weak.",
        "Let's move on to the next item.",
        "Let's get started.",
        "Can you hear me now?",
        "Will I need a badge for the office?",
        "We talked about the budget last week.",
        "Okay, can you see my screen?",
        "I'll see you all on Thursday.",
        "I'm going to share my screen now.",
        "We'll see how it goes.",
        "Sorry, I have to drop off in five minutes.",
        # The meeting looking back at itself, not a task for later.
        "Let us look at what went well this quarter.",
        "Let's review how the pilot went.",
    ],
)
def test_things_that_are_not_commitments_are_not_action_items(said):
    utterances = [Utterance("u-a", "Alice Smith", said, 0.0, 3.0)]
    result = offline.analyse(AnalysisInput(utterances=utterances, known_names=NAMES))
    assert result.action_items == []


@pytest.mark.parametrize(
    ("text", "due"),
    [
        ("send it by Friday please", "by Friday"),
        ("finish it by the end of the week", "by the end of the week"),
        ("ship before end of quarter", "before end of quarter"),
        ("do it on March 3", "on March 3"),
        ("do it by Jan 15th", "by Jan 15th"),
        ("after lunch tomorrow morning", "tomorrow morning"),
        ("sometime next month", "next month"),
        ("we'll look in two weeks", "in two weeks"),
        ("no date at all", None),
    ],
)
def test_due_phrases_are_kept_as_said(text, due):
    assert due_phrase(text) == due


def test_speaker_stats_count_talk_time_words_rate_and_turns():
    utterances = [
        Utterance("u-a", "Alice", "one two three four five six", 0.0, 3.0),
        Utterance("u-a", "Alice", "seven eight nine", 3.0, 6.0),
        Utterance("u-b", "Bob", "hello there", 6.5, 7.5),
        Utterance("u-a", "Alice", "back to me again", 8.0, 12.0),
        Utterance("", "", "crowd noise words", 12.0, 13.0),
    ]
    stats = {s["name"]: s for s in offline.speaker_stats(utterances)}

    assert stats["Alice"] == {
        "identity": "u-a",
        "name": "Alice",
        "talk_seconds": 10.0,
        "words": 13,
        "wpm": 78,
        "turns": 2,
    }
    assert stats["Bob"]["turns"] == 1 and stats["Bob"]["wpm"] == 120
    assert stats["Room"]["identity"] == "" and stats["Room"]["words"] == 3
    assert offline.speaker_stats(utterances)[0]["name"] == "Alice"


def test_empty_transcript_gives_an_empty_analysis():
    result = offline.analyse(AnalysisInput(utterances=[], known_names=[]))
    assert (result.summary, result.topics, result.action_items, result.speaker_stats) == (
        "",
        [],
        [],
        [],
    )


# Misrecognised speech: the recogniser heard a commitment's frame ("we will", "I'll", "can you")
# but what follows is no verb and object. None of these may become a proposed task.
@pytest.mark.parametrize(
    "said",
    [
        # The example of issue 14: "direct" and then no noun, only "the other white".
        "We will then direct the other white.",
        # The verb was lost ("I'll [send] the budget").
        "I'll the budget to finance by Friday.",
        # Hesitation and a repeated article.
        "Let's uh the the.",
        # A stutter of prepositions.
        "We need to for the for the next.",
        # The segment was cut at the end of a phrase.
        "I will also send the.",
        "I'm going to and then.",
        # "be" was dropped: "we will [be] meeting the team".
        "We will meeting the team on Friday.",
        # "be" was dropped: "Bob will [be] there".
        "Bob will there by Friday.",
        # A number heard for a verb ("eight" for "ape"/"aid").
        "We need to eight the new.",
        # A request with no verb left in it.
        "Carol, can you the other one?",
        # A label with nothing after it but an article.
        "Action item: the.",
        # Only a pronoun to act on, and a light verb with nothing to act on.
        "I'll send it over tomorrow.",
        "Let's try and see.",
        "We'll need to get that over with.",
        # A negated "commitment".
        "We will not ship the feature.",
    ],
)
def test_misrecognised_fragments_are_not_action_items(said):
    utterances = [Utterance("u-a", "Alice Smith", said, 0.0, 3.0)]
    result = offline.analyse(AnalysisInput(utterances=utterances, known_names=NAMES))
    assert result.action_items == [], result.action_items


@pytest.mark.parametrize(
    ("said", "owner"),
    [
        ("We will then send the other draft.", None),
        ("I can take the notes.", "Alice Smith"),
        ("Bob can take the minutes.", "Bob Jones"),
        ("I will follow up with Dana.", "Alice Smith"),
        ("We'll apply the patch tonight.", None),
        ("Let's go ahead and book the room.", None),
        ("I'll bring the projector.", "Alice Smith"),
        ("I will send you the deck.", "Alice Smith"),
        ("Um, I'll just uh review the follow-up plan.", "Alice Smith"),
        ("Let's schedule a call with legal next week.", None),
    ],
)
def test_commitments_with_a_verb_and_an_object_are_still_action_items(said, owner):
    utterances = [Utterance("u-a", "Alice Smith", said, 0.0, 3.0)]
    result = offline.analyse(AnalysisInput(utterances=utterances, known_names=NAMES))
    (item,) = result.action_items
    # Fillers before the frame ("Um,") are left out of the item's text.
    assert item["owner"] == owner and item["text"] in said


def test_a_garbled_line_in_a_meeting_yields_nothing_while_the_real_items_remain():
    lines = [
        ("Alice Smith", "So the launch checklist is almost done."),
        ("Bob Jones", "We will then direct the other white."),
        ("Carol King", "I'll the slides by Friday."),
        ("Alice Smith", "Bob, can you send the slides to Carol by Friday?"),
        ("Bob Jones", "Sure, I'll send the slides."),
    ]
    utterances = [
        Utterance(f"u-{i}", name, text, i * 5.0, i * 5.0 + 4.0)
        for i, (name, text) in enumerate(lines)
    ]

    result = offline.analyse(AnalysisInput(utterances=utterances, known_names=NAMES))

    assert [i["text"] for i in result.action_items] == [
        "Bob, can you send the slides to Carol by Friday?",
        "I'll send the slides.",
    ]


def test_the_same_transcript_gets_the_same_analysis_whatever_the_hash_seed():
    # Term order once followed Python's string hashing, so float32 ties in the TextRank scores
    # broke differently from one process to the next. (An English and a Russian meeting.)
    script = (
        "from sessions_app.analysis import offline\n"
        "from sessions_app.analysis.types import AnalysisInput, Utterance\n"
        f"for lines in ({MEETING_LINES!r}, {PLANNING!r}):\n"
        "    u = [Utterance(i, n, t, s, e) for s, e, i, n, t in lines]\n"
        "    r = offline.analyse(AnalysisInput(utterances=u, known_names=[]))\n"
        "    print(repr((r.summary, r.topics, r.action_items)))\n"
    )
    root = Path(__file__).resolve().parents[2]
    answers = {
        subprocess.run(
            [sys.executable, "-c", script],
            cwd=root,
            env={**os.environ, "PYTHONHASHSEED": str(seed), "PYTHONPATH": str(root)},
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        for seed in range(1, 7)
    }
    assert len(answers) == 1, answers
