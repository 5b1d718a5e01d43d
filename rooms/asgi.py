"""ASGI entry point: HTTP through Django, WebSockets through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rooms.settings")
# Django must be set up before anything imports models (consumers, routing).
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from rooms.routing import websocket_urlpatterns  # noqa: E402
from rooms.runtime import tune_gc_for_latency  # noqa: E402
from rooms.ws_auth import WebSocketAuthStack  # noqa: E402
from rooms.ws_origin import SameOriginValidator  # noqa: E402
from transcription.live.runner import LoopCaptureMiddleware  # noqa: E402

application = LoopCaptureMiddleware(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            # Scheme, host and port of the page must be ours (rooms/ws_origin.py).
            "websocket": SameOriginValidator(WebSocketAuthStack(URLRouter(websocket_urlpatterns))),
        }
    )
)

# Everything imported by now lives as long as the process: keep the GC from rescanning it.
tune_gc_for_latency()
