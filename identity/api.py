from allauth.account.adapter import get_adapter
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import Throttled
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from identity.lockout import retry_after
from identity.models import User
from identity.services import api_token_get_or_create, api_tokens_revoke


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


class LoginLocked(Throttled):
    """Too many failed sign-ins for this address or account: 429 with ``Retry-After``."""

    default_detail = _("Too many failed sign-in attempts. Try again later.")
    default_code = "too_many_login_attempts"


class TokenCreateApi(APIView):
    """Exchange email + password for an API token (``Authorization: Token <key>``).

    The token lasts until it is deleted (``DELETE``) or the user's password changes.
    """

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
        email = data.validated_data["email"].lower()
        # allauth's adapter counts failures against the same per-IP and per-email limits as the
        # sign-in page, so the API is no easier to guess passwords through than the form.
        try:
            user = get_adapter(request._request).authenticate(
                request._request, email=email, password=data.validated_data["password"]
            )
        except ValidationError as exc:
            wait = retry_after(request._request, action="login_failed", email=email)
            raise LoginLocked(wait=max(wait, 1)) from exc
        if user is None or not user.is_active:
            return Response(
                {"detail": _("Invalid email or password."), "code": "invalid_credentials"},
                status=status.HTTP_400_BAD_REQUEST,
            )
        token = api_token_get_or_create(user=user)
        return Response(self.OutputSerializer({"token": token.key}).data)


class TokenDeleteApi(APIView):
    """Sign out the API token the request is made with (the caller's token, when signed in
    with a session): it stops working at once."""

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request) -> Response:
        api_tokens_revoke(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenApi(TokenCreateApi, TokenDeleteApi):
    """``/api/auth/token``: ``POST`` is ``TokenCreateApi`` (anonymous: it is a sign-in),
    ``DELETE`` is ``TokenDeleteApi`` (it needs the token it signs out). Each method runs with
    the authentication and permissions of the view that defines it."""

    def _operation(self) -> type[APIView]:
        # drf-spectacular asks for authenticators before it gives the view a request.
        method = getattr(getattr(self, "request", None), "method", None)
        return TokenDeleteApi if method == "DELETE" else TokenCreateApi

    def get_authenticators(self) -> list[BaseAuthentication]:
        return [auth() for auth in self._operation().authentication_classes]

    def get_permissions(self) -> list[BasePermission]:
        return [permission() for permission in self._operation().permission_classes]
