"""The fake Gladia's translation, spoken to as the docs describe it (docs/gladia-translation.md),
with plain httpx and websockets rather than Rooms' client."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from websockets.asyncio.client import connect

from tests.fakes.gladia import FakeGladia

KEY = "test-key"
SECOND = bytes(32000)  # one second of PCM16 mono silence at 16 kHz


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeGladia]:
    async with FakeGladia(api_key=KEY, script=["hello there", "good bye"]) as server:
        yield server


def _body(
    *, translation: Any = None, messages: dict[str, bool] | None = None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "encoding": "wav/pcm",
        "bit_depth": 16,
        "sample_rate": 16000,
        "channels": 1,
        "language_config": {"languages": ["en"], "code_switching": False},
        "messages_config": messages or {},
        **extra,
    }
    if translation is not None:
        body["realtime_processing"] = translation
    return body


async def _init(fake: FakeGladia, body: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(
            f"{fake.api_url}/v2/live", headers={"x-gladia-key": KEY}, json=body
        )


async def _session_messages(fake: FakeGladia, body: dict[str, Any], seconds: int) -> list[dict]:
    """Open a session, send ``seconds`` of audio, stop; every message the fake sent."""
    response = await _init(fake, body)
    assert response.status_code == 201, response.text
    messages = []
    async with connect(response.json()["url"]) as ws:
        for _ in range(seconds):
            await ws.send(SECOND)
        await ws.send(json.dumps({"type": "stop_recording"}))
        async for raw in ws:
            messages.append(json.loads(raw))
    return messages


def _targets(*languages: str) -> dict[str, Any]:
    return {"translation": True, "translation_config": {"target_languages": list(languages)}}


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("translation", "complaint"),
    [
        ({"translation": True}, "target_languages is required"),
        ({"translation": True, "translation_config": {}}, "target_languages is required"),
        (_targets(), "target_languages is required"),
        ({"translation": True, "translation_config": ["fr"]}, "target_languages is required"),
        (_targets("ru", "jv"), "unsupported language codes ['jv']"),  # Javanese is "jw"
        (
            {"translation": True, "translation_config": {"target_languages": ["ru"], "model": "x"}},
            "model must be one of",
        ),
        ("yes", "realtime_processing must be an object"),
    ],
)
async def test_an_init_asking_for_translation_badly_is_refused_with_400(
    fake, translation, complaint
) -> None:
    response = await _init(fake, _body(translation=translation))

    assert response.status_code == 400
    assert complaint in response.json()["message"]
    assert fake.session_list == []


@pytest.mark.asyncio
async def test_translation_off_or_unasked_sends_no_translation(fake) -> None:
    for translation in (None, {"translation": False}, {**_targets("ru"), "translation": False}):
        messages = await _session_messages(fake, _body(translation=translation), 2)
        assert "translation" not in {m["type"] for m in messages}
        [post_final] = [m for m in messages if m["type"] == "post_final_transcript"]
        assert "translation" not in post_final["data"]
    assert [s.targets for s in fake.session_list] == [[], [], []]


@pytest.mark.asyncio
async def test_each_final_is_followed_by_one_documented_translation_per_target(fake) -> None:
    fake.translations[("good bye", "ru")] = "до свидания"
    messages = await _session_messages(fake, _body(translation=_targets("ru", "de")), 2)

    kinds = [m["type"] for m in messages]
    finals = [m for m in messages if m["type"] == "transcript" and m["data"]["is_final"]]
    assert len(finals) == 2
    for final in finals:
        position = messages.index(final)
        ru, de = messages[position + 1 : position + 3]
        assert kinds[position + 3] == "speech_end"
        for message, target in ((ru, "ru"), (de, "de")):
            assert message["type"] == "translation"
            assert message["error"] is None
            assert set(message) == {"type", "session_id", "created_at", "error", "data"}
            data = message["data"]
            assert data["utterance_id"] == final["data"]["id"]
            assert data["utterance"] == final["data"]["utterance"]
            assert (data["original_language"], data["target_language"]) == ("en", target)
            translated = data["translated_utterance"]
            assert set(translated) == {
                "text",
                "language",
                "start",
                "end",
                "confidence",
                "channel",
                "words",
            }
            assert translated["language"] == target
            original = final["data"]["utterance"]
            assert (translated["start"], translated["end"]) == (original["start"], original["end"])
    texts = [
        m["data"]["translated_utterance"]["text"] for m in messages if m["type"] == "translation"
    ]
    assert texts == ["[ru] hello there", "[de] hello there", "до свидания", "[de] good bye"]

    [post_final] = [m for m in messages if m["type"] == "post_final_transcript"]
    block = post_final["data"]["translation"]
    assert (block["success"], block["is_empty"], block["error"]) == (True, False, None)
    assert [r["languages"] for r in block["results"]] == [["ru"], ["de"]]
    assert block["results"][0]["full_transcript"] == "[ru] hello there до свидания"
    assert kinds[-1] == "end_session"


@pytest.mark.asyncio
async def test_realtime_processing_events_can_be_turned_off(fake) -> None:
    body = _body(translation=_targets("ru"), messages={"receive_realtime_processing_events": False})
    messages = await _session_messages(fake, body, 2)

    assert "translation" not in {m["type"] for m in messages}
    assert sum(m["type"] == "transcript" for m in messages) == 2


@pytest.mark.asyncio
async def test_failed_translations_carry_an_error_and_null_data(fake) -> None:
    fake.fail_translations = True
    messages = await _session_messages(fake, _body(translation=_targets("ru")), 1)

    [failed] = [m for m in messages if m["type"] == "translation"]
    assert failed["data"] is None
    assert failed["error"]["message"] == "fake failure"
    [post_final] = [m for m in messages if m["type"] == "post_final_transcript"]
    assert post_final["data"]["translation"]["success"] is False
    assert fake.session_list[0].translation_errors == 1


@pytest.mark.asyncio
async def test_a_target_in_the_spoken_language_is_the_original_text_or_nothing(fake) -> None:
    messages = await _session_messages(fake, _body(translation=_targets("en", "ru")), 1)
    texts = {
        m["data"]["target_language"]: m["data"]["translated_utterance"]["text"]
        for m in messages
        if m["type"] == "translation"
    }
    assert texts == {"en": "hello there", "ru": "[ru] hello there"}

    fake.identity_translations = False
    messages = await _session_messages(fake, _body(translation=_targets("en", "ru")), 1)
    assert [m["data"]["target_language"] for m in messages if m["type"] == "translation"] == ["ru"]


@pytest.mark.asyncio
async def test_delayed_translations_are_sent_before_the_session_ends(fake) -> None:
    fake.translation_delay = 0.3
    messages = await _session_messages(fake, _body(translation=_targets("ru")), 2)

    kinds = [m["type"] for m in messages]
    assert kinds.count("translation") == 2
    first = kinds.index("translation")
    assert kinds.index("speech_end") < first  # the final's speech_end went out before it
    assert first < kinds.index("post_final_transcript")
