"""Transcript downloads: ``/api/sessions/<slug>/transcript.<fmt>`` or ``…/transcript?format=``;
``?lang=ru`` gives the file in a caption language (translations where stored, else as spoken)."""

from __future__ import annotations

from django.http import HttpResponse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from rooms.errors import DomainError
from sessions_app.selectors import session_get_for_user
from transcription.archive import exports, transcript
from transcription.translation import caption_language_clean


class UnknownFormat(DomainError):
    code = "unknown_format"
    status = 400


_LANG_PARAMETER = OpenApiParameter(
    "lang",
    OpenApiTypes.STR,
    OpenApiParameter.QUERY,
    required=False,
    description=(
        "A caption language (ISO 639-1, e.g. `ru`): each segment's stored translation into it, "
        "the original where it has none (labelled with its language). Empty or absent: the "
        "transcript as spoken. Not a language code: 400 `language_invalid`."
    ),
)


class _FormatIsTheFile(BaseContentNegotiation):
    """``format`` names the file to build, not a DRF renderer: errors are always JSON."""

    def select_parser(self, request: Request, parsers: list[BaseParser]) -> BaseParser | None:
        return parsers[0] if parsers else None

    def select_renderer(
        self, request: Request, renderers: list[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        return renderers[0], renderers[0].media_type


# Every format is a text file; the JSON export is a document (an object) like any JSON body.
_FILE_RESPONSES = {
    (200, export.content_type.split(";")[0]): (
        OpenApiTypes.OBJECT if export.extension == "json" else OpenApiTypes.STR
    )
    for export in exports.FORMATS.values()
}


class _TranscriptFileView(APIView):
    content_negotiation_class = _FormatIsTheFile

    def _file(self, request: Request, slug: str, name: str) -> HttpResponse:
        session = session_get_for_user(user=request.user, slug=slug)
        export = exports.FORMATS.get(name.lower())
        if export is None:
            choices = ", ".join(exports.FORMATS)
            if name:
                message = _("Unknown transcript format ('%(format)s'): choose one of %(choices)s.")
            else:
                message = _("No transcript format given: choose one of %(choices)s.")
            raise UnknownFormat(message % {"format": name[:20], "choices": choices})
        language = caption_language_clean(request.query_params.get("lang", ""))
        body = export.render(
            transcript.export_cues(session=session, language=language),
            transcript.export_meta(session=session, language=language),
        )
        response = HttpResponse(body.encode("utf-8"), content_type=export.content_type)
        suffix = f".{language}" if language else ""
        response["Content-Disposition"] = (
            f'attachment; filename="{session.slug}{suffix}.{export.extension}"'
        )
        return response


class TranscriptExportApi(_TranscriptFileView):
    """The session's whole transcript as a file (members of its space only)."""

    @extend_schema(
        operation_id="sessions_transcript_export",
        parameters=[
            OpenApiParameter(
                "format",
                OpenApiTypes.STR,
                OpenApiParameter.QUERY,
                required=True,
                enum=list(exports.FORMATS),
                description="The file format.",
            ),
            _LANG_PARAMETER,
        ],
        responses=_FILE_RESPONSES,
    )
    def get(self, request: Request, slug: str) -> HttpResponse:
        return self._file(request, slug, request.query_params.get("format", ""))


class TranscriptFileApi(_TranscriptFileView):
    """The session's whole transcript as ``transcript.<fmt>`` (members of its space only)."""

    @extend_schema(
        operation_id="sessions_transcript_file",
        parameters=[
            OpenApiParameter(
                "fmt",
                OpenApiTypes.STR,
                OpenApiParameter.PATH,
                enum=list(exports.FORMATS),
                description="The file format.",
            ),
            _LANG_PARAMETER,
        ],
        responses=_FILE_RESPONSES,
    )
    def get(self, request: Request, slug: str, fmt: str) -> HttpResponse:
        return self._file(request, slug, fmt)
