"""Security of the pages: a strict Content-Security-Policy that the pages actually satisfy,
production cookie/HSTS/redirect settings, CSRF on every form, and WebSocket origin checks."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.urls import reverse

from tests.live import ROOT

TEMPLATES = ROOT / "templates"


def _policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    directives = [part.strip().split() for part in header.split(";") if part.strip()]
    return {name: values for name, *values in directives}


def _pages(space, video_session) -> list[str]:
    return [
        reverse("spaces:list"),
        reverse("spaces:detail", kwargs={"slug": space.slug}),
        reverse("sessions:detail", kwargs={"slug": video_session.slug}),
        reverse("identity:profile"),
        reverse("my-usage"),
    ]


@pytest.mark.django_db
def test_pages_get_a_strict_content_security_policy(owner_client, space, video_session):
    pages = [(owner_client, url) for url in _pages(space, video_session)]
    for client, url in [*pages, (Client(), reverse("account_login"))]:
        response = client.get(url)
        assert response.status_code == 200, url
        policy = _policy(response)
        assert policy["default-src"] == ["'self'"]
        assert policy["script-src"] == ["'self'"], "no inline or third-party scripts"
        assert policy["style-src"] == ["'self'"]
        assert policy["object-src"] == ["'none'"]
        assert policy["frame-ancestors"] == ["'none'"]
        assert policy["base-uri"] == ["'self'"]
        assert policy["form-action"][0] == "'self'"
        assert "'self'" in policy["connect-src"]
        assert "'self'" in policy["worker-src"]
        assert response["X-Frame-Options"] == "DENY"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Referrer-Policy"] == "same-origin"


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", re.I)
EVENT_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)
STYLE_ATTRIBUTE = re.compile(r"<[^>]+\sstyle\s*=", re.I)


@pytest.mark.django_db
def test_the_pages_have_nothing_the_policy_would_block(owner_client, space, video_session):
    pages = [(owner_client, url) for url in _pages(space, video_session)]
    for client, url in [*pages, (Client(), reverse("account_login"))]:
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert not INLINE_SCRIPT.search(html), (url, INLINE_SCRIPT.search(html))
        assert not EVENT_HANDLER.search(html), (url, EVENT_HANDLER.search(html))
        assert not STYLE_ATTRIBUTE.search(html), (url, STYLE_ATTRIBUTE.search(html))


@pytest.mark.django_db
def test_a_finished_session_page_has_nothing_the_policy_would_block(
    owner, owner_client, video_session
):
    from sessions_app.services import session_end

    session_end(session=video_session, by=owner)
    response = owner_client.get(reverse("sessions:detail", kwargs={"slug": video_session.slug}))

    assert response.status_code == 200
    assert _policy(response)["script-src"] == ["'self'"]
    html = response.content.decode()
    for pattern in (INLINE_SCRIPT, EVENT_HANDLER, STYLE_ATTRIBUTE):
        assert not pattern.search(html), pattern.search(html)


@pytest.mark.django_db
def test_the_session_page_passes_its_data_as_json_not_script(owner_client, video_session):
    html = owner_client.get(reverse("sessions:detail", kwargs={"slug": video_session.slug}))
    text = html.content.decode()

    assert re.search(r'<script id="page-config" type="application/json">', text)
    assert "pcm-worklet.js" in text  # the AudioWorklet module: a static file, script-src 'self'


@pytest.mark.django_db
def test_the_api_reference_page_has_the_same_strict_policy_and_only_our_static_files(client):
    """Swagger UI comes from drf-spectacular-sidecar's static files and is started by a script
    the docs view serves: no CDN, no web fonts, nothing inline, so no exception to the policy."""
    page = client.get(reverse("api-docs"))
    script = client.get(reverse("api-docs"), {"script": ""})
    html = page.content.decode()

    assert page.status_code == 200
    policy = _policy(page)
    for directive in ("script-src", "style-src", "font-src"):
        assert policy[directive] == ["'self'"], directive
    assert policy["img-src"] == ["'self'", "data:", "blob:"]
    sources = re.findall(r'<script src="([^"]+)"', html)
    assert sources[:2] == [
        "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js",
        "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-standalone-preset.js",
    ]
    assert sources[2].startswith(reverse("api-docs") + "?")
    for pattern in (INLINE_SCRIPT, EVENT_HANDLER, STYLE_ATTRIBUTE):
        assert not pattern.search(html), pattern.search(html)
    assert "<style" not in html
    assert "https://" not in html and "http://" not in html
    assert script["Content-Type"].startswith("application/javascript")
    assert '"validatorUrl": null' in script.content.decode()  # no badge from swagger.io


@pytest.mark.django_db
def test_no_page_mentions_a_cdn_or_web_fonts_in_its_policy(owner_client, space, video_session):
    for url in [*_pages(space, video_session), reverse("api-docs")]:
        header = owner_client.get(url)["Content-Security-Policy"]
        assert "https://" not in header, (url, header)


def test_every_post_form_in_the_templates_carries_a_csrf_token():
    forms = 0
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        for match in re.finditer(r"<form\b[^>]*>(.*?)</form>", text, re.S | re.I):
            opening = match.group(0)[: match.group(0).index(">") + 1]
            if re.search(r"method=\"?post", opening, re.I):
                forms += 1
                assert "{% csrf_token %}" in match.group(1), f"{template}: {opening}"
    assert forms >= 5


@pytest.mark.django_db
def test_a_form_post_without_the_csrf_token_is_refused(owner, video_session):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)

    response = client.post(reverse("sessions:end", kwargs={"slug": video_session.slug}))

    assert response.status_code == 403
    video_session.refresh_from_db()
    assert video_session.status != "ENDED"


# --- production settings ----------------------------------------------------------------------

PROBE = textwrap.dedent(
    """
    import json
    import django
    django.setup()
    from django.conf import settings
    from django.test import Client
    client = Client(HTTP_HOST="rooms.example.com")
    page = client.get("/accounts/login/")
    print(json.dumps({
        "session_secure": settings.SESSION_COOKIE_SECURE,
        "csrf_secure": settings.CSRF_COOKIE_SECURE,
        "hsts": settings.SECURE_HSTS_SECONDS,
        "ssl_redirect": settings.SECURE_SSL_REDIRECT,
        "page": [page.status_code, page.get("Location", "")],
        "health": client.get("/health").status_code,
        "csp": client.get("/health").get("Content-Security-Policy", ""),
        "https_page": client.get("/health", secure=True).get(
            "Strict-Transport-Security", ""
        ),
    }))
    """
)


def _production_probe(**extra: str) -> dict:
    import os

    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DEBUG", "ALLOWED_HOSTS")},
        "DJANGO_SETTINGS_MODULE": "rooms.settings",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "TRANSCRIPTION_JWT_SECRET": secrets.token_urlsafe(32),
        "ALLOWED_HOSTS": "rooms.example.com",
        "BEHIND_TLS_PROXY": "false",
        **extra,
    }
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_has_secure_cookies_hsts_and_https_redirects_except_probes():
    probe = _production_probe(LIVEKIT_URL="wss://video.example.com")

    assert probe["session_secure"] and probe["csrf_secure"]
    assert probe["hsts"] >= 31_536_000
    assert probe["ssl_redirect"]
    status, location = probe["page"]
    assert status == 301 and location.startswith("https://rooms.example.com/")
    assert probe["health"] == 200, "balancers probe /health over plain HTTP"
    assert "max-age=31536000" in probe["https_page"]
    connect = probe["csp"].split("connect-src")[1].split(";")[0].split()
    assert "wss://rooms.example.com" in connect
    assert "wss://video.example.com" in connect
    assert "https://video.example.com" in connect


# --- WebSockets -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.parametrize("route", ["transcript", "signal"])
async def test_a_foreign_origin_is_refused_on_every_session_socket(member, video_session, route):
    from rooms.asgi import application

    for origin, accepted in ((b"https://evil.example", False), (b"http://127.0.0.1:8000", True)):
        comm = WebsocketCommunicator(
            application,
            f"/ws/sessions/{video_session.slug}/{route}/",
            headers=[(b"origin", origin), (b"host", b"127.0.0.1:8000")],
        )
        comm.scope["user"] = member
        connected, _ = await comm.connect()
        assert connected is accepted, origin
        await comm.disconnect()


def test_secrets_are_compared_in_constant_time():
    sources = {
        "rooms/metrics.py": "hmac.compare_digest",
        "transcription/live/ingest/gate.py": "hmac.compare_digest",
    }
    for path, call in sources.items():
        assert call in (ROOT / path).read_text(), path
    equality_on_secret = re.compile(
        r"\b\w*(secret|token|stream_key|ingest_key|api_key)\w*\s*[!=]=\s*\w", re.I
    )
    for path in Path(ROOT).glob("*/**/*.py"):
        if path.parts[len(ROOT.parts)] in {".venv", "tests", "benchmarks", "staticfiles"}:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if equality_on_secret.search(line) and "compare_digest" not in line:
                raise AssertionError(f"{path}:{number}: {line.strip()}")
