"""WebSocket routes of every app, in one list for ``asgi.py`` and the tests."""

from django.urls import re_path

from sessions_app.routing import websocket_urlpatterns as session_routes
from sessions_app.ws import NoRouteConsumer
from transcription.routing import websocket_urlpatterns as transcription_routes

websocket_urlpatterns = [
    *transcription_routes,
    *session_routes,
    # Last: any other path is refused at the handshake (403), never a server error.
    re_path(r"", NoRouteConsumer.as_asgi()),
]
