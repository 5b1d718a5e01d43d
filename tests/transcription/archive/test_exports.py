"""Transcript exports: files that real SRT/WebVTT parsers read back exactly, a JSON document
with a schema, readable TXT/Markdown, and a members-only download API."""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime, timedelta

import jsonschema
import pytest
import srt
import webvtt
from django.utils import translation

from sessions_app.models import VideoSession
from tests.transcription.transcripts import store_transcript
from transcription.archive import exports
from transcription.archive.exports import Cue, TranscriptMeta

META = TranscriptMeta(
    slug="abc-defg-hjkmn",
    title="Weekly *sync* <b>",
    space="Owner's space",
    started_at=datetime(2026, 11, 22, 9, 0, tzinfo=UTC),
    ended_at=datetime(2026, 11, 22, 11, 5, tzinfo=UTC),
)

CUES = [
    Cue(0.0, 2.5, "Olivia Owner", "u-olivia", "Good morning, everyone.", "en"),
    Cue(2.5, 4.25, "Olivia Owner", "u-olivia", "Let's start.", "en"),
    Cue(5.0, 7.1, "Max Member", "u-max", "Ça marche — 日本語 too 🎉", "en"),
    Cue(61.004, 62.999, "Room", "", "x --> y & <b>bold</b>", "en"),
    # Past the first hour, and past ten hours: two-digit hours in both formats.
    Cue(3725.5, 3731.0, "Max Member", "u-max", "An hour in.", "en"),
    Cue(36000.0, 36001.5, "Olivia Owner", "u-olivia", "Ten hours.", "en"),
]

JSON_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["version", "session", "segments"],
    "additionalProperties": False,
    "properties": {
        "version": {"const": 1},
        "session": {
            "type": "object",
            "required": ["slug", "title", "space", "started_at", "ended_at"],
            "additionalProperties": False,
            "properties": {
                "slug": {"type": "string"},
                "title": {"type": "string"},
                "space": {"type": "string"},
                "started_at": {"type": ["string", "null"], "format": "date-time"},
                "ended_at": {"type": ["string", "null"], "format": "date-time"},
            },
        },
        "segments": {
            "type": "array",
            "items": {
                "type": "object",
                "required": [
                    "start",
                    "end",
                    "speaker",
                    "speaker_identity",
                    "text",
                    "language",
                    "confidence",
                    "edited",
                ],
                "additionalProperties": False,
                "properties": {
                    "start": {"type": "number", "minimum": 0},
                    "end": {"type": "number", "minimum": 0},
                    "speaker": {"type": "string", "minLength": 1},
                    "speaker_identity": {"type": ["string", "null"]},
                    "text": {"type": "string", "minLength": 1},
                    "language": {"type": "string"},
                    "confidence": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
                    "edited": {"type": "boolean"},
                    "words": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["text", "start", "end", "confidence"],
                            "additionalProperties": False,
                            "properties": {
                                "text": {"type": "string"},
                                "start": {"type": "number"},
                                "end": {"type": "number"},
                                "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                            },
                        },
                    },
                },
            },
        },
    },
}


def _ms(seconds: float) -> timedelta:
    return timedelta(milliseconds=round(seconds * 1000))


# --- SRT ----------------------------------------------------------------------------------------


def test_srt_round_trips_through_the_srt_parser_with_times_speakers_and_text():
    parsed = list(srt.parse(exports.to_srt(CUES)))

    assert [s.index for s in parsed] == [1, 2, 3, 4, 5, 6]
    assert [(s.start, s.end) for s in parsed] == [(_ms(c.start), _ms(c.end)) for c in CUES]
    assert [s.content for s in parsed] == [
        "Olivia Owner: Good morning, everyone.",
        "Olivia Owner: Let's start.",
        "Max Member: Ça marche — 日本語 too 🎉",
        "Room: x → y & <b>bold</b>",
        "Max Member: An hour in.",
        "Olivia Owner: Ten hours.",
    ]


