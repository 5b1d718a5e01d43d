"""API of transcript corrections (``transcription.archive.edits``): members read, attendees edit.

Everything is under ``/api/sessions/<slug>/segments/``; an outsider gets 404 everywhere.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from sessions_app.selectors import session_get_for_user
from transcription.api import SegmentOutputSerializer
from transcription.archive import edits
from transcription.live import broadcast
from transcription.models import SegmentRevision

CHANGES_SHOWN = 500


class SpeakerSerializer(serializers.Serializer):
    speaker_identity = serializers.CharField(
        allow_blank=True, max_length=64, help_text="A participant's identity; empty: no person."
    )
    speaker_name = serializers.CharField(
        allow_blank=True,
        max_length=120,
        required=False,
        default="",
        help_text="The label shown, needed to tell speakers without identity apart.",
    )

    def speaker(self) -> edits.Speaker:
        data = self.validated_data
        return edits.Speaker(data["speaker_identity"], data.get("speaker_name", ""))


class EditedSegmentSerializer(SegmentOutputSerializer):
    confidence = serializers.FloatField(allow_null=True)
    revision = serializers.IntegerField()


class RevisionOutputSerializer(serializers.Serializer):
    change = serializers.CharField()
    number = serializers.IntegerField()
    kind = serializers.CharField()
    kind_label = serializers.CharField(source="get_kind_display")
    utterance_id = serializers.CharField(source="segment.utterance_id")
    by = serializers.SerializerMethodField()
    reverts = serializers.CharField()
    before = serializers.JSONField()
    after = serializers.JSONField()
    created_at = serializers.DateTimeField()

    def get_by(self, revision: SegmentRevision) -> str | None:
        return revision.by.name if revision.by else None


class SegmentEditApi(APIView):
    class InputSerializer(serializers.Serializer):
        base_revision = serializers.IntegerField(
            min_value=0, max_value=2**31 - 1, help_text="The segment's revision you edited."
        )
        text = serializers.CharField(
            required=False, max_length=edits.MAX_TEXT_LENGTH, allow_blank=True
        )
        speaker_identity = serializers.CharField(required=False, allow_blank=True, max_length=64)

    @extend_schema(
        request=InputSerializer,
        responses={
            200: EditedSegmentSerializer,
            409: OpenApiResponse(
                description="`edit_conflict`: changed meanwhile; `current` is the segment now."
            ),
        },
        description="Correct a segment's text and/or give it to another participant (the host, "
        "space owners and members who attended).",
    )
    def patch(self, request: Request, slug: str, utterance_id: str) -> Response:
        session = session_get_for_user(user=request.user, slug=slug)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        segment = edits.segment_edit(
            session=session,
            utterance_id=utterance_id,
            by=request.user,
            base_revision=data.validated_data["base_revision"],
            text=data.validated_data.get("text"),
            speaker_identity=data.validated_data.get("speaker_identity"),
        )
        return Response(broadcast.segment_payload(segment))


class SegmentRevisionListApi(APIView):
    @extend_schema(responses=RevisionOutputSerializer(many=True))
    def get(self, request: Request, slug: str, utterance_id: str) -> Response:
        session = session_get_for_user(user=request.user, slug=slug)
        revisions = edits.revision_list(session=session, utterance_id=utterance_id)
        return Response(RevisionOutputSerializer(revisions[:CHANGES_SHOWN], many=True).data)


class ChangeListApi(APIView):
    @extend_schema(
        responses=RevisionOutputSerializer(many=True),
        description=f"Who changed what and when, newest first (the latest {CHANGES_SHOWN}).",
    )
    def get(self, request: Request, slug: str) -> Response:
        session = session_get_for_user(user=request.user, slug=slug)
        revisions = edits.revision_list(session=session)[:CHANGES_SHOWN]
        return Response(RevisionOutputSerializer(revisions, many=True).data)


class ChangeRevertApi(APIView):
    class OutputSerializer(serializers.Serializer):
        segments = serializers.IntegerField(help_text="How many segments changed back.")

    @extend_schema(request=None, responses=OutputSerializer)
    def post(self, request: Request, slug: str, change: str) -> Response:
        session = session_get_for_user(user=request.user, slug=slug)
        count = edits.change_revert(session=session, by=request.user, change=change[:32])
        return Response({"segments": count})


class SpeakerListApi(APIView):
    class OutputSerializer(serializers.Serializer):
        speaker_identity = serializers.CharField(source="identity")
        speaker_name = serializers.CharField(source="label")

    @extend_schema(responses=OutputSerializer(many=True))
    def get(self, request: Request, slug: str) -> Response:
        session = session_get_for_user(user=request.user, slug=slug)
        return Response(self.OutputSerializer(edits.speaker_list(session=session), many=True).data)


class SpeakerRenameApi(APIView):
    class InputSerializer(SpeakerSerializer):
        name = serializers.CharField(max_length=edits.MAX_NAME_LENGTH)

    @extend_schema(
        request=InputSerializer,
        responses=ChangeRevertApi.OutputSerializer,
        description="Show a speaker under another name throughout the transcript.",
    )
    def post(self, request: Request, slug: str) -> Response:
        session = session_get_for_user(user=request.user, slug=slug)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        count = edits.speaker_rename(
            session=session,
            by=request.user,
            speaker=data.speaker(),
            name=data.validated_data["name"],
        )
        return Response({"segments": count})


class SpeakerMergeApi(APIView):
    class InputSerializer(serializers.Serializer):
        source = SpeakerSerializer()
        target = SpeakerSerializer()

    @extend_schema(
        request=InputSerializer,
        responses=ChangeRevertApi.OutputSerializer,
        description="Give every segment of `source` to `target`.",
    )
    def post(self, request: Request, slug: str) -> Response:
        session = session_get_for_user(user=request.user, slug=slug)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        source, target = data.validated_data["source"], data.validated_data["target"]
        count = edits.speakers_merge(
            session=session,
            by=request.user,
            source=edits.Speaker(source["speaker_identity"], source.get("speaker_name", "")),
            target=edits.Speaker(target["speaker_identity"], target.get("speaker_name", "")),
        )
        return Response({"segments": count}, status=status.HTTP_200_OK)
