"""LiveKit webhooks: ``POST /api/livekit/webhook``.

LiveKit signs each delivery: the ``Authorization`` header (no "Bearer") is a JWT whose
``sha256`` claim is the base64 SHA-256 of the raw body. Anything unsigned or tampered gets 401
and changes nothing; unknown events are accepted and ignored (LiveKit adds new ones).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from livekit import api as livekit_api

from sessions_app import services

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024


def _problem(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"detail": detail, "code": code}, status=status)


@csrf_exempt
@require_POST
def livekit_webhook(request: HttpRequest) -> HttpResponse:
    if not settings.LIVEKIT_ENABLED:
        return _problem(404, "not_found", "LiveKit is not configured.")
    if int(request.headers.get("Content-Length") or 0) > MAX_BODY_BYTES:
        return _problem(413, "too_large", "Webhook body too large.")
    body = request.body
    if len(body) > MAX_BODY_BYTES:
        return _problem(413, "too_large", "Webhook body too large.")
    auth = request.headers.get("Authorization", "")
    if not auth:
        return _problem(401, "not_authenticated", "Missing webhook signature.")
    receiver = livekit_api.WebhookReceiver(
        livekit_api.TokenVerifier(settings.LIVEKIT_API_KEY, settings.LIVEKIT_API_SECRET)
    )
    try:
        event = receiver.receive(body.decode("utf-8"), auth)
    except Exception:
        # Bad signature, hash mismatch, expired token or a body that is not an event.
        logger.warning("rejected a LiveKit webhook with an invalid signature or body")
        return _problem(401, "invalid_signature", "Invalid webhook signature.")
    services.livekit_event_handle(event=event)
    return JsonResponse({"ok": True})
