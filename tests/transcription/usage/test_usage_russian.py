"""Usage pages, the usage admin and the transcription API's refusals in Russian: words from
the catalogue, Russian plural forms, dates and numbers in Russian formats, money with its
currency."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.template.loader import render_to_string
from django.test import Client
from django.utils import translation

from tests.factories import UserFactory, VideoSessionFactory
from tests.transcription.usage_factories import at, make_usage

pytestmark = pytest.mark.django_db

RU = {"HTTP_ACCEPT_LANGUAGE": "ru"}


def _visible_text(html: str) -> str:
    """The page's text between tags, without scripts and styles."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_my_usage_page_reads_in_russian(owner_client, owner, video_session):
    make_usage(session=video_session, user=owner, seconds=61, created_at=at("2026-10-01"))
    make_usage(session=video_session, user=owner, seconds=600, created_at=at("2026-10-04"))

    html = owner_client.get("/me/usage/", **RU).content.decode()
    text = _visible_text(html.split("<main", 1)[1])

    assert "Мой расход" in text
    assert "Оплачиваемые минуты" in text
    assert "Стоимость по дням" in text
    assert "04.10.2026: 10 мин" in html  # a bar's title: the Russian short date
    assert '<dd id="usage-cost">0,15\u00a0$</dd>' in html  # Russian digits, the currency kept
    for english in ("Billed minutes", "Cost per day", "Minutes per run", " min", "All time"):
        assert english not in text, english


@pytest.mark.parametrize(
    ("minutes", "words"),
    [(1, "1 минута участников"), (3, "3 минуты участников"), (5, "5 минут участников")],
)
def test_participant_minutes_take_the_russian_plural_forms(minutes, words):
    report = {
        "total_cost": Decimal("0"),
        "transcription_cost": Decimal("0"),
        "video_cost": Decimal("0"),
        "minutes": 0,
        "participant_minutes": minutes,
        "sessions": 0,
        "runs": 0,
    }
    with translation.override("ru"):
        html = render_to_string("usage/_space_totals.html", {"report": report})

    assert words in html


def test_the_usage_admin_reads_in_russian(owner, space):
    session = VideoSessionFactory(space=space, created_by=owner, title="Планёрка")
    make_usage(session=session, user=owner, seconds=125, created_at=at("2026-10-03"))
    staff = Client()
    staff.force_login(UserFactory(is_staff=True, is_superuser=True))

    listing = staff.get("/admin/transcription/transcriptionusage/", **RU).content.decode()
    change = staff.get(f"/admin/sessions_app/videosession/{session.pk}/change/", **RU)

    assert "Стоимость (отфильтрованные строки)" in listing
    assert "Встречи, из которых сложилась стоимость" in listing
    assert "Экспорт отфильтрованных строк в CSV" in listing
    assert "почта пользователя" in listing  # a filter
    assert "03.10.2026" in listing  # the created column and the chart: Russian dates
    assert "(3 мин, 1 запуск)" in change.content.decode()


def test_the_language_refusal_is_clear_in_russian(settings, member_api, space, owner):
    settings.STT_PROVIDER = "local"
    settings.OFFLINE_STT_MODEL_DIR = settings.OFFLINE_STT_MULTILINGUAL_MODEL_DIR = ""
    russian = VideoSessionFactory(space=space, created_by=owner, languages=["ru"])

    response = member_api.post(f"/api/sessions/{russian.slug}/transcription/start", **RU)

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "language_unsupported"
    assert body["detail"].startswith(
        "Речевой движок этого сервера расшифровывает только такие языки: Английский. "
        "Язык этой встречи: Русский."
    )


def test_an_edits_api_error_reads_in_russian(member_api, video_session):
    # The member did not attend the session: they may not correct its transcript.
    response = member_api.patch(
        f"/api/sessions/{video_session.slug}/segments/u0",
        {"base_revision": 0, "text": "x"},
        format="json",
        **RU,
    )

    assert response.status_code == 403
    assert response.json() == {
        "detail": "Исправлять эту расшифровку могут только организатор и те, кто был на встрече.",
        "code": "edit_not_allowed",
    }
