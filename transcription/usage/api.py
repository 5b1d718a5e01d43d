"""Usage and cost API: the user's own stats, a session's usage, a space's usage (owners).

Translation is metered apart from transcription (characters of translated text per target
language, priced per million characters): each answer has a ``translation`` block, and its
``total_cost`` adds it to transcription (and to the video estimate where the answer has one).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from rooms.money import format_money
from sessions_app.selectors import session_get_for_user
from transcription.usage import reports as usage
from transcription.usage.reports import Period

PERIOD_PARAMETERS = [
    OpenApiParameter(
        name,
        OpenApiTypes.DATE,
        description=f"{text} (YYYY-MM-DD, inclusive); a bad date or from > to answers 400",
    )
    for name, text in (("from", "First day"), ("to", "Last day"))
]


def period_from(request: Request) -> Period:
    return usage.period_parse(
        start=request.query_params.get("from"), end=request.query_params.get("to")
    )


# "from" is a Python keyword, so the period's fields are declared through ``type``.
PeriodSerializer = type(
    "PeriodSerializer",
    (serializers.Serializer,),
    {
        "from": serializers.DateField(source="start", allow_null=True),
        "to": serializers.DateField(source="end", allow_null=True),
    },
)


class DaySerializer(serializers.Serializer):
    date = serializers.DateField()
    minutes = serializers.IntegerField()
    cost = serializers.DecimalField(max_digits=16, decimal_places=4)


class SpaceDaySerializer(DaySerializer):
    video_cost = serializers.DecimalField(max_digits=16, decimal_places=4)


@extend_schema_field(DaySerializer(many=True))
class DaysField(serializers.Field):
    """A per-day series, written out directly: a year of days through per-field serializers
    costs more CPU than the whole query (benchmarks/usage_stats.py)."""

    def to_representation(self, days: list[dict]) -> list[dict]:
        return [
            {
                "date": day["date"].isoformat(),
                "minutes": day["minutes"],
                "cost": str(day["cost"]),
                **({"video_cost": str(day["video_cost"])} if "video_cost" in day else {}),
            }
            for day in days
        ]


@extend_schema_field(SpaceDaySerializer(many=True))
class SpaceDaysField(DaysField):
    pass


@extend_schema_field(
    {"type": "string", "example": "USD", "description": "the ISO 4217 code of every amount"}
)
class CurrencyField(serializers.Field):
    """The currency of every amount in the answer (``settings.CURRENCY``)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, value: Any) -> str:
        return settings.CURRENCY


class TranslationLanguageSerializer(serializers.Serializer):
    language = serializers.CharField(help_text="the target language (ISO 639-1)")
    name = serializers.CharField(help_text="the language's name in the request's language")
    characters = serializers.IntegerField(help_text="characters of translated text")
    segments = serializers.IntegerField(help_text="translated segments")
    cost = serializers.DecimalField(max_digits=16, decimal_places=4)
    formatted_cost = serializers.SerializerMethodField()

    def get_formatted_cost(self, language: dict) -> str:
        """The cost as the pages write it (``rooms.money``)."""
        return format_money(language["cost"])


class TranslationDaySerializer(serializers.Serializer):
    date = serializers.DateField()
    characters = serializers.IntegerField()
    cost = serializers.DecimalField(max_digits=16, decimal_places=4)


@extend_schema_field(TranslationDaySerializer(many=True))
class TranslationDaysField(serializers.Field):
    """The translation per day, written out directly like ``DaysField``."""

    def to_representation(self, days: list[dict]) -> list[dict]:
        return [
            {"date": d["date"].isoformat(), "characters": d["characters"], "cost": str(d["cost"])}
            for d in days
        ]


class TranslationSerializer(serializers.Serializer):
    """Caption translation, metered apart from transcription: characters of translated text
    per target language, priced per million characters."""

    characters = serializers.IntegerField(help_text="characters of translated text")
    segments = serializers.IntegerField(help_text="translated segments")
    cost = serializers.DecimalField(max_digits=16, decimal_places=4)
    formatted_cost = serializers.SerializerMethodField()
    cost_per_million_characters = serializers.DecimalField(
        source="rate",
        max_digits=10,
        decimal_places=4,
        help_text="today's price of a million translated characters (each meter row keeps the "
        "price it was metered at)",
    )
    languages = TranslationLanguageSerializer(
        many=True, help_text="per target language, the costliest first"
    )

    def get_formatted_cost(self, translation: dict) -> str:
        """The cost as the pages write it (``rooms.money``)."""
        return format_money(translation["cost"])


class TranslationWithDaysSerializer(TranslationSerializer):
    days = TranslationDaysField(help_text="each day with translation, oldest first")


class TotalsSerializer(serializers.Serializer):
    currency = CurrencyField()
    minutes = serializers.IntegerField(help_text="billed transcription minutes")
    cost = serializers.DecimalField(max_digits=16, decimal_places=4)
    duration_seconds = serializers.FloatField()
    sessions = serializers.IntegerField()
    runs = serializers.IntegerField()
    average_minutes_per_run = serializers.DecimalField(max_digits=12, decimal_places=2)


