"""Gladia Live v2 real-time translation (docs/gladia-translation.md), against the fake server.

The client asks for target languages at ``POST /v2/live``, turns each ``translation`` message
into an ``SttTranslation`` keyed like the final it translates, and rolls over to a new Gladia
session when the set changes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator

import numpy as np
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from rooms import metrics
from tests.fakes.gladia import FakeGladia, FakeSession
from transcription.live.stt import SttEvent, SttStream, SttTranslation, open_stream
from transcription.live.stt.gladia import TRANSLATION_LANGUAGES, GladiaSttStream, _Session
from transcription.translation import CAPTION_LANGUAGES

BYTES_PER_SECOND = 32000
CHUNK = 1280  # 40 ms
SCRIPT = ["good morning everyone", "let us begin", "any questions"]
Event = SttEvent | SttTranslation


def _audio(seconds: float) -> bytes:
    samples = np.arange(int(seconds * 16000), dtype=np.int64) % 65536 - 32768
    return samples.astype("<i2").tobytes()


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeGladia]:
    async with FakeGladia(api_key="good-key", script=SCRIPT, record_audio=True) as server:
        yield server


def _stream(fake: FakeGladia, *, languages: list[str] | None = None, **config: object):
    config.setdefault("backoff_initial", 0.02)
    stream = open_stream(
        "gladia",
        languages=["en"] if languages is None else languages,
        api_key="good-key",
        api_url=fake.api_url,
        **config,
    )
    assert isinstance(stream, GladiaSttStream)
    return stream


class _Run:
    """A started stream whose events are being collected."""

    def __init__(self, stream: GladiaSttStream, *, started: bool = False) -> None:
        self.stream = stream
        self.started = started
        self.events: list[Event] = []
        self._collector: asyncio.Task[None] | None = None

    async def __aenter__(self) -> _Run:
        if not self.started:
            await self.stream.start()
        self._collector = asyncio.create_task(self._collect())
        return self

    async def _collect(self) -> None:
        async for event in self.stream.events():
            self.events.append(event)

    async def send(self, audio: bytes, *, pace: float = 0.001) -> None:
        for offset in range(0, len(audio), CHUNK):
            await self.stream.send_audio(audio[offset : offset + CHUNK])
            await asyncio.sleep(pace)

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stream.close()
        assert self._collector is not None
        await asyncio.wait_for(self._collector, timeout=5)

    def finals(self) -> list[SttEvent]:
        return [e for e in self.events if isinstance(e, SttEvent) and e.is_final]

    def translations(self, language: str | None = None) -> list[SttTranslation]:
        return [
            e
            for e in self.events
            if isinstance(e, SttTranslation) and language in (None, e.language)
        ]


async def _run(stream: GladiaSttStream, seconds: float) -> _Run:
    async with _Run(stream) as run:
        await run.send(_audio(seconds))
    return run


def _ids(session: FakeSession) -> list[str]:
    return [f"{session.id}:{final['id']}" for final in session.finals]


async def _until(condition, *, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def _errors_counted() -> float:
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            if sample.name == "rooms_errors_total" and sample.labels == {"kind": "stt_translation"}:
                return sample.value
    return 0.0


# --- the init request ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_without_translation_languages_the_init_request_is_unchanged(fake) -> None:
    stream = _stream(fake)
    run = await _run(stream, 1.2)

    [session] = fake.session_list
    assert session.request == {
        "encoding": "wav/pcm",
        "bit_depth": 16,
        "sample_rate": 16000,
        "channels": 1,
        "language_config": {"languages": ["en"], "code_switching": False},
        "messages_config": {
            "receive_partial_transcripts": True,
            "receive_final_transcripts": True,
            "receive_acknowledgments": True,
        },
    }
    assert session.translations == [] and run.translations() == []
    assert stream.translation_languages == frozenset()
    assert stream.translation_audio_seconds == {}


@pytest.mark.asyncio
async def test_the_init_request_asks_for_the_target_languages(fake) -> None:
    stream = _stream(fake, translation_languages=["ru", "de"])
    assert stream.translates is True
    await _run(stream, 0.5)

    [session] = fake.session_list
    assert session.request["realtime_processing"] == {
        "translation": True,
        "translation_config": {
            "target_languages": ["de", "ru"],
            "model": "base",
            "match_original_utterances": True,
            "lipsync": False,
        },
    }
    assert session.request["messages_config"] == {
        "receive_partial_transcripts": True,
        "receive_final_transcripts": True,
        "receive_acknowledgments": True,
        "receive_realtime_processing_events": True,
    }
    assert session.targets == ["de", "ru"]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("spoken", "asked", "targets"),
    [
        (["ru"], ["ru", "en"], ["en"]),  # one pinned spoken language: no identity translation
        (["ru"], ["ru"], None),  # nothing left: no translation block at all
        (["en", "ru"], ["ru", "en"], ["en", "ru"]),  # code switching: each is someone's target
        ([], ["en"], ["en"]),  # auto-detect: nobody knows which one is spoken
        (["en"], ["eo", "RU", "xx"], ["ru"]),  # codes Gladia cannot translate into are left out
    ],
)
async def test_targets_leave_out_the_pinned_spoken_language_and_unknown_codes(
    fake, spoken, asked, targets
) -> None:
    stream = _stream(fake, languages=spoken, translation_languages=asked)
    await _run(stream, 0.2)

    [session] = fake.session_list
    if targets is None:
        assert "realtime_processing" not in session.request
        assert "receive_realtime_processing_events" not in session.request["messages_config"]
    else:
        config = session.request["realtime_processing"]["translation_config"]
        assert config["target_languages"] == targets
    assert stream.translation_languages == frozenset(targets or ())


def test_every_caption_language_is_a_gladia_translation_target() -> None:
    assert set(CAPTION_LANGUAGES) <= TRANSLATION_LANGUAGES
    assert {"jw", "he", "zh", "haw"} <= TRANSLATION_LANGUAGES  # the traps of the docs, §1
    assert not {"jv", "iw", "zh-cn"} & TRANSLATION_LANGUAGES


# --- translation events ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_translations_arrive_keyed_to_their_finals_with_their_times() -> None:
    custom = {("let us begin", "ru"): "давайте начнём"}
    async with FakeGladia(api_key="good-key", script=SCRIPT, translations=custom) as fake:
        stream = _stream(fake, translation_languages=["ru", "de"])
        run = await _run(stream, 3.5)

    [session] = fake.session_list
    finals = run.finals()
    assert [e.utterance_id for e in finals] == _ids(session)
    assert len(finals) == 4
    for language in ("de", "ru"):
        translations = run.translations(language)
        assert [t.utterance_id for t in translations] == [f.utterance_id for f in finals]
        assert [(t.start, t.end) for t in translations] == [(f.start, f.end) for f in finals]
        assert {t.source_language for t in translations} == {"en"}
    assert [t.text for t in run.translations("ru")] == [
        "[ru] good morning everyone",
        "давайте начнём",
        "[ru] any questions",
        "[ru] good morning everyone",
    ]
    assert run.translations("de")[1].text == "[de] let us begin"
    # Each translation follows its final (the order the fake sends them in).
    for final in finals:
        position = run.events.index(final)
        assert {t.language for t in run.events[position + 1 : position + 3]} == {"de", "ru"}
    assert stream.translation_audio_seconds == {"de": 3.5, "ru": 3.5}
    # post_final_transcript carried the documented translation block.
    assert [t["target_language"] for t in session.translations] == ["de", "ru"] * 4


@pytest.mark.asyncio
async def test_a_dropped_socket_loses_no_translation(fake) -> None:
    fake.fault(after_seconds=1.5)  # the TCP connection dies; the same session goes on
    stream = _stream(fake, translation_languages=["ru"])
    run = await _run(stream, 4.0)

    [session] = fake.session_list
    assert session.connections == 2 and stream.reconnects == 1
    finals = run.finals()
    assert [t.utterance_id for t in run.translations("ru")] == [f.utterance_id for f in finals]
    assert len(finals) == 4


@pytest.mark.asyncio
async def test_translations_keep_stream_times_in_a_replacement_session(fake) -> None:
    fake.fault(after_seconds=1.5, code=4002)  # Gladia ends the first session
    stream = _stream(fake, translation_languages=["ru"])
    run = await _run(stream, 4.0)

    first, second = fake.session_list
    assert second.targets == ["ru"]  # the replacement asks for the same languages
    finals = {f.utterance_id: f for f in run.finals()}
    translations = run.translations("ru")
    second_translations = [t for t in translations if t.utterance_id.startswith(second.id)]
    assert second_translations
    for translation in translations:
        final = finals[translation.utterance_id]
        assert (translation.start, translation.end) == (final.start, final.end)
    offset = len(first.audio) / BYTES_PER_SECOND
    assert second_translations[0].start == round(offset + second.finals[0]["utterance"]["start"], 3)
    assert second_translations[-1].end == pytest.approx(4.0)


@pytest.mark.asyncio
async def test_a_translation_received_twice_is_emitted_once() -> None:
    async with FakeGladia(api_key="good-key", script=SCRIPT, repeat_finals=True) as fake:
        run = await _run(_stream(fake, translation_languages=["ru", "de"]), 2.5)

    [session] = fake.session_list
    assert len(session.translations) == 2 * len(session.finals) == 6  # each sent twice
    keys = [(t.utterance_id, t.language) for t in run.translations()]
    assert len(keys) == len(set(keys)) == 6
    assert len(run.finals()) == 3


@pytest.mark.asyncio
async def test_late_translations_are_still_delivered_before_the_stream_ends() -> None:
    async with FakeGladia(api_key="good-key", script=SCRIPT, translation_delay=0.5) as fake:
        stream = _stream(fake, translation_languages=["ru"])
        async with _Run(stream) as run:
            await run.send(_audio(3.0), pace=0.002)

    finals = run.finals()
    translations = run.translations("ru")
    assert sorted(t.utterance_id for t in translations) == sorted(f.utterance_id for f in finals)
    first = run.events.index(translations[0])
    assert run.events.index(finals[1]) < first  # overtaken by the next utterance


@pytest.mark.asyncio
async def test_translation_errors_are_logged_and_counted_while_finals_flow(fake, caplog) -> None:
    before = _errors_counted()
    fake.fail_translations = True
    stream = _stream(fake, translation_languages=["ru"])
    with caplog.at_level(logging.WARNING, logger="transcription.live.stt.gladia"):
        async with _Run(stream) as run:
            await run.send(_audio(2.2))
            await _until(lambda: fake.session_list[0].translation_errors == 2)
            fake.fail_translations = False  # Gladia recovers: later finals are translated
            await run.send(_audio(1.0))

    [session] = fake.session_list
    assert session.translation_errors == 2
    assert len(run.finals()) == 4  # the originals never stopped
    assert [t.utterance_id for t in run.translations()] == _ids(session)[2:]
    assert _errors_counted() == before + 2
    assert "Gladia could not translate" in caplog.text and "fake failure" in caplog.text


@pytest.mark.asyncio
async def test_identity_translations_under_auto_detect_pass_through(fake) -> None:
    stream = _stream(fake, languages=[], translation_languages=["en", "ru"])
    run = await _run(stream, 2.0)

    english = run.translations("en")
    assert [t.text for t in english] == SCRIPT[:2]  # the fake hears English: the same text
    assert len(run.translations("ru")) == 2

    fake.identity_translations = False
    run = await _run(_stream(fake, languages=[], translation_languages=["en", "ru"]), 2.0)
    assert run.translations("en") == [] and len(run.translations("ru")) == 2


# --- changing the languages -------------------------------------------------------------------


@pytest.mark.asyncio
async def test_adding_a_language_rolls_over_and_translates_only_later_finals(fake) -> None:
    audio = _audio(4.0)
    stream = _stream(fake, translation_languages=["ru"])
    async with _Run(stream) as run:
        await run.send(audio[: 2 * BYTES_PER_SECOND])
        await stream.set_translation_languages(["de", "ru"])
        assert stream.translation_languages == {"de", "ru"}
        await run.send(audio[2 * BYTES_PER_SECOND :])

    first, second = fake.session_list
    assert (first.targets, second.targets) == (["ru"], ["de", "ru"])
    assert stream.rollovers == 1
    assert first.stop_received and first.ended  # it finished its own finals and translations
    assert bytes(first.audio + second.audio) == audio  # no gap, no overlap at the switch
    final_ids = [f.utterance_id for f in run.finals()]
    assert sorted(final_ids) == sorted(_ids(first) + _ids(second))
    assert sorted(t.utterance_id for t in run.translations("ru")) == sorted(final_ids)
    german = [t.utterance_id for t in run.translations("de")]
    assert german and sorted(german) == sorted(_ids(second))
    assert stream.translation_audio_seconds == {
        "ru": pytest.approx(4.0),
        "de": pytest.approx(len(second.audio) / BYTES_PER_SECOND),
    }


@pytest.mark.asyncio
async def test_an_unchanged_set_does_not_roll_over(fake) -> None:
    stream = _stream(fake, translation_languages=["ru", "de"])
    async with _Run(stream) as run:
        await run.send(_audio(1.0))
        await stream.set_translation_languages(["de", "ru"])
        await stream.set_translation_languages(["ru", "de", "en", "eo"])  # pinned, unknown
        await run.send(_audio(1.0))

    assert len(fake.session_list) == 1
    assert stream.rollovers == 0 and stream.sessions_started == 1
    assert len(run.translations()) == 4


@pytest.mark.asyncio
async def test_a_change_during_a_rollover_is_followed_by_another(fake) -> None:
    stream = _stream(fake, translation_languages=["ru"])
    create = stream._create_session
    entered, release = asyncio.Event(), asyncio.Event()

    async def held(targets: frozenset[str]) -> tuple[str, str]:
        if stream.sessions_started:
            entered.set()
            await release.wait()
        return await create(targets)

    stream._create_session = held  # type: ignore[method-assign]
    async with _Run(stream) as run:
        await run.send(_audio(1.0))
        await stream.set_translation_languages(["ru", "de"])
        await asyncio.wait_for(entered.wait(), timeout=2)  # that rollover's POST is under way
        await stream.set_translation_languages(["ru", "de", "fr"])
        await stream.set_translation_languages(["ru", "de", "fr"])
        release.set()
        await run.send(_audio(2.0))

    assert [s.targets for s in fake.session_list] == [["ru"], ["de", "ru"], ["de", "fr", "ru"]]
    assert stream.rollovers == 2
    assert run.translations("fr")


@pytest.mark.asyncio
async def test_languages_set_before_start_are_asked_for_at_once(fake) -> None:
    stream = _stream(fake)
    await stream.set_translation_languages(["ru"])
    run = await _run(stream, 1.2)

    [session] = fake.session_list
    assert session.targets == ["ru"]
    assert stream.rollovers == 0 and len(run.translations("ru")) == 2


@pytest.mark.asyncio
async def test_a_change_while_starting_rolls_over_once_started(fake) -> None:
    stream = _stream(fake, translation_languages=["ru"])
    starting = asyncio.create_task(stream.start())
    await asyncio.sleep(0)  # start() is waiting for its POST /v2/live
    await stream.set_translation_languages(["ru", "de"])
    await starting
    async with _Run(stream, started=True) as run:
        await run.send(_audio(2.0))

    assert [s.targets for s in fake.session_list] == [["ru"], ["de", "ru"]]
    assert stream.rollovers == 1 and run.translations("de")


@pytest.mark.asyncio
async def test_other_streams_only_record_the_languages() -> None:
    stream = open_stream(
        "tests.transcription.live.test_gladia_translation:_Silent",
        languages=["en"],
        translation_languages=["ru"],
    )
    assert stream.translates is False
    assert stream.translation_languages == {"ru"}
    await stream.set_translation_languages(["de", "ru"])
    assert stream.translation_languages == {"de", "ru"}
    assert stream.translation_audio_seconds == {}


class _Silent(SttStream):
    def __init__(self, *, languages: list[str], sample_rate: int = 16000) -> None:
        super().__init__(sample_rate=sample_rate)

    async def start(self) -> None:
        return None

    async def send_audio(self, pcm: bytes) -> None:
        return None

    async def close(self) -> None:
        return None


# --- the message handler ---------------------------------------------------------------------


def _translation_message(**data: object) -> str:
    body = {
        "utterance_id": "00-00000011",
        "utterance": {"text": "buenos días", "language": "es", "start": 4.2, "end": 6.1},
        "original_language": "es",
        "target_language": "en",
        "translated_utterance": {"text": " good morning ", "language": "en"},
        **data,
    }
    return json.dumps({"type": "translation", "session_id": "s", "error": None, "data": body})


def _handled(raw: str) -> list[object]:
    stream = GladiaSttStream(api_key="k", languages=["es"], translation_languages=["en"])
    session = _Session(
        id="s1",
        url="wss://x",
        offset_bytes=10 * BYTES_PER_SECOND,
        pending=bytearray(),
        finishing=False,
    )
    stream._on_message(session, raw)
    stream._on_message(session, raw)  # a repeat
    items = []
    while not stream._events.empty():
        items.append(stream._events.get_nowait())
    return items


def test_times_fall_back_to_the_original_utterance_and_are_offset() -> None:
    [translation] = _handled(_translation_message())
    assert translation == SttTranslation(
        utterance_id="s1:00-00000011",
        language="en",
        text="good morning",
        start=14.2,
        end=16.1,
        source_language="es",
    )
    own_times = {"text": "good morning", "language": "en", "start": 4.3, "end": 6.0}
    [translation] = _handled(_translation_message(translated_utterance=own_times))
    assert (translation.start, translation.end) == (14.3, 16.0)


@pytest.mark.parametrize(
    "raw",
    [
        _translation_message(translated_utterance={"text": "  ", "language": "en"}),
        _translation_message(translated_utterance=None),
        _translation_message(utterance={"text": "x"}),  # no times anywhere
        '{"type": "translation", "error": {"message": "addon failed"}, "data": null}',
        '{"type": "translation", "error": "boom", "data": {"utterance_id": "u"}}',
        '{"type": "translation", "data": null}',
        '{"type": "translation"}',
    ],
    ids=["empty", "no-translated", "no-times", "error", "error-string", "null", "bare"],
)
def test_unusable_translation_messages_are_skipped(raw: str) -> None:
    assert _handled(raw) == []
