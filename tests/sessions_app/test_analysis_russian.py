"""The offline analyser on Russian and mixed Russian/English meetings."""

from __future__ import annotations

import re

import pytest

from sessions_app.analysis import offline
from sessions_app.analysis.actions_ru import due_phrase
from sessions_app.analysis.names import NameBook
from sessions_app.analysis.services import analysis_input
from sessions_app.analysis.text import (
    is_cyrillic,
    is_stopword,
    sentences_of,
    split_sentences,
    term_key,
    transcript_language,
    words,
)
from sessions_app.analysis.types import AnalysisInput, Utterance
from sessions_app.models import SessionAnalysis, Task
from sessions_app.services import session_end
from tests.sessions_app.analysis_support import IVAN, MARIA, OLGA, PLANNING, Line, store_lines

PLANNING_NAMES = [OLGA, IVAN, MARIA]
# (text, owner, due) of every task said in PLANNING, in order.
PLANNING_ITEMS = [
    ("Я исправлю ошибки в оплате до среды.", IVAN, "до среды"),
    ("Мария подготовит квартальный отчёт к понедельнику.", MARIA, "к понедельнику"),
    ("Иван, пришли, пожалуйста, Марии выгрузки из аналитики завтра.", IVAN, "завтра"),
    ("Нужно перераспределить бюджет на рекламу в пользу контекста.", None, None),
    (
        "Надо согласовать новый бюджет с финансовым директором до конца недели.",
        None,
        "до конца недели",
    ),
    (
        "Давайте назначим отдельную встречу по рекламе на следующей неделе.",
        None,
        "на следующей неделе",
    ),
]

ANNA, DMITRY, SERGEY = "Анна Кузнецова", "Дмитрий Соколов", "Сергей Волков"
# An agency's call about a client's online shop: the tasks hide among statements about the
# client, the contract and the estimate, several with names and dates in them.
CLIENT: list[Line] = [
    (0.0, 6.0, "u-anna", ANNA, "Добрый день, сегодня обсуждаем проект интернет-магазина."),
    (6.5, 13.0, "u-anna", ANNA, "Клиент подписал договор на разработку в прошлую пятницу."),
    (
        13.5,
        23.0,
        "u-dmitry",
        DMITRY,
        "Макет главной страницы интернет-магазина готов, осталась корзина и оформление заказа.",
    ),
    (
        23.5,
        30.0,
        "u-dmitry",
        DMITRY,
        "Клиент просил упростить оформление заказа до одного экрана.",
    ),
    (
        30.5,
        38.0,
        "u-anna",
        ANNA,
        "Дмитрий, покажи, пожалуйста, макет корзины клиенту до пятницы.",
    ),
    (
        38.5,
        45.0,
        "u-dmitry",
        DMITRY,
        "Хорошо, я доработаю макет корзины и пришлю ссылку завтра.",
    ),
    (
        45.5,
        54.0,
        "u-sergey",
        SERGEY,
        "По смете: разработка интернет-магазина займёт около трёх месяцев.",
    ),
    (
        54.5,
        62.0,
        "u-sergey",
        SERGEY,
        "Интеграция с платёжной системой добавит ещё две недели к смете.",
    ),
    (62.5, 68.0, "u-anna", ANNA, "Сергей подготовит обновлённую смету к среде."),
    (
        68.5,
        76.0,
        "u-anna",
        ANNA,
        "Для интеграции с платёжной системой нужны доступы, я запрошу их у клиента.",
    ),
    (
        76.5,
        84.0,
        "u-dmitry",
        DMITRY,
        "Клиент также хочет мобильную версию интернет-магазина, но это уже второй этап.",
    ),
    (84.5, 90.0, "u-anna", ANNA, "Договорились. Следующая встреча с клиентом в четверг."),
]
CLIENT_NAMES = [ANNA, DMITRY, SERGEY]


def _utterances(lines: list[Line], language: str = "ru") -> list[Utterance]:
    return [
        Utterance(identity, name, text, start, end, language=language)
        for start, end, identity, name, text in lines
    ]


