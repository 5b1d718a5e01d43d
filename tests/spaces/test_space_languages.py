"""A space's default transcription languages (issue 17): owners set them on the space page, in
the API and in the admin — automatic detection, one fixed language or several expected ones —
and everyone else is refused; malformed input and languages the speech engine cannot
transcribe get a clear 400 (never a 500) and change nothing."""

from __future__ import annotations

import re

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from rooms.errors import DomainError, Forbidden
from spaces.admin import SpaceAdminForm
from spaces.languages import MAX_LANGUAGES
from spaces.models import Space
from spaces.services import space_languages_set
from tests.factories import SpaceInviteFactory

pytestmark = pytest.mark.django_db

SIX = ["en", "ru", "de", "fr", "es", "it"]
assert len(SIX) == MAX_LANGUAGES + 1


@pytest.fixture
def gladia(settings):
    """A provider that takes any language."""
    settings.STT_PROVIDER = "gladia"


@pytest.fixture
def english_only(settings):
    """The offline engine with its default model, Whisper tiny.en."""
    settings.STT_PROVIDER = "local"
    settings.OFFLINE_STT_MODEL_DIR = settings.OFFLINE_STT_MULTILINGUAL_MODEL_DIR = ""


def api_url(space: Space) -> str:
    return reverse("api-space-detail", kwargs={"slug": space.slug})


def page_url(space: Space) -> str:
    return reverse("spaces:detail", kwargs={"slug": space.slug})


def form_url(space: Space) -> str:
    return reverse("spaces:languages", kwargs={"slug": space.slug})


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def languages_of(space: Space) -> list[str]:
    space.refresh_from_db()
    return space.languages


def card(html: str) -> str:
    return html.split('class="card space-languages"', 1)[1].split("</form>", 1)[0]


# --- the service -----------------------------------------------------------------------------


@pytest.mark.parametrize("languages", [[], ["ru"], ["ru", "en"], SIX[:MAX_LANGUAGES]])
def test_an_owner_sets_automatic_one_or_several_languages(space, owner, languages):
    space_languages_set(space=space, by=owner, languages=languages, supported=None)

    assert languages_of(space) == languages


def test_a_member_cannot_set_the_languages(space, member):
    with pytest.raises(Forbidden):
        space_languages_set(space=space, by=member, languages=["ru"], supported=None)

    assert languages_of(space) == ["en"]


@pytest.mark.parametrize(
    ("languages", "words"),
    [
        (["xx"], "“xx” is not a language code"),
        (["en-US"], "is not a language code"),
        ([1], "“1” is not a language code"),
        ([None], "“None” is not a language code"),
        (["ru", "ru"], "Russian is listed twice"),
        (SIX, f"at most {MAX_LANGUAGES} languages"),
    ],
)
def test_the_service_refuses_what_is_not_a_short_list_of_known_codes(
    space, owner, languages, words
):
    with pytest.raises(DomainError) as refused:
        space_languages_set(space=space, by=owner, languages=languages, supported=None)

    assert refused.value.code == "languages_invalid"
    assert words in refused.value.message
    assert languages_of(space) == ["en"]


def test_the_service_refuses_what_the_speech_engine_cannot_transcribe(space, owner):
    with pytest.raises(DomainError) as refused:
        space_languages_set(
            space=space, by=owner, languages=["en", "ru"], supported=frozenset({"en"})
        )

    assert refused.value.code == "language_unsupported"
    assert "transcribes English only, not Russian" in refused.value.message
    assert languages_of(space) == ["en"]


# --- the API ---------------------------------------------------------------------------------


def test_the_space_shows_its_languages(member_api, space):
    assert member_api.get(api_url(space)).json()["languages"] == ["en"]


@pytest.mark.usefixtures("gladia")
@pytest.mark.parametrize("languages", [[], ["ru"], ["ru", "en"]])
def test_an_owner_patches_the_languages(owner_api, space, languages):
    response = owner_api.patch(api_url(space), {"languages": languages}, format="json")

    assert response.status_code == 200
    assert response.json()["languages"] == languages
    assert response.json()["role"] == "OWNER"
    assert languages_of(space) == languages


