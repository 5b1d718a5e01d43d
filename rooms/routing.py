"""WebSocket routes of every app, in one list for ``asgi.py`` and the tests."""

from sessions_app.routing import websocket_urlpatterns as session_routes
from transcription.routing import websocket_urlpatterns as transcription_routes

websocket_urlpatterns = [*transcription_routes, *session_routes]
