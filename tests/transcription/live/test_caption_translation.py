"""Live caption translation by the LLM, end to end: a real run (a scripted engine that cannot
translate, in browser mode, on this test's event loop), the real batcher, PostgreSQL, Redis and
transcript sockets; only the LLM is faked (``tests.fakes.llm.FakeLlm``, real HTTP).

The scripted engine says what a test tells it (``Scripted.say``), as finals at the current
stream time; the fake LLM translates a caption ``text`` into ``[ru] text``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, ClassVar

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from sessions_app.services import session_join
from tests.fakes.llm import FakeLlm
from tests.transcription.conftest import Client
from transcription.live import broadcast, runner
from transcription.live.stt.base import END_OF_EVENTS, SttEvent, SttStream
from transcription.models import (
    SegmentTranslation,
    TranscriptionRun,
    TranscriptionUsage,
    TranscriptSegment,
    TranslationUsage,
)
from transcription.services import run_start, run_stop
from transcription.usage.pricing import translation_cost

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

ENGINE = f"{__name__}:Scripted"
LLM_KEY = "caption-llm-key"
NAMES = {"Russian": "ru", "German": "de", "French": "fr", "English": "en"}


class Scripted(SttStream):
    """An engine that transcribes nothing by itself: ``say`` makes a final now."""

    made: ClassVar[list[Scripted]] = []

    def __init__(self, *, languages: list[str], sample_rate: int = 16000, **_: object) -> None:
        super().__init__(sample_rate=sample_rate)
        self.token = secrets.token_hex(3)
        self.count = 0
        Scripted.made.append(self)

    async def start(self) -> None:
        return None

    async def send_audio(self, pcm: bytes) -> None:
        self._accepted_bytes += len(pcm)

    async def close(self) -> None:
        self._events.put_nowait(END_OF_EVENTS)

    def say(self, text: str, language: str = "en") -> str:
        self.count += 1
        at = self.audio_seconds
        utterance_id = f"{self.token}-{self.count}"
        self._events.put_nowait(
            SttEvent(utterance_id, text, True, at, at + 0.5, language, confidence=0.9)
        )
        return utterance_id


def translate_reply(body: dict[str, Any]) -> str:
    """The fake LLM's translation: ``[code] text`` for each caption, in order."""
    system = body["messages"][0]["content"]
    code = next(code for name, code in NAMES.items() if f"into {name}" in system)
    texts = json.loads(body["messages"][-1]["content"])
    return json.dumps({"translations": [f"[{code}] {text}" for text in texts]})


def _requests_into(fake: FakeLlm, code: str) -> list[list[str]]:
    """The captions of each request the fake LLM got for ``code``, in arrival order."""
    name = next(name for name, c in NAMES.items() if c == code)
    return [
        json.loads(body["messages"][-1]["content"])
        for body in list(fake.requests)
        if f"into {name}" in body["messages"][0]["content"]
    ]


@pytest.fixture
def llm(settings, embedded_runner) -> Iterator[FakeLlm]:
    Scripted.made.clear()
    with FakeLlm(api_key=LLM_KEY, reply=translate_reply) as fake:
        settings.LIVEKIT_ENABLED = False
        settings.TRANSCRIPTION_MODE = "auto"
        settings.STT_PROVIDER = ENGINE
        settings.LLM_BASE_URL = fake.base_url
        settings.LLM_API_KEY = LLM_KEY
        settings.LLM_MODEL = "fake-model"
        settings.LLM_ENABLED = True
        settings.TRANSLATION_LLM_BATCH_SECONDS = 0.3
        settings.TRANSLATION_LLM_TIMEOUT_SECONDS = 2.0
        settings.TRANSCRIPTION_DRAIN_SECONDS = 5.0
        yield fake


# --- helpers ----------------------------------------------------------------------------------


@database_sync_to_async
def _choose(user, language: str, session=None) -> None:
    """``user`` reads captions in ``language`` and (with ``session``) is present in it."""
    user.caption_language = language
    user.save(update_fields=["caption_language"])
    if session is not None:
        session_join(session=session, user=user)


async def _connected(user, session) -> Client:
    client = Client(user, session.slug)
    await client.connect()
    for _ in range(3):  # connected, history, transcription_status
        await client.next()
    return client


def _status(*statuses: str):
    return lambda m: m.get("type") == "transcription_status" and m["status"] in statuses


async def _start(user, session, *listeners: Client) -> tuple[TranscriptionRun, Scripted]:
    runner.bind_loop(asyncio.get_running_loop())
    run = await database_sync_to_async(run_start)(session=session, by=user)
    for listener in listeners:
        await listener.until(_status("ACTIVE"))
    return run, Scripted.made[-1]


