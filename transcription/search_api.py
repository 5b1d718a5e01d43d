"""``GET /api/search``: search the transcripts of every session of the caller's spaces."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from rooms.api import ErrorOutputSerializer
from sessions_app.selectors import session_get_for_user
from spaces.languages import KNOWN_LANGUAGES
from spaces.selectors import space_get_for_user
from transcription.archive.transcript import QUERY_MAX_LENGTH
from transcription.search import MATCHES_RANKED, PER_PAGE_DEFAULT, PER_PAGE_MAX, search_segments

MAX_PAGE = MATCHES_RANKED
"""The last page one may ask for (as many as the search ranks matches at least)."""


def _validate_period(data: dict[str, Any]) -> dict[str, Any]:
    start, end = data.get("from"), data.get("to")
    if start and end and start > end:
        raise serializers.ValidationError({"to": [_("The last day is before the first.")]})
    return data


# "from" is a Python keyword, so the input's fields are declared through ``type``.
SearchInputSerializer = type(
    "SearchInputSerializer",
    (serializers.Serializer,),
    {
        "q": serializers.CharField(max_length=QUERY_MAX_LENGTH),
        "space": serializers.SlugField(required=False, max_length=80),
        "session": serializers.CharField(required=False, max_length=32),
        "speaker": serializers.CharField(required=False, allow_blank=True, max_length=120),
        "from": serializers.DateField(required=False),
        "to": serializers.DateField(required=False),
        "language": serializers.ChoiceField(
            choices=sorted(KNOWN_LANGUAGES), required=False, allow_blank=True
        ),
        "page": serializers.IntegerField(min_value=1, max_value=MAX_PAGE, default=1),
        "per_page": serializers.IntegerField(
            min_value=1, max_value=PER_PAGE_MAX, default=PER_PAGE_DEFAULT
        ),
        "validate": lambda self, data: _validate_period(data),
    },
)


class SearchHitSerializer(serializers.Serializer):
    segment_id = serializers.IntegerField()
    session_slug = serializers.CharField()
    session_title = serializers.CharField()
    space_slug = serializers.CharField()
    space_name = serializers.CharField()
    started_at = serializers.DateTimeField(
        allow_null=True, help_text="When the session started (null: never started)."
    )
    start = serializers.FloatField(help_text="Seconds since the session started.")
    end = serializers.FloatField()
    speaker_name = serializers.CharField(allow_blank=True)
    language = serializers.CharField(allow_blank=True, help_text="ISO 639-1; empty: not known.")
    text = serializers.CharField(help_text="The final's text, or the translation that matched.")
    translated = serializers.BooleanField(
        help_text="`text` is a stored translation into `language`, not the words as spoken."
    )
    snippet = serializers.CharField(
        help_text="HTML: the text around the matches, escaped, each match in <mark>."
    )
    rank = serializers.FloatField(help_text="Relevance; higher is better.")
    url = serializers.CharField(help_text="The session's page at this moment.")


class SearchApi(APIView):
    """Finals matching a query in every session of the caller's spaces (and only those),
    best first: full-text search on PostgreSQL (stems of English and Russian, web-search
    syntax: `"a phrase"`, `or`, `-word`), words contained elsewhere. Corrected text and
    stored translations are searched too. When the words are so common that ranking every
    match would be slow, only the most recent meetings are searched: `capped` is then true and
    `total` counts the matches found in them (there are at least that many)."""

    class OutputSerializer(serializers.Serializer):
        query = serializers.CharField()
        total = serializers.IntegerField(help_text="Matches (see `capped`).")
        capped = serializers.BooleanField(
            help_text="Only the most recent meetings were searched: at least `total` match."
        )
        page = serializers.IntegerField()
        pages = serializers.IntegerField()
        per_page = serializers.IntegerField()
        results = SearchHitSerializer(many=True, source="hits")

    @extend_schema(
        operation_id="search",
        parameters=[
            OpenApiParameter(
                "q",
                OpenApiTypes.STR,
                required=True,
                description=f"What to find (web-search syntax), at most {QUERY_MAX_LENGTH} "
                "characters.",
            ),
            OpenApiParameter(
                "space",
                OpenApiTypes.STR,
                description="Only this space (its slug); 404 if the caller is not a member.",
            ),
            OpenApiParameter(
                "session",
                OpenApiTypes.STR,
                description="Only this session (its slug); 404 if the caller may not read it.",
            ),
            OpenApiParameter(
                "speaker", OpenApiTypes.STR, description="Part of the speaker's name."
            ),
            OpenApiParameter(
                "from", OpenApiTypes.DATE, description="Sessions started on or after this day."
            ),
            OpenApiParameter(
                "to", OpenApiTypes.DATE, description="Sessions started on or before this day."
            ),
            OpenApiParameter(
                "language",
                OpenApiTypes.STR,
                enum=sorted(KNOWN_LANGUAGES),
                description="Finals spoken in, and translations into, this language.",
            ),
            OpenApiParameter(
                "page",
                {"type": "integer", "minimum": 1, "maximum": MAX_PAGE},
                default=1,
                description="Past the last page, an empty page.",
            ),
            OpenApiParameter(
                "per_page",
                {"type": "integer", "minimum": 1, "maximum": PER_PAGE_MAX},
                default=PER_PAGE_DEFAULT,
            ),
        ],
        responses={
            200: OutputSerializer,
            503: OpenApiResponse(
                ErrorOutputSerializer,
                description="The search took too long (code `search_too_slow`): narrow it.",
            ),
        },
    )
    def get(self, request: Request) -> Response:
        serializer = SearchInputSerializer(data=request.query_params)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        space = (
            space_get_for_user(user=request.user, slug=data["space"]) if "space" in data else None
        )
        session = (
            session_get_for_user(user=request.user, slug=data["session"])
            if "session" in data
            else None
        )
        result = search_segments(
            user=request.user,
            query=data["q"],
            space=space,
            session=session,
            speaker=data.get("speaker", ""),
            date_from=data.get("from"),
            date_to=data.get("to"),
            language=data.get("language", ""),
            page=data["page"],
            per_page=data["per_page"],
        )
        output = {
            "query": " ".join(data["q"].split()),
            "total": result.total,
            "capped": result.capped,
            "page": result.page,
            "pages": result.pages,
            "per_page": result.per_page,
            "hits": result.hits,
        }
        return Response(self.OutputSerializer(output).data)
