from django.urls import path

from transcription import api

api_urlpatterns = [
    path(
        "sessions/<str:slug>/transcription",
        api.TranscriptionStatusApi.as_view(),
        name="api-transcription-status",
    ),
    path(
        "sessions/<str:slug>/transcription/start",
        api.TranscriptionStartApi.as_view(),
        name="api-transcription-start",
    ),
    path(
        "sessions/<str:slug>/transcription/stop",
        api.TranscriptionStopApi.as_view(),
        name="api-transcription-stop",
    ),
    path("sessions/<str:slug>/segments", api.SegmentListApi.as_view(), name="api-segment-list"),
]
