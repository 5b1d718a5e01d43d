"""Email + password accounts through allauth, and API tokens."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from identity.models import User
from tests.factories import PASSWORD, UserFactory

NEW_PASSWORD = "a-fresh-and-long-passphrase-42"


@pytest.fixture(autouse=True)
def _own_cache(settings):
    # allauth counts sign-in and reset attempts per IP and per email in the cache: each test gets
    # its own empty one, so repeated runs against a long-lived Redis never trip the limits.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "tests-identity-accounts",
        }
    }
    cache.clear()


def _is_signed_in(client) -> bool:
    return "_auth_user_id" in client.session


@pytest.mark.django_db
def test_signup_with_mismatched_passwords_is_refused(client):
    response = client.post(
        reverse("account_signup"),
        {"email": "someone@example.com", "password1": NEW_PASSWORD, "password2": "other-pass-123"},
    )

    assert response.status_code == 200
    assert not User.objects.filter(email="someone@example.com").exists()


@pytest.mark.django_db
def test_sign_in_with_email_and_password(client, owner):
    response = client.post(reverse("account_login"), {"login": owner.email, "password": PASSWORD})

    assert response.status_code == 302
    assert response.url == reverse("spaces:list")
    assert client.session["_auth_user_id"] == str(owner.pk)


@pytest.mark.django_db
def test_sign_in_with_wrong_password_is_refused(client, owner):
    response = client.post(reverse("account_login"), {"login": owner.email, "password": "nope"})

    assert response.status_code == 200
    assert not _is_signed_in(client)


@pytest.mark.django_db
def test_repeated_failed_sign_ins_lock_the_account_out_for_a_while(client, owner):
    for _ in range(5):
        client.post(reverse("account_login"), {"login": owner.email, "password": "guess"})

    response = client.post(reverse("account_login"), {"login": owner.email, "password": PASSWORD})

    assert not _is_signed_in(client)
    assert "Too many failed login attempts" in response.content.decode()


def test_sign_out_ends_the_session(owner_client):
    response = owner_client.post(reverse("account_logout"))

    assert response.status_code == 302
    assert not _is_signed_in(owner_client)
    assert owner_client.get(reverse("spaces:list")).status_code == 302


@pytest.mark.django_db
def test_password_reset_emails_a_link_that_sets_a_new_password(client, owner, mailoutbox):
    response = client.post(reverse("account_reset_password"), {"email": owner.email})

    assert response.status_code == 302
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == [owner.email]
    link = next(word for word in message.body.split() if "/accounts/password/reset/key/" in word)
    path = link.split("://", 1)[1].split("/", 1)[1]
    # The key URL redirects once to a session-held form, then accepts the new password.
    form_url = client.get(f"/{path}", follow=True).redirect_chain[-1][0]
    response = client.post(form_url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 302
    owner.refresh_from_db()
    assert owner.check_password(NEW_PASSWORD)


@pytest.mark.django_db
def test_api_token_for_valid_credentials_authenticates_api_calls(owner):
    client = APIClient()

    response = client.post(
        reverse("api-token"), {"email": owner.email, "password": PASSWORD}, format="json"
    )

    assert response.status_code == 200
    key = response.json()["token"]
    assert Token.objects.get(key=key).user == owner
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    me = client.get(reverse("api-me"))
    assert me.status_code == 200
    assert me.json()["email"] == owner.email


@pytest.mark.django_db
def test_api_token_accepts_the_email_in_any_case(owner):
    response = APIClient().post(
        reverse("api-token"), {"email": "OWNER@Example.COM", "password": PASSWORD}, format="json"
    )

    assert response.status_code == 200


@pytest.mark.django_db
def test_api_token_is_the_same_on_a_second_request(owner):
    client = APIClient()
    body = {"email": owner.email, "password": PASSWORD}

    first = client.post(reverse("api-token"), body, format="json").json()["token"]
    second = client.post(reverse("api-token"), body, format="json").json()["token"]

    assert first == second
    assert Token.objects.filter(user=owner).count() == 1


@pytest.mark.django_db
def test_api_token_with_wrong_password_is_400_and_creates_no_token(owner):
    response = APIClient().post(
        reverse("api-token"), {"email": owner.email, "password": "wrong"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_credentials"
    assert not Token.objects.filter(user=owner).exists()


@pytest.mark.django_db
def test_repeated_wrong_api_passwords_are_rate_limited(owner):
    client = APIClient()
    for _ in range(5):
        client.post(reverse("api-token"), {"email": owner.email, "password": "x"}, format="json")

    response = client.post(
        reverse("api-token"), {"email": owner.email, "password": PASSWORD}, format="json"
    )

    assert response.status_code == 429
    assert response.json()["code"] == "too_many_login_attempts"
    assert not Token.objects.filter(user=owner).exists()


@pytest.mark.django_db
def test_failed_sign_ins_on_the_page_count_towards_the_api_limit(client, owner):
    for _ in range(5):
        client.post(reverse("account_login"), {"login": owner.email, "password": "guess"})

    response = APIClient().post(
        reverse("api-token"), {"email": owner.email, "password": PASSWORD}, format="json"
    )

    assert response.status_code == 429


@pytest.mark.django_db
def test_successful_api_sign_ins_do_not_use_up_the_limit(owner):
    client = APIClient()
    body = {"email": owner.email, "password": PASSWORD}

    statuses = {
        client.post(reverse("api-token"), body, format="json").status_code for _ in range(8)
    }

    assert statuses == {200}


@pytest.mark.django_db
def test_api_token_for_an_unknown_email_says_the_same_as_a_wrong_password():
    response = APIClient().post(
        reverse("api-token"), {"email": "nobody@example.com", "password": "x"}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {
        "detail": "Invalid email or password.",
        "code": "invalid_credentials",
    }


@pytest.mark.django_db
def test_api_token_for_an_inactive_user_is_refused():
    user = UserFactory(is_active=False)

    response = APIClient().post(
        reverse("api-token"), {"email": user.email, "password": PASSWORD}, format="json"
    )

    assert response.status_code == 400
    assert not Token.objects.filter(user=user).exists()


@pytest.mark.django_db
def test_api_token_without_a_password_is_a_validation_error(owner):
    response = APIClient().post(reverse("api-token"), {"email": owner.email}, format="json")

    assert response.status_code == 400
    assert "password" in response.json()


@pytest.mark.django_db
def test_an_unknown_token_is_not_authenticated():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    response = client.get(reverse("api-me"))

    # 403 rather than 401: SessionAuthentication comes first and sends no WWW-Authenticate.
    assert response.status_code in (401, 403)
    assert response.json()["code"] == "authentication_failed"


def test_api_me_describes_me_by_identity_never_by_primary_key(owner_api, owner):
    response = owner_api.get(reverse("api-me"))

    assert response.status_code == 200
    assert response.json() == {
        "identity": owner.identity,
        "email": owner.email,
        "name": "Olivia Owner",
        "display_name": "Olivia Owner",
    }
    assert owner.identity == f"u-{owner.public_id.hex}"


@pytest.mark.django_db
def test_api_me_without_authentication_is_refused():
    response = APIClient().get(reverse("api-me"))

    assert response.status_code in (401, 403)
    assert response.json()["code"] == "not_authenticated"
