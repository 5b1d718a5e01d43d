"""Ask the archive, the service: retrieval (search hits with neighbouring lines, only meetings
the person may read), the LLM's cited answer (fake LLM: answer, refusal, timeout, garbage),
the extractive answer without an LLM, and "not found"."""

from __future__ import annotations

import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from sessions_app.ask import Mode, ask, keywords, retrieve
from spaces.services import space_create
from tests.factories import SpaceMemberFactory, VideoSessionFactory
from tests.fakes.llm import FakeLlm
from tests.sessions_app.analysis_support import store_lines

BUDGET_REVIEW = [
    (0.0, 5.0, "u-ann", "Ann", "Good morning, let us start with the numbers."),
    (6.0, 11.0, "u-bob", "Bob", "The quarterly report shows we spent less than planned."),
    (12.0, 18.0, "u-ann", "Ann", "We decided to raise the marketing budget to fifty thousand."),
    (19.0, 24.0, "u-bob", "Bob", "Then the video campaign can start in March."),
    (25.0, 30.0, "u-cem", "Cem", "I will send the invoices on Friday."),
]
HIRING = [
    (0.0, 5.0, "u-ann", "Ann", "Two engineers start in April."),
    (6.0, 11.0, "u-bob", "Bob", "The hiring budget stays as it is until summer."),
]
OTHER_SPACE = [(0.0, 5.0, "u-zed", "Zed", "The secret budget for project Falcon is nine million.")]
OUTSIDER_SPACE = [
    (0.0, 5.0, "u-oz", "Oz", "The outsider budget is seven euros, decided on Monday.")
]


def make_meetings(space, owner, member, outsider) -> dict:
    """Two meetings of the member's space; a meeting of another space the member is in; a
    meeting of a space of the outsider's that the member is not in."""
    review = VideoSessionFactory(space=space, created_by=owner, title="Budget review")
    hiring = VideoSessionFactory(space=space, created_by=owner, title="Hiring sync")
    store_lines(review, BUDGET_REVIEW)
    store_lines(hiring, HIRING)
    second = space_create(owner=owner, name="Second space")
    SpaceMemberFactory(space=second, user=member)
    store_lines(VideoSessionFactory(space=second, created_by=owner, title="Falcon"), OTHER_SPACE)
    theirs = space_create(owner=outsider, name="Outsider space")
    store_lines(VideoSessionFactory(space=theirs, created_by=outsider, title="Oz"), OUTSIDER_SPACE)
    return {"review": review, "hiring": hiring, "second": second, "theirs": theirs}


@pytest.fixture
def meetings(space, owner, member, outsider):
    return make_meetings(space, owner, member, outsider)


def _passages(body) -> dict[int, str]:
    """The numbered passages of an ask prompt: number → its block of text."""
    text = body["messages"][-1]["content"]
    blocks = re.split(r"\n\n(?=\[\d+\] Meeting )", text)
    found = {}
    for block in blocks:
        match = re.match(r"\[(\d+)\] Meeting ", block)
        if match:
            found[int(match.group(1))] = block
    return found


def cite_budget(body) -> str:
    """A good answer: one sentence per passage that mentions the marketing budget or invoices."""
    answer = []
    for number, block in _passages(body).items():
        if "marketing budget" in block:
            answer.append(
                {"text": "The marketing budget was raised to 50,000.", "passages": [number]}
            )
        if "invoices" in block:
            answer.append({"text": "Cem sends the invoices on Friday.", "passages": [number]})
    return json.dumps({"found": bool(answer), "answer": answer})


@pytest.fixture
def fake_llm(settings):
    with FakeLlm(api_key="sk-test", reply=cite_budget) as fake:
        settings.LLM_BASE_URL = fake.base_url
        settings.LLM_API_KEY = "sk-test"
        settings.LLM_MODEL = "fake-model-1"
        settings.LLM_ENABLED = True
        settings.LLM_TIMEOUT_SECONDS = 1.0
        settings.LLM_MAX_PROMPT_CHARS = 24000
        yield fake


@pytest.fixture
def no_llm(settings):
    settings.LLM_ENABLED = False


def test_keywords_are_the_questions_content_words():
    assert keywords("What did we decide about the marketing budget?") == [
        "decide",
        "marketing",
        "budget",
    ]
    assert keywords("what did we say?") == []
    assert keywords("Что решили по бюджету на маркетинг?") == ["решили", "бюджету", "маркетинг"]


