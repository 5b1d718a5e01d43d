"""Paginated APIs under hostile ``limit``/``offset`` values: every page has a documented
maximum size, and no value reaches the database as a number it cannot take (``?limit=10**30``
was a 500: "datatype mismatch" on SQLite, "bigint out of range" on PostgreSQL).

The answers are decided before any SQL is written, so they are the same on both databases.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from sessions_app.models import VideoSession
from transcription.models import TranscriptionRun, TranscriptSegment

pytestmark = pytest.mark.django_db

MAX_SEGMENTS = 500
HUGE = [
    str(10**30),
    str(2**63),
    str(2**63 - 1),
    str(2**64 + 1),
    "9" * 5000,  # more digits than Python's int() takes from a string
    "0" * 40 + "7",
]
MALFORMED = ["abc", "-1", "1.5", "1e3", "+5", " 5", "5 ", "1_0", "٣", "0x10", "NaN", "inf"]


def _url(session: VideoSession) -> str:
    return f"/api/sessions/{session.slug}/segments"


def _store(session: VideoSession, count: int) -> None:
    run = TranscriptionRun.objects.create(
        session=session, mode="BROWSER", provider="local", status=TranscriptionRun.Status.STOPPED
    )
    TranscriptSegment.objects.bulk_create(
        TranscriptSegment(
            session=session,
            run=run,
            utterance_id=f"u-{n}",
            text=f"words {n}",
            language="en",
            start_offset=float(n),
            end_offset=n + 0.5,
        )
        for n in range(count)
    )


@pytest.fixture
def many_segments(video_session: VideoSession) -> VideoSession:
    _store(video_session, MAX_SEGMENTS + 1)
    return video_session


def test_a_page_of_segments_holds_at_most_500(member_api: APIClient, many_segments):
    page = member_api.get(_url(many_segments), {"limit": 1000}).json()

    assert page["count"] == MAX_SEGMENTS + 1
    assert len(page["results"]) == MAX_SEGMENTS
    assert "limit=500" in page["next"]
    rest = member_api.get(page["next"]).json()
    assert [s["utterance_id"] for s in rest["results"]] == [f"u-{MAX_SEGMENTS}"]


@pytest.mark.parametrize("limit", HUGE)
def test_a_huge_limit_is_served_as_the_largest_page(member_api, video_session, limit):
    _store(video_session, 3)

    response = member_api.get(_url(video_session), {"limit": limit, "offset": 1})

    assert response.status_code == 200, response.content[:300]
    assert [s["utterance_id"] for s in response.json()["results"]] == ["u-1", "u-2"]


@pytest.mark.parametrize("offset", HUGE)
def test_a_huge_offset_is_an_empty_page(member_api, video_session, offset):
    _store(video_session, 3)

    for limit in ("10", str(2**63)):
        response = member_api.get(_url(video_session), {"limit": limit, "offset": offset})

        assert response.status_code == 200, response.content[:300]
        body = response.json()
        assert body["count"] == 3 and body["results"] == [] and body["next"] is None


@pytest.mark.parametrize("name", ["limit", "offset"])
@pytest.mark.parametrize("value", MALFORMED)
def test_a_limit_or_offset_that_is_not_a_whole_number_answers_400(
    member_api, video_session, name, value
):
    response = member_api.get(_url(video_session), {name: value})

    assert response.status_code == 400, response.content[:300]
    assert response.json()["code"] == "invalid"
    assert name in response.json()


def test_a_zero_limit_answers_400_and_an_empty_one_is_the_default(member_api, video_session):
    _store(video_session, 60)

    assert member_api.get(_url(video_session), {"limit": "0"}).status_code == 400
    page = member_api.get(_url(video_session), {"limit": "", "offset": ""}).json()
    assert len(page["results"]) == 50


def test_the_schema_documents_the_page_size_bounds(member_api):
    schema = APIClient().get("/api/schema/", {"format": "json"}).json()
    parameters = {
        p["name"]: p for p in schema["paths"]["/api/sessions/{slug}/segments"]["get"]["parameters"]
    }

    assert parameters["limit"]["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": MAX_SEGMENTS,
        "default": 50,
    }
    assert parameters["offset"]["schema"] == {"type": "integer", "minimum": 0, "default": 0}
    assert "500" in parameters["limit"]["description"]
