"""Session languages (issue 17): new sessions take their space's default languages unless the
person picks automatic detection, one language or several; the page and the API refuse what
the speech engine cannot transcribe and malformed input with a clear message; the session
pages say which languages were set, and the finished page labels each segment's language when
the session had more than one."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from sessions_app.forms import SessionCreateForm
from sessions_app.models import VideoSession
from sessions_app.ws import socket_language
from spaces.models import Space
from tests.factories import UserFactory
from tests.transcription.transcripts import store_transcript

pytestmark = pytest.mark.django_db


@pytest.fixture
def gladia(settings):
    """A provider that takes any language."""
    settings.STT_PROVIDER = "gladia"


@pytest.fixture
def english_only(settings):
    """The offline engine with its default model, Whisper tiny.en."""
    settings.STT_PROVIDER = "local"
    settings.OFFLINE_STT_MODEL_DIR = settings.OFFLINE_STT_MULTILINGUAL_MODEL_DIR = ""


@pytest.fixture
def russian_space(space: Space) -> Space:
    space.languages = ["ru", "en"]
    space.save(update_fields=["languages"])
    return space


def create_url(space: Space) -> str:
    return reverse("session-create", kwargs={"slug": space.slug})


def api_url(space: Space) -> str:
    return reverse("api-space-session-list", kwargs={"slug": space.slug})


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


# --- the new-session form -------------------------------------------------------------------


@pytest.mark.usefixtures("gladia")
@pytest.mark.parametrize(
    ("post", "languages"),
    [
        ({"language": "space"}, ["ru", "en"]),
        ({}, ["ru", "en"]),
        ({"language": "auto"}, []),
        ({"language": "de"}, ["de"]),
        ({"language": "several", "languages": ["en", "uk"]}, ["en", "uk"]),
    ],
    ids=["space-default", "not-sent", "automatic", "fixed", "several"],
)
def test_the_form_creates_a_session_in_the_chosen_languages(
    member_client, russian_space, post, languages
):
    response = member_client.post(create_url(russian_space), {"title": "Планёрка", **post})

    session = russian_space.sessions.get()
    assert response.url == reverse("sessions:detail", kwargs={"slug": session.slug})
    assert session.languages == languages


@pytest.mark.usefixtures("gladia")
def test_the_form_offers_the_spaces_default_first_and_names_its_languages(russian_space):
    form = SessionCreateForm(space=russian_space)
    choices = form.fields["language"].choices

    assert choices[0] == ("space", "Space default (Russian, English)")
    assert form["language"].initial == "space"
    assert (choices[1][0], choices[-1][0]) == ("auto", "several")
    assert ("ru", "Russian") in choices
    assert not form.fields["language"].help_text


@pytest.mark.usefixtures("gladia")
def test_several_languages_need_at_least_one_ticked(member_client, space):
    response = member_client.post(create_url(space), {"title": "Mixed", "language": "several"})

    assert not space.sessions.exists()
    assert any("Tick the languages expected" in m for m in messages_of(response))


@pytest.mark.usefixtures("gladia")
def test_more_than_five_languages_are_refused(member_client, space):
    six = ["en", "ru", "de", "fr", "es", "it"]
    response = member_client.post(
        create_url(space), {"title": "Babel", "language": "several", "languages": six}
    )

    assert not space.sessions.exists()
    assert any("at most 5 languages" in m for m in messages_of(response))


@pytest.mark.parametrize(
    "post",
    [{"language": "xx"}, {"language": "several", "languages": ["en", "klingon"]}],
)
def test_a_language_the_form_does_not_offer_is_refused_not_an_error(member_client, space, post):
    response = member_client.post(create_url(space), {"title": "Odd", **post})

    assert response.status_code == 302
    assert not space.sessions.exists()
    assert any("not one of the available choices" in m for m in messages_of(response))


@pytest.mark.usefixtures("english_only")
def test_the_form_marks_and_refuses_what_the_offline_engine_cannot_transcribe(
    member_client, russian_space
):
    form = SessionCreateForm(space=russian_space)
    labels = dict(form.fields["language"].choices)
    assert labels["space"] == "Space default (Russian, English) — not transcribed here"
    assert labels["ru"] == "Russian — not transcribed here"
    assert labels["en"] == "English"
    assert "This server transcribes English only" in str(form.fields["language"].help_text)

    for post in ({"language": "ru"}, {"language": "space"}, {}):
        response = member_client.post(create_url(russian_space), {"title": "Планёрка", **post})
        assert "transcribes English only, not Russian" in messages_of(response)[-1]
    assert not russian_space.sessions.exists()

    member_client.post(create_url(russian_space), {"title": "Sync", "language": "en"})
    member_client.post(create_url(russian_space), {"title": "Any", "language": "auto"})
    assert sorted(s.languages for s in russian_space.sessions.all()) == [[], ["en"]]


def test_the_partial_renders_the_form_with_its_languages(rf, member, russian_space, gladia):
    from django.template.loader import render_to_string

    request = rf.get("/")
    request.user = member
    html = render_to_string(
        "sessions/_create_form.html",
        {"form": SessionCreateForm(space=russian_space), "space": russian_space},
        request=request,
    )

    assert '<option value="space" selected>Space default (Russian, English)</option>' in html
    assert 'type="checkbox" name="languages" value="uk"' in html
    assert '<label for="id_language">Language</label>' in html


# --- the API ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("gladia")
@pytest.mark.parametrize(
    ("body", "languages"),
    [
        ({}, ["ru", "en"]),
        ({"languages": []}, []),
        ({"languages": ["ru"]}, ["ru"]),
        ({"languages": ["en", "ru", "uk"]}, ["en", "ru", "uk"]),
        ({"languages": ["sw"]}, ["sw"]),
    ],
    ids=["omitted", "automatic", "fixed", "several", "any-known-code"],
)
def test_the_api_creates_a_session_in_the_chosen_languages(
    member_api, russian_space, body, languages
):
    response = member_api.post(api_url(russian_space), {"title": "Sync", **body}, format="json")

    assert response.status_code == 201
    assert response.json()["languages"] == languages
    assert VideoSession.objects.get(slug=response.json()["slug"]).languages == languages


@pytest.mark.usefixtures("english_only")
@pytest.mark.parametrize("body", [{"languages": ["ru"]}, {"languages": ["en", "ru"]}, {}])
def test_the_api_refuses_what_the_offline_engine_cannot_transcribe(member_api, russian_space, body):
    response = member_api.post(api_url(russian_space), {"title": "Sync", **body}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "language_unsupported"
    assert "transcribes English only, not Russian" in response.json()["detail"]
    assert not russian_space.sessions.exists()


@pytest.mark.usefixtures("gladia")
@pytest.mark.parametrize(
    ("languages", "says"),
    [
        ("en", "Expected a list"),
        (None, "may not be null"),
        ({"en": True}, "Expected a list"),
        ([["en"]], "Not a valid string"),
        ([1], "“1” is not a language code"),
        (["EN"], "“EN” is not a language code"),
        (["english"], "“english” is not a language code"),
        (["x" * 10_000], "is not a language code"),
        (["en", "ru", "en"], "English is listed twice"),
        (["en", "ru", "de", "fr", "es", "it"], "at most 5 languages"),
    ],
)
def test_malformed_languages_are_400_with_a_clear_detail(member_api, space, languages, says):
    response = member_api.post(
        api_url(space), {"title": "Sync", "languages": languages}, format="json"
    )

    assert response.status_code == 400
    assert says in str(response.json())
    assert len(str(response.json())) < 500
    assert not space.sessions.exists()


def test_the_api_schema_documents_the_language_modes(client):
    schema = client.get(reverse("api-schema"), {"format": "json"}).json()
    request = schema["components"]["schemas"]["SpaceSessionListCreateInputRequest"]
    described = request["properties"]["languages"]["description"]

    assert "[] = automatic detection" in described
    assert "one code = that language" in described
    assert "switches" in described
    assert "Omitted: the space's default languages" in described


# --- the session pages ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("languages", "says"),
    [
        ([], "Language: detected automatically"),
        (["ru"], "Language: Russian"),
        (["en", "ru"], "Languages: English, Russian (the transcription switches between them)"),
    ],
)
def test_the_live_and_finished_pages_say_the_sessions_languages(
    member_client, video_session, languages, says
):
    video_session.languages = languages
    video_session.save(update_fields=["languages"])
    url = reverse("sessions:detail", kwargs={"slug": video_session.slug})

    assert (
        f'<span class="session-languages">{says}</span>' in member_client.get(url).content.decode()
    )
    video_session.status = VideoSession.Status.ENDED
    video_session.save(update_fields=["status"])
    assert (
        f'<span class="session-languages">{says}</span>' in member_client.get(url).content.decode()
    )


def _ended_with(session: VideoSession, languages: list[str]) -> VideoSession:
    segments = store_transcript(
        session,
        [
            (float(i), i + 0.9, "id-a", "Ada", text)
            for i, text in enumerate(["Hello everyone.", "Всем привет.", "Let's start."])
        ],
    )
    for segment, language in zip(segments, languages, strict=True):
        segment.language = language
        segment.save(update_fields=["language"])
    session.status = VideoSession.Status.ENDED
    session.save(update_fields=["status"])
    return session


def test_a_mixed_language_transcript_labels_each_segment(member_client, video_session):
    _ended_with(video_session, ["en", "ru", ""])
    url = reverse("sessions:detail", kwargs={"slug": video_session.slug})

    content = member_client.get(url).content.decode()

    assert (
        '<span class="badge seg-lang" lang="en" title="English">EN</span> '
        '<span lang="en" class="seg" data-uid="u0"'
    ) in content
    assert (
        '<span class="badge seg-lang" lang="ru" title="Russian">RU</span> '
        '<span lang="ru" class="seg" data-uid="u1"'
    ) in content
    assert content.count("seg-lang") == 2, "a segment with no language recorded has no label"
    ru = member_client.get(url, HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert 'lang="ru" title="Русский">RU</span>' in ru


def test_a_mixed_language_search_page_keeps_the_labels_and_highlights(member_client, video_session):
    _ended_with(video_session, ["en", "ru", "en"])
    url = reverse("sessions:detail", kwargs={"slug": video_session.slug})

    content = member_client.get(url, {"q": "start"}).content.decode()

    assert content.count('class="badge seg-lang"') == 3
    assert "<mark>start</mark>" in content


def test_a_one_language_transcript_has_no_labels(member_client, video_session):
    _ended_with(video_session, ["ru", "ru", ""])
    url = reverse("sessions:detail", kwargs={"slug": video_session.slug})

    content = member_client.get(url).content.decode()

    assert "seg-lang" not in content
    assert 'lang="ru" class="seg"' not in content


# --- Russian --------------------------------------------------------------------------------


def test_the_live_page_renders_in_russian(member_client, video_session, settings):
    settings.LIVEKIT_ENABLED = False
    video_session.languages = ["ru"]
    video_session.save(update_fields=["languages"])
    url = reverse("sessions:detail", kwargs={"slug": video_session.slug})

    content = member_client.get(url, HTTP_ACCEPT_LANGUAGE="ru").content.decode()

    for russian in ("Расшифровка", "Начать расшифровку", "Участники", "Язык: Русский", "Покинуть"):
        assert russian in content, russian
    assert ">Создана<" in content
    for english in ("Start transcription", "Participants", "Jump to latest", "Language:"):
        assert english not in content, english
    assert "Start transcription" in member_client.get(url).content.decode(), "English by default"


def test_the_finished_page_renders_in_russian_with_russian_dates(member_client, video_session):
    from datetime import UTC, datetime

    _ended_with(video_session, ["ru", "ru", "ru"])
    video_session.started_at = datetime(2026, 3, 5, 9, 0, tzinfo=UTC)
    video_session.ended_at = datetime(2026, 3, 5, 9, 1, 33, tzinfo=UTC)
    video_session.save(update_fields=["started_at", "ended_at"])
    url = reverse("sessions:detail", kwargs={"slug": video_session.slug})

    content = member_client.get(url, HTTP_ACCEPT_LANGUAGE="ru").content.decode()

    for russian in ("Расшифровка", "Скачать", "Найти в расшифровке", "марта 2026", "(1:33)"):
        assert russian in content, russian
    assert "1 реплика, 3 фрагмента" in content
    for english in ("Search the transcript", "Download:", "March", "Jump to time", "started"):
        assert english not in content, english
    english = member_client.get(url).content.decode()
    assert "1 turn, 3 segments" in english
    assert "March 5, 2026" in english


# --- sockets ----------------------------------------------------------------------------------


def test_socket_messages_follow_the_profile_then_the_cookie_then_the_browser(settings):
    user = UserFactory(language="")
    browser = {"headers": [(b"accept-language", b"ru-RU,ru;q=0.9,en;q=0.8")]}

    assert socket_language({"headers": []}, user) == "en"
    assert socket_language(browser, user) == "ru"
    assert (
        socket_language({**browser, "cookies": {settings.LANGUAGE_COOKIE_NAME: "en"}}, user) == "en"
    )
    user.language = "ru"
    assert socket_language({"headers": [(b"accept-language", b"en")]}, user) == "ru"
