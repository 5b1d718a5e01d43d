"""Storing live translations: one row per segment and language, batched after the finals,
waiting (a bounded while) for a final not stored yet; the caption languages of a session; the
translation meter of the runs a runner holds."""

from __future__ import annotations

from decimal import Decimal

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from sessions_app.services import session_join
from tests.factories import UserFactory, VideoSessionFactory
from transcription.live import batching, store
from transcription.live.batching import TRANSLATION_MAX_WAIT_ROUNDS, RunBatcher
from transcription.live.store import FinalSegment, FinalTranslation
from transcription.models import (
    SegmentTranslation,
    TranscriptionRun,
    TranscriptionUsage,
    TranscriptSegment,
    TranslationUsage,
)
from transcription.usage.translation_meter import TranslationCounts


@pytest.fixture
def run(video_session, owner) -> TranscriptionRun:
    run = TranscriptionRun.objects.create(
        session=video_session, mode="BROWSER", provider="local", status="ACTIVE"
    )
    TranscriptionUsage.objects.create(session=video_session, run=run, user=owner, provider="local")
    return run


def _final(run: TranscriptionRun, utterance_id: str, text: str = "hello") -> FinalSegment:
    return FinalSegment(
        session_id=run.session_id,
        run_id=run.pk,
        utterance_id=utterance_id,
        text=text,
        language="en",
        start_offset=1.0,
        end_offset=2.0,
        speaker_identity=None,
        speaker_name=None,
    )


def _translation(
    run: TranscriptionRun, utterance_id: str, text: str, language: str = "ru"
) -> FinalTranslation:
    return FinalTranslation(
        session_id=run.session_id,
        run_id=run.pk,
        utterance_id=utterance_id,
        language=language,
        text=text,
        source="gladia",
    )


def _rows(run: TranscriptionRun) -> list[tuple[str, str, str, int]]:
    return list(
        SegmentTranslation.objects.filter(session_id=run.session_id)
        .order_by("segment__utterance_id", "language")
        .values_list("segment__utterance_id", "language", "text", "source_revision")
    )


# --- the upsert -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_translation_sent_again_replaces_its_text_and_stays_one_row(run):
    store.segments_upsert(finals=[_final(run, "u1")])

    assert store.translations_upsert(translations=[_translation(run, "u1", "привет")]) == []
    first = SegmentTranslation.objects.get()
    waiting = store.translations_upsert(
        translations=[
            _translation(run, "u1", "здравствуйте"),
            _translation(run, "u1", "Hallo", "de"),
        ]
    )

    assert waiting == []
    assert _rows(run) == [("u1", "de", "Hallo", 0), ("u1", "ru", "здравствуйте", 0)]
    again = SegmentTranslation.objects.get(language="ru")
    assert again.pk == first.pk and again.created_at == first.created_at
    assert again.updated_at >= first.updated_at


@pytest.mark.django_db
def test_the_same_translation_twice_in_one_batch_is_stored_once_the_latest_winning(run):
    store.segments_upsert(finals=[_final(run, "u1")])
    store.translations_upsert(
        translations=[_translation(run, "u1", "первый"), _translation(run, "u1", "второй")]
    )
    assert _rows(run) == [("u1", "ru", "второй", 0)]


@pytest.mark.django_db
def test_a_translation_of_a_final_not_stored_is_handed_back(run):
    waiting = store.translations_upsert(translations=[_translation(run, "later", "позже")])
    assert waiting == [_translation(run, "later", "позже")]
    assert _rows(run) == []


@pytest.mark.django_db
def test_a_live_translation_sent_again_never_replaces_one_made_from_a_corrected_text(run):
    store.segments_upsert(finals=[_final(run, "u1")])
    segment = TranscriptSegment.objects.get()
    TranscriptSegment.objects.filter(pk=segment.pk).update(text="hello there", revision=1)
    SegmentTranslation.objects.create(
        session_id=run.session_id,
        segment=segment,
        language="ru",
        text="привет всем",
        source="llm",
        source_revision=1,
    )

    store.translations_upsert(translations=[_translation(run, "u1", "привет")])

    assert _rows(run) == [("u1", "ru", "привет всем", 1)]


@pytest.mark.django_db
def test_a_live_translation_of_a_final_people_corrected_is_stored_as_stale(run):
    """It translates the text as recognised (revision 0), not the corrected one."""
    store.segments_upsert(finals=[_final(run, "u1")])
    TranscriptSegment.objects.update(text="hello there", revision=2)

    store.translations_upsert(translations=[_translation(run, "u1", "привет")])

    assert _rows(run) == [("u1", "ru", "привет", 0)]