async def _stop(run: TranscriptionRun, listener: Client) -> dict[str, Any]:
    await database_sync_to_async(run_stop)(run=run)
    return await listener.until(_status("STOPPED", "FAILED"), timeout=15)


def _of(client: Client, kind: str) -> list[dict[str, Any]]:
    return [m for m in client.messages if m.get("type") == kind]


def _translation_of(utterance_id: str, language: str):
    return lambda m: (
        m.get("type") == "translation"
        and m["utterance_id"] == utterance_id
        and m["language"] == language
    )


def _final(utterance_id: str):
    return lambda m: (
        m.get("type") == "transcript" and m["is_final"] and m["utterance_id"] == utterance_id
    )


@database_sync_to_async
def _stored_translations(session) -> dict[tuple[str, str], SegmentTranslation]:
    rows = SegmentTranslation.objects.filter(session=session).select_related("segment")
    return {(row.segment.utterance_id, row.language): row for row in rows}


@database_sync_to_async
def _stored_finals(session) -> list[str]:
    return list(
        TranscriptSegment.objects.filter(session=session)
        .order_by("start_offset")
        .values_list("utterance_id", flat=True)
    )


@database_sync_to_async
def _translation_usage(run: TranscriptionRun) -> dict[str, TranslationUsage]:
    return {row.language: row for row in TranslationUsage.objects.filter(run=run)}


# --- the LLM translates ----------------------------------------------------------------------


async def test_each_reader_gets_the_finals_in_their_language_in_order_and_all_are_stored(
    llm, owner, member, video_session
):
    await _choose(owner, "ru", video_session)
    await _choose(member, "de", video_session)
    russian = await _connected(owner, video_session)
    german = await _connected(member, video_session)
    run, engine = await _start(owner, video_session, russian, german)
    captions = _of(russian, "transcription_status")[-1]["captions"]
    assert captions["languages"] == ["de", "ru"] and captions["via"] == "llm"

    said = [engine.say(text) for text in ("good morning", "the budget is ready", "any questions")]
    for utterance_id in said:
        await russian.until(_translation_of(utterance_id, "ru"))
        await german.until(_translation_of(utterance_id, "de"))
    stopped = await _stop(run, russian)

    assert stopped["status"] == "STOPPED", stopped
    for client, language in ((russian, "ru"), (german, "de")):
        translations = _of(client, "translation")
        assert [t["utterance_id"] for t in translations] == said, "in the order of the finals"
        assert {t["language"] for t in translations} == {language}, "only the reader's language"
        finals = [m["utterance_id"] for m in _of(client, "transcript") if m["is_final"]]
        assert finals == said, "every reader gets the originals too"
    first = _of(russian, "translation")[0]
    assert first["text"] == "[ru] good morning"
    original = next(m for m in _of(russian, "transcript") if m["utterance_id"] == said[0])
    assert (first["start"], first["end"]) == (original["start"], original["end"])
    # Three finals said at once are one batch: one request per language.
    assert _requests_into(llm, "ru") == [["good morning", "the budget is ready", "any questions"]]
    assert _requests_into(llm, "de") == [["good morning", "the budget is ready", "any questions"]]

    stored = await _stored_translations(video_session)
    assert len(stored) == 6
    assert stored[(said[1], "de")].text == "[de] the budget is ready"
    assert {(row.source, row.source_revision) for row in stored.values()} == {("llm", 0)}

    usage = await _translation_usage(run)
    assert set(usage) == {"ru", "de"}
    characters = sum(len(f"[ru] {text}") for text in ("good morning", "the budget is ready"))
    characters += len("[ru] any questions")
    ru = usage["ru"]
    assert (ru.characters, ru.segments, ru.provider) == (characters, 3, "llm")
    assert ru.session_id == video_session.pk and ru.user_id == owner.pk
    assert ru.cost_per_million_characters == Decimal("20")
    assert ru.total_cost == translation_cost(characters, Decimal("20"))
    assert ru.audio_seconds > 0, "the audio sent while Russian was translated"
    for client in (russian, german):
        await client.disconnect()


async def test_batches_hold_at_most_the_configured_number_of_finals_and_keep_their_order(
    llm, settings, owner, video_session
):
    settings.TRANSLATION_LLM_MAX_BATCH = 2
    await _choose(owner, "ru", video_session)
    reader = await _connected(owner, video_session)
    run, engine = await _start(owner, video_session, reader)

    said = [engine.say(f"line {n}") for n in range(5)]
    await reader.until(_translation_of(said[-1], "ru"))
    await _stop(run, reader)

    assert _requests_into(llm, "ru") == [["line 0", "line 1"], ["line 2", "line 3"], ["line 4"]]
    assert [t["utterance_id"] for t in _of(reader, "translation")] == said
    await reader.disconnect()


