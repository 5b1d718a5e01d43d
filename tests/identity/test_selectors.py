"""Finding the user behind a participant identity."""

from __future__ import annotations

import uuid

import pytest

from identity.selectors import user_get_by_identity
from tests.factories import UserFactory


def test_identity_leads_back_to_its_user(member):
    assert user_get_by_identity(identity=member.identity) == member


@pytest.mark.django_db
def test_identity_of_an_inactive_user_finds_nobody():
    user = UserFactory(is_active=False)

    assert user_get_by_identity(identity=user.identity) is None


@pytest.mark.parametrize(
    "identity",
    ["", "u-", "u-not-hex", f"x-{uuid.uuid4().hex}", f"u-{uuid.uuid4().hex}", "egress-bot"],
)
def test_malformed_or_unknown_identity_finds_nobody(member, identity):
    assert user_get_by_identity(identity=identity) is None
