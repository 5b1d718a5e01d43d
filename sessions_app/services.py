"""Writes for video sessions: create, join, end, activity and the inactive-session sweep."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from livekit import api as livekit_api

from identity.models import User
from identity.selectors import user_get_by_identity
from rooms.errors import Conflict, DomainError, Forbidden, LimitExceeded
from sessions_app import tokens
from sessions_app.analysis.services import analysis_request
from sessions_app.languages import session_languages_clean
from sessions_app.mesh import mesh_group
from sessions_app.models import ACTIVITY_RESOLUTION, Participant, VideoSession
from sessions_app.selectors import session_can_end
from spaces.limits import limits_for_space
from spaces.models import Space
from transcription.live.broadcast import send_participants_sync, session_group
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
    """A new session of ``space``. ``languages``: ``[]`` automatic detection, one code a fixed
    language, several the languages expected (the provider switches between them); ``None``
    takes the space's default. Raises ``DomainError``: ``title_required``,
    ``languages_invalid`` (unknown codes, repeats, too many) or ``language_unsupported``
    (this server's speech engine cannot transcribe them)."""
    title = title.strip()
    if not title:
        raise DomainError(_("A session needs a title."), code="title_required")
    chosen = session_languages_clean(list(space.languages if languages is None else languages))
    return VideoSession.objects.create(
        space=space,
        created_by=by,
        title=title[:200],
        languages=chosen,
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
            participant, _created = Participant.objects.update_or_create(
                session=session, identity=user.identity, defaults=defaults
            )
    except IntegrityError:
        # Two tabs joining at once: the other created the row; refresh it.
        participant = Participant.objects.get(session=session, identity=user.identity)
        Participant.objects.filter(pk=participant.pk).update(**defaults)
        participant.refresh_from_db()
    participants_changed(session_id=session.pk)
    return participant


def _participants_check(session: VideoSession, user: User) -> None:
    """Refuse a newcomer when the session already has its limit of people in it (one who is
    in it already may always come back: a second tab, a reload)."""
    limit = limits_for_space(space_id=session.space_id).max_participants
    if not limit:
        return
    here = Participant.objects.filter(session=session, left_at__isnull=True)
    if here.filter(identity=user.identity).exists():
        return
    present = here.count()
    if present >= limit:
        raise LimitExceeded(
            ngettext(
                "This session is full: it has %(present)d participant and the limit is "
                "%(limit)d. Join again when someone has left, or ask a space owner to have the "
                "limit raised.",
                "This session is full: it has %(present)d participants and the limit is "
                "%(limit)d. Join again when someone has left, or ask a space owner to have the "
                "limit raised.",
                present,
            )
            % {"present": present, "limit": limit},
            code="session_full",
        )


def session_join(*, session: VideoSession, user: User) -> JoinResult:
    """Join ``session``: CREATED becomes LIVE, the participant is upserted, tokens are minted.

    The caller has checked that ``user`` is a member of the session's space.
    Raises ``Conflict`` (code ``session_ended``) once the session is ENDED, and
    ``LimitExceeded`` (code ``session_full``) when it has its limit of participants; the
    session row is locked meanwhile, so two joins racing for the last place get one each.
    """
    now = timezone.now()
    with transaction.atomic():
        locked = VideoSession.objects.select_for_update().get(pk=session.pk)
        if locked.status == VideoSession.Status.ENDED:
            raise Conflict(_("This session has ended; nobody can join it."), code="session_ended")
        _participants_check(locked, user)
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
    finals and usage), connected transcript clients are told after the commit, and the
    session's analysis is requested.
    """
    if by is not None and not session_can_end(session=session, user=by):
        raise Forbidden(
            _("Only the host or a space owner can end this session."), code="host_required"
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
            # After the announcement: the analysis starts once everybody has been told.
            analysis_request(session=session)
    session.refresh_from_db()
    return session


@transaction.atomic
def session_delete(*, session: VideoSession, by: User) -> None:
    """Delete ``session`` with its transcript, usage and analysis (host or space owner).

    Its runs are stopped first; every open socket of the session is closed with 4003 after
    the commit (``sessions_app.handlers.session_deleted``).
    """
    if not session_can_end(session=session, user=by):
        raise Forbidden(
            _("Only the host or a space owner can delete this session."), code="host_required"
        )
    runs_stop_for_session(session_id=session.pk)
    session.delete()


def participants_leave_space(*, space_id: int, user_id: int) -> int:
    """Mark ``user_id`` as gone from the unfinished sessions of a space they left."""
    present = Participant.objects.filter(
        session__space_id=space_id, user_id=user_id, left_at__isnull=True
    )
    session_ids = set(present.values_list("session_id", flat=True))
    left = present.update(left_at=timezone.now())
    for session_id in session_ids:
        participants_changed(session_id=session_id)
    return left


# --- Presence: who is in a session now ---------------------------------------------------------
#
# A participant is present while their row has no ``left_at``. Joining makes them present; they
# leave when the last of their pages' transcript sockets in the session closes (Leave, closing
# the tab, going elsewhere, losing the network), when LiveKit reports them gone, when they leave
# the space, and when the session ends. A socket of theirs that connects again brings them back.
# The sockets are counted per person in the shared cache (so across Daphne processes); an entry
# lives PRESENCE_TTL unless the page's pings refresh it, so a crashed process's sockets stop
# counting by themselves.

PRESENCE_TTL = timedelta(minutes=3)
_PRESENCE_LOCK_SECONDS = 5
_PRESENCE_WAIT_SECONDS = 2.0


def _presence_key(session_id: int, identity: str) -> str:
    return f"presence:{session_id}:{identity}"


@contextmanager
def _presence_lock(session_id: int, identity: str) -> Iterator[None]:
    """Serialise the read-modify-write of one person's socket set (a reload closes one socket
    while it opens another). Past a short wait it goes ahead unlocked: presence is advisory."""
    lock = f"{_presence_key(session_id, identity)}:lock"
    deadline = time.monotonic() + _PRESENCE_WAIT_SECONDS
    while not (held := cache.add(lock, 1, timeout=_PRESENCE_LOCK_SECONDS)):
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
    try:
        yield
    finally:
        if held:
            cache.delete(lock)


def _sockets_update(session_id: int, identity: str, channel: str, *, add: bool) -> int:
    """Add (or refresh) or remove ``channel`` in the person's live sockets; how many remain."""
    key = _presence_key(session_id, identity)
    now = time.time()
    with _presence_lock(session_id, identity):
        sockets = {c: until for c, until in (cache.get(key) or {}).items() if until > now}
        if add:
            sockets[channel] = now + PRESENCE_TTL.total_seconds()
        else:
            sockets.pop(channel, None)
        if sockets:
            cache.set(key, sockets, timeout=PRESENCE_TTL.total_seconds())
        else:
            cache.delete(key)
    return len(sockets)


