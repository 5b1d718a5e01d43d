"""The transcript socket's caption languages (docs/transcript-protocol.md): the menu in
``connected``, translations in ``history``, the ``caption_language`` message, and live
``translation`` frames only for the sockets reading that language.

Through the real ``rooms.asgi.application``; the run is a row whose control channel the test
listens on, and what a runner would broadcast is sent to the session group by the test.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from identity.models import User
from sessions_app.models import VideoSession
from tests.transcription.conftest import Client
from transcription.live import broadcast
from transcription.models import SegmentTranslation, TranscriptionRun, TranscriptSegment
from transcription.translation import CAPTION_LANGUAGES

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def _join(client: Client) -> list[dict[str, Any]]:
    await client.connect()
    opening = [await client.next() for _ in range(3)]
    assert [m["type"] for m in opening] == ["connected", "history", "transcription_status"]
    return opening


@database_sync_to_async
def _reads(user: User, language: str) -> None:
    user.caption_language = language
    user.save(update_fields=["caption_language"])


@database_sync_to_async
def _language_of(user: User) -> str:
    return User.objects.get(pk=user.pk).caption_language


@database_sync_to_async
def _stored(session: VideoSession) -> list[TranscriptSegment]:
    """Two finals, the first translated into Russian (and corrected since: stale) and German,
    the second into Russian."""
    run = TranscriptionRun.objects.create(
        session=session, mode="BROWSER", provider="local", status="STOPPED"
    )
    segments = [
        TranscriptSegment.objects.create(
            session=session,
            run=run,
            utterance_id=f"u-{n}",
            text=text,
            language="en",
            start_offset=float(n),
            end_offset=n + 0.9,
            revision=revision,
        )
        for n, text, revision in ((1, "good morning", 1), (2, "the budget", 0))
    ]
    for segment, language, text in (
        (segments[0], "ru", "доброе утро"),
        (segments[0], "de", "guten Morgen"),
        (segments[1], "ru", "бюджет"),
    ):
        SegmentTranslation.objects.create(
            session=session, segment=segment, language=language, text=text, source="llm"
        )
    return segments


@database_sync_to_async
def _listened_run(session: VideoSession, channel: str) -> TranscriptionRun:
    return TranscriptionRun.objects.create(
        session=session, mode="BROWSER", provider="local", status="ACTIVE", control_channel=channel
    )


def _translation(utterance_id: str, language: str, text: str) -> dict[str, Any]:
    return {
        "type": "translation",
        "utterance_id": utterance_id,
        "language": language,
        "text": text,
        "start": 1.0,
        "end": 1.9,
    }


async def _send_choice(client: Client, message: Any) -> None:
    await client.comm.send_to(
        text_data=message if isinstance(message, str) else json.dumps(message)
    )


# --- opening messages ------------------------------------------------------------------------


async def test_connected_carries_the_readers_caption_language_and_the_menu(
    settings, member, video_session
):
    settings.LLM_ENABLED = False
    settings.STT_PROVIDER = "local"
    await _reads(member, "ru")
    member.language = "ru"  # the reader's interface language names the choices

    connected, _, status = await _join(Client(member, video_session.slug))

    captions = connected["captions"]
    assert captions["language"] == "ru"
    assert captions["via"] == "", "an offline engine without an LLM: nobody translates"
    assert sorted(code for code, _ in captions["choices"]) == sorted(CAPTION_LANGUAGES)
    assert ["ru", "Русский"] in captions["choices"]
    assert ["de", "Немецкий"] in captions["choices"]
    assert status["captions"] is None, "no run"


async def test_the_menu_says_who_would_translate(settings, member, video_session):
    settings.STT_PROVIDER = "gladia"
    connected, _, _ = await _join(Client(member, video_session.slug))
    assert connected["captions"]["via"] == "gladia"
    assert connected["captions"]["language"] == ""

    settings.STT_PROVIDER = "local"
    settings.LLM_ENABLED = True
    connected, _, _ = await _join(Client(member, video_session.slug))
    assert connected["captions"]["via"] == "llm"


async def test_history_carries_each_final_in_the_readers_language_only(
    owner, member, video_session
):
    await _stored(video_session)
    await _reads(owner, "ru")
    await _reads(member, "fr")

    _, russian, _ = await _join(Client(owner, video_session.slug))
    _, french, _ = await _join(Client(member, video_session.slug))

    assert [s["translation"] for s in russian["segments"]] == [
        {"language": "ru", "text": "доброе утро", "stale": True},
        {"language": "ru", "text": "бюджет", "stale": False},
    ]
    assert [s["translation"] for s in french["segments"]] == [None, None]


# --- choosing a language ----------------------------------------------------------------------


async def test_choosing_a_language_stores_it_answers_with_its_translations_and_nudges_the_run(
    owner, video_session
):
    await _stored(video_session)
    channel = await get_channel_layer().new_channel("transcription.run.")
    await _listened_run(video_session, channel)
    client = Client(owner, video_session.slug)
    await _join(client)

    await _send_choice(client, {"type": "caption_language", "language": "ru"})
    reply = await client.until(lambda m: m.get("type") == "caption_language")

    assert reply == {
        "type": "caption_language",
        "language": "ru",
        "translations": [
            {"utterance_id": "u-1", "text": "доброе утро", "stale": True},
            {"utterance_id": "u-2", "text": "бюджет", "stale": False},
        ],
    }
    assert await _language_of(owner) == "ru"
    nudge = await asyncio.wait_for(get_channel_layer().receive(channel), 2)
    assert nudge == {"type": "captions.changed"}

    await _send_choice(client, {"type": "caption_language", "language": ""})
    reply = await client.until(lambda m: m.get("type") == "caption_language")
    assert reply == {"type": "caption_language", "language": "", "translations": []}
    assert await _language_of(owner) == ""
    await client.disconnect()


@pytest.mark.parametrize(
    "message",
    [
        {"type": "caption_language", "language": 7},
        {"type": "caption_language", "language": None},
        {"type": "caption_language", "language": ["ru"]},
        {"type": "caption_language", "language": "xx"},
        {"type": "caption_language", "language": "RU"},
        {"type": "caption_language", "language": "russian"},
        {"type": "caption_language"},
        {"type": "caption_language", "language": "ru", "also": "junk"},
    ],
    ids=["number", "null", "list", "unknown", "uppercase", "name", "missing", "extra_field"],
)
async def test_a_malformed_caption_language_closes_with_4002_and_changes_nothing(
    member, video_session, message
):
    await _reads(member, "de")
    client = Client(member, video_session.slug)
    await _join(client)

    await _send_choice(client, message)

    assert await client.close_code() == 4002
    assert await _language_of(member) == "de"


async def test_an_outsider_cannot_open_the_socket_to_choose_a_language(outsider, video_session):
    client = Client(outsider, video_session.slug)
    await client.connect()
    assert (await client.next()) == {"type": "__closed__", "code": 4003}


# --- live delivery ----------------------------------------------------------------------------


async def test_translations_reach_only_their_readers_and_originals_and_captions_reach_all(
    owner, member, video_session
):
    await _reads(owner, "ru")
    await _reads(member, "de")
    russian, german = Client(owner, video_session.slug), Client(member, video_session.slug)
    await _join(russian)
    await _join(german)
    session_id = video_session.pk

    # One group message for every language (the run coalesces them), one frame per reader.
    await broadcast.send_translations(
        session_id,
        [
            _translation("u-9", "de", "Hallo"),
            _translation("u-9", "fr", "bonjour"),
            _translation("u-9", "ru", "привет"),
        ],
    )
    original = {"type": "transcript", "utterance_id": "u-9", "text": "hello", "is_final": True}
    await broadcast.send_transcript(session_id, original)
    captions = broadcast.captions_payload({"de", "ru"}, {"de": 1.0, "ru": 0.5}, "llm")
    await broadcast.send_captions(session_id, captions)

    expected_captions = {"type": "captions", **captions}
    assert [await russian.next() for _ in range(3)] == [
        _translation("u-9", "ru", "привет"),
        original,
        expected_captions,
    ]
    assert [await german.next() for _ in range(3)] == [
        _translation("u-9", "de", "Hallo"),
        original,
        expected_captions,
    ]
    assert await russian.comm.receive_nothing(timeout=0.2)
    assert await german.comm.receive_nothing(timeout=0.2)
    for client in (russian, german):
        await client.disconnect()


async def test_a_socket_that_switches_language_gets_the_new_language_from_then_on(
    member, video_session
):
    await _reads(member, "ru")
    client = Client(member, video_session.slug)
    await _join(client)

    await _send_choice(client, {"type": "caption_language", "language": "de"})
    await client.until(lambda m: m.get("type") == "caption_language")
    await broadcast.send_translations(
        video_session.pk, [_translation("u-1", "ru", "привет"), _translation("u-1", "de", "Hallo")]
    )
    assert await client.next() == _translation("u-1", "de", "Hallo")

    await _send_choice(client, {"type": "caption_language", "language": ""})
    await client.until(lambda m: m.get("type") == "caption_language")
    await broadcast.send_translations(video_session.pk, [_translation("u-2", "de", "Tschüss")])
    assert await client.comm.receive_nothing(timeout=0.3), "the original reader gets none"
    await client.disconnect()


async def test_a_translation_stored_while_a_reconnecting_socket_read_its_history_comes_after(
    settings, owner, video_session
):
    """The resync after a (re)connect in a live run sends a final again when its translation
    was stored after the history was read and not heard live."""
    settings.TRANSCRIPTION_FLUSH_SECONDS = 0.05
    segments = await _stored(video_session)
    await database_sync_to_async(TranscriptionRun.objects.update)(status="ACTIVE")
    await database_sync_to_async(SegmentTranslation.objects.filter(language="ru").delete)()
    await _reads(owner, "ru")
    client = Client(owner, video_session.slug)
    _, history, _ = await _join(client)
    assert [s["translation"] for s in history["segments"]] == [None, None]

    await database_sync_to_async(SegmentTranslation.objects.create)(
        session=video_session, segment=segments[1], language="ru", text="бюджет", source="gladia"
    )
    again = await client.until(lambda m: m.get("type") == "history", timeout=3)

    assert [(s["utterance_id"], s["translation"]) for s in again["segments"]] == [
        ("u-2", {"language": "ru", "text": "бюджет", "stale": False})
    ]
    await client.disconnect()
