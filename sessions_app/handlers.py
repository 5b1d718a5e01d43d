"""Handlers of model events, registered in ``SessionsAppConfig.ready()``."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from sessions_app.analysis.services import analysis_mark_stale
from sessions_app.mesh import mesh_group
from sessions_app.models import VideoSession
from sessions_app.services import participants_leave_space, sessions_touch
from spaces.access import access_revoke
from spaces.models import SpaceMember
from transcription.live.broadcast import session_group


def session_deleted(sender: type[VideoSession], instance: VideoSession, **kwargs: Any) -> None:
    """Every socket of a deleted session closes with 4003, on whichever Daphne it is."""
    access_revoke(groups=[session_group(instance.pk), mesh_group(instance.pk)])


def membership_deleted(sender: type[SpaceMember], instance: SpaceMember, **kwargs: Any) -> None:
    """Someone who left a space is no longer in its sessions (lists, participant limits)."""
    space_id, user_id = instance.space_id, instance.user_id
    transaction.on_commit(lambda: participants_leave_space(space_id=space_id, user_id=user_id))


def transcript_edited(sender: object, session_id: int, **kwargs: Any) -> None:
    """People corrected the transcript: an analysis made before says so and offers a re-run."""
    session = VideoSession.objects.filter(pk=session_id).first()
    if session is not None:
        analysis_mark_stale(session=session)


def speech_stored(sender: object, session_ids: list[int], **kwargs: Any) -> None:
    """Stored speech is activity: the session is not ended as inactive."""
    sessions_touch(session_ids=session_ids)