# --- the batcher ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_translation_that_comes_before_its_final_is_stored_lands_with_the_final(run):
    batcher = RunBatcher()
    batcher.add_translation(_translation(run, "u1", "привет"))

    assert await batcher.flush()
    assert batcher.has_pending(run.pk), "it waits for its final"
    batcher.add_final(_final(run, "u1"))
    assert await batcher.flush()

    assert not batcher.has_pending(run.pk)
    assert await database_sync_to_async(_rows)(run) == [("u1", "ru", "привет", 0)]


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_translation_whose_final_never_comes_is_dropped_after_the_last_round(run):
    batcher = RunBatcher()
    batcher.add_translation(_translation(run, "never", "никогда"))
    for _ in range(TRANSLATION_MAX_WAIT_ROUNDS - 1):
        assert await batcher.flush()
    assert batcher.has_pending(run.pk)

    assert await batcher.flush()

    assert not batcher.has_pending(run.pk), "dropped after the last round"
    assert await database_sync_to_async(_rows)(run) == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_failing_translation_write_loses_no_final_and_no_translation(run, monkeypatch):
    batcher = RunBatcher()
    upsert = store.translations_upsert

    def broken(**_: object) -> list[FinalTranslation]:
        raise RuntimeError("database away")

    monkeypatch.setattr(store, "translations_upsert", broken)
    batcher.add_final(_final(run, "u1"))
    batcher.add_translation(_translation(run, "u1", "привет"))

    assert not await batcher.flush(), "the round reports the failure"
    stored = await database_sync_to_async(
        lambda: list(TranscriptSegment.objects.values_list("utterance_id", flat=True))
    )()
    assert stored == ["u1"], "the final was stored regardless"
    assert batcher.pending == {} and batcher.has_pending(run.pk)

    monkeypatch.setattr(store, "translations_upsert", upsert)
    assert await batcher.flush()
    assert await database_sync_to_async(_rows)(run) == [("u1", "ru", "привет", 0)]
    assert not batcher.has_pending(run.pk)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_failing_final_write_holds_its_translations_back_too(run, monkeypatch):
    batcher = RunBatcher()
    segments = store.segments_upsert

    def broken(**_: object) -> int:
        raise RuntimeError("database away")

    monkeypatch.setattr(store, "segments_upsert", broken)
    batcher.add_final(_final(run, "u1"))
    batcher.add_translation(_translation(run, "u1", "привет"))
    for _ in range(TRANSLATION_MAX_WAIT_ROUNDS + 2):
        assert not await batcher.flush()

    monkeypatch.setattr(store, "segments_upsert", segments)
    assert await batcher.flush()
    assert await database_sync_to_async(_rows)(run) == [("u1", "ru", "привет", 0)]


def test_pending_translations_are_bounded_like_finals(settings):
    settings.TRANSCRIPTION_MAX_PENDING_FINALS = 10
    run = TranscriptionRun(pk=1, session_id=1)
    batcher = RunBatcher()
    for n in range(15):
        batcher.add_translation(_translation(run, f"u{n}", "текст"))
    batcher.add_translation(_translation(run, "u14", "новый текст"))
    assert [key[1] for key in batcher.translations] == [f"u{n}" for n in range(5, 15)]
    assert batcher.translations[(1, "u14", "ru")].text == "новый текст"


# --- who reads which language ----------------------------------------------------------------


@pytest.mark.django_db
def test_caption_languages_are_those_of_the_people_present_in_one_query(
    space, owner, member, video_session, django_assert_num_queries
):
    other = VideoSessionFactory(space=space, created_by=owner)
    gone = UserFactory()
    for user, language in ((owner, "ru"), (member, "ru"), (gone, "de")):
        user.caption_language = language
        user.save()
        session_join(session=video_session, user=user)
    session_join(session=other, user=member)
    video_session.participants.filter(user=gone).update(left_at=timezone.now())
    original = UserFactory()
    session_join(session=other, user=original)  # reads the original: no language

    with django_assert_num_queries(1):
        languages = store.caption_languages(session_ids=[video_session.pk, other.pk])

    assert languages == {video_session.pk: {"ru"}, other.pk: {"ru"}}
    assert store.caption_languages(session_ids=[]) == {}


# --- the meter --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_translation_meter_is_written_only_for_the_runs_this_runner_holds(run, space, owner):
    TranscriptionRun.objects.filter(pk=run.pk).update(control_channel="mine")
    elsewhere = VideoSessionFactory(space=space, created_by=owner)
    lost = TranscriptionRun.objects.create(
        session=elsewhere, mode="BROWSER", provider="local", control_channel="someone-else"
    )
    TranscriptionUsage.objects.create(session=elsewhere, run=lost, provider="local")
    counts = {"ru": TranslationCounts(characters=1200, segments=3, audio_seconds=10.5)}

    batching._checkpoint(
        counters={},
        owners={run.pk: "mine", lost.pk: "mine"},
        translations={run.pk: ("gladia", counts), lost.pk: ("gladia", counts)},
    )

    row = TranslationUsage.objects.get()
    assert (row.run_id, row.language, row.provider) == (run.pk, "ru", "gladia")
    assert (row.characters, row.segments, row.audio_seconds) == (1200, 3, 10.5)
    assert row.user_id == owner.pk
    assert row.total_cost == Decimal("0.0240")
