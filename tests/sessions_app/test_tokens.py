"""Join tokens: LiveKit's AccessToken (when LiveKit is configured) and the transcription JWT."""

from __future__ import annotations

import time

import jwt
import pytest
from django.urls import reverse
from livekit import api as livekit_api

from sessions_app.models import VideoSession
from sessions_app.tokens import (
    TRANSCRIPTION_AUDIENCE,
    TRANSCRIPTION_ISSUER,
    InvalidTranscriptionToken,
    transcription_token_create,
    transcription_token_decode,
)
from tests.factories import VideoSessionFactory

LK_KEY = "APItestkey"
LK_SECRET = "test-livekit-secret-0123456789abcdefghij"


@pytest.fixture
def livekit_on(settings):
    settings.LIVEKIT_URL = "wss://livekit.example.test"
    settings.LIVEKIT_API_KEY = LK_KEY
    settings.LIVEKIT_API_SECRET = LK_SECRET
    settings.LIVEKIT_ENABLED = True


@pytest.fixture
def livekit_off(settings):
    settings.LIVEKIT_URL = ""
    settings.LIVEKIT_API_KEY = ""
    settings.LIVEKIT_API_SECRET = ""
    settings.LIVEKIT_ENABLED = False


def join(api, session: VideoSession) -> dict:
    response = api.post(reverse("api-session-join", kwargs={"slug": session.slug}))
    assert response.status_code == 200, response.content
    return response.json()


