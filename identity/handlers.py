"""Handlers of allauth's account events, registered in ``IdentityConfig.ready()``."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from identity.models import User
from identity.services import user_password_changed


def password_changed(sender: type[User], request: HttpRequest, user: User, **kwargs: Any) -> None:
    """allauth's ``password_changed``, ``password_set`` and ``password_reset``."""
    user_password_changed(user=user)