def _participant_rows(session_id: int) -> list[dict[str, Any]]:
    rows = (
        Participant.objects.filter(session_id=session_id)
        .order_by("joined_at", "pk")
        .values_list("identity", "name", "role", "left_at")
    )
    return [
        {"identity": identity, "name": name, "role": role, "present": left_at is None}
        for identity, name, role, left_at in rows
    ]


def participants_changed(*, session_id: int) -> None:
    """Tell the session's open pages who is in it, once the current transaction commits (the
    list is read then, so it is what was committed)."""
    transaction.on_commit(lambda: send_participants_sync(session_id, _participant_rows(session_id)))


def participant_connected(*, session: VideoSession, identity: str, channel: str) -> None:
    """A page of ``identity`` opened its transcript socket ``channel`` in ``session``.

    The socket counts towards the person's presence; if a socket that closed earlier had
    marked them as gone (a network blip, a reload), they are back. Nobody is added here: a
    person becomes a participant by joining.
    """
    _sockets_update(session.pk, identity, channel, add=True)
    back = Participant.objects.filter(
        session_id=session.pk,
        session__status=VideoSession.Status.LIVE,
        identity=identity,
        left_at__isnull=False,
    ).update(left_at=None, last_seen_at=timezone.now())
    if back:
        participants_changed(session_id=session.pk)


def participant_seen(*, session_id: int, identity: str, channel: str) -> None:
    """The page behind ``channel`` is still there (its pings): keep its socket counted."""
    _sockets_update(session_id, identity, channel, add=True)


def participant_disconnected(*, session_id: int, identity: str, channel: str) -> bool:
    """The transcript socket ``channel`` of ``identity`` closed. When it was the person's last
    one in the session, they have left it: True if that changed the list."""
    if _sockets_update(session_id, identity, channel, add=False):
        return False
    left = Participant.objects.filter(
        session_id=session_id, identity=identity, left_at__isnull=True
    ).update(left_at=timezone.now())
    if left:
        participants_changed(session_id=session_id)
    return bool(left)


def sessions_touch(*, session_ids: Iterable[int]) -> int:
    """Record activity in LIVE sessions (finals stored, an open page's ping).

    One conditional UPDATE that writes only rows last touched over a minute ago.
    """
    now = timezone.now()
    return VideoSession.objects.filter(
        pk__in=list(session_ids),
        status=VideoSession.Status.LIVE,
        last_activity_at__lt=now - ACTIVITY_RESOLUTION,
    ).update(last_activity_at=now)


def sessions_end_inactive() -> list[str]:
    """End every LIVE session without activity for ``SESSION_INACTIVE_MINUTES`` (periodic).

    Activity is a join, a LiveKit participant event, a stored final, or an open session page
    (its transcript socket pings). Each session is claimed under its row lock and re-checked, so
    a join racing the sweep either comes first (and keeps the session) or finds it ended, and
    two sweeps never end one session twice. Returns the slugs of the sessions ended.
    """
    cutoff = timezone.now() - timedelta(minutes=settings.SESSION_INACTIVE_MINUTES)
    stale = VideoSession.objects.filter(
        status=VideoSession.Status.LIVE, last_activity_at__lt=cutoff
    ).values_list("pk", flat=True)
    ended = []
    for pk in list(stale):
        with transaction.atomic():
            session = (
                VideoSession.objects.select_for_update(skip_locked=True)
                .filter(pk=pk, status=VideoSession.Status.LIVE, last_activity_at__lt=cutoff)
                .first()
            )
            if session is None:
                continue
            session_end(session=session, by=None)
        logger.info("session %s ended: no activity since %s", session.slug, cutoff)
        ended.append(session.slug)
    return ended


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
        if Participant.objects.filter(
            session=session, identity=event.participant.identity, left_at__isnull=True
        ).update(left_at=now):
            participants_changed(session_id=session.pk)
    elif kind == "room_finished":
        # Everybody left and LiveKit closed the room: the session is over, as when its host
        # ends it (runs stop, everybody is told, the analysis starts); a second delivery, or
        # the host's button first, finds it ended and changes nothing.
        session_end(session=session, by=None)
        return
    else:
        return
    VideoSession.objects.filter(pk=session.pk).update(last_activity_at=now)
