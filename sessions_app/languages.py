"""The spoken languages of a session, and the rules for choosing them.

A session's ``languages`` (like its space's default, ``Space.languages``) is a list of ISO 639-1
codes: ``[]`` means automatic detection, one code a fixed language, several the languages the
speech provider expects and switches between (Gladia's code switching). The rules are the
space's (``spaces.languages``); a new session is also held to what this server's speech provider
can transcribe.
"""

from __future__ import annotations

from django.utils.translation import gettext

from spaces.languages import language_label, languages_clean, languages_label
from transcription.usage.limits import provider_languages


def session_languages_clean(codes: list[object]) -> list[str]:
    """``codes`` when they can be a new session's languages on this server (the rules of
    ``spaces.languages.languages_clean``, with what the configured speech provider can do)."""
    return languages_clean(codes, supported=provider_languages())


def languages_summary(codes: list[str]) -> str:
    """What a session page says about its languages: ``"Language: Russian"``, ``"Languages:
    English, Russian (…)"`` or ``"Language: detected automatically"``."""
    if not codes:
        return gettext("Language: detected automatically")
    if len(codes) == 1:
        return gettext("Language: %(language)s") % {"language": language_label(codes[0])}
    return gettext("Languages: %(languages)s (the transcription switches between them)") % {
        "languages": languages_label(codes)
    }
