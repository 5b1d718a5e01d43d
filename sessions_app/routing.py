from django.urls import re_path

from sessions_app.consumers import MeshSignalConsumer

websocket_urlpatterns = [
    re_path(r"^ws/sessions/(?P<slug>[a-z0-9-]{1,32})/signal/$", MeshSignalConsumer.as_asgi()),
]
