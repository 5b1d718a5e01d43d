"""Exports in a caption language (``?lang=ru``): every format gives the stored translations,
the original where a segment has none (labelled with its language, and said in the heading),
stale translations marked in JSON; a bad ``lang`` is a 400, never a 500."""

from __future__ import annotations

import html
import json
from urllib.parse import quote

import pytest
import srt
import webvtt
from django.utils import translation

from rooms.errors import DomainError
from sessions_app.models import VideoSession
from tests.transcription.transcripts import store_transcript
from transcription.archive import exports
from transcription.archive.exports import Cue, TranscriptMeta
from transcription.models import SegmentTranslation, TranscriptSegment
from transcription.translation import caption_language_clean

STORED = [
    (0.0, 2.0, "id-olivia", "Olivia Owner", "Good morning, everyone."),
    (2.0, 4.5, "id-olivia", "Olivia Owner", "Let's start."),
    (4.5, 6.0, "id-max", "Max Member", "Sounds good."),
    (3600.25, 3605.0, "id-max", "Max Member", "After an hour."),
]
RUSSIAN = {0: "Доброе утро всем.", 1: "Давайте начнём.", 3: "Через час."}
FORMATS = ["txt", "srt", "vtt", "json", "md"]


@pytest.fixture
def ended_session(video_session: VideoSession) -> VideoSession:
    segments = store_transcript(video_session, STORED)
    SegmentTranslation.objects.bulk_create(
        SegmentTranslation(
            session=video_session,
            segment=segments[i],
            language="ru",
            text=text,
            source=SegmentTranslation.Source.GLADIA,
        )
        for i, text in RUSSIAN.items()
    )
    video_session.status = VideoSession.Status.ENDED
    video_session.save()
    return video_session


def url(session: VideoSession, fmt: str, lang: str) -> str:
    return f"/api/sessions/{session.slug}/transcript.{fmt}?lang={quote(lang)}"


def get_text(api, session: VideoSession, fmt: str, lang: str = "ru") -> str:
    response = api.get(url(session, fmt, lang))
    assert response.status_code == 200, response.content
    return response.content.decode("utf-8")


# --- the download API --------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_comes_in_the_language_with_untranslated_lines_marked(
    member_api, ended_session, fmt
):
    response = member_api.get(url(ended_session, fmt, "ru"))

    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        f'attachment; filename="{ended_session.slug}.ru.{fmt}"'
    )
    text = response.content.decode("utf-8")
    for russian in RUSSIAN.values():
        assert russian in text
    assert "Good morning" not in text or fmt == "json"  # the original only beside it in JSON
    assert "Sounds good." in text  # no translation: as spoken


def test_srt_and_vtt_label_every_cue_with_its_language(member_api, ended_session):
    subtitles = [s.content for s in srt.parse(get_text(member_api, ended_session, "srt"))]
    captions = list(webvtt.from_string(get_text(member_api, ended_session, "vtt")))

    assert subtitles == [
        "Olivia Owner: [ru] Доброе утро всем.",
        "Olivia Owner: [ru] Давайте начнём.",
        "Max Member: [en] Sounds good.",
        "Max Member: [ru] Через час.",
    ]
    assert [html.unescape(c.text) for c in captions] == [
        "[ru] Доброе утро всем.",
        "[ru] Давайте начнём.",
        "[en] Sounds good.",
        "[ru] Через час.",
    ]
    assert [c.voice for c in captions] == [
        "Olivia Owner",
        "Olivia Owner",
        "Max Member",
        "Max Member",
    ]
    vtt = get_text(member_api, ended_session, "vtt")
    assert vtt.startswith(
        "WEBVTT\n\nNOTE\nTranslated into Russian. 1 line has no translation and is as spoken, "
        "marked with its language.\n\n"
    )


def test_txt_and_markdown_say_what_is_translated(member_api, ended_session):
    txt = get_text(member_api, ended_session, "txt").splitlines()
    markdown = get_text(member_api, ended_session, "md")

    assert (
        "Translated into Russian. 1 line has no translation and is as spoken, marked with its "
        "language." in txt
    )
    assert [line for line in txt if line.startswith("[")] == [
        "[0:00:00] Olivia Owner: [ru] Доброе утро всем. Давайте начнём.",
        "[0:00:04] Max Member: [en] Sounds good.",
        "[1:00:00] Max Member: [ru] Через час.",
    ]
    assert "**[0:00:04] Max Member:** \\[en\\] Sounds good." in markdown


def test_json_gives_the_language_each_original_and_staleness(member_api, ended_session):
    segment = TranscriptSegment.objects.get(session=ended_session, utterance_id="u1")
    segment.text = "Let's begin."
    segment.revision = 1
    segment.save()

    document = json.loads(get_text(member_api, ended_session, "json"))

    assert document["session"]["language"] == "ru"
    assert [
        (s["text"], s["language"], s["original"], s["stale"], s["edited"])
        for s in document["segments"]
    ] == [
        (
            "Доброе утро всем.",
            "ru",
            {"text": "Good morning, everyone.", "language": "en"},
            False,
            False,
        ),
        ("Давайте начнём.", "ru", {"text": "Let's begin.", "language": "en"}, True, True),
        ("Sounds good.", "en", None, False, False),
        ("Через час.", "ru", {"text": "After an hour.", "language": "en"}, False, False),
    ]
    txt = get_text(member_api, ended_session, "txt")
    assert "1 translation is older than a correction of its original." in txt


