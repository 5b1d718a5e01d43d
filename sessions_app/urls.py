from django.urls import path

from sessions_app import api, views, webhooks

app_name = "sessions"

urlpatterns = [
    path("<str:slug>/", views.session_detail, name="detail"),
    path("<str:slug>/end/", views.session_end, name="end"),
]

space_session_urlpatterns = [
    path("spaces/<slug:slug>/sessions/", views.session_create, name="session-create"),
]

api_urlpatterns = [
    path("sessions", api.SessionListApi.as_view(), name="api-session-list"),
    path("livekit/webhook", webhooks.livekit_webhook, name="api-livekit-webhook"),
    path(
        "spaces/<slug:slug>/sessions",
        api.SpaceSessionListCreateApi.as_view(),
        name="api-space-session-list",
    ),
    path("sessions/<str:slug>", api.SessionDetailApi.as_view(), name="api-session-detail"),
    path(
        "sessions/<str:slug>/join",
        api.SessionJoinApi.as_view(),
        name="api-session-join",
    ),
    path("sessions/<str:slug>/end", api.SessionEndApi.as_view(), name="api-session-end"),
    path(
        "sessions/<str:slug>/participants",
        api.ParticipantListApi.as_view(),
        name="api-participant-list",
    ),
]
