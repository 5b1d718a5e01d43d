"""API plumbing shared by every app: the exception handler and small helpers."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found
from drf_spectacular import openapi as drf_spectacular_openapi
from rest_framework import serializers
from rest_framework.permissions import AllowAny
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


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """``handler404``: a URL under ``/api/`` that no route matches (e.g. a path parameter of
    the wrong kind) answers JSON like every API error; other URLs get the HTML page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)
    return page_not_found(request, exception)


class ErrorOutputSerializer(serializers.Serializer):
    """Every error answer: a machine-readable ``code`` and a ``detail`` message — or, for
    invalid input, the messages keyed by field name next to ``code``."""

    code = serializers.CharField()
    detail = serializers.CharField(required=False)


class AutoSchema(drf_spectacular_openapi.AutoSchema):
    """Names nested ``InputSerializer``/``OutputSerializer`` classes after their view, and
    documents the error answers every operation can give.

    Every API view declares its own ``InputSerializer`` and ``OutputSerializer``; without this,
    drf-spectacular would name all of them "Input"/"Output" and merge unrelated schemas.
    """

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation = super().get_operation(*args, **kwargs)
        if operation is not None:
            responses = operation["responses"]
            for code in self._error_status_codes(operation):
                if code not in responses:
                    responses[code] = self._get_response_for_code(ErrorOutputSerializer, code)
        return operation

    def _error_status_codes(self, operation: dict[str, Any]) -> list[str]:
        codes = []
        if self.method in ("POST", "PUT", "PATCH", "DELETE"):
            # Invalid input or a broken domain rule (400); the object's state forbids it (409);
            # a body that no parser understands, e.g. a broken multipart body (415).
            codes += ["400", "409", "415"]
        elif any(p.get("in") == "query" for p in operation.get("parameters", [])):
            codes.append("400")  # an invalid query parameter
        if not any(isinstance(p, AllowAny) for p in self.view.get_permissions()):
            codes += ["401", "403"]
        if "{" in self.path:
            codes.append("404")
        if self.view.get_throttles():
            codes.append("429")
        return codes

    def _get_serializer_name(
        self, serializer: Any, direction: str, bypass_extensions: bool = False
    ) -> str:
        name = super()._get_serializer_name(serializer, direction, bypass_extensions)
        qualname = type(serializer).__qualname__
        if "." in qualname and not getattr(getattr(serializer, "Meta", None), "ref_name", None):
            owner = qualname.rsplit(".", 2)[-2]
            return f"{owner.removesuffix('Api')}{name}"
        return name
