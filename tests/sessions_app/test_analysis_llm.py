"""The LLM analyser against a fake OpenAI-compatible server: success, chunking, fallbacks."""

from __future__ import annotations

import dataclasses
import json

import pytest
from django.urls import reverse

from sessions_app.analysis import analyse, analyse_with_llm
from sessions_app.analysis.types import AnalysisInput, Utterance
from sessions_app.models import SessionAnalysis, Task
from sessions_app.services import session_end
from tests.fakes.llm import FakeLlm
from tests.sessions_app.analysis_support import MEETING_LINES, store_lines


@pytest.fixture
def fake_llm(settings):
    with FakeLlm(api_key="sk-test") as fake:
        settings.LLM_BASE_URL = fake.base_url
        settings.LLM_API_KEY = "sk-test"
        settings.LLM_MODEL = "fake-model-1"
        settings.LLM_TIMEOUT_SECONDS = 2.0
        settings.LLM_MAX_PROMPT_CHARS = 24000
        settings.ANALYSIS_PROVIDER = "llm"
        yield fake


def _data(lines: int = 3) -> AnalysisInput:
    utterances = [
        Utterance("u-alice", "Alice", f"Line {i} about the pricing model.", i * 10.0, i * 10 + 8)
        for i in range(lines)
    ]
    utterances.append(
        Utterance("u-bob", "Bob", "I will send the pricing sheet by Friday.", lines * 10.0, 999)
    )
    return AnalysisInput(utterances=utterances, known_names=["Alice", "Bob"])


def test_llm_answer_is_used_and_sent_as_a_chat_completion(fake_llm):
    result = analyse(_data())

    assert result.provider == "llm"
    assert result.summary == "The meeting covered 4 lines."
    assert result.topics == ["fake topic"]
    assert result.action_items == [
        {
            "text": "I will send the pricing sheet by Friday.",
            "owner": "Bob",
            "due": None,
            "start": 30.0,
        }
    ]
    # Speaker stats are computed locally whatever the provider.
    assert {s["name"] for s in result.speaker_stats} == {"Alice", "Bob"}
    assert result.note == ""
    (request,) = fake_llm.requests
    assert request["model"] == "fake-model-1"
    assert request["response_format"] == {"type": "json_object"}
    assert [m["role"] for m in request["messages"]] == ["system", "user"]
    assert "[30] Bob: I will send the pricing sheet by Friday." in request["messages"][1]["content"]


def test_long_transcript_is_chunked_under_the_cap_then_combined(fake_llm, settings):
    settings.LLM_MAX_PROMPT_CHARS = 1500
    result = analyse(_data(lines=120))

    chunk_requests = fake_llm.requests[:-1]
    assert len(chunk_requests) >= 3
    for request in fake_llm.requests:
        prompt = sum(len(m["content"]) for m in request["messages"])
        assert prompt <= 1500
    # Every transcript line went out exactly once across the chunks.
    sent = [
        line
        for r in chunk_requests
        for line in r["messages"][1]["content"].splitlines()
        if line.startswith("[")
    ]
    assert len(sent) == 121
    combine = fake_llm.requests[-1]["messages"][1]["content"]
    assert combine.startswith("Part 1:") and f"Part {len(chunk_requests)}:" in combine
    assert result.provider == "llm"
    assert result.summary == "Combined summary."
    assert [item["owner"] for item in result.action_items] == ["Bob"]


@pytest.mark.parametrize("mode", ["fail", "timeout", "garbage", "wrong_shape"])
def test_llm_failure_falls_back_to_offline_and_says_so(fake_llm, mode):
    fake_llm.mode = mode
    fake_llm.delay = 4.0  # longer than LLM_TIMEOUT_SECONDS

    result = analyse_with_llm(_data())

    assert result.provider == "offline"
    assert "The LLM analyser failed" in result.note
    assert result.summary  # the offline summary
    assert result.action_items[0]["owner"] == "Bob"
    assert result.action_items[0]["due"] == "by Friday"
    assert len(fake_llm.requests) == 1


