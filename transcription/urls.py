from django.urls import path

from transcription import api, exports_api, usage_api

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
    path(
        "sessions/<str:slug>/transcript",
        exports_api.TranscriptExportApi.as_view(),
        name="api-transcript-export",
    ),
    path(
        "sessions/<str:slug>/transcript.<str:fmt>",
        exports_api.TranscriptFileApi.as_view(),
        name="api-transcript-export-file",
    ),
    path(
        "transcription/stats",
        usage_api.TranscriptionStatsApi.as_view(),
        name="api-transcription-stats",
    ),
    path(
        "sessions/<str:slug>/transcription/usage",
        usage_api.SessionUsageApi.as_view(),
        name="api-session-usage",
    ),
    path("spaces/<slug:slug>/usage", usage_api.SpaceUsageApi.as_view(), name="api-space-usage"),
]
