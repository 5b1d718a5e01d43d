"""Handlers of model events, registered in ``SpacesConfig.ready()``."""

from __future__ import annotations

from typing import Any

from spaces.access import access_group, access_revoke
from spaces.models import SpaceMember


def membership_deleted(sender: type[SpaceMember], instance: SpaceMember, **kwargs: Any) -> None:
    access_revoke(groups=[access_group(space_id=instance.space_id, user_id=instance.user_id)])
