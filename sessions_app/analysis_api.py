"""API of session analyses and the tasks they propose (members only; outsiders get 404).

Any member of the space may list tasks and proposals, accept or dismiss a proposal and tick a
task off; re-running an analysis is for the session's host and the space's owners.
"""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from sessions_app import selectors
from sessions_app.analysis import services
from sessions_app.models import SessionAnalysis, Task
from spaces.selectors import space_get_for_user


class ActionItemSerializer(serializers.Serializer):
    text = serializers.CharField()
    owner = serializers.CharField(allow_null=True)
    due = serializers.CharField(allow_null=True)
    start = serializers.FloatField(allow_null=True)
    low_confidence = serializers.BooleanField(default=False)


class SpeakerStatSerializer(serializers.Serializer):
    identity = serializers.CharField(allow_blank=True)
    name = serializers.CharField()
    talk_seconds = serializers.FloatField()
    words = serializers.IntegerField()
    wpm = serializers.IntegerField()
    turns = serializers.IntegerField()


class AnalysisOutputSerializer(serializers.Serializer):
    session = serializers.CharField(source="session.slug")
    status = serializers.CharField()
    provider = serializers.CharField()
    summary = serializers.CharField()
    topics = serializers.ListField(child=serializers.CharField())
    action_items = ActionItemSerializer(many=True)
    speaker_stats = SpeakerStatSerializer(many=True)
    error = serializers.CharField()
    attempts = serializers.IntegerField()
    created_at = serializers.DateTimeField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    transcript_edited_at = serializers.DateTimeField(allow_null=True)
    # The transcript was edited after this analysis read it: a re-run would differ.
    stale = serializers.BooleanField(source="is_stale")


class SessionAnalysisApi(APIView):
    @extend_schema(responses=AnalysisOutputSerializer)
    def get(self, request: Request, slug: str) -> Response:
        session = selectors.session_get_for_user(user=request.user, slug=slug)
        analysis = selectors.analysis_get_for_session(session=session)
        if analysis is None:
            # Not requested yet (the session has not ended): an unsaved row says so.
            analysis = SessionAnalysis(session=session, status="NONE", created_at=None)
        analysis.session = session
        return Response(AnalysisOutputSerializer(analysis).data)


class SessionAnalysisRerunApi(APIView):
    @extend_schema(request=None, responses={202: AnalysisOutputSerializer})
    def post(self, request: Request, slug: str) -> Response:
        session = selectors.session_get_for_user(user=request.user, slug=slug)
        analysis: SessionAnalysis = services.analysis_rerun(session=session, by=request.user)
        return Response(AnalysisOutputSerializer(analysis).data, status=status.HTTP_202_ACCEPTED)


class TaskOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    title = serializers.CharField()
    proposed_title = serializers.CharField()
    space = serializers.CharField(source="space.slug")
    session = serializers.CharField(source="session.slug", allow_null=True, default=None)
    owner_name = serializers.CharField()
    assignee = serializers.CharField(source="assignee.identity", allow_null=True, default=None)
    assignee_name = serializers.CharField(source="assignee.name", allow_null=True, default=None)
    due_phrase = serializers.CharField()
    due_date = serializers.DateField(allow_null=True)
    start_seconds = serializers.FloatField(allow_null=True)
    low_confidence = serializers.BooleanField()
    transcript_url = serializers.SerializerMethodField()
    accepted_at = serializers.DateTimeField(allow_null=True)
    accepted_by = serializers.CharField(
        source="accepted_by.identity", allow_null=True, default=None
    )
    dismissed_at = serializers.DateTimeField(allow_null=True)
    dismissed_by = serializers.CharField(
        source="dismissed_by.identity", allow_null=True, default=None
    )
    done = serializers.BooleanField()
    done_at = serializers.DateTimeField(allow_null=True)
    done_by = serializers.CharField(source="done_by.identity", allow_null=True, default=None)
    created_at = serializers.DateTimeField()

    def get_transcript_url(self, task: Task) -> str | None:
        if task.session is None:
            return None
        url = reverse("sessions:detail", kwargs={"slug": task.session.slug})
        # The session page turns ``?t=`` into the page and anchor of that transcript moment.
        return f"{url}?t={int(task.start_seconds)}" if task.start_seconds is not None else url


class TaskStatusField(serializers.ChoiceField):
    """A ``Task.Status`` (``PROPOSED``, ``ACCEPTED``, ``DISMISSED``), in any case."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(choices=Task.Status.values, **kwargs)

    def to_internal_value(self, data: object) -> str:
        return str(super().to_internal_value(str(data).upper()))


class SpaceTaskListApi(APIView):
    class FilterSerializer(serializers.Serializer):
        status = TaskStatusField(
            required=False,
            default=Task.Status.ACCEPTED,
            help_text="ACCEPTED (the space's tasks, the default), PROPOSED (by the analyses, "
            "awaiting a member's decision) or DISMISSED; any case.",
        )
        done = serializers.BooleanField(required=False, allow_null=True, default=None)

    @extend_schema(parameters=[FilterSerializer], responses=TaskOutputSerializer(many=True))
    def get(self, request: Request, slug: str) -> Response:
        space = space_get_for_user(user=request.user, slug=slug)
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        tasks = selectors.task_list_for_space(
            space=space,
            done=filters.validated_data["done"],
            status=filters.validated_data["status"],
        )
        return Response(TaskOutputSerializer(tasks[:500], many=True).data)


class TaskAcceptApi(APIView):
    """Accept a proposed task, with edits (any member of the task's space)."""

    class InputSerializer(serializers.Serializer):
        title = serializers.CharField(required=False, max_length=500)
        assignee = serializers.CharField(
            required=False,
            allow_null=True,
            allow_blank=True,
            max_length=64,
            help_text="A member's identity (u-…); null or empty for nobody; absent: as proposed.",
        )
        due_phrase = serializers.CharField(required=False, allow_blank=True, max_length=120)
        due_date = serializers.DateField(required=False, allow_null=True)

    @extend_schema(request=InputSerializer, responses=TaskOutputSerializer)
    def post(self, request: Request, task_id: int) -> Response:
        task = selectors.task_get_for_user(user=request.user, task_id=task_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        edits = dict(data.validated_data)
        if "assignee" in edits:
            identity = edits["assignee"]
            edits["assignee"] = (
                selectors.task_assignee_get(space=task.space, identity=identity)
                if identity
                else None
            )
            if identity and edits["assignee"] is None:
                raise serializers.ValidationError({"assignee": [_("Pick a member of this space.")]})
        task = services.task_accept(task=task, by=request.user, **edits)
        return Response(TaskOutputSerializer(task).data)


class TaskDismissApi(APIView):
    """Dismiss a proposed task (any member of the task's space)."""

    @extend_schema(request=None, responses=TaskOutputSerializer)
    def post(self, request: Request, task_id: int) -> Response:
        task = selectors.task_get_for_user(user=request.user, task_id=task_id)
        task = services.task_dismiss(task=task, by=request.user)
        return Response(TaskOutputSerializer(task).data)


class TaskUpdateApi(APIView):
    class InputSerializer(serializers.Serializer):
        done = serializers.BooleanField()

    @extend_schema(request=InputSerializer, responses=TaskOutputSerializer)
    def patch(self, request: Request, task_id: int) -> Response:
        task = selectors.task_get_for_user(user=request.user, task_id=task_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        task = services.task_set_done(task=task, by=request.user, done=data.validated_data["done"])
        return Response(TaskOutputSerializer(task).data)