class TranscriptionStatsApi(APIView):
    """The signed-in user's transcription usage (runs they started), optionally by period."""

    class OutputSerializer(TotalsSerializer):
        period = PeriodSerializer()
        translation = TranslationWithDaysSerializer(
            help_text="translation of the runs the user started, and what they had "
            "re-translated after a session"
        )
        total_cost = serializers.DecimalField(
            max_digits=16, decimal_places=4, help_text="transcription (cost) + translation"
        )
        days = DaysField(
            help_text="each day with transcription or translation (minutes and cost: "
            "transcription's; translation per day is in translation.days)"
        )

    @extend_schema(parameters=PERIOD_PARAMETERS, responses=OutputSerializer)
    def get(self, request: Request) -> Response:
        report = usage.user_report(user=request.user, period=period_from(request))
        return Response(self.OutputSerializer(report).data)


class FormattedCostSerializer(serializers.Serializer):
    """The same amounts written for people, as the pages write them (``rooms.money``)."""

    transcription_cost = serializers.SerializerMethodField()
    video_cost = serializers.SerializerMethodField()
    total_cost = serializers.SerializerMethodField()

    def get_transcription_cost(self, cost: Any) -> str:
        return format_money(cost.transcription_cost)

    def get_video_cost(self, cost: Any) -> str:
        return format_money(cost.video_cost)

    def get_total_cost(self, cost: Any) -> str:
        return format_money(cost.total_cost)


class VideoEstimateSerializer(serializers.Serializer):
    formatted = FormattedCostSerializer(source="*", read_only=True)
    uses_livekit = serializers.BooleanField()
    participant_minutes = serializers.IntegerField()
    video_cost = serializers.DecimalField(max_digits=16, decimal_places=4)
    transcription_cost = serializers.DecimalField(max_digits=16, decimal_places=4)
    total_cost = serializers.DecimalField(
        max_digits=16,
        decimal_places=4,
        help_text="transcription + translation (the answer's translation.cost) + video estimate",
    )


class UsageRowSerializer(serializers.Serializer):
    run_id = serializers.IntegerField()
    user = serializers.CharField(source="user.name", allow_null=True, default=None)
    provider = serializers.CharField()
    started_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)
    duration_seconds = serializers.FloatField()
    billed_minutes = serializers.IntegerField()
    cost_per_minute = serializers.DecimalField(max_digits=10, decimal_places=4)
    total_cost = serializers.DecimalField(max_digits=12, decimal_places=4)
    finalized = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class TranslationRowSerializer(serializers.Serializer):
    """One row of the translation meter: a run's translation into one language, or (``run_id``
    null) what was re-translated into it after the session."""

    run_id = serializers.IntegerField(allow_null=True)
    user = serializers.CharField(source="user.name", allow_null=True, default=None)
    language = serializers.CharField()
    provider = serializers.CharField(help_text="who translated: gladia or llm")
    characters = serializers.IntegerField()
    segments = serializers.IntegerField()
    audio_seconds = serializers.FloatField(
        help_text="seconds of audio transcribed while this language was translated live"
    )
    cost_per_million_characters = serializers.DecimalField(max_digits=10, decimal_places=4)
    total_cost = serializers.DecimalField(max_digits=12, decimal_places=4)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class SessionTranslationSerializer(TranslationSerializer):
    rows = TranslationRowSerializer(many=True)


class SessionUsageApi(APIView):
    """A session's usage rows and totals, its translation, and the whole cost with the video
    estimate (members of its space)."""

    class OutputSerializer(serializers.Serializer):
        currency = CurrencyField()
        session = serializers.CharField(source="session.slug")
        rows = UsageRowSerializer(many=True)
        totals = TotalsSerializer()
        translation = SessionTranslationSerializer()
        cost = VideoEstimateSerializer()

    @extend_schema(responses=OutputSerializer)
    def get(self, request: Request, slug: str) -> Response:
        session = session_get_for_user(user=request.user, slug=slug)
        report = {"session": session, **usage.session_report(session=session)}
        return Response(self.OutputSerializer(report).data)


class SpaceSessionSerializer(serializers.Serializer):
    slug = serializers.CharField()
    title = serializers.CharField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()
    runs = serializers.IntegerField(source="run_count")
    transcription_minutes = serializers.IntegerField()
    transcription_cost = serializers.DecimalField(max_digits=16, decimal_places=4)
    translation_characters = serializers.IntegerField()
    translation_cost = serializers.DecimalField(max_digits=16, decimal_places=4)
    participant_minutes = serializers.IntegerField()
    video_cost = serializers.DecimalField(max_digits=16, decimal_places=4)
    total_cost = serializers.DecimalField(
        max_digits=16, decimal_places=4, help_text="transcription + translation + video"
    )


class SpaceUsageApi(APIView):
    """What a space cost and which sessions drove it; owners only (member 403, outsider 404)."""

    class OutputSerializer(TotalsSerializer):
        space = serializers.CharField(source="space.slug")
        period = PeriodSerializer()
        transcription_cost = serializers.DecimalField(max_digits=16, decimal_places=4)
        participant_minutes = serializers.IntegerField()
        video_cost = serializers.DecimalField(max_digits=16, decimal_places=4)
        translation = TranslationWithDaysSerializer()
        total_cost = serializers.DecimalField(
            max_digits=16,
            decimal_places=4,
            help_text="transcription + translation + video estimate",
        )
        top_sessions = SpaceSessionSerializer(many=True)
        days = SpaceDaysField(
            help_text="each day with any usage (translation per day is in translation.days)"
        )

    @extend_schema(parameters=PERIOD_PARAMETERS, responses=OutputSerializer)
    def get(self, request: Request, slug: str) -> Response:
        space = usage.space_get_for_owner(user=request.user, slug=slug)
        report = usage.space_report(space=space, period=period_from(request))
        return Response(self.OutputSerializer({"space": space, **report}).data)
