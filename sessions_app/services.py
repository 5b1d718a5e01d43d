"""Writes for video sessions: create, join, end."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from livekit import api as livekit_api

from identity.models import User
from identity.selectors import user_get_by_identity
from rooms.errors import Conflict, DomainError, Forbidden
from sessions_app import tokens
from sessions_app.mesh import mesh_group
from sessions_app.models import Participant, VideoSession
from sessions_app.selectors import session_can_end
from spaces.models import Space
from transcription.broadcast import session_group
from transcription.services import runs_stop_for_session

logger = logging.getLogger(__name__)


def session_create(
    *,
    space: Space,
    by: User,
    title: str,
    languages: list[str] | None = None,
    peer_to_peer: bool = False,
) -> VideoSession:
    title = title.strip()
    if not title:
        raise DomainError("A session needs a title.", code="title_required")
    return VideoSession.objects.create(
        space=space,
        created_by=by,
        title=title[:200],
        languages=languages if languages is not None else ["en"],
        peer_to_peer=peer_to_peer,
    )


@dataclass(frozen=True, slots=True)
class JoinResult:
    participant: Participant
    livekit_url: str | None
    livekit_token: str | None
    transcription_token: str


@transaction.atomic
def participant_upsert(*, session: VideoSession, user: User) -> Participant:
    """One Participant per (session, user identity): a second join refreshes it."""
    role = Participant.Role.HOST if session.created_by_id == user.pk else Participant.Role.GUEST
    now = timezone.now()
    defaults = {
        "user": user,
        "name": user.name,
        "role": role,
        "left_at": None,
        "last_seen_at": now,
    }
    try:
        with transaction.atomic():
            participant, _ = Participant.objects.update_or_create(
                session=session, identity=user.identity, defaults=defaults
            )
    except IntegrityError:
        # Two tabs joining at once: the other created the row; refresh it.
        participant = Participant.objects.get(session=session, identity=user.identity)
        Participant.objects.filter(pk=participant.pk).update(**defaults)
        participant.refresh_from_db()
    return participant


def session_join(*, session: VideoSession, user: User) -> JoinResult:
    """Join ``session``: CREATED becomes LIVE, the participant is upserted, tokens are minted.

    The caller has checked that ``user`` is a member of the session's space.
    Raises ``Conflict`` (code ``session_ended``) once the session is ENDED.
    """
    now = timezone.now()
    with transaction.atomic():
        locked = VideoSession.objects.select_for_update().get(pk=session.pk)
        if locked.status == VideoSession.Status.ENDED:
            raise Conflict("This session has ended; nobody can join it.", code="session_ended")
        if locked.status == VideoSession.Status.CREATED:
            locked.status = VideoSession.Status.LIVE
            locked.started_at = now
        locked.last_activity_at = now
        locked.save(update_fields=["status", "started_at", "last_activity_at"])
        participant = participant_upsert(session=locked, user=user)
    session.status, session.started_at = locked.status, locked.started_at
    livekit_token = None
    if session.uses_livekit:
        livekit_token = tokens.livekit_token_create(
            room=session.room_name, identity=participant.identity, name=participant.name
        )
    return JoinResult(
        participant=participant,
        livekit_url=settings.LIVEKIT_URL or None,
        livekit_token=livekit_token,
        transcription_token=tokens.transcription_token_create(
            session_slug=session.slug, identity=participant.identity
        ),
    )


def _announce_ended(session_id: int) -> None:
    """Tell every open socket of the session (transcript and mesh) that it is over."""
    layer = get_channel_layer()
    for group in (session_group(session_id), mesh_group(session_id)):
        async_to_sync(layer.group_send)(group, {"type": "session.ended"})


def session_end(*, session: VideoSession, by: User | None) -> VideoSession:
    """End ``session`` (host or space owner; ``by=None`` is the system). Idempotent.

    Everybody still in it is marked as left, its transcription runs stop (flushing their
    finals and usage), and connected transcript clients are told after the commit.
    """
    if by is not None and not session_can_end(session=session, user=by):
        raise Forbidden(
            "Only the host or a space owner can end this session.", code="host_required"
        )
    now = timezone.now()
    with transaction.atomic():
        updated = (
            VideoSession.objects.filter(pk=session.pk)
            .exclude(status=VideoSession.Status.ENDED)
            .update(status=VideoSession.Status.ENDED, ended_at=now, last_activity_at=now)
        )
        if updated:
            Participant.objects.filter(session=session, left_at__isnull=True).update(left_at=now)
            runs_stop_for_session(session_id=session.pk)
            session_id = session.pk
            transaction.on_commit(lambda: _announce_ended(session_id))
    session.refresh_from_db()
    return session


# --- LiveKit webhooks -------------------------------------------------------------------------


def _participant_from_livekit(session: VideoSession, info: livekit_api.ParticipantInfo) -> None:
    """Record a LiveKit participant's arrival; our identities are ``u-<public id>``."""
    user = user_get_by_identity(identity=info.identity)
    if user is None:
        logger.info("webhook for unknown identity %s in %s ignored", info.identity, session.slug)
        return
    participant_upsert(session=session, user=user)


@transaction.atomic
def livekit_event_handle(*, event: livekit_api.WebhookEvent) -> None:
    """Apply a verified LiveKit webhook. Idempotent: LiveKit may deliver an event twice."""
    from transcription.services import egress_event_handle

    kind = event.event
    if kind.startswith("egress_"):
        egress_event_handle(
            egress_id=event.egress_info.egress_id,
            status=livekit_api.EgressStatus.Name(event.egress_info.status),
            error=event.egress_info.error,
        )
        return
    session = VideoSession.objects.filter(slug=event.room.name).first()
    if session is None:
        return
    now = timezone.now()
    if kind == "participant_joined" and session.status != VideoSession.Status.ENDED:
        VideoSession.objects.filter(pk=session.pk, status=VideoSession.Status.CREATED).update(
            status=VideoSession.Status.LIVE, started_at=now
        )
        _participant_from_livekit(session, event.participant)
    elif kind == "participant_left":
        Participant.objects.filter(
            session=session, identity=event.participant.identity, left_at__isnull=True
        ).update(left_at=now)
    elif kind == "room_finished":
        # Everybody left and LiveKit closed the room: nothing is left to transcribe.
        runs_stop_for_session(session_id=session.pk)
    else:
        return
    VideoSession.objects.filter(pk=session.pk).update(last_activity_at=now)
