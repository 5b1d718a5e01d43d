"""Corrections of a stored transcript (issue 14 §3): who may, history, conflicts, reverts, and
that every reader (search, exports, talk time, re-delivered finals) sees the corrected text."""

from __future__ import annotations

import dataclasses
import json
import threading

import pytest
from django.db import connection
from django.urls import reverse

from sessions_app.models import Participant, VideoSession
from tests.factories import SpaceMemberFactory, UserFactory
from tests.transcription.transcripts import end_with_transcript, store_transcript
from transcription.archive import transcript
from transcription.live.store import FinalSegment, segments_upsert
from transcription.models import SegmentRevision, TranscriptSegment


@pytest.fixture
def finished(video_session, owner, member) -> VideoSession:
    """An ended session the owner hosted and the member attended, with a stored transcript."""
    end_with_transcript(
        video_session,
        [owner, member],
        [
            (1.0, 3.0, owner.identity, owner.name, "we will then direct the other white"),
            (3.5, 6.0, member.identity, member.name, "the budget is approved"),
            (6.5, 9.0, "", "", "someone from the room speaks"),
            (9.5, 12.0, "", "", "the room again"),
        ],
    )
    return video_session


def _edit_url(session: VideoSession, uid: str) -> str:
    return reverse("api-segment-edit", kwargs={"slug": session.slug, "utterance_id": uid})


def _segment(session: VideoSession, uid: str) -> TranscriptSegment:
    return TranscriptSegment.objects.get(session=session, utterance_id=uid)


# --- who may ------------------------------------------------------------------------------------


def test_an_attendee_corrects_a_segment_and_the_original_is_kept(finished, member_api, member):
    response = member_api.patch(
        _edit_url(finished, "u0"),
        {"base_revision": 0, "text": "we will then draft the other reply"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["text"] == "we will then draft the other reply"
    assert response.json()["revision"] == 1
    segment = _segment(finished, "u0")
    assert (segment.text, segment.revision) == ("we will then draft the other reply", 1)
    [revision] = SegmentRevision.objects.filter(segment=segment)
    assert revision.kind == "text" and revision.by == member
    assert revision.before["text"] == "we will then direct the other white"
    assert revision.after["text"] == "we will then draft the other reply"


def test_the_host_may_edit_without_having_attended(video_session, owner_api):
    store_transcript(video_session, [(0.0, 1.0, "", "", "hello")])
    response = owner_api.patch(
        _edit_url(video_session, "u0"), {"base_revision": 0, "text": "hello all"}, format="json"
    )
    assert response.status_code == 200


def test_a_member_who_did_not_attend_may_not_edit(finished, space):
    absent = UserFactory()
    SpaceMemberFactory(space=space, user=absent)
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(absent)
    response = api.patch(
        _edit_url(finished, "u0"), {"base_revision": 0, "text": "x"}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["code"] == "edit_not_allowed"
    assert _segment(finished, "u0").revision == 0


def test_outsiders_learn_nothing_from_any_edit_route(finished, outsider_api):
    slug = finished.slug
    routes = [
        ("patch", _edit_url(finished, "u0"), {"base_revision": 0, "text": "x"}),
        ("get", reverse("api-segment-revisions", args=[slug, "u0"]), None),
        ("get", reverse("api-change-list", args=[slug]), None),
        ("get", reverse("api-speaker-list", args=[slug]), None),
        ("post", reverse("api-speaker-rename", args=[slug]), {"speaker_identity": "", "name": "x"}),
        ("post", reverse("api-change-revert", args=[slug, "abc"]), None),
    ]
    for method, url, body in routes:
        response = getattr(outsider_api, method)(url, body, format="json")
        assert response.status_code == 404, (method, url, response.status_code)
    assert not SegmentRevision.objects.exists()


# --- conflicts ----------------------------------------------------------------------------------


def test_a_stale_edit_gets_409_with_the_current_text_and_loses_nothing(
    finished, member_api, owner_api
):
    first = member_api.patch(
        _edit_url(finished, "u1"),
        {"base_revision": 0, "text": "the budget is approved."},
        format="json",
    )
    assert first.status_code == 200
    second = owner_api.patch(
        _edit_url(finished, "u1"),
        {"base_revision": 0, "text": "the budget was approved"},
        format="json",
    )
    assert second.status_code == 409
    body = second.json()
    assert body["code"] == "edit_conflict"
    assert body["current"]["text"] == "the budget is approved."
    assert body["current"]["revision"] == 1
    assert _segment(finished, "u1").text == "the budget is approved."


@pytest.mark.django_db(transaction=True)
def test_two_edits_of_one_segment_at_once_one_wins_one_gets_409(finished, owner, member):
    from rest_framework.test import APIClient

    barrier = threading.Barrier(2)
    results: dict[str, int] = {}

    def edit(user, text: str) -> None:
        api = APIClient()
        api.force_authenticate(user)
        barrier.wait()
        try:
            response = api.patch(
                _edit_url(finished, "u1"), {"base_revision": 0, "text": text}, format="json"
            )
            results[text] = response.status_code
        finally:
            connection.close()

    threads = [
        threading.Thread(target=edit, args=(owner, "owner's text")),
        threading.Thread(target=edit, args=(member, "member's text")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results.values()) == [200, 409], results
    winner = next(text for text, code in results.items() if code == 200)
    segment = _segment(finished, "u1")
    assert (segment.text, segment.revision) == (winner, 1)
    assert SegmentRevision.objects.filter(segment=segment).count() == 1


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"base_revision": 0, "text": "   "}, "text_required"),
        ({"base_revision": 0, "speaker_identity": "u-nobody"}, "not_participant"),
        ({"base_revision": -1, "text": "x"}, "invalid"),
        ({"text": "x"}, "invalid"),
        ({"base_revision": "zero", "text": "x"}, "invalid"),
        ({"base_revision": 0, "text": "x" * 5001}, "invalid"),
    ],
)
def test_bad_edits_are_400_and_change_nothing(finished, member_api, body, code):
    response = member_api.patch(_edit_url(finished, "u0"), body, format="json")
    assert response.status_code == 400, response.content
    if code != "invalid":
        assert response.json()["code"] == code
    assert _segment(finished, "u0").revision == 0