@pytest.mark.django_db
def test_passages_are_the_best_hits_with_the_lines_said_around_them(meetings, member, space):
    passages = retrieve(user=member, space=space, question="What about the marketing budget?")

    assert [p.session_title for p in passages][:1] == ["Budget review"]
    best = passages[0]
    assert best.number == 1
    assert best.text == BUDGET_REVIEW[2][4]
    assert "<mark>" in best.snippet
    assert best.url.startswith(f"/sessions/{meetings['review'].slug}/?")
    assert "t=12" in best.url
    # Two lines before and two after the hit, in order; the hit marked.
    assert [line.text for line in best.lines] == [row[4] for row in BUDGET_REVIEW[0:5]]
    assert [line.is_hit for line in best.lines] == [False, False, True, False, False]
    assert {p.session_title for p in passages} == {"Budget review", "Hiring sync"}


@pytest.mark.django_db
def test_extractive_answer_without_an_llm_is_labelled_and_ranked(meetings, member, space, no_llm):
    answer = ask(user=member, space=space, question="What did we decide about the budget?")

    assert answer.mode == Mode.EXTRACTIVE
    assert answer.found
    assert answer.claims == []
    assert answer.note == ""
    assert [p.number for p in answer.passages] == list(range(1, len(answer.passages) + 1))
    ranks = [p.rank for p in answer.passages]
    assert ranks == sorted(ranks, reverse=True)
    texts = " ".join(p.text for p in answer.passages)
    assert "Falcon" not in texts and "outsider" not in texts


@pytest.mark.django_db
def test_llm_answer_cites_its_passages(meetings, member, space, fake_llm):
    answer = ask(
        user=member, space=space, question="What did we decide about the marketing budget?"
    )

    assert answer.mode == Mode.LLM
    assert [c.text for c in answer.claims] == [
        "The marketing budget was raised to 50,000.",
        "Cem sends the invoices on Friday.",
    ]
    # Every claim cites passages that are shown, each linking to its moment.
    shown = {p.number: p for p in answer.passages}
    for claim in answer.claims:
        assert claim.passages and set(claim.passages) <= set(shown)
    assert shown[answer.claims[0].passages[0]].url.startswith(
        f"/sessions/{meetings['review'].slug}/?"
    )
    (request,) = fake_llm.requests
    system, user = (m["content"] for m in request["messages"])
    assert "Use only these passages" in system
    assert "Write the answer in English" in system
    assert user.startswith("Question: What did we decide about the marketing budget?")
    assert 'Meeting "Budget review"' in user
    assert "Ann: We decided to raise the marketing budget to fifty thousand." in user
    # Context: the line after the hit went out with it.
    assert "Bob: Then the video campaign can start in March." in user


@pytest.mark.django_db
def test_a_passage_from_another_space_never_reaches_the_prompt(meetings, member, space, fake_llm):
    ask(user=member, space=space, question="What is the secret budget of Falcon, the outsider?")

    (request,) = fake_llm.requests
    sent = json.dumps(request)
    assert "budget" in sent  # the member's own meetings were searched
    # The member is in the second space, and still its meeting is not this space's.
    assert "Falcon is nine million" not in sent
    assert "seven euros" not in sent
    assert "Oz" not in sent and "Zed" not in sent


@pytest.mark.django_db
def test_a_question_about_one_meeting_reads_only_it(meetings, member, space, fake_llm):
    ask(user=member, space=space, question="What about the budget?", session=meetings["hiring"])

    sent = json.dumps(fake_llm.requests[0])
    assert "hiring budget stays" in sent
    assert "marketing budget" not in sent


@pytest.mark.django_db
def test_nothing_relevant_is_not_found_without_asking_the_llm(meetings, member, space, fake_llm):
    answer = ask(user=member, space=space, question="What about the kangaroo migration?")

    assert answer.mode == Mode.NOT_FOUND
    assert not answer.found
    assert answer.passages == []
    assert fake_llm.requests == []


@pytest.mark.django_db
def test_a_question_of_stop_words_is_not_found(meetings, member, space, fake_llm):
    answer = ask(user=member, space=space, question="What did we say about it?")
    assert answer.mode == Mode.NOT_FOUND
    assert fake_llm.requests == []