def test_without_lang_or_with_an_empty_one_the_export_is_as_spoken(member_api, ended_session):
    for path in (
        f"/api/sessions/{ended_session.slug}/transcript.srt",
        url(ended_session, "srt", ""),
        f"/api/sessions/{ended_session.slug}/transcript?format=srt&lang=",
    ):
        text = member_api.get(path).content.decode()
        assert next(s.content for s in srt.parse(text)) == "Olivia Owner: Good morning, everyone."
    document = json.loads(member_api.get(url(ended_session, "json", "")).content)
    assert "language" not in document["session"] and "original" not in document["segments"][0]


def test_a_language_without_translations_is_all_as_spoken_and_said_so(member_api, ended_session):
    txt = get_text(member_api, ended_session, "txt", "de")

    assert "Translated into German. 4 lines have no translation and are as spoken" in txt
    assert "[0:00:00] Olivia Owner: [en] Good morning, everyone. Let's start." in txt


def test_the_query_form_takes_lang_too(member_api, ended_session):
    response = member_api.get(f"/api/sessions/{ended_session.slug}/transcript?format=txt&lang=ru")

    assert response.status_code == 200
    assert "Доброе утро всем." in response.content.decode()


@pytest.mark.parametrize("lang", ["zz", "ko", "russian", "RU", "ru-RU", "x" * 300, "\x00"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_a_bad_lang_is_a_clear_400(member_api, ended_session, fmt, lang):
    for path in (
        url(ended_session, fmt, lang),
        f"/api/sessions/{ended_session.slug}/transcript?format={fmt}&lang={quote(lang)}",
    ):
        response = member_api.get(path)

        assert response.status_code == 400
        assert response["Content-Type"] == "application/json"
        body = response.json()
        assert body["code"] == "language_invalid"
        with pytest.raises(DomainError) as refused:
            caption_language_clean(lang)
        assert body["detail"] == refused.value.message


def test_outsider_gets_404_in_any_language(outsider_api, ended_session):
    assert outsider_api.get(url(ended_session, "txt", "ru")).status_code == 404
    assert outsider_api.get(url(ended_session, "txt", "zz")).status_code == 404


def test_anonymous_is_refused(client, ended_session):
    assert client.get(url(ended_session, "txt", "ru")).status_code in (401, 403)


# --- the formats on their own ------------------------------------------------------------------

META = TranscriptMeta(
    slug="abc", title="Sync", space="Space", started_at=None, ended_at=None, language="ru"
)


def russian(cue: Cue, text: str, stale: bool = False) -> Cue:
    return exports.translated_cue(cue, text=text, language="ru", stale=stale)


def test_an_export_wholly_translated_has_no_labels():
    cues = [
        russian(Cue(0.0, 1.0, "A", "a", "Hello.", "en"), "Привет."),
        russian(Cue(1.0, 2.0, "B", "b", "Bye.", "en"), "Пока."),
        Cue(2.0, 3.0, "B", "b", "Да.", "ru"),  # said in Russian: nothing to translate
    ]

    assert [s.content for s in srt.parse(exports.to_srt(cues, META))] == [
        "A: Привет.",
        "B: Пока.",
        "B: Да.",
    ]
    assert exports.to_txt(cues, META).splitlines()[3] == "Translated into Russian."


def test_speech_in_an_unknown_language_is_labelled_original_in_the_readers_language():
    cues = [
        russian(Cue(0.0, 1.0, "A", "a", "Hello.", "en"), "Привет."),
        Cue(1.0, 2.0, "B", "b", "Hm.", ""),
    ]

    assert [s.content for s in srt.parse(exports.to_srt(cues, META))] == [
        "A: [ru] Привет.",
        "B: [original] Hm.",
    ]
    with translation.override("ru"):
        text = exports.to_srt(cues, META)
    assert "B: [оригинал] Hm." in text


def test_a_translated_cue_keeps_times_and_speaker_and_drops_recognition_details():
    cue = Cue(
        1.0, 2.5, "A", "a", "Hello there.", "en", 0.4, [{"text": "Hello"}, {"text": "there."}], 2
    )

    shown = russian(cue, " Привет\n там. ", stale=True)

    assert (shown.start, shown.end, shown.speaker, shown.revision) == (1.0, 2.5, "A", 2)
    assert (shown.text, shown.language, shown.original, shown.original_language) == (
        "Привет там.",
        "ru",
        "Hello there.",
        "en",
    )
    assert (shown.confidence, shown.words, shown.stale) == (None, None, True)
