from django.urls import re_path

from transcription.consumers import TranscriptConsumer, TranscriptEditsConsumer

websocket_urlpatterns = [
    re_path(r"^ws/sessions/(?P<slug>[a-z0-9-]{1,32})/transcript/$", TranscriptConsumer.as_asgi()),
    re_path(r"^ws/sessions/(?P<slug>[a-z0-9-]{1,32})/edits/$", TranscriptEditsConsumer.as_asgi()),
]
