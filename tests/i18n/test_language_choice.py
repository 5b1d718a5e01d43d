"""Which language a page speaks: the signed-in person's profile choice, else the switcher's
cookie, else the browser's Accept-Language, else English."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


def lang_of(response) -> str:
    assert response.status_code == 200
    assert response["Content-Language"] == response.context["LANGUAGE_CODE"]
    return response["Content-Language"]


def test_english_without_any_preference(client):
    response = client.get(LOGIN)
    assert lang_of(response) == "en"
    assert b'<html lang="en">' in response.content


def test_the_browser_language_is_followed(client):
    response = client.get(LOGIN, HTTP_ACCEPT_LANGUAGE="ru-RU,ru;q=0.9,en;q=0.5")
    assert lang_of(response) == "ru"
    assert b'<html lang="ru">' in response.content
    assert "Войти" in response.content.decode()


def test_an_unsupported_browser_language_falls_back_to_english(client):
    assert lang_of(client.get(LOGIN, HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9")) == "en"


def test_the_switcher_remembers_the_choice_over_the_browser(client):
    response = client.post("/language/", {"language": "ru", "next": "/accounts/login/?x=1"})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?x=1"
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "ru"
    assert lang_of(client.get(LOGIN, HTTP_ACCEPT_LANGUAGE="en")) == "ru"
    client.post("/language/", {"language": "en", "next": LOGIN})
    assert lang_of(client.get(LOGIN, HTTP_ACCEPT_LANGUAGE="ru")) == "en"


def test_the_sign_in_page_offers_the_switcher(client):
    page = client.get(LOGIN).content.decode()
    assert 'action="/language/"' in page
    assert 'value="ru"' in page and "Русский" in page


def test_a_signed_in_choice_is_stored_and_wins_everywhere(owner):
    browser = Client()
    browser.force_login(owner)
    browser.post("/language/", {"language": "ru", "next": "/spaces/"})
    owner.refresh_from_db()
    assert owner.language == "ru"
    # Another browser of the same person, with no cookie and an English Accept-Language.
    other = Client()
    other.force_login(owner)
    assert lang_of(other.get("/spaces/", HTTP_ACCEPT_LANGUAGE="en")) == "ru"


def test_the_profile_sets_and_clears_the_language(owner, owner_client):
    owner_client.post("/me/profile/", {"display_name": "Olivia", "language": "ru"})
    owner.refresh_from_db()
    assert owner.language == "ru"
    assert lang_of(owner_client.get("/me/profile/", HTTP_ACCEPT_LANGUAGE="en")) == "ru"
    owner_client.post("/me/profile/", {"display_name": "Olivia", "language": ""})
    owner.refresh_from_db()
    assert owner.language == ""
    assert lang_of(owner_client.get("/me/profile/", HTTP_ACCEPT_LANGUAGE="en")) == "en"


def test_an_unknown_profile_language_is_refused(owner, owner_client):
    response = owner_client.post("/me/profile/", {"display_name": "Olivia", "language": "xx"})
    assert response.status_code == 400
    owner.refresh_from_db()
    assert owner.language == ""


@pytest.mark.parametrize(
    "data",
    [
        {"language": "xx", "next": "/spaces/"},
        {"language": "", "next": "/spaces/"},
        {"language": "ru" * 50, "next": "/spaces/"},
        {"next": "/spaces/"},
    ],
)
def test_an_unknown_language_is_ignored(client, data):
    response = client.post("/language/", data)
    assert response.status_code == 302
    assert settings.LANGUAGE_COOKIE_NAME not in response.cookies


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "javascript:alert(1)", "\\\\evil"]
)
def test_the_switcher_never_redirects_off_site(client, target):
    response = client.post("/language/", {"language": "ru", "next": target})
    assert response.status_code == 302
    assert response["Location"] == "/"


def test_the_switcher_takes_posts_only(client):
    assert client.get("/language/?language=ru").status_code == 405


def test_the_switcher_needs_the_csrf_token():
    strict = Client(enforce_csrf_checks=True)
    response = strict.post("/language/", {"language": "ru", "next": "/"})
    assert response.status_code == 403


def test_the_javascript_catalogue_follows_the_language(client):
    russian = client.get("/jsi18n/", HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    english = client.get("/jsi18n/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "function gettext" in english or "gettext" in english
    assert len(russian) > len(english)
    assert '"ru"' in russian or "nplurals" in russian or "pluralidx" in russian
