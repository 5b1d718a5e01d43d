"""API tokens end with the password they were issued under, and can be signed out."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import PASSWORD

NEW_PASSWORD = "a-fresh-and-long-passphrase-42"
TOKEN_URL = reverse("api-token")


def _token_for(email: str, password: str = PASSWORD) -> str:
    response = APIClient().post(TOKEN_URL, {"email": email, "password": password}, format="json")
    assert response.status_code == 200, response.content
    return response.json()["token"]


def _api(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def _works(key: str) -> bool:
    return _api(key).get(reverse("api-me")).status_code == 200


def test_changing_the_password_ends_the_old_token(owner_client, owner):
    """The attack: a token copied before a password change kept working, and the token
    endpoint handed out the same key again."""
    old = _token_for(owner.email)

    response = owner_client.post(
        reverse("account_change_password"),
        {"oldpassword": PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )

    assert response.status_code == 302
    assert not _works(old)
    new = _token_for(owner.email, NEW_PASSWORD)
    assert new != old
    assert _works(new)


def test_resetting_the_password_ends_the_old_token(client, owner, mailoutbox):
    old = _token_for(owner.email)

    client.post(reverse("account_reset_password"), {"email": owner.email})
    link = next(w for w in mailoutbox[-1].body.split() if "/accounts/password/reset/key/" in w)
    form_url = client.get(
        "/" + link.split("://", 1)[1].split("/", 1)[1], follow=True
    ).redirect_chain[-1][0]
    client.post(form_url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})

    owner.refresh_from_db()
    assert owner.check_password(NEW_PASSWORD)
    assert not _works(old)
    assert _token_for(owner.email, NEW_PASSWORD) != old


def test_staff_setting_a_password_in_the_admin_ends_the_old_token(owner, member):
    old = _token_for(member.email)
    owner.is_staff = owner.is_superuser = True
    owner.save()
    admin = Client()
    admin.force_login(owner)

    response = admin.post(
        reverse("admin:auth_user_password_change", args=[member.pk]),
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
    )

    assert response.status_code == 302, response.content
    member.refresh_from_db()
    assert member.check_password(NEW_PASSWORD)
    assert not _works(old)


def test_a_password_change_leaves_other_users_tokens_alone(owner_client, member):
    members = _token_for(member.email)

    owner_client.post(
        reverse("account_change_password"),
        {"oldpassword": PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )

    assert _works(members)


def test_delete_signs_out_the_token_it_is_made_with(owner):
    key = _token_for(owner.email)

    response = _api(key).delete(TOKEN_URL)

    assert response.status_code == 204
    assert not _works(key)
    assert not Token.objects.filter(user=owner).exists()
    assert _token_for(owner.email) != key


def test_delete_with_a_session_signs_out_the_users_token(owner_api, owner):
    key = _token_for(owner.email)

    assert owner_api.delete(TOKEN_URL).status_code == 204

    assert not _works(key)


@pytest.mark.django_db
def test_anonymous_delete_is_refused_and_signs_out_nobody(owner):
    key = _token_for(owner.email)

    response = APIClient().delete(TOKEN_URL)

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert _works(key)


def test_outsider_delete_signs_out_only_the_outsiders_token(owner, outsider):
    owners = _token_for(owner.email)
    outsiders = _token_for(outsider.email)

    assert _api(outsiders).delete(TOKEN_URL).status_code == 204

    assert _works(owners)
    assert not _works(outsiders)


@pytest.mark.django_db
def test_delete_with_an_unknown_token_is_refused():
    response = _api("not-a-real-token").delete(TOKEN_URL)

    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


@pytest.mark.django_db
def test_schema_documents_signing_a_token_out():
    schema = APIClient().get(reverse("api-schema"), {"format": "json"}).json()

    operations = schema["paths"]["/api/auth/token"]
    assert set(operations) >= {"post", "delete"}
    assert "204" in operations["delete"]["responses"]
    assert {"401", "403"} <= set(operations["delete"]["responses"])
    assert not {"401", "403"} & set(operations["post"]["responses"])
