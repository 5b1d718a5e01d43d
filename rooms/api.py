"""API plumbing shared by every app: the exception handler, bounded pagination and small
helpers."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views.defaults import page_not_found
from drf_spectacular import openapi as drf_spectacular_openapi
from drf_spectacular.utils import OpenApiParameter
from rest_framework import pagination, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from rooms.errors import DomainError


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus ``DomainError`` → ``{"detail", "code"}`` with the error's status."""
    if isinstance(exc, DomainError):
        return Response({**exc.data, "detail": exc.message, "code": exc.code}, status=exc.status)
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
        return JsonResponse({"detail": _("Not found."), "code": "not_found"}, status=404)
    return page_not_found(request, exception)


_BEYOND_ANY_PAGE = 10**18
"""Stands for any longer number: more than any table's rows, less than SQL's ``bigint``."""


def _whole_number(raw: str, name: str, minimum: int) -> int:
    """``raw`` as a whole number written in ASCII digits, at least ``minimum``; 400
    (``ValidationError`` keyed by ``name``, in DRF's own words) for anything else: a fraction,
    an exponent, other digits, a number below ``minimum``."""
    digits = raw.removeprefix("-")
    if not (digits.isascii() and digits.isdigit()):
        raise ValidationError({name: [_("A valid integer is required.")]})
    digits = digits.lstrip("0") or "0"
    value = int(digits) if len(digits) < len(str(_BEYOND_ANY_PAGE)) else _BEYOND_ANY_PAGE
    if raw.startswith("-") and value:
        value = -value
    if value < minimum:
        message = _("Ensure this value is greater than or equal to {min_value}.")
        raise ValidationError({name: [message.format(min_value=minimum)]})
    return value


class BoundedLimitOffsetPagination(pagination.LimitOffsetPagination):
    """DRF's ``limit``/``offset`` pages with a maximum page size, for every paginated API.

    ``limit``: 1 to ``max_limit`` (``default_limit`` when absent or empty); a larger value is
    served as ``max_limit``. ``offset``: 0 or more; past the end, an empty page. Anything else
    (``abc``, ``-1``, ``1.5``, ``1e3``, ``limit=0``) answers 400. DRF alone passed any size
    to SQL, where ``?limit=10**30`` failed ("datatype mismatch" on SQLite, "bigint out of
    range" on PostgreSQL: a 500), ignored malformed values silently and had no maximum.
    """

    default_limit = 50
    max_limit = 500

    def get_limit(self, request: Request) -> int:
        raw = request.query_params.get(self.limit_query_param, "")
        if not raw:
            return self.default_limit
        return min(_whole_number(raw, self.limit_query_param, minimum=1), self.max_limit)

    def get_offset(self, request: Request) -> int:
        raw = request.query_params.get(self.offset_query_param, "")
        return _whole_number(raw, self.offset_query_param, minimum=0) if raw else 0

    def paginate_queryset(
        self, queryset: QuerySet[Any], request: Request, view: APIView | None = None
    ) -> list[Any]:
        """The page's rows. Both parameters are read before any query; the offset is then
        brought within the rows, so the SQL never sees more than ``count + max_limit``."""
        self.request = request
        self.limit = self.get_limit(request)
        self.offset = self.get_offset(request)
        self.count = self.get_count(queryset)
        self.offset = min(self.offset, self.count)
        if self.offset >= self.count:
            return []
        return list(queryset[self.offset : self.offset + self.limit])

    @classmethod
    def openapi_parameters(cls, items: str) -> list[OpenApiParameter]:
        """``limit`` and ``offset`` for ``@extend_schema(parameters=...)`` of an ``APIView``
        that pages ``items`` with this class, their bounds included."""
        return [
            OpenApiParameter(
                cls.limit_query_param,
                {"type": "integer", "minimum": 1, "maximum": cls.max_limit},
                default=cls.default_limit,
                description=(
                    f"{items.capitalize()} per page: 1 to {cls.max_limit} (default "
                    f"{cls.default_limit}); a larger number is served as {cls.max_limit}."
                ),
            ),
            OpenApiParameter(
                cls.offset_query_param,
                {"type": "integer", "minimum": 0},
                default=0,
                description=f"{items.capitalize()} to skip; past the last one, an empty page.",
            ),
        ]


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
