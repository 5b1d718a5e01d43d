"""Access that ends: the open WebSockets of someone who lost access to a space are closed.

A page's sockets (transcript, mesh signalling) are checked for membership when they open.
Membership can end while they are open: an owner removes the member, a space or a session is
deleted (in the app, the admin, or by a cascade such as a deleted user). Every socket of a
session therefore also listens on the channel-layer group of its person in its space
(``access_group``); when the membership row goes, ``access_revoke`` tells that group — and so
every Daphne holding one of those sockets — to close with 4003 (``ACCESS_REVOKED_CLOSE``).

The event is declared here, in the lowest app that owns memberships: the signal handlers
registered in ``SpacesConfig.ready()`` send it after the deleting transaction commits, so a
rolled-back removal closes nothing, and the consumers (edges) implement ``access.revoked``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils.translation import gettext

logger = logging.getLogger(__name__)

ACCESS_REVOKED = "access.revoked"
"""The channel-layer message type; consumers handle it in ``access_revoked``."""
ACCESS_REVOKED_CLOSE = 4003


def access_group(*, space_id: int, user_id: int) -> str:
    """The group every open session socket of ``user_id`` in ``space_id`` belongs to."""
    return f"access.{space_id}.{user_id}"


def revoked_message() -> dict[str, str]:
    """What a page is told just before its socket closes with 4003."""
    return {
        "type": "access_revoked",
        "message": gettext("You no longer have access to this space."),
    }


def _send(groups: list[str]) -> None:
    layer = get_channel_layer()
    for group in groups:
        try:
            async_to_sync(layer.group_send)(group, {"type": ACCESS_REVOKED})
        except Exception as exc:
            # The membership is gone either way: a socket that missed this is refused when it
            # reconnects, and its person can no longer read anything through the API or pages.
            logger.warning(
                "access revocation for %s not broadcast (channel layer: %s)",
                group,
                type(exc).__name__,
            )


def access_revoke(*, groups: Iterable[str]) -> None:
    """Close every socket in ``groups`` with 4003 once the current transaction commits."""
    names = list(dict.fromkeys(groups))
    if names:
        transaction.on_commit(lambda: _send(names))
