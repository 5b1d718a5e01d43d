"""A run's failure reaches each page in its reader's language: the run stores it in English
(the admin and the API show it so) and the transcript socket translates it per socket."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from tests.transcription.conftest import Client
from transcription.models import TranscriptionRun

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


async def _status_seen_by(user, session) -> dict:
    client = Client(user, session.slug)
    await client.connect()
    status = await client.until(lambda m: m.get("type") == "transcription_status")
    await client.comm.disconnect()
    return status


@pytest.mark.parametrize(
    ("language", "expected"),
    [("ru", "Соединение с Gladia потеряно"), ("", "Lost the connection to Gladia")],
)
async def test_a_failed_run_is_explained_in_the_readers_language(
    owner, video_session, language, expected
):
    await database_sync_to_async(TranscriptionRun.objects.create)(
        session=video_session,
        mode=TranscriptionRun.Mode.BROWSER,
        provider="gladia",
        status=TranscriptionRun.Status.FAILED,
        error_code="provider",
        error="Lost the connection to Gladia",
    )
    owner.language = language
    await database_sync_to_async(owner.save)()

    status = await _status_seen_by(owner, video_session)

    assert status["status"] == "FAILED"
    assert status["error"] == expected
    assert status["error_code"] == "provider"


async def test_a_failure_outside_the_catalogue_is_shown_as_stored(owner, video_session):
    await database_sync_to_async(TranscriptionRun.objects.create)(
        session=video_session,
        mode=TranscriptionRun.Mode.BROWSER,
        provider="gladia",
        status=TranscriptionRun.Status.FAILED,
        error_code="provider",
        error="Gladia refused to start a session (HTTP 503)",
    )
    owner.language = "ru"
    await database_sync_to_async(owner.save)()

    status = await _status_seen_by(owner, video_session)

    assert status["error"] == "Gladia refused to start a session (HTTP 503)"
