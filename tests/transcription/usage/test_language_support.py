"""Which languages the speech provider can transcribe: the new-session form says so next to
each language, and starting transcription of a session in another language is refused with
the reason (the offline engine's default model, Whisper tiny.en, is English only)."""

from __future__ import annotations

import pytest

from sessions_app.forms import SessionCreateForm
from tests.factories import VideoSessionFactory
from transcription.models import TranscriptionRun
from transcription.usage.limits import provider_languages

pytestmark = pytest.mark.django_db


class _FrenchOnly:
    supported_languages = ("fr",)


def test_the_offline_engine_is_english_only_unless_an_operator_chose_a_model(settings, tmp_path):
    settings.OFFLINE_STT_MODEL_DIR = settings.OFFLINE_STT_MULTILINGUAL_MODEL_DIR = ""
    assert provider_languages("local") == frozenset({"en"})
    settings.OFFLINE_STT_MULTILINGUAL_MODEL_DIR = str(tmp_path)
    assert provider_languages("local") is None
    settings.OFFLINE_STT_MULTILINGUAL_MODEL_DIR = ""
    settings.OFFLINE_STT_MODEL_DIR = str(tmp_path)
    assert provider_languages("local") is None


def test_gladia_and_unannotated_engines_take_any_language():
    assert provider_languages("gladia") is None
    assert provider_languages("tests.fakes.instant_stt:Instant") is None
    assert provider_languages(f"{__name__}:_FrenchOnly") == frozenset({"fr"})


def test_starting_a_french_session_with_the_english_only_engine_is_refused_with_the_reason(
    settings, member_api, space, owner
):
    settings.STT_PROVIDER = "local"
    settings.OFFLINE_STT_MODEL_DIR = settings.OFFLINE_STT_MULTILINGUAL_MODEL_DIR = ""
    french = VideoSessionFactory(space=space, created_by=owner, languages=["fr"])

    response = member_api.post(f"/api/sessions/{french.slug}/transcription/start")

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "language_unsupported"
    assert "transcribes English only" in body["detail"]
    assert "French" in body["detail"]
    assert not TranscriptionRun.objects.filter(session=french).exists()


def test_auto_detect_and_english_sessions_pass_the_language_check(settings, space, owner):
    from transcription.usage.limits import language_check

    settings.STT_PROVIDER = "local"
    settings.OFFLINE_STT_MODEL_DIR = settings.OFFLINE_STT_MULTILINGUAL_MODEL_DIR = ""
    for languages in ([], ["en"]):
        language_check(
            session=VideoSessionFactory(space=space, created_by=owner, languages=languages)
        )


def test_the_form_says_which_languages_this_server_cannot_transcribe(settings):
    settings.STT_PROVIDER = "local"
    settings.OFFLINE_STT_MODEL_DIR = settings.OFFLINE_STT_MULTILINGUAL_MODEL_DIR = ""
    form = SessionCreateForm()
    labels = dict(form.fields["language"].choices)

    assert labels["en"] == "English"
    assert labels["fr"] == "French — not transcribed here"
    assert labels["auto"] == "Automatic detection"
    assert "transcribes English only" in str(form.fields["language"].help_text)


def test_with_gladia_the_form_offers_every_language_plainly(settings):
    settings.STT_PROVIDER = "gladia"
    form = SessionCreateForm()
    assert "not transcribed" not in " ".join(
        str(label) for _, label in form.fields["language"].choices
    )
    assert not form.fields["language"].help_text
