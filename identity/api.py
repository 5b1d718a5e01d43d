from allauth.account.adapter import get_adapter
from django.core.exceptions import ValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from identity.models import User
from rooms.errors import LimitExceeded


class UserOutputSerializer(serializers.Serializer):
    identity = serializers.CharField()
    email = serializers.EmailField()
    name = serializers.CharField()
    display_name = serializers.CharField()


def user_payload(user: User) -> dict[str, str]:
    return {
        "identity": user.identity,
        "email": user.email,
        "name": user.name,
        "display_name": user.display_name,
    }


class MeApi(APIView):
    @extend_schema(responses=UserOutputSerializer)
    def get(self, request: Request) -> Response:
        return Response(UserOutputSerializer(user_payload(request.user)).data)


class TokenCreateApi(APIView):
    """Exchange email + password for an API token (``Authorization: Token <key>``)."""

    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_scope = "auth"

    class InputSerializer(serializers.Serializer):
        email = serializers.EmailField()
        password = serializers.CharField(max_length=256, trim_whitespace=False)

    class OutputSerializer(serializers.Serializer):
        token = serializers.CharField()

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        # allauth's adapter counts failures against the same per-IP and per-email limits as the
        # sign-in page, so the API is no easier to guess passwords through than the form.
        try:
            user = get_adapter(request._request).authenticate(
                request._request,
                email=data.validated_data["email"].lower(),
                password=data.validated_data["password"],
            )
        except ValidationError as exc:
            raise LimitExceeded(
                "Too many failed sign-in attempts. Try again later.",
                code="too_many_login_attempts",
            ) from exc
        if user is None or not user.is_active:
            return Response(
                {"detail": "Invalid email or password.", "code": "invalid_credentials"},
                status=status.HTTP_400_BAD_REQUEST,
            )
        token, _ = Token.objects.get_or_create(user=user)
        return Response(self.OutputSerializer({"token": token.key}).data)