def test_editing_an_unknown_segment_is_404(finished, member_api):
    response = member_api.patch(
        _edit_url(finished, "nope"), {"base_revision": 0, "text": "x"}, format="json"
    )
    assert response.status_code == 404


# --- speakers -----------------------------------------------------------------------------------


def test_a_segment_is_given_to_another_participant_and_talk_time_follows(
    finished, member_api, owner, member
):
    response = member_api.patch(
        _edit_url(finished, "u0"),
        {"base_revision": 0, "speaker_identity": member.identity},
        format="json",
    )
    assert response.status_code == 200
    segment = _segment(finished, "u0")
    assert segment.speaker_identity == member.identity
    assert segment.participant == Participant.objects.get(session=finished, user=member)
    index = transcript.transcript_index(session=finished)
    talk = {t.identity: t for t in transcript.talk_time_list(session=finished, index=index)}
    assert talk[owner.identity].seconds == 0
    assert talk[member.identity].seconds == pytest.approx(2.0 + 2.5)


def test_renaming_the_room_names_every_unattributed_segment(finished, member_api):
    response = member_api.post(
        reverse("api-speaker-rename", args=[finished.slug]),
        {"speaker_identity": "", "speaker_name": "Room", "name": "Guest speaker"},
        format="json",
    )
    assert response.json() == {"segments": 2}
    names = set(
        TranscriptSegment.objects.filter(session=finished, speaker_identity="").values_list(
            "speaker_name", flat=True
        )
    )
    assert names == {"Guest speaker"}
    cues = transcript.export_cues(session=finished)
    assert [c.speaker for c in cues][2:] == ["Guest speaker", "Guest speaker"]
    changes = {r.change for r in SegmentRevision.objects.filter(kind="rename")}
    assert len(changes) == 1, "one action is one change"


def test_merging_two_speakers_gives_all_of_one_to_the_other(finished, member_api, owner):
    response = member_api.post(
        reverse("api-speaker-merge", args=[finished.slug]),
        {
            "source": {"speaker_identity": "", "speaker_name": "Room"},
            "target": {"speaker_identity": owner.identity, "speaker_name": owner.name},
        },
        format="json",
    )
    assert response.json() == {"segments": 2}
    owners = TranscriptSegment.objects.filter(session=finished, speaker_identity=owner.identity)
    assert owners.count() == 3


def test_speakers_are_listed_once_each_in_order(finished, member_api, owner, member):
    response = member_api.get(reverse("api-speaker-list", args=[finished.slug]))
    assert response.json() == [
        {"speaker_identity": owner.identity, "speaker_name": owner.name},
        {"speaker_identity": member.identity, "speaker_name": member.name},
        {"speaker_identity": "", "speaker_name": "Room"},
    ]


# --- history and revert -------------------------------------------------------------------------