def test_srt_times_are_hh_mm_ss_comma_milliseconds_past_the_first_hour():
    text = exports.to_srt([CUES[4], CUES[5]])

    assert "01:02:05,500 --> 01:02:11,000" in text
    assert "10:00:00,000 --> 10:00:01,500" in text


def test_text_with_arrows_newlines_and_blank_lines_stays_one_cue_each():
    tricky = [
        exports.cue_from_row(1.0, 2.0, "A", "a", "first line\n\nsecond --> third", "en"),
        exports.cue_from_row(3.0, 4.0, "B", "b", "00:00:09,000 --> 00:00:10,000", "en"),
    ]

    parsed_srt = list(srt.parse(exports.to_srt(tricky)))
    parsed_vtt = list(webvtt.from_string(exports.to_vtt(tricky)))

    assert [s.content for s in parsed_srt] == [
        "A: first line second → third",
        "B: 00:00:09,000 → 00:00:10,000",
    ]
    assert [(c.start, c.end) for c in parsed_vtt] == [
        ("00:00:01.000", "00:00:02.000"),
        ("00:00:03.000", "00:00:04.000"),
    ]
    assert [html.unescape(c.text) for c in parsed_vtt] == [
        "first line second --> third",
        "00:00:09,000 --> 00:00:10,000",
    ]


def test_a_final_without_words_is_left_out_and_a_zero_length_final_still_lasts():
    assert exports.cue_from_row(1.0, 2.0, "A", "a", " \n ", "en") is None
    zero = exports.cue_from_row(5.0, 5.0, "A", "a", "hm", "en")

    (parsed,) = webvtt.from_string(exports.to_vtt([zero]))

    assert (parsed.start, parsed.end) == ("00:00:05.000", "00:00:05.001")


# --- WebVTT -------------------------------------------------------------------------------------


def test_vtt_round_trips_through_webvtt_py_with_voice_tags():
    captions = list(webvtt.from_string(exports.to_vtt(CUES)))

    assert [(c.start, c.end) for c in captions] == [
        ("00:00:00.000", "00:00:02.500"),
        ("00:00:02.500", "00:00:04.250"),
        ("00:00:05.000", "00:00:07.100"),
        ("00:01:01.004", "00:01:02.999"),
        ("01:02:05.500", "01:02:11.000"),
        ("10:00:00.000", "10:00:01.500"),
    ]
    assert [c.voice for c in captions] == [c.speaker for c in CUES]
    assert [html.unescape(c.text) for c in captions] == [c.text for c in CUES]


def test_vtt_escapes_markup_in_text_and_speaker_names():
    cue = Cue(1.0, 2.0, "Al <b>& Bo", "x", "<script>alert(1)</script> a --> b", "en")

    text = exports.to_vtt([cue])

    assert "<script>" not in text and "a --> b" not in text
    (caption,) = webvtt.from_string(text)
    assert html.unescape(caption.voice) == "Al <b>& Bo"
    assert html.unescape(caption.text) == "<script>alert(1)</script> a --> b"


# --- empty transcripts --------------------------------------------------------------------------


def test_empty_transcript_gives_valid_empty_files():
    assert list(srt.parse(exports.to_srt([]))) == []
    assert list(webvtt.from_string(exports.to_vtt([]))) == []
    assert "(No transcript was recorded.)" in exports.to_txt([], META)
    assert "_No transcript was recorded._" in exports.to_markdown([], META)
    document = json.loads(exports.to_json([], META))
    jsonschema.validate(document, JSON_SCHEMA)
    assert document["segments"] == []


# --- JSON, TXT, Markdown ------------------------------------------------------------------------


def test_json_export_matches_its_schema_and_keeps_unicode():
    text = exports.to_json(CUES, META)

    document = json.loads(text)
    jsonschema.validate(document, JSON_SCHEMA, format_checker=jsonschema.FormatChecker())
    assert "日本語" in text  # not \u-escaped
    assert document["session"]["started_at"] == "2026-11-22T09:00:00+00:00"
    assert document["segments"][2] == {
        "start": 5.0,
        "end": 7.1,
        "speaker": "Max Member",
        "speaker_identity": "u-max",
        "text": "Ça marche — 日本語 too 🎉",
        "language": "en",
        "confidence": None,
        "edited": False,
    }
    assert document["segments"][3]["speaker_identity"] is None


