"""The finished page shows trust signals and offers corrections (issue 14 §2, §3, §5)."""

from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse

from sessions_app.models import VideoSession
from tests.factories import SpaceMemberFactory, UserFactory
from tests.transcription.transcripts import end_with_transcript
from transcription.archive.edits import segment_edit
from transcription.models import TranscriptSegment


@pytest.fixture
def finished(video_session, owner, member) -> VideoSession:
    end_with_transcript(
        video_session,
        [owner, member],
        [
            (1.0, 3.0, owner.identity, owner.name, "it was the best of times"),
            (3.5, 6.0, member.identity, member.name, "it was the worst of times"),
        ],
    )
    return video_session


def _page(client, session: VideoSession) -> str:
    response = client.get(reverse("sessions:detail", args=[session.slug]))
    assert response.status_code == 200
    return response.content.decode()


def _config(html: str) -> dict:
    match = re.search(r'<script id="edit-config" type="application/json">(.*?)</script>', html)
    assert match, "the page carries its edit config"
    return json.loads(match.group(1))


def test_each_segment_is_its_own_element_named_for_corrections(finished, member_client):
    html = _page(member_client, finished)
    assert re.search(r'<span class="seg" data-uid="u0" data-rev="0" data-speaker="u-[^"]+">', html)
    assert 'data-uid="u1"' in html
    assert 'class="finished-transcript editable"' in html
    assert "js/transcript-edit.js" in html


def test_unsure_words_are_marked_with_their_confidence(finished, member_client):
    TranscriptSegment.objects.filter(session=finished, utterance_id="u0").update(
        confidence=0.7,
        words=[
            {"text": " it", "start": 1.0, "end": 1.2, "confidence": 0.95},
            {"text": " was", "start": 1.2, "end": 1.4, "confidence": 0.9},
            {"text": " the", "start": 1.4, "end": 1.5, "confidence": 0.9},
            {"text": " best", "start": 1.5, "end": 1.9, "confidence": 0.31},
            {"text": " of", "start": 1.9, "end": 2.0, "confidence": 0.9},
            {"text": " times", "start": 2.0, "end": 3.0, "confidence": 0.88},
        ],
    )
    TranscriptSegment.objects.filter(session=finished, utterance_id="u1").update(confidence=0.4)
    html = _page(member_client, finished)
    best = '<span class="unsure" title="Recognised with 31% confidence">best</span>'
    assert f"it was the {best} of times" in html
    assert re.search(
        r'<span class="seg unsure" data-uid="u1"[^>]*title="Recognised with 40% confidence">', html
    )


def test_a_corrected_segment_is_marked_and_listed_in_the_history(
    finished, member, owner_client, member_client
):
    segment_edit(
        session=finished, utterance_id="u1", by=member, base_revision=0, text="it was the worst"
    )
    owner_html = _page(owner_client, finished)
    assert re.search(r'<span class="seg edited" data-uid="u1" data-rev="1"', owner_html)
    assert "History: 1 change" in owner_html
    assert "<del>it was the worst of times</del> <ins>it was the worst</ins>" in owner_html
    assert 'class="link danger change-revert"' in owner_html
    assert "change-revert" not in _page(member_client, finished), "only the host reverts"


def test_who_may_correct_is_in_the_page_config(finished, space, member_client, owner_client):
    member_config = _config(_page(member_client, finished))
    assert member_config["can_edit"] is True and member_config["can_revert"] is False
    assert {p["name"] for p in member_config["participants"]} == {"Olivia Owner", "Max Member"}
    assert member_config["edits_ws_path"] == f"/ws/sessions/{finished.slug}/edits/"
    assert _config(_page(owner_client, finished))["can_revert"] is True

    absent = UserFactory()
    SpaceMemberFactory(space=space, user=absent)
    from django.test import Client

    client = Client()
    client.force_login(absent)
    html = _page(client, finished)
    assert _config(html)["can_edit"] is False and _config(html)["participants"] == []
    assert "editable" not in html


def test_the_page_says_which_engine_made_the_transcript(finished, member_client):
    html = _page(member_client, finished)
    assert "Transcribed by the offline Whisper engine." in html
    finished.runs.update(provider="gladia")
    assert "Transcribed by Gladia." in _page(member_client, finished)