def _summary_sentences(summary: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", summary) if s]


@pytest.mark.parametrize(
    ("lines", "names", "expected_topics"),
    [
        (PLANNING, PLANNING_NAMES, {"квартальный отчёт", "бюджет", "мобильного приложения"}),
        (CLIENT, CLIENT_NAMES, {"интернет-магазина", "платёжной системой", "смете"}),
    ],
)
def test_russian_summary_is_made_of_the_meetings_sentences_and_topics_are_content_words(
    lines, names, expected_topics
):
    utterances = _utterances(lines)
    result = offline.analyse(AnalysisInput(utterances=utterances, known_names=names))

    said = {s.text for s in sentences_of(utterances)}
    summary = _summary_sentences(result.summary)
    assert 2 <= len(summary) <= 5
    for sentence in summary:
        assert sentence in said
        assert is_cyrillic(sentence)
    assert expected_topics <= set(result.topics)
    for topic in result.topics:
        for word in topic.split(" "):
            assert is_cyrillic(word) and not is_stopword(word), topic
    # People are not topics, in any case ("Марии").
    name_keys = {term_key(w) for name in names for w in words(name)}
    assert not {term_key(w) for topic in result.topics for w in topic.split(" ")} & name_keys


def test_planning_meeting_tasks_have_their_owners_and_due_phrases():
    result = offline.analyse(
        AnalysisInput(utterances=_utterances(PLANNING), known_names=PLANNING_NAMES)
    )
    found = [(i["text"], i["owner"], i["due"]) for i in result.action_items]
    assert found == PLANNING_ITEMS
    assert result.action_items[1]["start"] == 78.5


def test_client_meeting_finds_the_tasks_and_not_the_statements_about_people_and_dates():
    result = offline.analyse(
        AnalysisInput(utterances=_utterances(CLIENT), known_names=CLIENT_NAMES)
    )
    found = [(i["text"], i["owner"], i["due"]) for i in result.action_items]
    assert found == [
        ("Дмитрий, покажи, пожалуйста, макет корзины клиенту до пятницы.", DMITRY, "до пятницы"),
        ("Я доработаю макет корзины и пришлю ссылку завтра.", DMITRY, "завтра"),
        ("Сергей подготовит обновлённую смету к среде.", SERGEY, "к среде"),
        ("Для интеграции с платёжной системой нужны доступы, я запрошу их у клиента.", ANNA, None),
    ]


NAMES = ["Мария Иванова", "Иван Петров", "Ольга Смирнова"]


@pytest.mark.parametrize(
    ("speaker", "said", "owner", "due"),
    [
        # Necessity: the team's.
        (OLGA, "Нужно обновить презентацию для клиента до пятницы.", None, "до пятницы"),
        (OLGA, "Надо согласовать бюджет до конца недели.", None, "до конца недели"),
        (OLGA, "Необходимо проверить договор с юристами.", None, None),
        (OLGA, "Отчёт нужно отправить клиенту к 15 марта.", None, "к 15 марта"),
        # Imperatives: to the one named, else to nobody in particular.
        (OLGA, "Иван, сделай, пожалуйста, макет лендинга до пятницы.", IVAN, "до пятницы"),
        (OLGA, "Подготовь список вопросов к следующей встрече.", None, "к следующей встрече"),
        (OLGA, "Коллеги, заполните, пожалуйста, таблицу до пятницы.", None, "до пятницы"),
        # First person: the speaker's, with or without "я".
        (IVAN, "Хорошо, я пришлю смету завтра.", IVAN, "завтра"),
        (IVAN, "Я займусь миграцией базы в среду.", IVAN, "в среду"),
        (IVAN, "Я вам пришлю смету в пятницу.", IVAN, "в пятницу"),
        (IVAN, "Я постараюсь закончить ревью кода сегодня вечером.", IVAN, "сегодня вечером"),
        (MARIA, "Пришлю черновик договора завтра утром.", MARIA, "завтра утром"),
        (MARIA, "Мне нужно созвониться с подрядчиком через две недели.", MARIA, "через две недели"),
        # Third person: the one named, in any word order and case.
        (OLGA, "Мария подготовит отчёт к понедельнику.", MARIA, "к понедельнику"),
        (OLGA, "Отчёт к понедельнику подготовит Мария.", MARIA, "к понедельнику"),
        (OLGA, "Марии нужно связаться с поставщиком до среды.", MARIA, "до среды"),
        (
            OLGA,
            "Иван должен обновить документацию в следующий понедельник.",
            IVAN,
            "в следующий понедельник",
        ),
        # Requests to a named person.
        (OLGA, "Мария, ты подготовишь отчёт к понедельнику?", MARIA, "к понедельнику"),
        (OLGA, "Иван, можешь прислать логи до конца дня?", IVAN, "до конца дня"),
        (OLGA, "Мария, с тебя отчёт к пятнице.", MARIA, "к пятнице"),
        # We, let's, and a label.
        (OLGA, "Мы подготовим демо для клиента к 15 марта.", None, "к 15 марта"),
        (
            OLGA,
            "Давайте назначим созвон с подрядчиком на следующей неделе.",
            None,
            "на следующей неделе",
        ),
        (OLGA, "Задача: Иван — обновить документацию через две недели.", IVAN, "через две недели"),
    ],
)
def test_russian_action_item_owner_and_due_are_parsed(speaker, said, owner, due):
    utterances = [Utterance("u-x", speaker, said, 12.5, 16.0, language="ru")]
    result = offline.analyse(AnalysisInput(utterances=utterances, known_names=NAMES))
    (item,) = result.action_items
    assert (item["owner"], item["due"], item["start"]) == (owner, due, 12.5)
    # The title is the sentence as said, fillers ("Хорошо,", "Коллеги,") left out.
    assert item["text"][1:] in said and item["text"][0].isupper()


@pytest.mark.parametrize(
    "said",
    [
        # Plain statements: past, present, about people and dates.
        "Мария подготовила отчёт на прошлой неделе.",
        "Отчёт уже почти готов.",
        "Мы обсуждали бюджет в прошлый четверг.",
        "Мария говорит, что отчёт будет готов к пятнице.",
        "Мария отвечает за бюджет маркетинга.",
        "Мария использует новый шаблон.",
        "Календарь на следующую неделю готов.",
        "Пришли результаты тестов, всё зелёное.",
        "Встречу перенесли на завтра.",
        "Клиент хочет новую версию к пятнице.",
        # The meeting talking about itself.
        "Давайте посмотрим, что получилось в этом квартале.",
        "Давайте начнём.",
        "Я покажу свой экран.",
        "Я думаю, что это хорошая идея.",
        "Мария, вы меня слышите?",
        "Иван, расскажи, как прошла встреча с клиентом.",
        "Хорошо, спасибо всем.",
        # Nothing to act on, or not to be done.
        "Я пришлю это завтра.",
        "Сделай до пятницы.",
        "Мы не будем менять дизайн.",
        "Отчёт не нужно переделывать.",
        "Мы подготовим отчёт?",
    ],
)
def test_russian_statements_and_talk_are_not_action_items(said):
    utterances = [Utterance("u-o", OLGA, said, 0.0, 3.0, language="ru")]
    result = offline.analyse(AnalysisInput(utterances=utterances, known_names=NAMES))
    assert result.action_items == [], result.action_items


@pytest.mark.parametrize(
    ("text", "due"),
    [
        ("сделай до пятницы", "до пятницы"),
        ("к концу месяца", "к концу месяца"),
        ("ко вторнику утром", "ко вторнику"),
        ("в следующую среду", "в следующую среду"),
        ("до 3-го апреля", "до 3-го апреля"),
        ("к следующему созвону", "к следующему созвону"),
        ("в течение двух дней", "в течение двух дней"),
        ("через неделю", "через неделю"),
        ("послезавтра днём", "послезавтра днём"),
        ("в этом квартале", "в этом квартале"),
        ("без срока", None),
    ],
)
def test_russian_due_phrases_are_kept_as_said(text, due):
    assert due_phrase(text) == due


def test_russian_words_keep_yo_and_hyphenated_words_and_stop_words_fold_yo():
    assert words("Ещё раз: интернет-магазин, Android-версия и follow-up.") == [
        "ещё",
        "раз",
        "интернет-магазин",
        "android",
        "версия",
        "и",
        "follow",
        "up",
    ]
    assert is_stopword("ещё") and is_stopword("еще") and is_stopword("какой-то")
    assert not is_stopword("отчёт")
    assert term_key("отчёта") == term_key("отчету") == term_key("Отчёт".lower())


def test_russian_sentences_are_split_after_closing_quotes_and_ellipses():
    text = "Клиент сказал: «Нам нужен запуск в марте.» Это реально… Посмотрим! Что скажете?"
    assert split_sentences(text) == [
        "Клиент сказал: «Нам нужен запуск в марте.»",
        "Это реально…",
        "Посмотрим!",
        "Что скажете?",
    ]


def test_declined_russian_names_resolve_only_when_unambiguous():
    book = NameBook(["Мария Иванова", "Марина Петрова", "Иван Петров", "Алексей Смирнов"])
    assert book.resolve("Марии") == "Мария Иванова"
    assert book.resolve("Марине") == "Марина Петрова"
    assert book.resolve("Ивану") == "Иван Петров"
    assert book.resolve("Алексею") == "Алексей Смирнов"
    assert book.resolve("Ивановой") is None


def test_people_in_any_case_are_not_topics():
    lines = [
        (0.0, 4.0, "u-olga", OLGA, "Ивану нужен доступ к серверу, Ивану без доступа никак."),
        (4.5, 8.0, "u-olga", OLGA, "Петровым мы уже выдали доступ к серверу."),
    ]
    result = offline.analyse(AnalysisInput(utterances=_utterances(lines), known_names=NAMES))
    assert result.topics == ["доступ", "серверу"]


# A mixed meeting: the recogniser labels each segment with the language it heard.
MIXED: list[tuple[float, float, str, str, str, str]] = [
    (0.0, 5.0, "u-alice", "Alice Smith", "Thanks for joining, the API migration is first.", "en"),
    (
        5.5,
        12.0,
        "u-alice",
        "Alice Smith",
        "The API migration is blocked by the authentication service.",
        "en",
    ),
    (
        12.5,
        20.0,
        "u-boris",
        "Борис Орлов",
        "Миграция API упирается в сервис авторизации, без нового токена сервис не работает.",
        "ru",
    ),
    (
        20.5,
        27.0,
        "u-boris",
        "Борис Орлов",
        "Я обновлю документацию по миграции к пятнице.",
        "ru",
    ),
    (27.5, 33.0, "u-alice", "Alice Smith", "Great, I'll send the new token tomorrow.", "en"),
    (
        33.5,
        41.0,
        "u-boris",
        "Борис Орлов",
        "Сервис авторизации нужно перезапустить после обновления токена.",
        "ru",
    ),
    (
        41.5,
        48.0,
        "u-boris",
        "Борис Орлов",
        "Перезапуск сервиса авторизации займёт минут десять, клиенты ничего не заметят.",
        "ru",
    ),
]


def test_mixed_meeting_uses_each_languages_rules_and_the_majority_language():
    utterances = [
        Utterance(identity, name, text, start, end, language=language)
        for start, end, identity, name, text, language in MIXED
    ]
    result = offline.analyse(
        AnalysisInput(utterances=utterances, known_names=["Alice Smith", "Борис Орлов"])
    )

    assert [(i["text"], i["owner"], i["due"]) for i in result.action_items] == [
        ("Я обновлю документацию по миграции к пятнице.", "Борис Орлов", "к пятнице"),
        ("I'll send the new token tomorrow.", "Alice Smith", "tomorrow"),
        ("Сервис авторизации нужно перезапустить после обновления токена.", None, None),
    ]
    assert "api migration" in result.topics
    assert "сервис авторизации" in result.topics
    assert transcript_language(utterances) == "ru"


def test_meeting_language_comes_from_stored_languages_then_the_alphabet_then_the_session():
    russian = Utterance("u", "A", "Подготовь отчёт к понедельнику, пожалуйста.", 0, 1)
    english = Utterance("u", "A", "Send the report by Monday please.", 1, 2)
    assert transcript_language([russian, english]) == "ru"
    assert transcript_language([english]) == ""
    assert transcript_language([english], default="de") == "de"
    labelled = Utterance("u", "A", "Send the report by Monday please.", 1, 2, language="ru-RU")
    assert transcript_language([labelled, english]) == "ru"


def test_an_ended_russian_session_stores_a_russian_analysis_and_proposes_its_tasks(
    video_session, owner, django_capture_on_commit_callbacks, settings
):
    settings.ANALYSIS_RUNNER = "celery"
    settings.ANALYSIS_PROVIDER = "offline"
    # The room microphone's line has no speaker: the stats name it in the meeting's language.
    lines = [*PLANNING, (160.0, 164.0, "", "", "Спасибо, запись встречи остановлена.")]
    store_lines(video_session, lines, language="ru")

    with django_capture_on_commit_callbacks(execute=True):
        session_end(session=video_session, by=owner)

    analysis = SessionAnalysis.objects.get(session=video_session)
    assert (analysis.status, analysis.provider) == ("DONE", "offline")
    assert all(is_cyrillic(s) for s in _summary_sentences(analysis.summary))
    assert "квартальный отчёт" in analysis.topics
    assert "Комната" in {s["name"] for s in analysis.speaker_stats}
    tasks = {t.title: t for t in Task.objects.filter(session=video_session)}
    report = tasks["Мария подготовит квартальный отчёт к понедельнику."]
    assert (report.owner_name, report.due_phrase, report.status) == (
        MARIA,
        "к понедельнику",
        Task.Status.PROPOSED,
    )
    assert len(tasks) == len(PLANNING_ITEMS)


def test_analysis_input_carries_each_segments_language_and_a_fixed_session_language(
    video_session,
):
    video_session.languages = ["ru"]
    video_session.save(update_fields=["languages"])
    store_lines(video_session, PLANNING[:3], language={0: "ru", 1: ""})

    data = analysis_input(session=video_session)

    assert [u.language for u in data.utterances] == ["ru", "", ""]
    assert data.language == "ru"