@pytest.mark.usefixtures("gladia")
def test_a_member_gets_403_and_changes_nothing(member_api, space):
    response = member_api.patch(api_url(space), {"languages": ["ru"]}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "owner_required"
    assert languages_of(space) == ["en"]


@pytest.mark.usefixtures("gladia")
def test_an_outsider_gets_404_and_learns_nothing(outsider_api, space):
    response = outsider_api.patch(api_url(space), {"languages": ["ru"]}, format="json")

    assert response.status_code == 404
    assert space.name not in response.content.decode()
    assert languages_of(space) == ["en"]


def test_anonymous_callers_are_refused(space):
    response = APIClient().patch(api_url(space), {"languages": ["ru"]}, format="json")

    assert response.status_code in (401, 403)
    assert languages_of(space) == ["en"]


@pytest.mark.usefixtures("gladia")
@pytest.mark.parametrize(
    "body",
    [
        {"languages": "ru"},
        {"languages": {"ru": True}},
        {"languages": None},
        {"languages": 7},
        {"languages": ["xx"]},
        {"languages": ["ru", "ru"]},
        {"languages": SIX},
        {"languages": [1]},
        {"languages": [True]},
        {"languages": [None]},
        {"languages": [["ru"]]},
        {"languages": [{"code": "ru"}]},
        {"languages": [""]},
        {"languages": ["r" * 10_000]},
        {},
        [],
        "ru",
    ],
    ids=[
        "string",
        "object",
        "null",
        "number",
        "unknown-code",
        "duplicate",
        "too-many",
        "number-item",
        "boolean-item",
        "null-item",
        "list-item",
        "object-item",
        "empty-item",
        "huge-item",
        "missing",
        "body-list",
        "body-string",
    ],
)
def test_malformed_input_gets_400_never_500(owner_api, space, body):
    response = owner_api.patch(api_url(space), body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] in ("invalid", "languages_invalid", "parse_error")
    assert languages_of(space) == ["en"]


@pytest.mark.usefixtures("gladia")
def test_a_bad_code_is_named_in_the_detail(owner_api, space):
    response = owner_api.patch(api_url(space), {"languages": ["en", "klingon"]}, format="json")

    assert response.json() == {
        "detail": "“klingon” is not a language code: use two-letter ISO 639-1 codes such as "
        "“en” or “ru”.",
        "code": "languages_invalid",
    }


@pytest.mark.usefixtures("english_only")
def test_a_language_the_engine_cannot_transcribe_gets_400_with_what_it_can(owner_api, space):
    response = owner_api.patch(api_url(space), {"languages": ["ru"]}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "language_unsupported"
    assert "transcribes English only, not Russian" in response.json()["detail"]
    assert languages_of(space) == ["en"]


@pytest.mark.usefixtures("english_only")
def test_automatic_detection_is_always_allowed(owner_api, space):
    response = owner_api.patch(api_url(space), {"languages": []}, format="json")

    assert response.status_code == 200
    assert languages_of(space) == []


@pytest.mark.usefixtures("gladia")
def test_errors_speak_the_callers_language(owner, space):
    client = APIClient(HTTP_ACCEPT_LANGUAGE="ru")
    client.force_authenticate(owner)

    response = client.patch(api_url(space), {"languages": ["ru", "ru"]}, format="json")

    assert response.json()["detail"] == ("Русский указан дважды: укажите каждый язык один раз.")


def test_the_schema_explains_the_three_meanings(space):
    schema = APIClient().get(reverse("api-schema"), {"format": "json"}).json()

    patch = schema["paths"]["/api/spaces/{slug}"]["patch"]
    ref = patch["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    help_text = body["properties"]["languages"]["description"]
    for words in ("[] = automatic detection", "one code = that language, fixed", "code switching"):
        assert words in help_text
    output = schema["components"]["schemas"]["SpaceOutput"]["properties"]["languages"]
    assert "[] = automatic detection" in output["description"]


# --- the space page --------------------------------------------------------------------------


@pytest.mark.usefixtures("gladia")
def test_owners_see_the_languages_card_with_the_current_choice(owner_client, space):
    space.languages = ["ru", "uk"]
    space.save(update_fields=["languages"])

    html = card(owner_client.get(page_url(space)).content.decode())

    assert '<label for="space_language">Transcription language</label>' in html
    assert '<option value="auto">Automatic detection</option>' in html
    assert '<option value="several" selected>Several languages (tick them below)</option>' in html
    assert re.search(r'<input[^>]*value="ru"[^>]*checked', html)
    assert re.search(r'<input[^>]*value="uk"[^>]*checked', html)
    assert not re.search(r'<input[^>]*value="en"[^>]*checked', html)
    assert '<details class="field languages-several" open>' in html


def test_members_do_not_see_the_languages_card(member_client, space):
    html = member_client.get(page_url(space)).content.decode()

    assert "space-languages" not in html
    assert form_url(space) not in html


def test_the_card_and_the_new_session_form_have_distinct_field_ids(owner_client, space):
    html = owner_client.get(page_url(space)).content.decode()

    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids))


@pytest.mark.usefixtures("gladia")
@pytest.mark.parametrize(
    ("post", "languages"),
    [
        ({"language": "auto"}, []),
        ({"language": "ru"}, ["ru"]),
        ({"language": "several", "languages": ["ru", "en"]}, ["en", "ru"]),
        ({"language": "ru", "languages": ["de"]}, ["ru"]),
    ],
    ids=["automatic", "fixed", "several", "fixed-ignores-ticks"],
)
def test_the_owners_form_sets_the_languages(owner_client, space, post, languages):
    response = owner_client.post(form_url(space), post)

    assert response.status_code == 302
    assert response.url == f"{page_url(space)}#languages"
    assert sorted(languages_of(space)) == sorted(languages)
    assert any(
        m.startswith("Transcription languages of new sessions") for m in messages_of(response)
    )


@pytest.mark.usefixtures("gladia")
def test_new_sessions_offer_the_space_default_afterwards(owner_client, space):
    owner_client.post(form_url(space), {"language": "several", "languages": ["ru", "en"]})

    html = owner_client.get(page_url(space)).content.decode()

    assert '<option value="space" selected>Space default (Russian, English)</option>' in html


@pytest.mark.usefixtures("gladia")
@pytest.mark.parametrize(
    ("post", "words"),
    [
        ({"language": "several"}, "Tick the languages expected"),
        ({"language": "klingon"}, "Select a valid choice"),
        ({"language": "several", "languages": ["xx"]}, "Select a valid choice"),
        ({}, "This field is required"),
        ({"language": "several", "languages": SIX}, f"at most {MAX_LANGUAGES} languages"),
    ],
    ids=["several-none-ticked", "unknown", "unknown-ticked", "nothing", "too-many"],
)
def test_the_form_refuses_what_it_cannot_save(owner_client, space, post, words):
    response = owner_client.post(form_url(space), post)

    assert response.status_code == 302
    assert any(words in m for m in messages_of(response)), messages_of(response)
    assert languages_of(space) == ["en"]


@pytest.mark.usefixtures("gladia")
def test_a_members_post_is_refused(member_client, space):
    response = member_client.post(form_url(space), {"language": "ru"})

    assert any("Only an owner" in m for m in messages_of(response))
    assert languages_of(space) == ["en"]


def test_the_form_takes_only_post(owner_client, space):
    assert owner_client.get(form_url(space)).status_code == 405


@pytest.mark.usefixtures("english_only")
def test_the_card_marks_and_refuses_what_the_engine_cannot_transcribe(owner_client, space):
    html = card(owner_client.get(page_url(space)).content.decode())

    assert '<option value="en" selected>English</option>' in html
    assert '<option value="ru">Russian — not transcribed here</option>' in html
    assert "This server transcribes English only" in html
    assert 'aria-describedby="space-language-help"' in html

    response = owner_client.post(form_url(space), {"language": "ru"})

    assert any("transcribes English only, not Russian" in m for m in messages_of(response))
    assert languages_of(space) == ["en"]


# --- the admin -------------------------------------------------------------------------------


def _admin_form(space: Space, languages: str) -> SpaceAdminForm:
    from django.forms import modelform_factory

    form_class = modelform_factory(Space, form=SpaceAdminForm, fields=["languages"])
    return form_class({"languages": languages}, instance=space)


@pytest.mark.usefixtures("gladia")
@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ('"ru"', "A list of ISO 639-1 codes"),
        ("null", "A list of ISO 639-1 codes"),
        ('["ru", "ru"]', "listed twice"),
        ('["xx"]', "not a language code"),
    ],
)
def test_the_admin_refuses_what_the_page_refuses(space, raw, words):
    form = _admin_form(space, raw)

    assert not form.is_valid()
    assert words in str(form.errors["languages"])


@pytest.mark.usefixtures("gladia")
def test_the_admin_saves_good_languages(space):
    form = _admin_form(space, '["ru", "en"]')

    assert form.is_valid(), form.errors
    form.save()
    assert languages_of(space) == ["ru", "en"]


# --- Russian ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("gladia")
def test_the_space_page_in_russian(owner, space):
    SpaceInviteFactory(space=space, created_by=owner, uses=2)
    client = Client(HTTP_ACCEPT_LANGUAGE="ru")
    client.force_login(owner)

    html = client.get(page_url(space)).content.decode()

    assert '<html lang="ru">' in html
    assert "Языки расшифровки" in html
    assert "Автоматическое определение" in html
    assert "использована 2 раза" in html
    # Django's Russian short date format (d.m.Y H:i), not "May 5, 14:00".
    assert re.search(r"\(\d\d\.\d\d\.\d{4} \d\d:\d\d\)", html)
