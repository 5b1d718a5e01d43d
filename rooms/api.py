"""API plumbing shared by every app: the exception handler and small helpers."""

from __future__ import annotations

from typing import Any

from drf_spectacular import openapi as drf_spectacular_openapi
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from rooms.errors import DomainError


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus ``DomainError`` → ``{"detail", "code"}`` with the error's status."""
    if isinstance(exc, DomainError):
        return Response({"detail": exc.message, "code": exc.code}, status=exc.status)
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "code" not in response.data:
        # DRF maps Django's Http404/PermissionDenied to its own exceptions only internally.
        code = getattr(exc, "default_code", None) or _CODE_BY_STATUS.get(response.status_code)
        if code:
            response.data["code"] = code
    return response


_CODE_BY_STATUS = {404: "not_found", 403: "permission_denied", 405: "method_not_allowed"}


class AutoSchema(drf_spectacular_openapi.AutoSchema):
    """Names nested ``InputSerializer``/``OutputSerializer`` classes after their view.

    Every API view declares its own ``InputSerializer`` and ``OutputSerializer``; without this,
    drf-spectacular would name all of them "Input"/"Output" and merge unrelated schemas.
    """

    def _get_serializer_name(
        self, serializer: Any, direction: str, bypass_extensions: bool = False
    ) -> str:
        name = super()._get_serializer_name(serializer, direction, bypass_extensions)
        qualname = type(serializer).__qualname__
        if "." in qualname and not getattr(getattr(serializer, "Meta", None), "ref_name", None):
            owner = qualname.rsplit(".", 2)[-2]
            return f"{owner.removesuffix('Api')}{name}"
        return name
