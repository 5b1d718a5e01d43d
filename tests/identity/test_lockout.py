"""Failed sign-in limits: one count per client address and one per account, whichever page
(allauth's, the admin's) or the API takes the password; and how an owner gets back in."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from identity.models import User
from tests.factories import PASSWORD, UserFactory

ADMIN_LOGIN = "/admin/login/"
NEW_PASSWORD = "a-fresh-and-long-passphrase-42"


@pytest.fixture
def staff(db) -> User:
    return UserFactory(email="staff@example.com", is_staff=True, is_superuser=True)


def _admin_sign_in(client: Client, email: str, password: str, address: str = "192.0.2.1"):
    return client.post(
        ADMIN_LOGIN,
        {"username": email, "password": password, "next": "/admin/"},
        REMOTE_ADDR=address,
    )


def _page_sign_in(client: Client, email: str, password: str, **extra):
    return client.post(reverse("account_login"), {"login": email, "password": password}, **extra)


def _is_signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_admin_sign_in_with_the_right_password_still_works(client, staff):
    response = _admin_sign_in(client, staff.email, PASSWORD)

    assert response.status_code == 302
    assert response.url == "/admin/"
    assert _is_signed_in(client)


def test_admin_sign_in_locks_an_account_after_five_wrong_passwords(client, staff):
    """The attack: 60 wrong admin passwords in 53 s were all answered 200, and the right one
    then signed in. Now the sixth try on one account, even from another address and with the
    right password, is refused with 429 and Retry-After."""
    for i in range(5):
        response = _admin_sign_in(client, staff.email, f"guess-{i}", address=f"192.0.2.{i + 1}")
        assert response.status_code == 200

    response = _admin_sign_in(client, staff.email.upper(), PASSWORD, address="198.51.100.9")

    assert response.status_code == 429
    assert 250 <= int(response["Retry-After"]) <= 300  # the 5-minute per-account window
    assert "Too many failed login attempts" in response.content.decode()
    assert not _is_signed_in(client)


def test_admin_sign_in_refuses_an_address_after_ten_wrong_passwords(client, staff):
    """Guessing across many accounts from one address: the eleventh failure in a minute."""
    for i in range(10):
        assert _admin_sign_in(client, f"someone{i}@example.com", "guess").status_code == 200

    response = _admin_sign_in(client, staff.email, PASSWORD)

    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert not _is_signed_in(client)
    # Another address is not refused for it.
    other = _admin_sign_in(Client(), staff.email, PASSWORD, address="198.51.100.9")
    assert other.status_code == 302


def test_wrong_passwords_on_the_sign_in_page_lock_the_admin_sign_in(client, staff):
    for _ in range(5):
        _page_sign_in(Client(), staff.email, "guess")

    assert _admin_sign_in(client, staff.email, PASSWORD).status_code == 429


def test_wrong_admin_passwords_lock_the_sign_in_page_and_the_api(client, staff):
    for i in range(5):
        _admin_sign_in(Client(), staff.email, "guess", address=f"192.0.2.{i + 1}")

    page = _page_sign_in(client, staff.email, PASSWORD)
    api = APIClient().post(
        reverse("api-token"), {"email": staff.email, "password": PASSWORD}, format="json"
    )

    assert not _is_signed_in(client)
    assert "Too many failed login attempts" in page.content.decode()
    assert api.status_code == 429


def test_admin_sign_in_answers_429_over_the_per_address_attempt_rate(client, settings, staff):
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "login": "3/m/ip"}
    for _ in range(3):
        assert client.post(ADMIN_LOGIN, {"username": "", "password": ""}).status_code == 200

    response = client.post(ADMIN_LOGIN, {"username": "", "password": ""})

    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60


def test_changing_the_host_header_does_not_reset_the_account_count(client, owner):
    """allauth keyed the per-account count by host name and port: ``Host: testserver:1``,
    ``:2``, ... each gave a guesser five fresh tries at the same account."""
    for port in range(1, 6):
        _page_sign_in(Client(), owner.email, "guess", HTTP_HOST=f"testserver:{port}")

    response = _page_sign_in(client, owner.email, PASSWORD, HTTP_HOST="testserver:6")

    assert not _is_signed_in(client)
    assert "Too many failed login attempts" in response.content.decode()


def test_api_lockout_answers_429_with_retry_after(owner):
    for i in range(5):
        APIClient().post(
            reverse("api-token"),
            {"email": owner.email, "password": "x"},
            format="json",
            REMOTE_ADDR=f"192.0.2.{i + 1}",
        )

    response = APIClient().post(
        reverse("api-token"), {"email": owner.email, "password": PASSWORD}, format="json"
    )

    assert response.status_code == 429
    assert response.json()["code"] == "too_many_login_attempts"
    assert 250 <= int(response["Retry-After"]) <= 300


def _lock_out(email: str) -> None:
    for i in range(5):
        _page_sign_in(Client(), email, "guess", REMOTE_ADDR=f"192.0.2.{i + 1}")


def _reset_password(client: Client, email: str, mailoutbox) -> None:
    client.post(reverse("account_reset_password"), {"email": email})
    link = next(w for w in mailoutbox[-1].body.split() if "/accounts/password/reset/key/" in w)
    path = "/" + link.split("://", 1)[1].split("/", 1)[1]
    form_url = client.get(path, follow=True).redirect_chain[-1][0]
    response = client.post(form_url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 302


def test_password_reset_lifts_the_account_lock(client, owner, mailoutbox):
    """Anyone could lock a user out of password sign-in with five wrong passwords; the
    owner, proving access to the mailbox, is let back in."""
    _lock_out(owner.email)
    assert "Too many failed" in _page_sign_in(Client(), owner.email, PASSWORD).content.decode()

    _reset_password(client, owner.email, mailoutbox)
    client.post(reverse("account_logout"))

    response = _page_sign_in(client, owner.email, NEW_PASSWORD)
    assert response.status_code == 302
    assert _is_signed_in(client)


def test_password_change_lifts_the_account_lock(owner_client, owner):
    _lock_out(owner.email)

    owner_client.post(
        reverse("account_change_password"),
        {"oldpassword": PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )

    other = Client()
    assert _page_sign_in(other, owner.email, NEW_PASSWORD).status_code == 302
    assert _is_signed_in(other)


def test_the_lock_of_one_account_leaves_the_others_alone(client, owner, member):
    _lock_out(owner.email)

    assert _page_sign_in(client, member.email, PASSWORD).status_code == 302
