"""API rate limits in the shared cache (Redis in the test suite): per user, per anonymous
address, "create" and "auth" scopes, allauth's pages, and two Daphne processes sharing them."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from django.conf import settings as django_settings
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import UserFactory
from tests.live import DAPHNE, child_env, child_process, free_port, wait_for_port


@pytest.fixture
def rates(settings):
    """Set some rates (requests per minute) for one test; DRF reloads its settings."""

    def set_rates(**per_minute: int) -> None:
        framework = dict(settings.REST_FRAMEWORK)
        framework["DEFAULT_THROTTLE_RATES"] = {
            **framework["DEFAULT_THROTTLE_RATES"],
            **{scope: f"{n}/min" for scope, n in per_minute.items()},
        }
        settings.REST_FRAMEWORK = framework

    return set_rates


def _away_from_a_window_edge(seconds: float = 5.0) -> None:
    """Counters are per clock minute: start a burst where it cannot straddle two of them."""
    into = time.time() % 60
    if into > 60 - seconds:
        time.sleep(60 - into + 0.05)


def test_default_rates_are_100_20_and_30_per_minute():
    rates = django_settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    assert rates == {"user": "100/min", "anon": "100/min", "create": "20/min", "auth": "30/min"}
    for action in ("login", "signup", "reset_password_from_key"):
        assert django_settings.ACCOUNT_RATE_LIMITS[action] == "30/m/ip"
    assert django_settings.ACCOUNT_RATE_LIMITS["reset_password"].startswith("30/m/ip")
    # Wrong passwords (allauth's page, the admin's, the API): per address and per account.
    assert django_settings.ACCOUNT_RATE_LIMITS["login_failed"] == "10/m/ip,5/5m/key"
    assert django_settings.CACHES["default"]["BACKEND"].endswith("RedisCache")


@pytest.mark.django_db
def test_user_over_the_default_rate_gets_429_with_retry_after(rates, member_api):
    rates(user=5)
    _away_from_a_window_edge()
    for _ in range(5):
        assert member_api.get("/api/me").status_code == 200
    response = member_api.get("/api/me")
    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert 1 <= int(response["Retry-After"]) <= 60


@pytest.mark.django_db
def test_two_clients_of_one_user_share_the_count_and_other_users_do_not(
    rates, member, member_api, owner_api
):
    rates(user=4)
    _away_from_a_window_edge()
    second = APIClient()
    second.force_authenticate(member)
    for client in (member_api, second, member_api, second):
        assert client.get("/api/me").status_code == 200
    assert second.get("/api/me").status_code == 429
    assert member_api.get("/api/me").status_code == 429
    assert owner_api.get("/api/me").status_code == 200


@pytest.mark.django_db
def test_create_endpoints_allow_20_a_minute_and_listing_goes_on(member_api):
    _away_from_a_window_edge(10)
    for i in range(20):
        response = member_api.post("/api/spaces", {"name": f"Space {i}"}, format="json")
        assert response.status_code == 201, response.content
    refused = member_api.post("/api/spaces", {"name": "One too many"}, format="json")
    assert refused.status_code == 429
    assert refused.json()["code"] == "throttled"
    assert int(refused["Retry-After"]) >= 1
    # Listing is not creating: only the default rate applies to it.
    assert member_api.get("/api/spaces").status_code == 200


@pytest.mark.django_db
def test_creating_sessions_and_starting_transcription_share_the_create_scope(
    rates, settings, member_api, space, video_session
):
    rates(create=2)
    settings.TRANSCRIPTION_NEW_RUNS_DISABLED = True  # refused starts still count as attempts
    _away_from_a_window_edge()
    url = f"/api/spaces/{space.slug}/sessions"
    assert member_api.post(url, {"title": "One"}, format="json").status_code == 201
    start = f"/api/sessions/{video_session.slug}/transcription/start"
    assert member_api.post(start).status_code == 403
    assert member_api.post(url, {"title": "Three"}, format="json").status_code == 429


@pytest.mark.django_db
def test_token_endpoint_allows_30_attempts_a_minute_per_address(client):
    _away_from_a_window_edge(10)
    for _ in range(30):
        # Malformed: a 400 with a clear message, and still an attempt that counts.
        response = client.post("/api/auth/token", {"email": "not an email"})
        assert response.status_code == 400
        assert "email" in response.json()
    response = client.post("/api/auth/token", {"email": "a@example.com", "password": "x"})
    assert response.status_code == 429
    assert "Retry-After" in response


@pytest.mark.django_db
def test_anonymous_calls_are_counted_per_address(rates, client):
    rates(anon=3)
    _away_from_a_window_edge()
    for _ in range(3):
        # Refused as not signed in before any throttle runs: these do not count.
        assert client.get("/api/me").status_code in (401, 403)
    for _ in range(3):
        client.post("/api/auth/token", {})
    other = client.post("/api/auth/token", {}, REMOTE_ADDR="10.1.2.3")
    assert other.status_code == 400
    assert client.post("/api/auth/token", {}).status_code == 429


@pytest.mark.django_db
def test_allauth_login_page_allows_30_posts_a_minute(client):
    url = reverse("account_login")
    _away_from_a_window_edge(10)
    for _ in range(30):
        assert client.post(url, {"login": "", "password": ""}).status_code == 200
    assert client.post(url, {"login": "", "password": ""}).status_code == 429


@pytest.mark.django_db
def test_outsider_is_not_told_about_other_users_counts(rates, member_api, outsider_api):
    rates(user=2)
    _away_from_a_window_edge()
    member_api.get("/api/me")
    member_api.get("/api/me")
    assert member_api.get("/api/me").status_code == 429
    response = outsider_api.get("/api/me")
    assert response.status_code == 200
    assert "Retry-After" not in response


def _daphne(port: int, name: str, tmp_path):
    args = [*DAPHNE, "-b", "127.0.0.1", "-p", str(port), "rooms.asgi:application"]
    env = child_env(RATE_LIMIT_PER_MINUTE="6", RATE_LIMIT_CREATE_PER_MINUTE="3")
    return child_process(args, env=env, log=tmp_path / f"{name}.log")


@pytest.mark.django_db(transaction=True)
def test_two_daphne_processes_share_one_count_under_a_concurrent_burst(tmp_path):
    user = UserFactory()
    token = Token.objects.create(user=user)
    ports = [free_port(), free_port()]
    with _daphne(ports[0], "daphne-a", tmp_path) as a, _daphne(ports[1], "daphne-b", tmp_path) as b:
        for port, process in zip(ports, (a, b), strict=True):
            wait_for_port(port, timeout=60, process=process)
        headers = {"Authorization": f"Token {token.key}"}
        urls = [f"http://127.0.0.1:{ports[i % 2]}/api/me" for i in range(20)]
        with httpx.Client(headers=headers, timeout=20) as http:
            http.get(f"http://127.0.0.1:{ports[0]}/health")  # both apps loaded and warm
            http.get(f"http://127.0.0.1:{ports[1]}/health")
            _away_from_a_window_edge(10)
            with ThreadPoolExecutor(max_workers=10) as pool:
                responses = list(pool.map(http.get, urls))
            statuses = [r.status_code for r in responses]
            assert statuses.count(200) == 6, statuses
            assert statuses.count(429) == 14, statuses
            refused = [r for r in responses if r.status_code == 429]
            assert {r.url.port for r in refused} == set(ports)
            assert all(1 <= int(r.headers["Retry-After"]) <= 60 for r in refused)
            assert all(r.json()["code"] == "throttled" for r in refused)