@pytest.mark.parametrize("mode", ["fail", "garbage", "wrong_shape"])
async def test_a_failed_translation_loses_only_its_batch_and_never_an_original(
    llm, owner, member, video_session, mode
):
    await _choose(owner, "ru", video_session)
    reader = await _connected(owner, video_session)
    run, engine = await _start(owner, video_session, reader)

    llm.mode = mode
    lost = engine.say("this one is not translated")
    await reader.until(_final(lost))
    await _until_requests(llm, 1)
    await asyncio.sleep(0.3)
    llm.mode = "ok"
    kept = engine.say("this one is")
    await reader.until(_translation_of(kept, "ru"))
    await _stop(run, reader)

    assert [t["utterance_id"] for t in _of(reader, "translation")] == [kept]
    assert await _stored_finals(video_session) == [lost, kept], "both originals stored"
    stored = await _stored_translations(video_session)
    assert set(stored) == {(kept, "ru")}
    usage = await _translation_usage(run)
    assert usage["ru"].segments == 1
    await reader.disconnect()


async def test_a_slow_llm_is_given_up_after_the_timeout_while_originals_flow_at_once(
    llm, settings, owner, video_session
):
    settings.TRANSLATION_LLM_TIMEOUT_SECONDS = 1.0
    await _choose(owner, "ru", video_session)
    reader = await _connected(owner, video_session)
    run, engine = await _start(owner, video_session, reader)

    llm.mode, llm.delay = "timeout", 4.0
    loop = asyncio.get_running_loop()
    said_at = loop.time()
    slow = engine.say("the LLM is slow now")
    await reader.until(_final(slow))
    assert loop.time() - said_at < 0.5, "the original did not wait for its translation"
    following = engine.say("said while the LLM hangs")
    await reader.until(_final(following))
    assert loop.time() - said_at < 1.0

    await asyncio.sleep(1.6)  # the slow request is given up after 1 s
    llm.mode = "ok"
    fast = engine.say("the LLM is back")
    await reader.until(_translation_of(fast, "ru"), timeout=10)
    await _stop(run, reader)

    translated = [t["utterance_id"] for t in _of(reader, "translation")]
    assert slow not in translated
    assert fast in translated
    assert await _stored_finals(video_session) == [slow, following, fast]
    await reader.disconnect()


