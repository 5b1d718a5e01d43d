"""The interface language of a signed-in person: their profile's choice wins over the
language cookie and the browser's Accept-Language (which ``LocaleMiddleware`` has already
applied, and which stay in charge for anyone without a choice)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import translation


class UserLanguageMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        chosen = getattr(user, "language", "") if user is not None and user.is_authenticated else ""
        if chosen and chosen != getattr(request, "LANGUAGE_CODE", None):
            translation.activate(chosen)
            request.LANGUAGE_CODE = translation.get_language()
        return self.get_response(request)
