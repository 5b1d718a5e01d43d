from django.urls import path

from transcription import api, search_api
from transcription.archive import api as exports_api
from transcription.archive import edits_api
from transcription.usage import api as usage_api

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
    # Corrections: the fixed names first (an utterance id is never "speakers" or "changes").
    path(
        "sessions/<str:slug>/segments/speakers",
        edits_api.SpeakerListApi.as_view(),
        name="api-speaker-list",
    ),
    path(
        "sessions/<str:slug>/segments/speakers/rename",
        edits_api.SpeakerRenameApi.as_view(),
        name="api-speaker-rename",
    ),
    path(
        "sessions/<str:slug>/segments/speakers/merge",
        edits_api.SpeakerMergeApi.as_view(),
        name="api-speaker-merge",
    ),
    path(
        "sessions/<str:slug>/segments/changes",
        edits_api.ChangeListApi.as_view(),
        name="api-change-list",
    ),
    path(
        "sessions/<str:slug>/segments/changes/<str:change>/revert",
        edits_api.ChangeRevertApi.as_view(),
        name="api-change-revert",
    ),
    path(
        "sessions/<str:slug>/segments/<str:utterance_id>",
        edits_api.SegmentEditApi.as_view(),
        name="api-segment-edit",
    ),
    path(
        "sessions/<str:slug>/segments/<str:utterance_id>/revisions",
        edits_api.SegmentRevisionListApi.as_view(),
        name="api-segment-revisions",
    ),
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
    path("search", search_api.SearchApi.as_view(), name="api-search"),
]
