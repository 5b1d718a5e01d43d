"""The Gladia Live v2 client against the in-process fake server (tests/fakes/gladia.py)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import numpy as np
import pytest
import pytest_asyncio

from tests.fakes.gladia import FakeGladia, FakeSession
from transcription.live.stt import SttError, SttEvent, SttStream, open_stream
from transcription.live.stt.gladia import (
    AUTH_MESSAGE,
    RATE_LIMIT_MESSAGE,
    GladiaSttStream,
    _Session,
)

BYTES_PER_SECOND = 32000
CHUNK = 1280  # 40 ms
SCRIPT = ["it was the best of times", "it was the worst of times", "it was the age of wisdom"]


def _audio(seconds: float) -> bytes:
    # A ramp, so a lost, repeated or misplaced chunk changes the bytes the fake records.
    samples = np.arange(int(seconds * 16000), dtype=np.int64) % 65536 - 32768
    return samples.astype("<i2").tobytes()


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeGladia]:
    async with FakeGladia(api_key="good-key", script=SCRIPT, record_audio=True) as server:
        yield server


def _stream(fake: FakeGladia, **config: object) -> GladiaSttStream:
    config.setdefault("backoff_initial", 0.02)
    stream = open_stream(
        "gladia", languages=["en"], api_key="good-key", api_url=fake.api_url, **config
    )
    assert isinstance(stream, GladiaSttStream)
    return stream


async def _run(stream: SttStream, audio: bytes, *, pace: float = 0.001) -> list[SttEvent]:
    """Start, send ``audio`` in 40 ms chunks (``pace`` s apart), close; return events."""
    await stream.start()
    events: list[SttEvent] = []

    async def collect() -> None:
        async for event in stream.events():
            events.append(event)

    collector = asyncio.create_task(collect())
    for offset in range(0, len(audio), CHUNK):
        await stream.send_audio(audio[offset : offset + CHUNK])
        await asyncio.sleep(pace)
    await stream.close()
    await asyncio.wait_for(collector, timeout=2)  # events() ends once close() returned
    return events


def _finals(events: list[SttEvent]) -> list[SttEvent]:
    return [e for e in events if e.is_final]


def _expected_ids(session: FakeSession) -> list[str]:
    return [f"{session.id}:{final['id']}" for final in session.finals]


def _assert_ordered_without_overlap(finals: list[SttEvent]) -> None:
    ordered = sorted(finals, key=lambda e: e.start)
    for earlier, later in itertools.pairwise(ordered):
        assert earlier.start < earlier.end <= later.start, (earlier, later)


@pytest.mark.asyncio
async def test_transcribes_with_partials_and_finals(fake: FakeGladia) -> None:
    audio = _audio(3.5)
    stream = _stream(fake)
    events = await _run(stream, audio)

    [session] = fake.session_list
    assert session.request["language_config"] == {"languages": ["en"], "code_switching": False}
    assert session.stop_received and session.ended
    assert bytes(session.audio) == audio
    assert stream.audio_seconds == pytest.approx(3.5)

    finals = _finals(events)
    assert [e.utterance_id for e in finals] == _expected_ids(session)
    assert [e.text for e in finals] == [*SCRIPT, "it was the best of times"]
    # Three whole utterances, then the flush of the last half second at stop_recording.
    assert [(e.start, e.end) for e in finals] == [
        (0.1, 0.9),
        (1.1, 1.9),
        (2.1, 2.9),
        (3.1, 3.5),
    ]
    assert all(e.language == "en" for e in events)
    first_final = events.index(finals[0])
    assert events[:first_final] and not any(e.is_final for e in events[:first_final])
    assert {e.utterance_id for e in events if not e.is_final} <= {e.utterance_id for e in finals}
    assert stream.reconnects == 0


@pytest.mark.asyncio
@pytest.mark.parametrize("code", [None, 1011], ids=["aborted", "closed-1011"])
async def test_dropped_socket_reconnects_without_losing_audio_or_finals(
    fake: FakeGladia, code: int | None
) -> None:
    audio = _audio(4.0)
    fake.fault(after_seconds=1.5, code=code)
    stream = _stream(fake)
    events = await _run(stream, audio)

    assert fake.pending_faults == 0
    [session] = fake.session_list  # same session, reconnected
    assert session.connections == 2
    assert stream.reconnects == 1
    assert bytes(session.audio) == audio  # nothing lost, nothing twice
    finals = _finals(events)
    assert [e.utterance_id for e in finals] == _expected_ids(session)  # each exactly once
    assert len(finals) == 4
    _assert_ordered_without_overlap(finals)


@pytest.mark.asyncio
async def test_session_ended_by_server_continues_in_new_session(fake: FakeGladia) -> None:
    audio = _audio(4.0)
    fake.fault(after_seconds=1.5, code=4002)
    stream = _stream(fake)
    events = await _run(stream, audio)

    first, second = fake.session_list
    assert first.ended and not first.stop_received
    assert second.stop_received
    assert bytes(first.audio + second.audio) == audio  # unacked audio moved over
    assert stream.reconnects == 1

    finals = _finals(events)
    assert [e.utterance_id for e in finals] == _expected_ids(first) + _expected_ids(second)
    # The second session's own clock starts at 0; stream times continue after the first.
    offset = len(first.audio) / BYTES_PER_SECOND
    second_finals = [e for e in finals if e.utterance_id.startswith(second.id)]
    assert [e.start for e in second_finals] == [
        round(offset + f["utterance"]["start"], 3) for f in second.finals
    ]
    assert second_finals[-1].end == pytest.approx(4.0)
    _assert_ordered_without_overlap(finals)


@pytest.mark.asyncio
async def test_rollover_moves_to_a_new_session_without_losing_audio(fake: FakeGladia) -> None:
    audio = _audio(3.6)
    stream = _stream(fake, max_session_seconds=2.0)
    events = await _run(stream, audio, pace=0.002)

    first, second = fake.session_list
    assert stream.rollovers == 1
    assert stream.reconnects == 0
    assert first.stop_received and first.ended  # the old session was finished properly
    assert second.stop_received and second.ended
    assert 2.0 <= len(first.audio) / BYTES_PER_SECOND < 2.5
    assert bytes(first.audio + second.audio) == audio  # no gap, no overlap at the switch

    finals = _finals(events)
    received = {e.utterance_id for e in finals}
    assert received == set(_expected_ids(first) + _expected_ids(second))
    assert len(finals) == len(received)
    assert any(i.startswith(first.id) for i in received)
    assert any(i.startswith(second.id) for i in received)
    _assert_ordered_without_overlap(finals)
    assert max(e.end for e in finals) == pytest.approx(3.6)


@pytest.mark.asyncio
async def test_long_outage_drops_oldest_audio_and_continues_in_new_session(
    fake: FakeGladia,
) -> None:
    audio = _audio(3.0)
    stream = _stream(fake, max_buffer_seconds=0.5, backoff_max=0.05)
    await stream.start()
    collected: list[SttEvent] = []

    async def collect() -> None:
        async for event in stream.events():
            collected.append(event)

    collector = asyncio.create_task(collect())
    fake.refuse_connections = True
    fake.fault(after_seconds=0.5)
    for offset in range(0, len(audio), CHUNK):
        await stream.send_audio(audio[offset : offset + CHUNK])
        await asyncio.sleep(0.002)
    fake.refuse_connections = False
    await stream.close()
    await asyncio.wait_for(collector, timeout=2)

    first, second = fake.session_list
    assert first.ended is False and first.connections == 1  # abandoned: it has a gap
    dropped = len(audio) - len(first.audio) - len(second.audio)
    assert stream.dropped_audio_seconds == pytest.approx(dropped / BYTES_PER_SECOND)
    assert dropped > 0
    # Each session got a contiguous slice; only the gap between them is missing.
    assert bytes(first.audio) == audio[: len(first.audio)]
    assert bytes(second.audio) == audio[len(audio) - len(second.audio) :]
    assert len(second.audio) <= 0.5 * BYTES_PER_SECOND + CHUNK
    offset = (len(audio) - len(second.audio)) / BYTES_PER_SECOND
    second_finals = [e for e in _finals(collected) if e.utterance_id.startswith(second.id)]
    assert second_finals
    assert [e.start for e in second_finals] == [
        round(offset + f["utterance"]["start"], 3) for f in second.finals
    ]
    assert second_finals[-1].end == pytest.approx(3.0)


@pytest.mark.asyncio
async def test_gladia_gone_for_good_fails_with_provider_error(fake: FakeGladia) -> None:
    stream = _stream(fake, reconnect_timeout=0.3, backoff_max=0.05)
    await stream.start()
    events = stream.events()
    await stream.send_audio(_audio(0.5))
    fake.refuse_connections = True
    fake.fault()
    await stream.send_audio(_audio(0.1))
    with pytest.raises(SttError) as caught:
        async with asyncio.timeout(3):
            async for _ in events:
                pass
    assert caught.value.code == "provider"
    assert stream.reconnects == 1
    await stream.close()


@pytest.mark.asyncio
async def test_final_received_twice_is_emitted_once() -> None:
    async with FakeGladia(api_key="good-key", repeat_finals=True) as fake:
        events = await _run(_stream(fake), _audio(2.5))
    [session] = fake.session_list
    assert [e.utterance_id for e in _finals(events)] == _expected_ids(session)
    assert len(session.finals) == 3


@pytest.mark.asyncio
async def test_invalid_key_fails_start_with_auth_error(fake: FakeGladia) -> None:
    stream = GladiaSttStream(api_key="wrong", api_url=fake.api_url, languages=["en"])
    with pytest.raises(SttError) as caught:
        await stream.start()
    assert caught.value.code == "auth"
    assert str(caught.value) == AUTH_MESSAGE
    assert fake.session_list == []


@pytest.mark.asyncio
async def test_concurrency_limit_fails_start_with_rate_limited_error() -> None:
    async with FakeGladia(api_key="good-key", max_sessions=1) as fake:
        first = _stream(fake)
        await first.start()
        second = _stream(fake)
        with pytest.raises(SttError) as caught:
            await second.start()
        assert caught.value.code == "rate_limited"
        assert str(caught.value) == RATE_LIMIT_MESSAGE
        await first.close()


@pytest.mark.asyncio
async def test_rollover_at_the_concurrency_limit_switches_in_turn() -> None:
    async with FakeGladia(api_key="good-key", max_sessions=1, record_audio=True) as fake:
        audio = _audio(2.6)
        stream = _stream(fake, max_session_seconds=1.0)
        events = await _run(stream, audio, pace=0.002)

    sessions = fake.session_list
    assert len(sessions) == stream.rollovers + 1 >= 2
    assert all(s.stop_received and s.ended for s in sessions)
    assert b"".join(bytes(s.audio) for s in sessions) == audio
    finals = _finals(events)
    assert [e.utterance_id for e in finals] == [i for s in sessions for i in _expected_ids(s)]
    _assert_ordered_without_overlap(finals)


@pytest.mark.asyncio
async def test_rate_limit_on_a_replacement_session_surfaces_through_events(
    fake: FakeGladia,
) -> None:
    stream = _stream(fake)
    await stream.start()
    fake.max_sessions = 0  # from now on every new session is refused
    fake.fault(after_seconds=0.5, code=4001)
    events = stream.events()
    with pytest.raises(SttError) as refused:  # once failed, send_audio refuses too
        for _ in range(2 * BYTES_PER_SECOND // CHUNK):
            await stream.send_audio(bytes(CHUNK))
            await asyncio.sleep(0.002)
    assert refused.value.code == "rate_limited"
    with pytest.raises(SttError) as caught:
        async with asyncio.timeout(2):
            async for _ in events:
                pass
    assert caught.value.code == "rate_limited"
    assert str(caught.value) == RATE_LIMIT_MESSAGE
    await stream.close()


@pytest.mark.asyncio
async def test_unreachable_gladia_fails_start_with_provider_error() -> None:
    async with FakeGladia() as fake:
        url = fake.api_url  # a port that was just released
    stream = GladiaSttStream(api_key="k", api_url=url, languages=[], http_timeout=2)
    with pytest.raises(SttError) as caught:
        await stream.start()
    assert caught.value.code == "provider"


@pytest.mark.asyncio
async def test_auto_detect_requests_code_switching(fake: FakeGladia) -> None:
    stream = open_stream("gladia", languages=[], api_key="good-key", api_url=fake.api_url)
    await _run(stream, _audio(0.2))
    [session] = fake.session_list
    assert session.request["language_config"] == {"languages": [], "code_switching": True}
    assert session.request["messages_config"]["receive_partial_transcripts"] is True


@pytest.mark.parametrize(
    ("languages", "heard", "recorded"),
    [
        (["en", "ru"], "ru", "ru"),  # code switching: each final says which one it was
        ([], "de", "de"),  # automatic detection
        (["ru"], None, "ru"),  # no language in the message: the session's only one
        (["en", "ru"], None, ""),  # ... but with several, nobody knows which
    ],
)
def test_each_transcript_carries_the_language_gladia_heard(languages, heard, recorded) -> None:
    stream = GladiaSttStream(api_key="k", languages=languages)
    session = _Session(id="s1", url="wss://x", offset_bytes=0, pending=bytearray(), finishing=False)
    utterance = {"text": "добрый день", "start": 0.5, "end": 1.5}
    if heard:
        utterance["language"] = heard
    stream._on_transcript(session, {"id": "u1", "is_final": True, "utterance": utterance})

    event = stream._events.get_nowait()
    assert isinstance(event, SttEvent)
    assert (event.text, event.language) == ("добрый день", recorded)