def test_wrong_api_key_falls_back(fake_llm, settings):
    settings.LLM_API_KEY = "sk-wrong"
    result = analyse(_data())
    assert result.provider == "offline"
    assert "HTTP 401" in result.note


def test_fenced_json_and_null_fields_are_accepted(fake_llm):
    fake_llm.reply = lambda body: (
        "```json\n"
        + json.dumps(
            {
                "summary": "Short.",
                "topics": ["A", "a", " b "],
                "action_items": [{"text": "Do it", "owner": None, "due": None, "start": None}],
            }
        )
        + "\n```"
    )
    result = analyse(_data())
    assert result.provider == "llm"
    assert result.topics == ["A", "b"]
    assert result.action_items == [{"text": "Do it", "owner": None, "due": None, "start": None}]


def test_action_item_with_a_non_numeric_start_is_rejected(fake_llm):
    fake_llm.reply = lambda body: json.dumps(
        {"summary": "S.", "topics": [], "action_items": [{"text": "x", "start": "soon"}]}
    )
    result = analyse(_data())
    assert result.provider == "offline"
    assert "start is not a number" in result.note


def test_ended_session_is_analysed_by_the_llm(
    fake_llm, video_session, owner, django_capture_on_commit_callbacks, settings
):
    settings.ANALYSIS_RUNNER = "celery"
    store_lines(video_session, MEETING_LINES)

    with django_capture_on_commit_callbacks(execute=True):
        session_end(session=video_session, by=owner)

    analysis = SessionAnalysis.objects.get(session=video_session)
    assert (analysis.status, analysis.provider, analysis.error) == ("DONE", "llm", "")
    assert analysis.summary == "The meeting covered 6 lines."
    assert "Max Member" in fake_llm.requests[0]["messages"][1]["content"]


def test_llm_outage_gives_a_done_offline_analysis_that_says_so(
    fake_llm, video_session, owner, member_client, django_capture_on_commit_callbacks, settings
):
    settings.ANALYSIS_RUNNER = "celery"
    fake_llm.mode = "fail"
    store_lines(video_session, MEETING_LINES)

    with django_capture_on_commit_callbacks(execute=True):
        session_end(session=video_session, by=owner)

    analysis = SessionAnalysis.objects.get(session=video_session)
    assert (analysis.status, analysis.provider) == ("DONE", "offline")
    assert analysis.error == (
        "The LLM analyser failed (the LLM API answered HTTP 500); this is the offline analysis."
    )
    assert Task.objects.filter(session=video_session).count() == 3
    card = member_client.get(reverse("sessions:analysis-partial", args=[video_session.slug]))
    assert "The LLM analyser failed" in card.content.decode()


# --- The meeting's language -------------------------------------------------------------------

RUSSIAN_LINES = [
    (0.0, 6.0, "u-olga", "Ольга Смирнова", "Коллеги, обсуждаем запуск мобильного приложения."),
    (6.5, 12.0, "u-maxim", "Максим Орлов", "Сборка для Android ещё на тестировании."),
    (12.5, 18.0, "u-olga", "Ольга Смирнова", "Максим, подготовь, пожалуйста, чек-лист к пятнице."),
]
RUSSIAN_ANSWER = {
    "summary": "Команда обсудила запуск мобильного приложения; сборка для Android ещё тестируется.",
    "topics": ["запуск мобильного приложения", "сборка для Android"],
    "action_items": [
        {
            "text": "Подготовить чек-лист запуска",
            "owner": "Максим Орлов",
            "due": "к пятнице",
            "start": 12,
        }
    ],
}


def _russian_data() -> AnalysisInput:
    return AnalysisInput(
        utterances=[
            Utterance(identity, name, text, start, end, language="ru")
            for start, end, identity, name, text in RUSSIAN_LINES
        ],
        known_names=["Ольга Смирнова", "Максим Орлов"],
    )


