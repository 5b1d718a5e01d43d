from django.urls import path

from sessions_app import (
    analysis_api,
    analysis_views,
    api,
    ask_api,
    ask_views,
    catch_up_api,
    catch_up_views,
    finished,
    views,
    webhooks,
)

app_name = "sessions"

urlpatterns = [
    path("<str:slug>/", views.session_detail, name="detail"),
    path("<str:slug>/end/", views.session_end, name="end"),
    path("<str:slug>/translate/", finished.session_translate, name="translate"),
    path("<str:slug>/analysis/", analysis_views.analysis_card, name="analysis-partial"),
    path("<str:slug>/catch-up/", catch_up_views.catch_up, name="catch-up"),
    path("tasks/<int:task_id>/done/", analysis_views.task_done, name="task-done"),
    path("tasks/<int:task_id>/accept/", analysis_views.task_accept, name="task-accept"),
    path("tasks/<int:task_id>/dismiss/", analysis_views.task_dismiss, name="task-dismiss"),
]

space_session_urlpatterns = [
    path("spaces/<slug:slug>/sessions/", views.session_create, name="session-create"),
    path("spaces/<slug:slug>/ask/", ask_views.space_ask, name="space-ask"),
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
    path(
        "sessions/<str:slug>/analysis",
        analysis_api.SessionAnalysisApi.as_view(),
        name="api-session-analysis",
    ),
    path(
        "sessions/<str:slug>/catch-up",
        catch_up_api.SessionCatchUpApi.as_view(),
        name="api-session-catch-up",
    ),
    path("spaces/<slug:slug>/ask", ask_api.SpaceAskApi.as_view(), name="api-space-ask"),
    path(
        "sessions/<str:slug>/analysis/rerun",
        analysis_api.SessionAnalysisRerunApi.as_view(),
        name="api-session-analysis-rerun",
    ),
    path(
        "spaces/<slug:slug>/tasks", analysis_api.SpaceTaskListApi.as_view(), name="api-space-tasks"
    ),
    path("tasks/<int:task_id>", analysis_api.TaskUpdateApi.as_view(), name="api-task-update"),
    path(
        "tasks/<int:task_id>/accept", analysis_api.TaskAcceptApi.as_view(), name="api-task-accept"
    ),
    path(
        "tasks/<int:task_id>/dismiss",
        analysis_api.TaskDismissApi.as_view(),
        name="api-task-dismiss",
    ),
]