def test_txt_merges_consecutive_finals_of_a_speaker_into_one_turn():
    lines = exports.to_txt(CUES, META).splitlines()

    assert lines[0] == "Weekly *sync* <b>"
    assert "[0:00:00] Olivia Owner: Good morning, everyone. Let's start." in lines
    assert "[0:00:05] Max Member: Ça marche — 日本語 too 🎉" in lines
    assert "[1:02:05] Max Member: An hour in." in lines
    assert "[10:00:00] Olivia Owner: Ten hours." in lines
    assert len([line for line in lines if line.startswith("[")]) == 5


def test_markdown_escapes_markup_in_titles_names_and_text():
    text = exports.to_markdown(CUES, META)

    assert text.startswith("# Weekly \\*sync\\* \\<b\\>\n")
    assert "**[0:01:01] Room:** x --\\> y \\& \\<b\\>bold\\</b\\>" in text
    assert "**[0:00:00] Olivia Owner:** Good morning, everyone. Let's start." in text


def test_unknown_speakers_are_called_room():
    assert exports.speaker_label("") == "Room"
    assert exports.speaker_label("  ") == "Room"
    assert exports.speaker_label(None) == "Room"
    assert exports.speaker_label(" Ada ") == "Ada"


# --- languages ----------------------------------------------------------------------------------

MIXED = [
    Cue(0.0, 2.0, "Olivia Owner", "u-olivia", "Good morning.", "en"),
    Cue(2.0, 4.0, "Olivia Owner", "u-olivia", "Доброе утро, коллеги.", "ru"),
    Cue(4.0, 6.0, "Olivia Owner", "u-olivia", "Начнём.", "ru"),
    Cue(6.0, 8.0, "Max Member", "u-max", "Sounds good.", "en"),
    Cue(8.0, 9.0, "Room", "", "hm", ""),
]


def test_a_transcript_in_several_languages_names_each_cues_language_in_every_text_format():
    srt_lines = [s.content for s in srt.parse(exports.to_srt(MIXED))]
    vtt_lines = [html.unescape(c.text) for c in webvtt.from_string(exports.to_vtt(MIXED))]
    txt = exports.to_txt(MIXED, META).splitlines()
    markdown = exports.to_markdown(MIXED, META)

    assert srt_lines == [
        "Olivia Owner: [en] Good morning.",
        "Olivia Owner: [ru] Доброе утро, коллеги.",
        "Olivia Owner: [ru] Начнём.",
        "Max Member: [en] Sounds good.",
        "Room: hm",  # no language recorded: no label
    ]
    assert vtt_lines == [
        "[en] Good morning.",
        "[ru] Доброе утро, коллеги.",
        "[ru] Начнём.",
        "[en] Sounds good.",
        "hm",
    ]
    # A turn ends where the language changes, so each paragraph has one label.
    assert [line for line in txt if line.startswith("[")] == [
        "[0:00:00] Olivia Owner: [en] Good morning.",
        "[0:00:02] Olivia Owner: [ru] Доброе утро, коллеги. Начнём.",
        "[0:00:06] Max Member: [en] Sounds good.",
        "[0:00:08] Room: hm",
    ]
    assert "**[0:00:02] Olivia Owner:** \\[ru\\] Доброе утро, коллеги. Начнём." in markdown


def test_a_transcript_in_one_language_has_no_language_labels():
    russian = [
        Cue(0.0, 2.0, "Olivia Owner", "u-olivia", "Доброе утро.", "ru"),
        Cue(2.0, 4.0, "Max Member", "u-max", "Привет.", "ru"),
        Cue(4.0, 5.0, "Max Member", "u-max", "Да.", ""),
    ]

    files = [exports.to_srt(russian), exports.to_vtt(russian), exports.to_txt(russian, META)]
    files.append(exports.to_markdown(russian, META))

    for text in files:
        assert "[ru]" not in text and "\\[ru\\]" not in text
    assert "[0:00:02] Max Member: Привет. Да." in exports.to_txt(russian, META).splitlines()