def unverified(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


# --- LiveKit ----------------------------------------------------------------------------------


def test_join_with_livekit_gives_a_token_livekit_accepts(
    livekit_on, member_api, member, video_session
):
    body = join(member_api, video_session)

    assert body["video_enabled"] is True
    assert body["video_mode"] == "livekit"
    assert body["mesh_ws_path"] is None
    assert body["livekit_url"] == "wss://livekit.example.test"
    claims = livekit_api.TokenVerifier(LK_KEY, LK_SECRET).verify(body["livekit_token"])
    assert claims.identity == member.identity
    assert claims.name == "Max Member"
    assert claims.video.room == video_session.slug
    assert claims.video.room_join is True
    assert claims.video.can_publish is True
    assert claims.video.can_subscribe is True
    assert claims.video.can_publish_data is True


def test_livekit_token_grants_no_admin_powers(livekit_on, member_api, video_session):
    body = join(member_api, video_session)

    claims = livekit_api.TokenVerifier(LK_KEY, LK_SECRET).verify(body["livekit_token"])
    assert not claims.video.room_admin
    assert not claims.video.room_create
    assert not claims.video.room_list
    assert not claims.video.room_record
    assert not claims.video.hidden


def test_livekit_token_lives_one_hour(livekit_on, owner_api, video_session):
    before = int(time.time())

    payload = unverified(join(owner_api, video_session)["livekit_token"])

    assert payload["iss"] == LK_KEY
    assert payload["exp"] - payload["nbf"] == pytest.approx(3600, abs=2)
    assert before - 2 <= payload["nbf"] <= int(time.time()) + 2


def test_livekit_token_is_refused_with_another_secret(livekit_on, owner_api, video_session):
    token = join(owner_api, video_session)["livekit_token"]

    with pytest.raises(jwt.InvalidSignatureError):
        livekit_api.TokenVerifier(LK_KEY, "some-other-secret-0123456789abcdef").verify(token)


def test_livekit_identity_is_stable_per_user_and_differs_between_users(
    livekit_on, owner_api, member_api, owner, member, space
):
    first, second = VideoSessionFactory.create_batch(2, space=space, created_by=owner)
    verifier = livekit_api.TokenVerifier(LK_KEY, LK_SECRET)

    owner_ids = {
        verifier.verify(join(owner_api, s)["livekit_token"]).identity for s in (first, second)
    }
    owner_ids.add(verifier.verify(join(owner_api, first)["livekit_token"]).identity)
    member_id = verifier.verify(join(member_api, first)["livekit_token"]).identity

    assert owner_ids == {owner.identity}
    assert member_id == member.identity != owner.identity


def test_livekit_token_names_only_its_own_room(livekit_on, owner_api, owner, space):
    first, second = VideoSessionFactory.create_batch(2, space=space, created_by=owner)
    verifier = livekit_api.TokenVerifier(LK_KEY, LK_SECRET)

    rooms = {
        verifier.verify(join(owner_api, s)["livekit_token"]).video.room for s in (first, second)
    }

    assert rooms == {first.slug, second.slug}


def test_join_without_livekit_works_and_points_to_the_mesh(livekit_off, member_api, video_session):
    body = join(member_api, video_session)

    assert body["video_enabled"] is False
    assert body["video_mode"] == "mesh"
    assert body["mesh_ws_path"] == f"/ws/sessions/{video_session.slug}/signal/"
    assert body["livekit_token"] is None
    assert body["livekit_url"] is None
    assert "peer to peer" in body["message"]
    assert body["transcription_token"]
    video_session.refresh_from_db()
    assert video_session.status == VideoSession.Status.LIVE


# --- Transcription JWT ------------------------------------------------------------------------


def test_transcription_token_names_the_session_and_the_identity(member_api, member, video_session):
    body = join(member_api, video_session)

    claims = transcription_token_decode(body["transcription_token"])

    assert claims.session_slug == video_session.slug
    assert claims.identity == member.identity == body["identity"]


def test_transcription_token_is_hs256_and_lives_one_hour(member_api, video_session):
    token = join(member_api, video_session)["transcription_token"]

    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    payload = unverified(token)
    assert payload["exp"] - payload["iat"] == 3600
    assert payload["aud"] == TRANSCRIPTION_AUDIENCE
    assert payload["iss"] == TRANSCRIPTION_ISSUER


def _claims(**overrides) -> dict:
    now = int(time.time())
    claims = {
        "iss": TRANSCRIPTION_ISSUER,
        "aud": TRANSCRIPTION_AUDIENCE,
        "sub": "u-abc",
        "sid": "abc-defg-hjkmn",
        "iat": now,
        "exp": now + 3600,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def test_a_well_formed_transcription_token_is_accepted(settings):
    token = jwt.encode(_claims(), settings.TRANSCRIPTION_JWT_SECRET, algorithm="HS256")

    claims = transcription_token_decode(token)

    assert (claims.session_slug, claims.identity) == ("abc-defg-hjkmn", "u-abc")


def test_a_created_token_round_trips():
    token = transcription_token_create(session_slug="abc-defg-hjkmn", identity="u-abc")

    assert transcription_token_decode(token).session_slug == "abc-defg-hjkmn"


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"exp": int(time.time()) - 120, "iat": int(time.time()) - 3720}, id="expired"),
        pytest.param({"aud": "someone.else"}, id="wrong-audience"),
        pytest.param({"iss": "someone-else"}, id="wrong-issuer"),
        pytest.param({"sid": None}, id="no-session"),
        pytest.param({"sub": None}, id="no-identity"),
        pytest.param({"exp": None}, id="no-expiry"),
        pytest.param({"sid": ""}, id="empty-session"),
        pytest.param({"sid": 42}, id="session-not-a-string"),
    ],
)
def test_bad_transcription_tokens_are_rejected(settings, overrides):
    token = jwt.encode(_claims(**overrides), settings.TRANSCRIPTION_JWT_SECRET, algorithm="HS256")

    with pytest.raises(InvalidTranscriptionToken):
        transcription_token_decode(token)


def test_transcription_token_signed_with_another_secret_is_rejected():
    token = jwt.encode(_claims(), "another-secret-that-is-long-enough-0123", algorithm="HS256")

    with pytest.raises(InvalidTranscriptionToken):
        transcription_token_decode(token)


def test_transcription_token_with_alg_none_is_rejected():
    token = jwt.encode(_claims(), key=None, algorithm="none")

    with pytest.raises(InvalidTranscriptionToken):
        transcription_token_decode(token)


def test_transcription_token_with_another_hmac_algorithm_is_rejected(settings):
    settings.TRANSCRIPTION_JWT_SECRET = "s" * 64  # long enough for HS512 to sign without warning
    token = jwt.encode(_claims(), settings.TRANSCRIPTION_JWT_SECRET, algorithm="HS512")

    with pytest.raises(InvalidTranscriptionToken):
        transcription_token_decode(token)


def test_a_token_minted_before_a_secret_rotation_is_rejected_after_it(settings):
    token = transcription_token_create(session_slug="abc-defg-hjkmn", identity="u-abc")
    settings.TRANSCRIPTION_JWT_SECRET = "rotated-secret-0123456789abcdef-0123456789"

    with pytest.raises(InvalidTranscriptionToken):
        transcription_token_decode(token)


def test_garbage_is_rejected():
    with pytest.raises(InvalidTranscriptionToken):
        transcription_token_decode("not.a.jwt")
