from datetime import timedelta

from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from spaces import selectors, services
from spaces.languages import MAX_LANGUAGES
from spaces.models import Space, SpaceInvite, SpaceMember
from transcription.usage.limits import provider_languages

LANGUAGES_HELP = (
    "The transcription languages of the space's new sessions (a session may choose others "
    f"when it is created), as ISO 639-1 codes, at most {MAX_LANGUAGES}, each once: [] = "
    "automatic detection; one code = that language, fixed; several = the languages expected, "
    "between which the speech provider switches (code switching)."
)


class SpaceOutputSerializer(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()
    created_at = serializers.DateTimeField()
    role = serializers.CharField()
    languages = serializers.ListField(child=serializers.CharField(), help_text=LANGUAGES_HELP)


class SpaceListCreateApi(APIView):
    throttle_scope = "create"

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=120)

    @extend_schema(responses=SpaceOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        spaces = selectors.space_list_for_user(user=request.user)
        return Response(SpaceOutputSerializer(spaces, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: SpaceOutputSerializer})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        space = services.space_create(owner=request.user, name=data.validated_data["name"])
        space = selectors.space_get_for_user(user=request.user, slug=space.slug)
        return Response(SpaceOutputSerializer(space).data, status=status.HTTP_201_CREATED)


class SpaceDetailApi(APIView):
    class InputSerializer(serializers.Serializer):
        languages = serializers.ListField(
            child=serializers.CharField(),
            help_text=f"{LANGUAGES_HELP} Owners only (403 for other members). An unknown code, "
            "a repeat or too many answer 400 (code languages_invalid); a language this "
            "server's speech engine cannot transcribe answers 400 (code "
            "language_unsupported).",
        )

    @extend_schema(responses=SpaceOutputSerializer)
    def get(self, request: Request, slug: str) -> Response:
        space = selectors.space_get_for_user(user=request.user, slug=slug)
        return Response(SpaceOutputSerializer(space).data)

    @extend_schema(
        request=InputSerializer,
        responses={200: SpaceOutputSerializer},
        description="Set the space's default transcription languages (owners). Sessions "
        "already created keep theirs.",
    )
    def patch(self, request: Request, slug: str) -> Response:
        space = selectors.space_get_for_user(user=request.user, slug=slug)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.space_languages_set(
            space=space,
            by=request.user,
            languages=data.validated_data["languages"],
            supported=provider_languages(),
        )
        return Response(SpaceOutputSerializer(space).data)

    @extend_schema(
        request=None,
        responses={204: None},
        description="Delete the space with its sessions, transcripts and tasks (owners). "
        "Every member's open session sockets close with 4003.",
    )
    def delete(self, request: Request, slug: str) -> Response:
        space = selectors.space_get_for_user(user=request.user, slug=slug)
        services.space_delete(space=space, by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MemberOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    identity = serializers.CharField(source="user.identity")
    name = serializers.CharField(source="user.name")
    email = serializers.SerializerMethodField(
        help_text="The member's email address: shown to owners of the space only (else null)."
    )
    role = serializers.CharField()
    joined_at = serializers.DateTimeField()

    def get_email(self, member: SpaceMember) -> str | None:
        return member.user.email if self.context.get("show_email") else None


class MemberListApi(APIView):
    @extend_schema(responses=MemberOutputSerializer(many=True))
    def get(self, request: Request, slug: str) -> Response:
        space = selectors.space_get_for_user(user=request.user, slug=slug)
        members = selectors.space_member_list(space=space)
        context = {"show_email": space.membership.is_owner}
        return Response(MemberOutputSerializer(members, many=True, context=context).data)


class MemberRemoveApi(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request: Request, slug: str, member_id: int) -> Response:
        space = selectors.space_get_for_user(user=request.user, slug=slug)
        member = get_object_or_404(space.memberships.all(), pk=member_id)
        services.member_remove(space=space, member=member, by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class InviteOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    token = serializers.CharField()
    url = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField(source="created_by.name")
    expires_at = serializers.DateTimeField()
    uses = serializers.IntegerField(help_text="How many people joined through this link.")
    revoked = serializers.BooleanField()
    valid = serializers.BooleanField(source="is_valid", help_text="Not revoked, not expired.")

    def get_url(self, invite: SpaceInvite) -> str:
        request = self.context["request"]
        path = reverse("invite-accept", kwargs={"token": invite.token})
        return request.build_absolute_uri(path)


class InviteListCreateApi(APIView):
    throttle_scope = "create"

    class InputSerializer(serializers.Serializer):
        ttl_hours = serializers.IntegerField(min_value=1, max_value=24 * 30, default=24 * 7)

    @extend_schema(
        responses=InviteOutputSerializer(many=True),
        description="The space's invitation links that still admit people (owners only).",
    )
    def get(self, request: Request, slug: str) -> Response:
        space = selectors.space_get_for_user(user=request.user, slug=slug)
        services.require_owner(space=space, by=request.user)
        invites = selectors.invite_list_for_space(space=space)
        out = InviteOutputSerializer(invites, many=True, context={"request": request})
        return Response(out.data)

    @extend_schema(request=InputSerializer, responses={201: InviteOutputSerializer})
    def post(self, request: Request, slug: str) -> Response:
        space = selectors.space_get_for_user(user=request.user, slug=slug)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        invite = services.invite_create(
            space=space,
            by=request.user,
            ttl=timedelta(hours=data.validated_data["ttl_hours"]),
        )
        out = InviteOutputSerializer(invite, context={"request": request})
        return Response(out.data, status=status.HTTP_201_CREATED)


class InviteRevokeApi(APIView):
    @extend_schema(
        request=None,
        responses={204: None},
        description="Revoke an invitation link (owners only): it admits nobody from now on.",
    )
    def delete(self, request: Request, slug: str, invite_id: int) -> Response:
        space = selectors.space_get_for_user(user=request.user, slug=slug)
        invite = get_object_or_404(space.invites.all(), pk=invite_id)
        services.invite_revoke(invite=invite, by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class InviteAcceptApi(APIView):
    @extend_schema(request=None, responses={200: SpaceOutputSerializer})
    def post(self, request: Request, token: str) -> Response:
        invite = selectors.invite_get(token=token)
        services.invite_accept(invite=invite, user=request.user)
        space: Space = selectors.space_get_for_user(user=request.user, slug=invite.space.slug)
        return Response(SpaceOutputSerializer(space).data)
