"""Live caption translation by Gladia, end to end: the real run pipeline (browser mode, the
mixer streaming to the Gladia client), the protocol-faithful fake Gladia (``tests/fakes/gladia.py``
translates each final into every target it was asked for), the real batcher, PostgreSQL, Redis
and transcript sockets.

The fake finalises one utterance per second of audio; the client names an utterance
``<Gladia session id>:<Gladia utterance id>``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from channels.db import database_sync_to_async

from sessions_app.services import session_join
from spaces.models import SpaceMember
from tests.factories import SpaceMemberFactory, UserFactory
from tests.fakes.gladia import FakeGladia
from tests.transcription.conftest import Client
from transcription.live import runner
from transcription.models import SegmentTranslation, TranscriptionRun, TranslationUsage
from transcription.services import run_start, run_stop

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

KEY = "fake-gladia-key"
SCRIPT = ["good morning everyone", "the budget is ready", "any questions", "thank you all"]


@pytest_asyncio.fixture
async def gladia(settings, embedded_runner) -> AsyncIterator[FakeGladia]:
    async with FakeGladia(
        api_key=KEY, script=SCRIPT, translations={("good morning everyone", "ru"): "доброе утро"}
    ) as fake:
        settings.LIVEKIT_ENABLED = False
        settings.TRANSCRIPTION_MODE = "auto"
        settings.STT_PROVIDER = "gladia"
        settings.GLADIA_API_KEY = KEY
        settings.GLADIA_API_URL = fake.api_url
        settings.LLM_ENABLED = False
        settings.TRANSCRIPTION_DRAIN_SECONDS = 5.0
        yield fake


@database_sync_to_async
def _choose(user, language: str, session) -> None:
    user.caption_language = language
    user.save(update_fields=["caption_language"])
    session_join(session=session, user=user)


async def _connected(user, session) -> Client:
    client = Client(user, session.slug)
    await client.connect()
    for _ in range(3):  # connected, history, transcription_status
        await client.next()
    return client


def _status(*statuses: str):
    return lambda m: m.get("type") == "transcription_status" and m["status"] in statuses


def _of(client: Client, kind: str) -> list[dict[str, Any]]:
    return [m for m in client.messages if m.get("type") == kind]


def _finals(client: Client) -> list[str]:
    return [m["utterance_id"] for m in _of(client, "transcript") if m["is_final"]]


def _translations(client: Client, count: int):
    return lambda _: len(_of(client, "translation")) >= count


async def _start(user, session, *listeners: Client) -> TranscriptionRun:
    runner.bind_loop(asyncio.get_running_loop())
    run = await database_sync_to_async(run_start)(session=session, by=user)
    for listener in listeners:
        await listener.until(_status("ACTIVE"))
    return run


async def _stop(run: TranscriptionRun, listener: Client) -> dict[str, Any]:
    await database_sync_to_async(run_stop)(run=run)
    return await listener.until(_status("STOPPED", "FAILED"), timeout=20)


def _sent(fake: FakeGladia) -> dict[tuple[str, str], str]:
    """Every translation the fake sent: (the client's utterance id, language) -> text."""
    return {
        (f"{s.id}:{t['utterance_id']}", t["target_language"]): t["translated_utterance"]["text"]
        for s in fake.session_list
        for t in s.translations
    }


@database_sync_to_async
def _stored(session) -> dict[tuple[str, str], tuple[str, str]]:
    rows = SegmentTranslation.objects.filter(session=session).values_list(
        "segment__utterance_id", "language", "text", "source"
    )
    return {(u, language): (text, source) for u, language, text, source in rows}


@database_sync_to_async
def _usage(run) -> dict[str, TranslationUsage]:
    return {row.language: row for row in TranslationUsage.objects.filter(run=run)}


async def test_gladia_translates_into_the_languages_of_the_people_present_from_the_start(
    gladia, space, owner, member, video_session
):
    video_session.languages = ["en"]
    await database_sync_to_async(video_session.save)(update_fields=["languages"])
    english = await database_sync_to_async(UserFactory)(display_name="Erin English")
    await database_sync_to_async(SpaceMemberFactory)(
        space=space, user=english, role=SpaceMember.Role.MEMBER
    )
    await _choose(owner, "ru", video_session)
    await _choose(member, "de", video_session)
    await _choose(english, "en", video_session)  # the language spoken: nothing to translate
    russian = await _connected(owner, video_session)
    german = await _connected(member, video_session)
    original = await _connected(english, video_session)

    run = await _start(owner, video_session, russian, german, original)
    await russian.until(_translations(russian, 3), timeout=15)
    await german.until(_translations(german, 3), timeout=15)
    stopped = await _stop(run, russian)
    for client in (german, original):
        await client.until(_status("STOPPED"))

    assert stopped["status"] == "STOPPED", stopped
    sessions = gladia.session_list
    assert len(sessions) == 1, "the first Gladia session already asked for both: no rollover"
    assert sorted(sessions[0].targets) == ["de", "ru"]
    config = sessions[0].request["realtime_processing"]
    assert config["translation"] is True
    sent = _sent(gladia)
    assert len(sent) >= 6
    for client, language in ((russian, "ru"), (german, "de")):
        translations = _of(client, "translation")
        assert {t["language"] for t in translations} == {language}, "only the reader's language"
        live = {t["utterance_id"]: t["text"] for t in translations}
        expected = {u: text for (u, lang), text in sent.items() if lang == language}
        assert live == expected
        assert [t["utterance_id"] for t in translations] == [
            u for u in _finals(client) if u in live
        ], "in the order of their finals"
    assert _of(original, "translation") == [], "the original reader gets no translation"
    assert _finals(original) == _finals(russian) == _finals(german), "originals reach everyone"
    first = next(t for t in _of(russian, "translation"))
    assert first["text"] == "доброе утро"

    stored = await _stored(video_session)
    assert stored == {key: (text, "gladia") for key, text in sent.items()}, "every one stored once"
    usage = await _usage(run)
    assert set(usage) == {"de", "ru"}
    ru = [text for (_, lang), text in sent.items() if lang == "ru"]
    assert (usage["ru"].characters, usage["ru"].segments) == (sum(map(len, ru)), len(ru))
    assert usage["ru"].provider == "gladia"
    assert usage["ru"].audio_seconds > 2.0, "the audio Gladia got while Russian was a target"
    assert usage["ru"].total_cost > 0
    for client in (russian, german, original):
        await client.disconnect()


async def test_a_language_chosen_during_the_run_is_asked_of_a_new_gladia_session_from_then_on(
    gladia, owner, member, video_session
):
    await _choose(owner, "ru", video_session)
    await _choose(member, "", video_session)
    russian = await _connected(owner, video_session)
    german = await _connected(member, video_session)
    run = await _start(owner, video_session, russian, german)
    await russian.until(_translations(russian, 1), timeout=10)
    assert _of(german, "translation") == []

    await german.comm.send_to(text_data=json.dumps({"type": "caption_language", "language": "de"}))
    await german.until(lambda m: m.get("type") == "caption_language")
    captions = await german.until(lambda m: m.get("type") == "captions", timeout=5)
    await german.until(_translations(german, 2), timeout=15)
    stopped = await _stop(run, russian)
    await german.until(_status("STOPPED"))

    assert stopped["status"] == "STOPPED", stopped
    assert captions["languages"] == ["de", "ru"] and captions["via"] == "gladia"
    assert captions["since"]["de"] > captions["since"]["ru"]
    sessions = gladia.session_list
    assert [sorted(s.targets) for s in sessions] == [["ru"], ["de", "ru"]], "one rollover"
    first_german = sessions[1].translations[0]
    assert next(t["utterance_id"] for t in _of(german, "translation")) == (
        f"{sessions[1].id}:{first_german['utterance_id']}"
    )
    german_starts = [t["start"] for t in _of(german, "translation")]
    assert min(german_starts) >= captions["since"]["de"] - 1.0, "German starts when chosen"
    stored = await _stored(video_session)
    assert stored == {key: (text, "gladia") for key, text in _sent(gladia).items()}
    usage = await _usage(run)
    assert usage["ru"].audio_seconds > usage["de"].audio_seconds > 0
    for client in (russian, german):
        await client.disconnect()


async def test_a_late_joiner_gets_the_gladia_translations_in_history(
    gladia, owner, member, video_session
):
    await _choose(owner, "ru", video_session)
    russian = await _connected(owner, video_session)
    run = await _start(owner, video_session, russian)
    await russian.until(_translations(russian, 2), timeout=15)
    await asyncio.sleep(0.5)  # flushed with their finals

    await _choose(member, "ru", video_session)
    late = Client(member, video_session.slug)
    await late.connect()
    _, history, _ = [await late.next() for _ in range(3)]
    await _stop(run, russian)

    live = {t["utterance_id"]: t["text"] for t in _of(russian, "translation")}
    in_history = {
        s["utterance_id"]: s["translation"]["text"] for s in history["segments"] if s["translation"]
    }
    assert len(in_history) >= 2
    assert all(live[u] == text for u, text in in_history.items())
    for client in (russian, late):
        await client.disconnect()
