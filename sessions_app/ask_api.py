"""``POST /api/spaces/<slug>/ask``: ask the meetings of a space a question (members only;
outsiders and removed members get 404). Rate limited like the other expensive calls (the
"create" scope, per user). Neither the question nor the answer is stored."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from sessions_app.ask import MAX_QUESTION_CHARS, THROTTLE_SCOPE, Mode, ask, ask_session_get
from spaces.selectors import space_get_for_user


class ContextLineSerializer(serializers.Serializer):
    speaker_name = serializers.CharField()
    text = serializers.CharField()
    start = serializers.FloatField()
    is_hit = serializers.BooleanField(help_text="The line the search found; the others are "
                                      "said just before and after it.")  # fmt: skip


class PassageSerializer(serializers.Serializer):
    number = serializers.IntegerField(help_text="What the answer's citations refer to: [1], [2]…")
    session = serializers.CharField(source="session_slug")
    session_title = serializers.CharField()
    started_at = serializers.DateTimeField(allow_null=True)
    start = serializers.FloatField(help_text="Session seconds of the line found.")
    speaker_name = serializers.CharField()
    language = serializers.CharField()
    text = serializers.CharField()
    snippet = serializers.CharField(help_text="HTML: the text, escaped, the question's words in "
                                    "<mark>.")  # fmt: skip
    rank = serializers.FloatField()
    url = serializers.CharField(help_text="The session page at that moment.")
    context = ContextLineSerializer(source="lines", many=True)


class ClaimSerializer(serializers.Serializer):
    text = serializers.CharField()
    passages = serializers.ListField(
        child=serializers.IntegerField(), help_text="The numbers of the passages that say it."
    )


class SpaceAskApi(APIView):
    throttle_scope = THROTTLE_SCOPE

    class InputSerializer(serializers.Serializer):
        question = serializers.CharField(max_length=MAX_QUESTION_CHARS)
        session = serializers.CharField(
            required=False,
            allow_blank=True,
            max_length=32,
            help_text="A session of this space (its slug) to ask about alone; absent or empty: "
            "every meeting of the space.",
        )

    class OutputSerializer(serializers.Serializer):
        question = serializers.CharField()
        mode = serializers.ChoiceField(
            choices=[Mode.LLM, Mode.EXTRACTIVE, Mode.NOT_FOUND],
            help_text="llm: an answer written by the LLM from the passages, each sentence citing "
            "them; extractive: no written answer, the passages that match best (no LLM "
            "configured, or it failed: see note); not_found: nothing in the meetings answers it.",
        )
        found = serializers.BooleanField()
        answer = ClaimSerializer(source="claims", many=True)
        passages = PassageSerializer(many=True)
        note = serializers.CharField(
            help_text="Why the answer is extractive although an LLM is configured."
        )

    @extend_schema(
        summary="Ask the meetings of a space",
        description="Finds the passages of the space's meetings that best match the question "
        "(only sessions the caller may read) and answers from them: with the LLM configured, "
        "sentences that each cite their passages; without it, the passages themselves. "
        "Nothing is stored.",
        request=InputSerializer,
        responses=OutputSerializer,
    )
    def post(self, request: Request, slug: str) -> Response:
        space = space_get_for_user(user=request.user, slug=slug)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        session_slug = data.validated_data.get("session", "")
        session = (
            ask_session_get(user=request.user, space=space, slug=session_slug)
            if session_slug
            else None
        )
        answer = ask(
            user=request.user,
            space=space,
            question=data.validated_data["question"],
            session=session,
        )
        return Response(self.OutputSerializer(answer).data)
