"""``GET /api/sessions/<slug>/catch-up``: a short summary of the session so far (members of the
session's space; outsiders get 404). Computed at most once per 30 s per session and shared."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from sessions_app import selectors
from sessions_app.catch_up import REFRESH_SECONDS, CatchUpPoint, catch_up_for


def moment_url(slug: str, start: float) -> str:
    """The session page at that moment: the finished page turns ``?t=`` into the turn's page
    and anchor; the live page's catch-up script scrolls the sidebar to the line instead."""
    return f"{reverse('sessions:detail', kwargs={'slug': slug})}?t={int(start)}"


class CatchUpPointSerializer(serializers.Serializer):
    text = serializers.CharField()
    start = serializers.FloatField(help_text="Session seconds of the final it comes from.")
    utterance_id = serializers.CharField(
        help_text="The final's utterance id (the live sidebar's line, data-utterance-id)."
    )
    speaker_name = serializers.CharField()
    url = serializers.SerializerMethodField()

    def get_url(self, point: CatchUpPoint) -> str:
        return moment_url(self.context["slug"], point.start)


class CatchUpOutputSerializer(serializers.Serializer):
    provider = serializers.ChoiceField(
        choices=["offline", "llm", "none"], help_text="none: nothing has been said yet."
    )
    points = CatchUpPointSerializer(many=True)
    topics = serializers.ListField(child=serializers.CharField())
    segments = serializers.IntegerField(help_text="How many finals the summary read.")
    up_to = serializers.FloatField(help_text="Session seconds: the end of the last final read.")
    computed_at = serializers.DateTimeField()
    note = serializers.CharField(help_text="Why the offline summary answered, if the LLM failed.")
    language = serializers.CharField(help_text="The meeting's language (ISO 639-1), or empty.")
    refresh_seconds = serializers.IntegerField(
        default=REFRESH_SECONDS, help_text="A new summary is computed at most this often."
    )


class SessionCatchUpApi(APIView):
    @extend_schema(
        summary="Catch me up",
        description="A short summary of the session so far, from its stored finals (the offline "
        "analyser, or the LLM when it is the analysis provider), each point linking to the "
        "moment it comes from. Computed at most once per 30 s per session and shared by "
        "everybody who asks.",
        responses=CatchUpOutputSerializer,
    )
    def get(self, request: Request, slug: str) -> Response:
        session = selectors.session_get_for_user(user=request.user, slug=slug)
        summary = catch_up_for(session=session)
        return Response(CatchUpOutputSerializer(summary, context={"slug": session.slug}).data)