def test_the_host_reverts_a_change_and_both_stay_in_the_history(finished, member_api, owner_api):
    member_api.post(
        reverse("api-speaker-rename", args=[finished.slug]),
        {"speaker_identity": "", "speaker_name": "Room", "name": "Guest"},
        format="json",
    )
    [change] = member_api.get(reverse("api-change-list", args=[finished.slug])).json()[:1]
    revert_url = reverse("api-change-revert", args=[finished.slug, change["change"]])

    assert member_api.post(revert_url).status_code == 403
    response = owner_api.post(revert_url)
    assert response.json() == {"segments": 2}
    assert set(
        TranscriptSegment.objects.filter(session=finished, speaker_identity="").values_list(
            "speaker_name", flat=True
        )
    ) == {""}
    history = member_api.get(reverse("api-change-list", args=[finished.slug])).json()
    assert [h["kind"] for h in history] == ["revert", "revert", "rename", "rename"]
    assert history[0]["reverts"] == change["change"]
    assert history[0]["by"] == finished.created_by.name


def test_reverting_a_text_correction_brings_back_the_recognised_words(
    finished, member_api, owner_api
):
    segment = _segment(finished, "u1")
    words = [{"text": "the", "start": 3.5, "end": 3.7, "confidence": 0.9}]
    TranscriptSegment.objects.filter(pk=segment.pk).update(words=words, confidence=0.9)
    member_api.patch(
        _edit_url(finished, "u1"), {"base_revision": 0, "text": "fixed"}, format="json"
    )
    assert _segment(finished, "u1").words is None
    [change] = member_api.get(reverse("api-segment-revisions", args=[finished.slug, "u1"])).json()
    owner_api.post(reverse("api-change-revert", args=[finished.slug, change["change"]]))
    segment = _segment(finished, "u1")
    assert (segment.text, segment.words, segment.revision) == ("the budget is approved", words, 2)


# --- every reader sees the correction -----------------------------------------------------------


def test_search_and_every_export_read_the_corrected_text(finished, member_api, owner_client):
    member_api.patch(
        _edit_url(finished, "u0"),
        {"base_revision": 0, "text": "we will draft the reply"},
        format="json",
    )
    index = transcript.transcript_index(session=finished)
    found = transcript.transcript_search(session=finished, index=index, query="draft")
    assert found.count == 1
    assert transcript.transcript_search(session=finished, index=index, query="white").count == 0
    for fmt in ("txt", "srt", "vtt", "json", "md"):
        response = owner_client.get(
            reverse("api-transcript-export-file", args=[finished.slug, fmt])
        )
        body = response.content.decode()
        assert "we will draft the reply" in body, fmt
        assert "direct the other white" not in body, fmt
    document = json.loads(
        owner_client.get(
            reverse("api-transcript-export-file", args=[finished.slug, "json"])
        ).content
    )
    assert document["segments"][0]["edited"] is True
    assert document["segments"][1]["edited"] is False


def test_a_final_delivered_again_after_a_correction_does_not_undo_it(finished, member_api):
    member_api.patch(
        _edit_url(finished, "u1"), {"base_revision": 0, "text": "corrected"}, format="json"
    )
    segment = _segment(finished, "u1")
    again = FinalSegment(
        session_id=finished.pk,
        run_id=segment.run_id,
        utterance_id="u1",
        text="the budget is approved",
        language="en",
        start_offset=3.5,
        end_offset=6.0,
        speaker_identity=None,
        speaker_name=None,
    )
    new = dataclasses.replace(again, utterance_id="u9", text="a new final")
    segments_upsert(finals=[again, new])
    assert _segment(finished, "u1").text == "corrected"
    assert _segment(finished, "u9").text == "a new final"


@pytest.mark.django_db(transaction=True)
def test_a_correction_marks_the_sessions_analysis_stale(finished, member):
    from sessions_app.models import SessionAnalysis
    from transcription.archive.edits import segment_edit

    analysis = SessionAnalysis.objects.create(session=finished, status="DONE")
    assert not analysis.is_stale
    segment_edit(session=finished, utterance_id="u0", by=member, base_revision=0, text="fixed")
    analysis.refresh_from_db()
    assert analysis.transcript_edited_at is not None


def test_a_persons_text_is_not_the_engines_confidence(finished, member_api, owner_api):
    TranscriptSegment.objects.filter(session=finished, utterance_id="u0").update(confidence=0.3)
    member_api.patch(
        _edit_url(finished, "u0"), {"base_revision": 0, "text": "we will draft it"}, format="json"
    )
    assert _segment(finished, "u0").confidence is None
    [change] = member_api.get(reverse("api-segment-revisions", args=[finished.slug, "u0"])).json()
    owner_api.post(reverse("api-change-revert", args=[finished.slug, change["change"]]))
    assert _segment(finished, "u0").confidence == 0.3