def test_the_json_export_gives_every_segment_its_own_language():
    document = json.loads(exports.to_json(MIXED, META))

    jsonschema.validate(document, JSON_SCHEMA)
    assert [s["language"] for s in document["segments"]] == ["en", "ru", "ru", "en", ""]


def test_headings_and_dates_follow_the_active_language():
    with translation.override("ru"):
        txt = exports.to_txt([], META)
        markdown = exports.to_markdown(MIXED, META)
        nobody = exports.cue_from_row(8.0, 9.0, "", "", "hm", "")
        srt_text = exports.to_srt([*MIXED[:-1], nobody])

    assert "началась 22 ноября 2026 г. 9:00 UTC · закончилась 22 ноября 2026 г. 11:05 UTC" in txt
    assert "(Расшифровка не записывалась.)" in txt
    assert "- Пространство: Owner's space" in markdown
    assert "## Расшифровка" in markdown
    assert "Комната: hm" in srt_text  # speech attributed to nobody
    assert exports.speaker_label("") == "Room"  # back in the default language
    english = exports.to_txt([], META)
    assert "started Nov. 22, 2026, 9 a.m. UTC · ended Nov. 22, 2026, 11:05 a.m. UTC" in english


# --- the download API ---------------------------------------------------------------------------

STORED = [
    (0.0, 2.0, "", "", "Welcome to the room."),
    (2.0, 4.5, "id-olivia", "Olivia Owner", "Hello — café ünïcode."),
    (4.5, 6.0, "id-olivia", "Olivia Owner", "Second sentence."),
    (3600.25, 3605.0, "id-max", "Max Member", "After an hour."),
]


@pytest.fixture
def ended_session(video_session: VideoSession) -> VideoSession:
    store_transcript(video_session, STORED)
    video_session.status = VideoSession.Status.ENDED
    video_session.save()
    return video_session


def path_url(session: VideoSession, fmt: str) -> str:
    return f"/api/sessions/{session.slug}/transcript.{fmt}"


def query_url(session: VideoSession, fmt: str) -> str:
    return f"/api/sessions/{session.slug}/transcript?format={fmt}"


@pytest.mark.parametrize(
    ("fmt", "content_type"),
    [
        ("txt", "text/plain; charset=utf-8"),
        ("srt", "application/x-subrip; charset=utf-8"),
        ("vtt", "text/vtt; charset=utf-8"),
        ("json", "application/json; charset=utf-8"),
        ("md", "text/markdown; charset=utf-8"),
    ],
)
def test_member_downloads_every_format_as_an_attachment(
    member_api, ended_session, fmt, content_type
):
    for url in (path_url(ended_session, fmt), query_url(ended_session, fmt)):
        response = member_api.get(url)

        assert response.status_code == 200, response.content
        assert response["Content-Type"] == content_type
        assert response["Content-Disposition"] == (
            f'attachment; filename="{ended_session.slug}.{fmt}"'
        )
        assert "café ünïcode" in response.content.decode("utf-8")


def test_downloaded_srt_and_vtt_carry_the_stored_times_and_speakers(owner_api, ended_session):
    subtitles = list(srt.parse(owner_api.get(path_url(ended_session, "srt")).content.decode()))
    captions = list(
        webvtt.from_string(owner_api.get(path_url(ended_session, "vtt")).content.decode())
    )

    assert [(s.start, s.end) for s in subtitles] == [(_ms(a), _ms(b)) for a, b, *_ in STORED]
    assert [s.content.split(":")[0] for s in subtitles] == [
        "Room",
        "Olivia Owner",
        "Olivia Owner",
        "Max Member",
    ]
    assert captions[3].start == "01:00:00.250"
    assert [c.voice for c in captions] == ["Room", "Olivia Owner", "Olivia Owner", "Max Member"]


