"""Tokens handed to a joining participant: LiveKit's AccessToken and our transcription JWT."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

import jwt
from django.conf import settings
from livekit import api as livekit_api

TRANSCRIPTION_AUDIENCE = "rooms.transcript"
TRANSCRIPTION_ISSUER = "rooms"


def livekit_token_create(*, room: str, identity: str, name: str) -> str:
    """A LiveKit AccessToken to join, publish, subscribe and publish data in ``room``."""
    grants = livekit_api.VideoGrants(
        room_join=True,
        room=room,
        can_publish=True,
        can_subscribe=True,
        can_publish_data=True,
    )
    return (
        livekit_api.AccessToken(settings.LIVEKIT_API_KEY, settings.LIVEKIT_API_SECRET)
        .with_identity(identity)
        .with_name(name)
        .with_ttl(timedelta(seconds=settings.LIVEKIT_TOKEN_TTL_SECONDS))
        .with_grants(grants)
        .to_jwt()
    )


@dataclass(frozen=True, slots=True)
class TranscriptionClaims:
    session_slug: str
    identity: str


def transcription_token_create(*, session_slug: str, identity: str) -> str:
    now = int(time.time())
    claims = {
        "iss": TRANSCRIPTION_ISSUER,
        "aud": TRANSCRIPTION_AUDIENCE,
        "sub": identity,
        "sid": session_slug,
        "iat": now,
        "exp": now + settings.TRANSCRIPTION_TOKEN_TTL_SECONDS,
    }
    return jwt.encode(claims, settings.TRANSCRIPTION_JWT_SECRET, algorithm="HS256")


class InvalidTranscriptionToken(Exception):
    pass


def transcription_token_decode(token: str) -> TranscriptionClaims:
    """Verify signature, algorithm, audience, issuer and expiry; raise on any problem."""
    try:
        claims = jwt.decode(
            token,
            settings.TRANSCRIPTION_JWT_SECRET,
            algorithms=["HS256"],
            audience=TRANSCRIPTION_AUDIENCE,
            issuer=TRANSCRIPTION_ISSUER,
            options={"require": ["exp", "iat", "sub", "sid", "aud", "iss"]},
        )
    except jwt.PyJWTError as exc:
        raise InvalidTranscriptionToken(str(exc)) from exc
    sid, sub = claims.get("sid"), claims.get("sub")
    if not isinstance(sid, str) or not isinstance(sub, str) or not sid or not sub:
        raise InvalidTranscriptionToken("sid and sub must be non-empty strings")
    return TranscriptionClaims(session_slug=sid, identity=sub)
