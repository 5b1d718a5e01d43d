from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from sessions_app import selectors, services
from spaces.languages import MAX_LANGUAGES
from spaces.selectors import space_get_for_user

LANGUAGES_HELP = (
    "The spoken languages, as ISO 639-1 codes (at most "
    f"{MAX_LANGUAGES}, each once): [] = automatic detection; one code = that language, fixed; "
    "several = the languages expected, between which the speech provider switches (code "
    "switching)."
)


class SessionOutputSerializer(serializers.Serializer):
    slug = serializers.CharField()
    title = serializers.CharField()
    space = serializers.CharField(source="space.slug")
    status = serializers.CharField()
    languages = serializers.ListField(child=serializers.CharField(), help_text=LANGUAGES_HELP)
    peer_to_peer = serializers.BooleanField()
    created_by = serializers.CharField(source="created_by.identity")
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)


class SessionListApi(APIView):
    @extend_schema(responses=SessionOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        sessions = selectors.session_list_for_user(user=request.user)[:200]
        return Response(SessionOutputSerializer(sessions, many=True).data)


class SpaceSessionListCreateApi(APIView):
    throttle_scope = "create"

    class InputSerializer(serializers.Serializer):
        title = serializers.CharField(max_length=200)
        languages = serializers.ListField(
            child=serializers.CharField(),
            required=False,
            help_text=f"{LANGUAGES_HELP} Omitted: the space's default languages. An unknown "
            "code, a repeat or too many answer 400 (code languages_invalid); a language this "
            "server's speech engine cannot transcribe answers 400 (code language_unsupported).",
        )
        peer_to_peer = serializers.BooleanField(required=False, default=False)

    @extend_schema(responses=SessionOutputSerializer(many=True))
    def get(self, request: Request, slug: str) -> Response:
        space = space_get_for_user(user=request.user, slug=slug)
        sessions = selectors.session_list_for_space(space=space).select_related("space")[:200]
        return Response(SessionOutputSerializer(sessions, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: SessionOutputSerializer})
    def post(self, request: Request, slug: str) -> Response:
        space = space_get_for_user(user=request.user, slug=slug)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        session = services.session_create(
            space=space,
            by=request.user,
            title=data.validated_data["title"],
            languages=data.validated_data.get("languages"),
            peer_to_peer=data.validated_data["peer_to_peer"],
        )
        return Response(SessionOutputSerializer(session).data, status=status.HTTP_201_CREATED)


class SessionDetailApi(APIView):
    @extend_schema(responses=SessionOutputSerializer)
    def get(self, request: Request, slug: str) -> Response:
        session = selectors.session_get_for_user(user=request.user, slug=slug)
        return Response(SessionOutputSerializer(session).data)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, slug: str) -> Response:
        session = selectors.session_get_for_user(user=request.user, slug=slug)
        services.session_delete(session=session, by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SessionJoinApi(APIView):
    class OutputSerializer(serializers.Serializer):
        identity = serializers.CharField()
        name = serializers.CharField()
        role = serializers.CharField()
        video_enabled = serializers.BooleanField()
        video_mode = serializers.ChoiceField(choices=["livekit", "mesh"])
        mesh_ws_path = serializers.CharField(allow_null=True)
        livekit_url = serializers.CharField(allow_null=True)
        livekit_token = serializers.CharField(allow_null=True)
        transcription_token = serializers.CharField()
        transcript_ws_path = serializers.CharField()
        message = serializers.CharField()

    @extend_schema(request=None, responses={200: OutputSerializer})
    def post(self, request: Request, slug: str) -> Response:
        session = selectors.session_get_for_user(user=request.user, slug=slug)
        result = services.session_join(session=session, user=request.user)
        video = result.livekit_token is not None
        if video:
            message = _("Joined.")
        else:
            limit = settings.MESH_MAX_PARTICIPANTS
            message = ngettext(
                "Joined. Video is peer to peer between the browsers (up to %(count)d person).",
                "Joined. Video is peer to peer between the browsers (up to %(count)d people).",
                limit,
            ) % {"count": limit}
        payload = {
            "identity": result.participant.identity,
            "name": result.participant.name,
            "role": result.participant.role,
            "video_enabled": video,
            "video_mode": "livekit" if video else "mesh",
            "mesh_ws_path": None if video else f"/ws/sessions/{session.slug}/signal/",
            "livekit_url": result.livekit_url if video else None,
            "livekit_token": result.livekit_token,
            "transcription_token": result.transcription_token,
            "transcript_ws_path": f"/ws/sessions/{session.slug}/transcript/",
            "message": message,
        }
        return Response(self.OutputSerializer(payload).data)


class SessionEndApi(APIView):
    @extend_schema(request=None, responses={200: SessionOutputSerializer})
    def post(self, request: Request, slug: str) -> Response:
        session = selectors.session_get_for_user(user=request.user, slug=slug)
        session = services.session_end(session=session, by=request.user)
        return Response(SessionOutputSerializer(session).data)


class ParticipantOutputSerializer(serializers.Serializer):
    identity = serializers.CharField()
    name = serializers.CharField()
    role = serializers.CharField()
    joined_at = serializers.DateTimeField()
    left_at = serializers.DateTimeField(allow_null=True)


class ParticipantListApi(APIView):
    @extend_schema(responses=ParticipantOutputSerializer(many=True))
    def get(self, request: Request, slug: str) -> Response:
        session = selectors.session_get_for_user(user=request.user, slug=slug)
        participants = selectors.participant_list(session=session)
        return Response(ParticipantOutputSerializer(participants, many=True).data)