def test_downloaded_json_lists_the_stored_segments(member_api, ended_session):
    document = member_api.get(query_url(ended_session, "json")).json()

    jsonschema.validate(document, JSON_SCHEMA)
    assert document["session"]["slug"] == ended_session.slug
    assert document["session"]["space"] == "Owner's space"
    assert [s["text"] for s in document["segments"]] == [text for *_, text in STORED]


def test_a_live_session_can_be_downloaded_too(member_api, video_session):
    store_transcript(video_session, STORED[:1])

    response = member_api.get(path_url(video_session, "txt"))

    assert response.status_code == 200
    assert "[0:00:00] Room: Welcome to the room." in response.content.decode()


def test_outsider_gets_404_for_transcript_exports(outsider_api, ended_session):
    assert outsider_api.get(path_url(ended_session, "srt")).status_code == 404
    assert outsider_api.get(query_url(ended_session, "json")).status_code == 404
    # Even with a bad format an outsider learns nothing about the session.
    assert outsider_api.get(path_url(ended_session, "docx")).status_code == 404


def test_anonymous_gets_401_for_transcript_exports(ended_session):
    from rest_framework.test import APIClient

    response = APIClient().get(path_url(ended_session, "txt"))

    assert response.status_code == 401


def test_unknown_format_is_a_400_naming_the_formats(member_api, ended_session):
    for url in (
        path_url(ended_session, "docx"),
        query_url(ended_session, "pdf"),
        f"/api/sessions/{ended_session.slug}/transcript",
    ):
        response = member_api.get(url)

        assert response.status_code == 400, url
        assert response["Content-Type"] == "application/json"
        body = response.json()
        assert body["code"] == "unknown_format"
        assert "txt, srt, vtt, json, md" in body["detail"]


def test_missing_session_is_404(member_api):
    assert member_api.get("/api/sessions/nope-nope-nope/transcript.txt").status_code == 404


def test_json_export_carries_confidence_and_the_recognised_words(member_api, ended_session):
    words = [
        {"text": "Welcome", "start": 0.0, "end": 0.4, "confidence": 0.95},
        {"text": "room", "start": 0.9, "end": 1.2, "confidence": 0.41},
    ]
    first = ended_session.segments.order_by("start_offset").first()
    type(first).objects.filter(pk=first.pk).update(confidence=0.68, words=words)

    document = member_api.get(query_url(ended_session, "json")).json()

    jsonschema.validate(document, JSON_SCHEMA)
    segment = document["segments"][0]
    assert (segment["confidence"], segment["words"], segment["edited"]) == (0.68, words, False)
    assert all(s["confidence"] is None and "words" not in s for s in document["segments"][1:])


def test_downloads_carry_each_stored_segments_own_language(member_api, ended_session):
    second = ended_session.segments.order_by("start_offset")[1]
    type(second).objects.filter(pk=second.pk).update(language="ru")

    document = member_api.get(query_url(ended_session, "json")).json()
    txt = member_api.get(path_url(ended_session, "txt")).content.decode()

    assert [s["language"] for s in document["segments"]] == ["en", "ru", "en", "en"]
    assert "[0:00:02] Olivia Owner: [ru] Hello — café ünïcode." in txt.splitlines()
    assert "[0:00:04] Olivia Owner: [en] Second sentence." in txt.splitlines()


def test_a_download_is_written_in_the_requesters_language(member_api, ended_session):
    srt_text = member_api.get(path_url(ended_session, "srt"), HTTP_ACCEPT_LANGUAGE="ru")
    refused = member_api.get(path_url(ended_session, "docx"), HTTP_ACCEPT_LANGUAGE="ru")

    assert srt_text.content.decode().splitlines()[2] == "Комната: Welcome to the room."
    assert refused.status_code == 400
    assert refused.json()["detail"] == (
        "Неизвестный формат расшифровки («docx»): выберите один из txt, srt, vtt, json, md."
    )
