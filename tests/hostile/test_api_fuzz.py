"""Schemathesis against the API's own OpenAPI schema (``/api/schema/``, drf-spectacular).

Every operation the schema lists is fuzzed in-process through Django's WSGI handler (new
endpoints are picked up without touching this file), with valid and invalid inputs, as a
signed-in MEMBER (``Authorization: Token``) and anonymously. The member's calls run twice per
example: with the generated path parameters (unknown objects: 404) and with the real objects of
the member's space (a space, a session, a membership, an invite, a task), so the code behind
the slugs is exercised too.

Checks: no 5xx, and every answer conforms to the schema (documented status code, content type,
body and headers). Generation is derandomized (fixed seed) and bounded so the file stays well
under 90 s on a 2-core machine.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis.configuration import set_hypothesis_home_dir
from rest_framework.authtoken.models import Token
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from spaces.models import SpaceInvite, SpaceMember
from tests.transcription.transcripts import store_transcript

# Hypothesis keeps caches on disk; keep them out of the working tree.
set_hypothesis_home_dir(Path(__file__).resolve().parents[2] / "artifacts" / "hypothesis")

# The webhook is authenticated by LiveKit's signature over the raw body, not by a user or token:
# unsigned bodies are refused with 401 and signed ones are tested in
# tests/sessions_app/test_webhooks.py. drf-spectacular does not list it (a plain Django view),
# the exclusion keeps it out should that change.
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application()).exclude(
    path="/api/livekit/webhook"
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
"""Not ``negative_data_rejection``/``positive_data_acceptance``: DRF coerces by design (a
CharField takes ``0`` as ``"0"``, a BooleanField ``"0"``, form bodies have no types, an invalid
``offset`` falls back to 0), so an accepted "schema-violating" value is not a bug."""

FUZZ = settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
ENVIRON = {"REMOTE_ADDR": "127.0.0.1"}  # as Daphne sets it; allauth's rate limits need it
CALLS: Counter[str] = Counter()
"""Requests made, by caller (printed at the end: the figure in docs/reliability.md)."""


@pytest.fixture(scope="module", autouse=True)
def _report_calls() -> Iterator[None]:
    yield
    print(f"\nschemathesis: {dict(CALLS)} requests over {len(schema)} operations")


@pytest.fixture(autouse=True)
def _wsgi_in_test_transaction(settings):
    """Serve the requests inside the test's transaction, like Django's test client does:
    the WSGI handler would otherwise close the connection after each request. Rate limits are
    lifted so the fuzzer reaches the views (the 429 answer is documented and tested apart)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": dict.fromkeys(rates, "1000000/min"),
    }
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def real_path_values(video_session, owner, member) -> dict[str, Any]:
    """Path parameters by name, filled with the member's real objects."""
    from sessions_app.models import Task

    space = video_session.space
    invite = SpaceInvite.objects.create(
        space=space, created_by=owner, expires_at=timezone.now() + timedelta(days=7)
    )
    task = Task.objects.create(space=space, session=video_session, title="Send the notes")
    store_transcript(video_session, [(0.0, 1.5, "", "", "the notes are sent")])
    return {
        "space_slug": space.slug,
        "session_slug": video_session.slug,
        "member_id": SpaceMember.objects.get(space=space, user=member).pk,
        "token": invite.token,
        "task_id": task.pk,
        "fmt": "txt",
        "invite_id": invite.pk,
        "utterance_id": "u0",
        "change": "0123456789abcdef",
    }


def _with_real_objects(case, values: dict[str, Any]) -> bool:
    """Put the real objects into ``case``'s path; False when it has no path parameters."""
    params = case.path_parameters or {}
    if not params:
        return False
    for name in params:
        if name == "slug":
            kind = "space" if case.path.startswith("/api/spaces/") else "session"
            params[name] = values[f"{kind}_slug"]
        elif name in values:
            params[name] = values[name]
    return True


@pytest.fixture
def member_auth(member) -> dict[str, str]:
    return {"Authorization": f"Token {Token.objects.create(user=member).key}"}


@schema.parametrize()
@FUZZ
@pytest.mark.django_db
def test_member_calls_answer_as_documented(case, member_auth, real_path_values):
    auth = member_auth
    response = case.call(headers=auth, environ_base=ENVIRON)
    case.validate_response(response, checks=CHECKS, headers=auth)
    CALLS["member"] += 1
    if _with_real_objects(case, real_path_values):
        response = case.call(headers=auth, environ_base=ENVIRON)
        case.validate_response(response, checks=CHECKS, headers=auth)
        CALLS["member, real objects"] += 1


@schema.parametrize()
@FUZZ
@pytest.mark.django_db
def test_anonymous_calls_answer_as_documented(case, real_path_values):
    _with_real_objects(case, real_path_values)

    response = case.call(environ_base=ENVIRON)
    case.validate_response(response, checks=CHECKS)
    CALLS["anonymous"] += 1
    if case.operation.path != "/api/auth/token":
        assert response.status_code in (401, 403), response.text
