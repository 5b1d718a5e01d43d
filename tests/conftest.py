"""Shared fixtures: an owner, a member and an outsider, as in healthchecks' ``BaseTestCase``."""

from __future__ import annotations

import pytest
from asgiref.sync import SyncToAsync
from django.db import connections
from django.test import Client
from django.utils import translation
from rest_framework.test import APIClient

from rooms.celery import app as celery_app
from rooms.throttles import KEY_PREFIX as THROTTLE_KEY_PREFIX
from sessions_app.models import VideoSession
from spaces.models import Space, SpaceMember
from tests.factories import SpaceMemberFactory, UserFactory, VideoSessionFactory

# Tests run tasks inline unless a test starts real Celery workers itself.
celery_app.conf.task_always_eager = True


@pytest.fixture(scope="session", autouse=True)
def _close_async_db_connections(django_db_setup):
    """Close the connection asgiref's shared thread keeps before the test database is dropped.

    A thread-sensitive ``sync_to_async`` (``database_sync_to_async``) called from an async test
    outside any ``async_to_sync`` runs in ``SyncToAsync.single_thread_executor``, whose one
    thread keeps its own Django connection open for the rest of the run; PostgreSQL then warns
    that the test database "is being accessed by other users" when it is dropped."""
    yield
    SyncToAsync.single_thread_executor.submit(connections.close_all).result()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Every test starts with no request counted: API throttles and allauth's limits live in
    the cache, which is Redis (shared by every test) when REDIS_URL is set. Only those keys
    are deleted: the cache's Redis also holds Celery's queues."""
    from django.core.cache import cache

    client = getattr(cache, "_cache", None)
    if client is None or not hasattr(client, "get_client"):
        cache.clear()  # local memory: nothing else lives there
        return
    redis = client.get_client(write=True)
    stale = [
        key
        for pattern in (f"*:{THROTTLE_KEY_PREFIX}:*", "*:allauth:rl:*")
        for key in redis.scan_iter(match=pattern, count=1000)
    ]
    if stale:
        redis.delete(*stale)


@pytest.fixture(autouse=True)
def _default_language():
    """Each test starts and ends in the default language: Django's test client leaves the
    language of a request (Accept-Language: ru) active in the thread after it."""
    translation.deactivate()
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def owner(db):
    return UserFactory(email="owner@example.com", display_name="Olivia Owner")


@pytest.fixture
def member(db):
    return UserFactory(email="member@example.com", display_name="Max Member")


@pytest.fixture
def outsider(db):
    return UserFactory(email="outsider@example.com", display_name="Oscar Outsider")


@pytest.fixture
def space(owner, member) -> Space:
    from spaces.services import space_create

    space = space_create(owner=owner, name="Owner's space")
    SpaceMemberFactory(space=space, user=member, role=SpaceMember.Role.MEMBER)
    return space


@pytest.fixture
def video_session(space, owner) -> VideoSession:
    return VideoSessionFactory(space=space, created_by=owner, title="Weekly sync")


def _client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _api_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def owner_client(owner) -> Client:
    return _client_for(owner)


@pytest.fixture
def member_client(member) -> Client:
    return _client_for(member)


@pytest.fixture
def outsider_client(outsider) -> Client:
    return _client_for(outsider)


@pytest.fixture
def owner_api(owner) -> APIClient:
    return _api_for(owner)


@pytest.fixture
def member_api(member) -> APIClient:
    return _api_for(member)


@pytest.fixture
def outsider_api(outsider) -> APIClient:
    return _api_for(outsider)