@pytest.mark.django_db
def test_llm_refusal_is_not_found_with_the_closest_passages(meetings, member, space, fake_llm):
    fake_llm.reply = lambda body: json.dumps({"found": False, "answer": []})

    answer = ask(user=member, space=space, question="Who approved the budget?")

    assert answer.mode == Mode.NOT_FOUND
    assert answer.passages  # shown as the closest, which do not answer it
    assert answer.note == ""


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("timeout", "timed out"),
        ("garbage", "did not answer with JSON"),
        ("wrong_shape", "not the JSON asked for"),
        ("fail", "HTTP 500"),
    ],
)
def test_llm_failure_falls_back_to_the_extractive_answer_with_a_note(
    meetings, member, space, fake_llm, mode, reason
):
    fake_llm.mode = mode
    fake_llm.delay = 2.0

    answer = ask(user=member, space=space, question="What about the budget?")

    assert answer.mode == Mode.EXTRACTIVE
    assert answer.passages
    assert answer.note.startswith("The LLM could not answer (")
    assert reason in answer.note


@pytest.mark.django_db
@pytest.mark.parametrize(
    "reply",
    [
        {"found": True, "answer": [{"text": "Uncited claim.", "passages": []}]},
        {"found": True, "answer": [{"text": "Cites nothing given.", "passages": [99]}]},
        {"found": True, "answer": [{"text": "", "passages": [1]}]},
        {"found": True, "answer": []},
        {"found": "yes", "answer": []},
        {"found": True, "answer": [{"text": "Bool cite.", "passages": [True]}]},
    ],
)
def test_an_answer_with_an_uncited_or_invented_claim_is_not_shown(
    meetings, member, space, fake_llm, reply
):
    fake_llm.reply = lambda body: json.dumps(reply)

    answer = ask(user=member, space=space, question="What about the budget?")

    assert answer.mode == Mode.EXTRACTIVE
    assert answer.claims == []
    assert answer.note


@pytest.mark.django_db
def test_passages_past_the_prompt_cap_are_left_out(meetings, member, space, fake_llm, settings):
    settings.LLM_MAX_PROMPT_CHARS = 1000

    ask(user=member, space=space, question="What about the budget?")

    (request,) = fake_llm.requests
    assert sum(len(m["content"]) for m in request["messages"]) <= 1000
    assert _passages(request)


@pytest.mark.django_db
def test_a_russian_question_asks_for_a_russian_answer(meetings, member, space, fake_llm):
    store_lines(
        VideoSessionFactory(space=space, title="Планёрка"),
        [(0.0, 4.0, "u-ann", "Анна", "Бюджет на маркетинг увеличили до пятидесяти тысяч.")],
        language="ru",
    )

    ask(user=member, space=space, question="Что решили про бюджет на маркетинг?")

    (request,) = fake_llm.requests
    assert "Write the answer in Russian" in request["messages"][0]["content"]
    assert "Бюджет на маркетинг увеличили" in request["messages"][1]["content"]


@pytest.mark.django_db
def test_asking_writes_nothing_to_the_database(meetings, member, space, fake_llm):
    with CaptureQueriesContext(connection) as queries:
        ask(user=member, space=space, question="What did we decide about the budget?")

    writes = [
        q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE"))
    ]
    assert writes == []
    assert len(queries) > 0


@pytest.mark.django_db
def test_lines_said_at_the_same_moment_are_context_once(space, owner, member):
    crosstalk = VideoSessionFactory(space=space, created_by=owner, title="Crosstalk")
    store_lines(
        crosstalk,
        [
            (0.0, 2.0, "u-a", "Ann", "First line."),
            (5.0, 7.0, "u-a", "Ann", "Talking over each other here."),
            (5.0, 7.0, "u-b", "Bob", "The zeppelin budget, said at the same time."),
            (5.0, 7.0, "u-c", "Cem", "A third voice at once."),
            (9.0, 11.0, "u-a", "Ann", "Last line."),
        ],
    )

    (passage,) = retrieve(user=member, space=space, question="zeppelin")

    assert [line.text for line in passage.lines] == [
        "First line.",
        "Talking over each other here.",
        "The zeppelin budget, said at the same time.",
        "A third voice at once.",
        "Last line.",
    ]