async def _until_requests(fake: FakeLlm, count: int, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(fake.requests) < count:
        assert loop.time() < deadline, f"the LLM got {len(fake.requests)} requests"
        await asyncio.sleep(0.02)


# --- who wants which language ----------------------------------------------------------------


async def test_a_language_chosen_during_the_run_starts_from_that_moment(
    llm, owner, member, video_session
):
    await _choose(owner, "ru", video_session)
    await _choose(member, "", video_session)
    russian = await _connected(owner, video_session)
    german = await _connected(member, video_session)
    run, engine = await _start(owner, video_session, russian, german)
    before = engine.say("before German")
    await german.until(_final(before))
    await russian.until(_translation_of(before, "ru"))

    await german.comm.send_to(text_data=json.dumps({"type": "caption_language", "language": "de"}))
    reply = await german.until(lambda m: m.get("type") == "caption_language")
    assert reply == {"type": "caption_language", "language": "de", "translations": []}
    captions = await german.until(lambda m: m.get("type") == "captions", timeout=5)
    assert captions["languages"] == ["de", "ru"]
    assert captions["via"] == "llm"
    assert captions["since"]["de"] > captions["since"]["ru"] >= 0
    assert await russian.until(lambda m: m.get("type") == "captions") == captions
    after = engine.say("after German")
    await german.until(_translation_of(after, "de"))
    await russian.until(_translation_of(after, "ru"))
    await _stop(run, russian)

    assert [t["utterance_id"] for t in _of(german, "translation")] == [after]
    stored = await _stored_translations(video_session)
    assert set(stored) == {(before, "ru"), (after, "ru"), (after, "de")}
    assert set(await _translation_usage(run)) == {"ru", "de"}
    for client in (russian, german):
        await client.disconnect()


async def test_the_languages_only_grow_and_the_heartbeat_finds_a_choice_made_elsewhere(
    llm, owner, member, video_session
):
    await _choose(owner, "ru", video_session)
    await _choose(member, "", video_session)
    reader = await _connected(owner, video_session)
    run, engine = await _start(owner, video_session, reader)

    # Chosen on another page (the run is not nudged): the heartbeat reads it.
    await _choose(member, "fr")
    captions = await reader.until(lambda m: m.get("type") == "captions", timeout=5)
    assert captions["languages"] == ["fr", "ru"]
    # The French reader goes back to the original: French stays for the rest of the run.
    await _choose(member, "")
    await asyncio.sleep(1.2)  # two heartbeats
    said = engine.say("still in French")
    await reader.until(_translation_of(said, "ru"))
    await _until_requests(llm, 2)
    await _stop(run, reader)

    assert _requests_into(llm, "fr") == [["still in French"]]
    assert [m["languages"] for m in _of(reader, "captions")] == [["fr", "ru"]]
    await reader.disconnect()


async def test_people_who_left_and_the_runs_own_spoken_language_are_not_translated_into(
    llm, owner, member, video_session
):
    video_session.languages = ["ru"]
    await database_sync_to_async(video_session.save)(update_fields=["languages"])
    await _choose(owner, "ru", video_session)  # the language spoken: nothing to translate
    await _choose(member, "de", video_session)
    await database_sync_to_async(video_session.participants.filter(user=member).update)(
        left_at=timezone.now()
    )
    reader = await _connected(owner, video_session)
    run, engine = await _start(owner, video_session, reader)

    assert _of(reader, "transcription_status")[-1]["captions"] == {
        "languages": [],
        "since": {},
        "via": "llm",
    }
    said = engine.say("только по-русски", language="ru")
    await reader.until(_final(said))
    await asyncio.sleep(0.6)
    await _stop(run, reader)

    assert llm.requests == []
    assert _of(reader, "translation") == []
    assert await _translation_usage(run) == {}
    await reader.disconnect()


async def test_without_an_llm_nobody_translates_and_the_pages_are_told(
    llm, settings, owner, video_session
):
    settings.LLM_ENABLED = False
    await _choose(owner, "ru", video_session)
    reader = await _connected(owner, video_session)
    assert _of(reader, "connected")[0]["captions"]["via"] == ""
    run, engine = await _start(owner, video_session, reader)

    assert _of(reader, "transcription_status")[-1]["captions"]["via"] == ""
    said = engine.say("nobody translates this")
    await reader.until(_final(said))
    await _stop(run, reader)

    assert llm.requests == [] and _of(reader, "translation") == []
    await reader.disconnect()


async def test_a_late_joiner_reads_the_history_in_their_language(llm, owner, member, video_session):
    await _choose(owner, "ru", video_session)
    reader = await _connected(owner, video_session)
    run, engine = await _start(owner, video_session, reader)
    said = [engine.say("first line"), engine.say("second line")]
    await reader.until(_translation_of(said[-1], "ru"))
    await asyncio.sleep(0.5)  # flushed

    await _choose(member, "ru", video_session)
    late = Client(member, video_session.slug)
    await late.connect()
    connected, history, status = [await late.next() for _ in range(3)]
    await _stop(run, reader)

    assert connected["captions"]["language"] == "ru"
    assert [s["translation"] for s in history["segments"]] == [
        {"language": "ru", "text": "[ru] first line", "stale": False},
        {"language": "ru", "text": "[ru] second line", "stale": False},
    ]
    assert status["captions"]["languages"] == ["ru"]
    for client in (reader, late):
        await client.disconnect()


async def test_a_resumed_run_keeps_its_languages_since_and_translation_meter(
    llm, owner, video_session
):
    """A run handed off to another runner: the new one resumes the meter (totals, not a second
    row) and keeps when each language started."""
    await _choose(owner, "ru", video_session)

    @database_sync_to_async
    def handed_off() -> TranscriptionRun:
        run = TranscriptionRun.objects.create(
            session=video_session, mode="BROWSER", provider=ENGINE, started_by=owner
        )
        TranscriptionUsage.objects.create(
            session=video_session, run=run, user=owner, provider=ENGINE
        )
        TranslationUsage.objects.create(
            session=video_session,
            run=run,
            user=owner,
            language="ru",
            provider="llm",
            characters=1000,
            segments=10,
            audio_seconds=60.0,
            cost_per_million_characters=Decimal("20"),
        )
        broadcast.captions_save(
            run.pk, broadcast.captions_payload({"de", "ru"}, {"de": 30.0, "ru": 12.5}, "llm")
        )
        return run

    run = await handed_off()
    reader = await _connected(owner, video_session)
    runner.bind_loop(asyncio.get_running_loop())
    task = asyncio.create_task(runner.execute(run.pk))
    status = await reader.until(_status("ACTIVE"))
    assert status["captions"]["since"] == {"de": 30.0, "ru": 12.5}
    said = Scripted.made[-1].say("resumed")
    await reader.until(_translation_of(said, "ru"))
    await _stop(run, reader)
    await task

    usage = await _translation_usage(run)
    assert usage["ru"].characters == 1000 + len("[ru] resumed")
    assert usage["ru"].segments == 11
    assert usage["ru"].audio_seconds > 60.0
    assert usage["de"].segments == 1
    await reader.disconnect()
