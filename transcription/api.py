from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from rooms.api import BoundedLimitOffsetPagination
from sessions_app.selectors import session_get_for_user
from transcription import selectors, services
from transcription.live import broadcast
from transcription.models import TranscriptionRun


class RunStatusOutputSerializer(serializers.Serializer):
    status = serializers.CharField()
    mode = serializers.CharField(allow_null=True)
    run_id = serializers.IntegerField(allow_null=True)
    provider = serializers.CharField(allow_null=True)
    error = serializers.CharField(allow_null=True)
    error_code = serializers.CharField(allow_null=True)


def _status(run: TranscriptionRun | None) -> dict:
    payload = broadcast.status_payload(run)
    payload.pop("type")
    return payload


class TranscriptionStatusApi(APIView):
    @extend_schema(responses=RunStatusOutputSerializer)
    def get(self, request: Request, slug: str) -> Response:
        session = session_get_for_user(user=request.user, slug=slug)
        return Response(
            RunStatusOutputSerializer(_status(selectors.run_current(session=session))).data
        )


class TranscriptionStartApi(APIView):
    throttle_scope = "create"

    class InputSerializer(serializers.Serializer):
        mode = serializers.ChoiceField(choices=TranscriptionRun.Mode.choices, required=False)

    @extend_schema(request=InputSerializer, responses={201: RunStatusOutputSerializer})
    def post(self, request: Request, slug: str) -> Response:
        session = session_get_for_user(user=request.user, slug=slug)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        run = services.run_start(
            session=session, by=request.user, mode=data.validated_data.get("mode")
        )
        run.refresh_from_db()
        return Response(
            RunStatusOutputSerializer(_status(run)).data, status=status.HTTP_201_CREATED
        )


class TranscriptionStopApi(APIView):
    @extend_schema(request=None, responses={200: RunStatusOutputSerializer})
    def post(self, request: Request, slug: str) -> Response:
        session = session_get_for_user(user=request.user, slug=slug)
        run = selectors.run_unfinished(session_id=session.pk)
        if run is not None:
            run = services.run_stop(run=run, reason="stopped by a participant")
        else:
            run = selectors.run_current(session=session)
        return Response(RunStatusOutputSerializer(_status(run)).data)


class SegmentOutputSerializer(serializers.Serializer):
    utterance_id = serializers.CharField()
    text = serializers.CharField()
    speaker_identity = serializers.CharField(allow_null=True)
    speaker_name = serializers.CharField(allow_null=True)
    start = serializers.FloatField()
    end = serializers.FloatField()
    language = serializers.CharField()
    is_final = serializers.BooleanField()


class SegmentPageOutputSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = SegmentOutputSerializer(many=True)


class SegmentPagination(BoundedLimitOffsetPagination):
    max_limit = 500


class SegmentListApi(APIView):
    """The stored (final) transcript of a session, oldest first, paginated (at most 500
    segments a page)."""

    @extend_schema(
        parameters=SegmentPagination.openapi_parameters("segments"),
        responses=SegmentPageOutputSerializer,
    )
    def get(self, request: Request, slug: str) -> Response:
        session = session_get_for_user(user=request.user, slug=slug)
        paginator = SegmentPagination()
        page = paginator.paginate_queryset(
            selectors.segment_list(session=session), request, view=self
        )
        data = [broadcast.segment_payload(s) for s in page or []]
        return paginator.get_paginated_response(SegmentOutputSerializer(data, many=True).data)
