"""Removing members under concurrency: a space never loses its last owner."""

from __future__ import annotations

import threading

import pytest
from django.db import DatabaseError, connection, transaction

from rooms.errors import Forbidden
from spaces.models import SpaceMember
from spaces.services import member_remove


def _try_to_lock_owner_row(pk: int, outcome: dict[str, bool]) -> None:
    """From another connection, try to lock an owner row without waiting."""
    try:
        if connection.vendor == "sqlite":
            # SQLite serialises writers at BEGIN IMMEDIATE; fail at once, not after the timeout.
            connection.ensure_connection()
            connection.connection.execute("PRAGMA busy_timeout = 0")
        with transaction.atomic():
            list(SpaceMember.objects.select_for_update(nowait=True).filter(pk=pk))
    except DatabaseError:
        outcome["locked"] = True
    else:
        outcome["locked"] = False
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_removing_an_owner_locks_the_remaining_owners_until_commit(space, owner, member):
    # Two owners removing each other at once must not both succeed: while one removal is
    # uncommitted, the other cannot take the owner rows it needs to count.
    space.memberships.filter(user=member).update(role=SpaceMember.Role.OWNER)
    remaining = space.memberships.get(user=owner)
    outcome: dict[str, bool] = {}

    with transaction.atomic():
        member_remove(space=space, member=space.memberships.get(user=member), by=owner)
        other = threading.Thread(target=_try_to_lock_owner_row, args=(remaining.pk, outcome))
        other.start()
        other.join()

    assert outcome == {"locked": True}
    assert list(space.memberships.values_list("user", "role")) == [
        (owner.pk, SpaceMember.Role.OWNER)
    ]


def test_an_owner_removed_by_another_can_no_longer_remove_anyone(space, owner, member):
    space.memberships.filter(user=member).update(role=SpaceMember.Role.OWNER)
    owner_row = space.memberships.get(user=owner)
    member_remove(space=space, member=space.memberships.get(user=member), by=owner)

    with pytest.raises(Forbidden):
        member_remove(space=space, member=owner_row, by=member)

    assert space.memberships.filter(pk=owner_row.pk, role=SpaceMember.Role.OWNER).exists()