def test_russian_meeting_prompt_asks_for_russian_and_the_answer_is_kept_as_given(fake_llm):
    fake_llm.reply = lambda body: json.dumps(RUSSIAN_ANSWER, ensure_ascii=False)

    result = analyse(_russian_data())

    (request,) = fake_llm.requests
    system, user = (m["content"] for m in request["messages"])
    assert "Write in Russian" in system and "English" not in system
    assert "[12] Ольга Смирнова: Максим, подготовь, пожалуйста, чек-лист к пятнице." in user
    assert result.provider == "llm"
    assert result.summary == RUSSIAN_ANSWER["summary"]
    assert result.topics == RUSSIAN_ANSWER["topics"]
    assert result.action_items == [
        {
            "text": "Подготовить чек-лист запуска",
            "owner": "Максим Орлов",
            "due": "к пятнице",
            "start": 12.0,
        }
    ]


def test_english_meeting_prompt_asks_for_english(fake_llm):
    data = _data()
    utterances = [dataclasses.replace(u, language="en") for u in data.utterances]
    analyse(dataclasses.replace(data, utterances=utterances))
    assert "Write in English" in fake_llm.requests[0]["messages"][0]["content"]


def test_meeting_whose_language_nothing_tells_asks_for_the_meetings_own(fake_llm):
    # No segment stored a language, the session fixed none, and Latin letters say nothing.
    analyse(_data())
    system = fake_llm.requests[0]["messages"][0]["content"]
    assert "Write in the language the meeting was held in" in system


def test_chunked_russian_meeting_is_combined_in_russian_too(fake_llm, settings):
    settings.LLM_MAX_PROMPT_CHARS = 1500
    utterances = [
        Utterance("u-a", "Анна", f"Пункт {i}: обсуждаем бюджет на рекламу.", i * 10.0, i * 10 + 8)
        for i in range(80)
    ]
    analyse(AnalysisInput(utterances=utterances, known_names=["Анна"]))

    assert len(fake_llm.requests) >= 3
    for request in fake_llm.requests:
        assert "Write in Russian" in request["messages"][0]["content"]
        assert sum(len(m["content"]) for m in request["messages"]) <= 1500


def test_llm_outage_note_on_a_russian_meeting_is_in_russian(fake_llm):
    fake_llm.mode = "fail"

    result = analyse(_russian_data())

    assert result.provider == "offline"
    assert result.note == (
        "Анализ с помощью LLM не удался (API LLM ответил HTTP 500); это офлайн-анализ."
    )
    # The offline fallback found the request to Максим all the same.
    assert [(i["owner"], i["due"]) for i in result.action_items] == [("Максим Орлов", "к пятнице")]


def test_ended_russian_session_stores_the_llms_russian_analysis(
    fake_llm, video_session, owner, django_capture_on_commit_callbacks, settings
):
    settings.ANALYSIS_RUNNER = "celery"
    fake_llm.reply = lambda body: json.dumps(RUSSIAN_ANSWER, ensure_ascii=False)
    store_lines(video_session, RUSSIAN_LINES, language="ru")

    with django_capture_on_commit_callbacks(execute=True):
        session_end(session=video_session, by=owner)

    analysis = SessionAnalysis.objects.get(session=video_session)
    assert (analysis.status, analysis.provider) == ("DONE", "llm")
    assert (analysis.summary, analysis.topics) == (
        RUSSIAN_ANSWER["summary"],
        RUSSIAN_ANSWER["topics"],
    )
    assert "Write in Russian" in fake_llm.requests[0]["messages"][0]["content"]
    task = Task.objects.get(session=video_session)
    assert (task.title, task.owner_name, task.due_phrase) == (
        "Подготовить чек-лист запуска",
        "Максим Орлов",
        "к пятнице",
    )
