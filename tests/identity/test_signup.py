"""Sign-up never tells whether an email address already has an account."""

from __future__ import annotations

import pytest
from django.urls import reverse

from identity.models import User
from tests.factories import PASSWORD

NEW_PASSWORD = "a-fresh-and-long-passphrase-42"


def _sign_up(client, email: str):
    return client.post(
        reverse("account_signup"),
        {"email": email, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )


def _is_signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def _path_of_link(body: str, marker: str) -> str:
    link = next(word for word in body.split() if marker in word)
    return "/" + link.split("://", 1)[1].split("/", 1)[1]


@pytest.mark.django_db
def test_signup_creates_the_user_and_asks_to_confirm_the_address(client, mailoutbox):
    response = _sign_up(client, "New.Person@Example.com")

    assert response.status_code == 302
    assert response.url == reverse("account_email_verification_sent")
    user = User.objects.get(email="new.person@example.com")
    assert user.check_password(NEW_PASSWORD)
    assert not _is_signed_in(client)
    assert [m.to for m in mailoutbox] == [["new.person@example.com"]]
    assert "/accounts/confirm-email/" in mailoutbox[0].body


@pytest.mark.django_db
def test_opening_the_confirmation_link_in_the_same_browser_signs_in(client, mailoutbox):
    _sign_up(client, "new.person@example.com")
    confirm_path = _path_of_link(mailoutbox[0].body, "/accounts/confirm-email/")

    response = client.post(confirm_path)

    user = User.objects.get(email="new.person@example.com")
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)
    assert user.emailaddress_set.get().verified


@pytest.mark.django_db
def test_sign_up_with_a_registered_email_looks_the_same_as_a_new_one(owner, mailoutbox, client):
    """The attack: sign up with someone's address and read "A user is already registered with
    this email address" on the page. Now both answers are the same redirect to the same page."""
    from django.test import Client

    new = _sign_up(Client(), "nobody-yet@example.com")
    taken = _sign_up(client, "OWNER@example.com")

    assert (taken.status_code, taken.url) == (new.status_code, new.url)
    page = client.get(taken.url)
    assert page.status_code == 200
    assert "already" not in page.content.decode().lower()
    assert not _is_signed_in(client)
    assert User.objects.filter(email__iexact="owner@example.com").count() == 1
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)


@pytest.mark.django_db
def test_sign_up_with_a_registered_email_tells_its_owner_by_email(owner, client, mailoutbox):
    _sign_up(client, owner.email)

    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == [owner.email]
    assert "/accounts/password/reset/" in message.body  # how the owner gets back in


@pytest.mark.django_db
def test_unconfirmed_new_user_can_still_sign_in_with_the_password(client, mailoutbox):
    """Sign-in needs no confirmed address unless ACCOUNT_EMAIL_VERIFICATION says so."""
    _sign_up(client, "new.person@example.com")

    response = client.post(
        reverse("account_login"), {"login": "new.person@example.com", "password": NEW_PASSWORD}
    )

    assert response.status_code == 302
    assert _is_signed_in(client)
