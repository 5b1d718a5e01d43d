"""Regression tests for the bugs the hostile-input suite found (docs/reliability.md)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.live import session_socket


def _schema() -> dict:
    return APIClient().get("/api/schema/", {"format": "json"}).json()


def _error_codes(operation: dict) -> set[str]:
    return {
        code
        for code, response in operation["responses"].items()
        if "ErrorOutput" in str(response.get("content", {}))
    }


@pytest.mark.django_db
def test_schema_documents_the_error_answers_of_each_operation():
    paths = _schema()["paths"]

    assert _error_codes(paths["/api/sessions/{slug}"]["get"]) == {"401", "403", "404", "429"}
    assert {"400", "401", "403", "409", "415"} <= _error_codes(paths["/api/spaces"]["post"])
    assert "400" in _error_codes(paths["/api/sessions/{slug}/segments"]["get"])  # bad query
    token = _error_codes(paths["/api/auth/token"]["post"])
    assert "400" in token
    assert not {"401", "403"} & token  # public: never "not signed in"


@pytest.mark.django_db
def test_schema_describes_the_segment_page_the_api_returns(member_api, video_session):
    operation = _schema()["paths"]["/api/sessions/{slug}/segments"]["get"]
    page = member_api.get(f"/api/sessions/{video_session.slug}/segments").json()

    assert {p["name"] for p in operation["parameters"]} >= {"limit", "offset"}
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SegmentPageOutput"
    }
    assert set(page) == {"count", "next", "previous", "results"}


@pytest.mark.django_db
def test_an_api_url_no_route_matches_answers_json_404(member_client, space):
    response = member_client.get(f"/api/spaces/{space.slug}/members/not-a-number")

    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found.", "code": "not_found"}


@pytest.mark.django_db
def test_a_page_url_no_route_matches_still_answers_the_html_404(member_client):
    response = member_client.get("/no/such/page/")

    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("text/html")


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("route", "nested"),
    [("transcript", "[" * 2000 + "]" * 2000), ("signal", '{"a":' * 5000 + "1" + "}" * 5000)],
)
async def test_json_nested_deeper_than_the_parser_closes_4002_not_1011(
    member, video_session, route, nested
):
    comm = session_socket(member, f"/ws/sessions/{video_session.slug}/{route}/")
    connected, _ = await comm.connect()
    assert connected
    while (await comm.receive_json_from(timeout=5))["type"] not in ("welcome", "history"):
        pass

    await comm.send_to(text_data=nested)

    while (message := await comm.receive_output(timeout=5))["type"] != "websocket.close":
        pass
    assert message["code"] == 4002
    await comm.wait()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.parametrize(
    "path", ["/ws/sessions/UPPER-CASE/transcript/", "/ws/sessions/abc/admin/", "/ws/nothing/"]
)
async def test_a_websocket_path_no_route_matches_is_refused_not_an_error(member, path):
    comm = session_socket(member, path)

    connected, code = await comm.connect()

    assert not connected
    assert code == 1000  # closed before the handshake: Daphne answers HTTP 403
    await comm.wait()
