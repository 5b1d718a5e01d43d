"""Helpers for the analysis tests: a stored transcript and the speech fixture's reference."""

from __future__ import annotations

import re
from pathlib import Path

from sessions_app.models import VideoSession
from transcription.models import TranscriptionRun, TranscriptSegment

FIXTURE_README = Path(__file__).resolve().parent.parent / "fixtures" / "speech" / "README.md"

# (start, end, speaker identity, speaker name, text)
Line = tuple[float, float, str, str, str]


def speech_fixture_reference() -> str:
    """The reference transcript of ``two_cities_opening.flac`` (the indented block)."""
    text = FIXTURE_README.read_text()
    match = re.search(r"Reference transcript[^\n]*\n\n((?: {4}.+\n)+)", text)
    assert match, "the fixture README has no reference transcript"
    return " ".join(match.group(1).split())


def store_lines(
    session: VideoSession,
    lines: list[Line],
    *,
    confidence: dict[int, float] | None = None,
    words: dict[int, list[dict]] | None = None,
    language: str | dict[int, str] = "en",
) -> None:
    """A finished transcription run of ``session`` with ``lines`` as its final segments;
    ``confidence`` and ``words`` give the engine's values of some lines (by index);
    ``language`` the language the engine heard: of every line, or of each by index."""
    confidence = confidence or {}
    words = words or {}
    run = TranscriptionRun.objects.create(
        session=session,
        mode=TranscriptionRun.Mode.BROWSER,
        provider="local",
        status=TranscriptionRun.Status.STOPPED,
    )
    TranscriptSegment.objects.bulk_create(
        TranscriptSegment(
            session=session,
            run=run,
            speaker_identity=identity,
            speaker_name=name,
            utterance_id=f"a{i}",
            text=text,
            language=language if isinstance(language, str) else language.get(i, ""),
            start_offset=start,
            end_offset=end,
            confidence=confidence.get(i),
            words=words.get(i),
        )
        for i, (start, end, identity, name, text) in enumerate(lines)
    )


# Owner "Olivia Owner" hosts; member "Max Member" (tests/conftest.py) is asked for one item.
MEETING_LINES: list[Line] = [
    (0.0, 6.0, "u-olivia", "Olivia Owner", "Welcome everyone, this is the weekly sync."),
    (6.5, 14.0, "u-olivia", "Olivia Owner", "The launch checklist is almost complete."),
    (14.5, 22.0, "u-max", "Max Member", "The launch checklist still misses the legal review."),
    (22.5, 30.0, "u-olivia", "Olivia Owner", "Max, can you finish the legal review by Friday?"),
    (30.5, 36.0, "u-max", "Max Member", "Sure. I'll also update the launch checklist tomorrow."),
    (36.5, 44.0, "u-olivia", "Olivia Owner", "We need to confirm the launch date next week."),
]


OLGA, IVAN, MARIA = "Ольга Смирнова", "Иван Петров", "Мария Иванова"

# In Russian: a product team's weekly planning meeting, as a recogniser with punctuation returns it.
PLANNING: list[Line] = [
    (0.0, 7.5, "u-olga", OLGA, "Всем привет, начинаем еженедельную планёрку."),
    (
        8.0,
        19.0,
        "u-olga",
        OLGA,
        "Сегодня у нас три темы: релиз мобильного приложения, квартальный отчёт и бюджет на "
        "рекламу.",
    ),
    (
        19.5,
        31.0,
        "u-ivan",
        IVAN,
        "По релизу мобильного приложения: сборка для iOS прошла ревью, а Android-версия ещё на "
        "тестировании.",
    ),
    (
        31.5,
        42.0,
        "u-ivan",
        IVAN,
        "Тестировщики нашли две критические ошибки в оплате, без них релиз мобильного "
        "приложения выпускать нельзя.",
    ),
    (
        42.5,
        50.0,
        "u-olga",
        OLGA,
        "Ошибки в оплате критичны, клиенты жаловались на них ещё в прошлом месяце.",
    ),
    (50.5, 58.0, "u-ivan", IVAN, "Я исправлю ошибки в оплате до среды."),
    (
        58.5,
        68.0,
        "u-maria",
        MARIA,
        "Квартальный отчёт почти готов, не хватает данных по удержанию пользователей.",
    ),
    (
        68.5,
        78.0,
        "u-maria",
        MARIA,
        "Удержание пользователей выросло на четыре процента после обновления онбординга.",
    ),
    (78.5, 86.0, "u-olga", OLGA, "Отлично. Мария подготовит квартальный отчёт к понедельнику."),
    (86.5, 96.0, "u-maria", MARIA, "Да, только мне нужны выгрузки из аналитики."),
    (
        96.5,
        104.0,
        "u-olga",
        OLGA,
        "Иван, пришли, пожалуйста, Марии выгрузки из аналитики завтра.",
    ),
    (
        104.5,
        116.0,
        "u-olga",
        OLGA,
        "Теперь бюджет на рекламу: в следующем квартале маркетинг просит увеличить бюджет на "
        "рекламу на двадцать процентов.",
    ),
    (
        116.5,
        127.0,
        "u-maria",
        MARIA,
        "Реклама в социальных сетях окупается хуже, чем контекстная реклама, это видно по отчёту.",
    ),
    (
        127.5,
        136.0,
        "u-ivan",
        IVAN,
        "Тогда нужно перераспределить бюджет на рекламу в пользу контекста.",
    ),
    (
        136.5,
        145.0,
        "u-olga",
        OLGA,
        "Надо согласовать новый бюджет с финансовым директором до конца недели.",
    ),
    (
        145.5,
        152.0,
        "u-olga",
        OLGA,
        "Давайте назначим отдельную встречу по рекламе на следующей неделе.",
    ),
    (152.5, 158.0, "u-ivan", IVAN, "Хорошо, на этом всё, спасибо всем."),
]


LEGAL = "Max, can you finish the legal review by Friday?"
CHECKLIST = "I'll also update the launch checklist tomorrow."
LAUNCH_DATE = "We need to confirm the launch date next week."


def accept_all(session: VideoSession, by) -> None:
    """Accept every task the session's analysis proposed, as proposed."""
    from sessions_app.analysis.services import task_accept
    from sessions_app.models import Task

    for task in Task.objects.filter(session=session, status=Task.Status.PROPOSED):
        task_accept(task=task, by=by)


class Flaky:
    """State of ``flaky_analyse``: how many calls fail, and how many were made."""

    failures = 0
    calls = 0


def flaky_analyse(data):
    """An analysis provider (``ANALYSIS_PROVIDER``) whose first ``Flaky.failures`` calls fail,
    standing in for a provider outage."""
    from sessions_app.analysis import offline

    Flaky.calls += 1
    if Flaky.calls <= Flaky.failures:
        raise RuntimeError(f"provider outage (call {Flaky.calls})")
    return offline.analyse(data)


FLAKY = "tests.sessions_app.analysis_support:flaky_analyse"
