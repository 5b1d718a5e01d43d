"""The spoken languages of a space's sessions, and the rules for choosing them.

A space's ``languages`` (the default of its new sessions) is a list of ISO 639-1 codes: ``[]``
means automatic detection, one code a fixed language, several the languages the speech
provider expects and switches between (Gladia's code switching).

The rules live in the lowest app that stores such a list, so that the space and session pages,
the API and the admin refuse the same things with the same words.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf.locale import LANG_INFO
from django.utils.translation import get_language_info, gettext, ngettext

from rooms.errors import DomainError

MAX_LANGUAGES = 5
"""The most languages a space or session may expect: past a handful, detection does better."""

KNOWN_LANGUAGES = frozenset(
    code for code, info in LANG_INFO.items() if len(code) == 2 and "name" in info
)
"""The ISO 639-1 codes taken: those Django can name, so every page can show them."""

COMMON_LANGUAGES = ("en", "ru", "uk", "de", "fr", "es", "it", "pt", "nl", "pl", "tr", "ja")
"""The languages the forms offer (the API takes any known code; a form also lists the codes
already chosen)."""


def language_label(code: str) -> str:
    """``"ru"`` → ``"Russian"`` in the active interface language (Django's own translated
    names); the code itself when Django does not know it."""
    try:
        return str(get_language_info(code)["name_translated"])
    except KeyError:
        return code


def languages_label(codes: Iterable[str]) -> str:
    """``["en", "ru"]`` → ``"English, Russian"``; ``[]`` → ``"automatic detection"``."""
    return ", ".join(language_label(code) for code in codes) or gettext("automatic detection")


def language_choices(extra: Iterable[str] = ()) -> list[tuple[str, str]]:
    """``(code, name)`` of the common languages and of ``extra``, by name in the active
    interface language."""
    codes = dict.fromkeys([*COMMON_LANGUAGES, *extra])
    return sorted(((code, language_label(code)) for code in codes), key=lambda c: c[1].casefold())


def languages_clean(codes: list[object], *, supported: frozenset[str] | None) -> list[str]:
    """``codes`` when they can be a space's default or a session's languages: known ISO 639-1
    codes, each once, at most ``MAX_LANGUAGES``, all of them in ``supported`` (what this
    server's speech engine can transcribe; None for any). Else ``DomainError`` saying what is
    wrong: code ``languages_invalid``, or ``language_unsupported`` for a language the engine
    cannot do (rather than transcribing Russian speech as English words)."""
    if len(codes) > MAX_LANGUAGES:
        raise DomainError(
            ngettext(
                "Expect at most %(max)d language; for more, choose automatic detection.",
                "Expect at most %(max)d languages; for more, choose automatic detection.",
                MAX_LANGUAGES,
            )
            % {"max": MAX_LANGUAGES},
            code="languages_invalid",
        )
    seen: list[str] = []
    for code in codes:
        if not isinstance(code, str) or code not in KNOWN_LANGUAGES:
            raise DomainError(
                gettext(
                    "“%(code)s” is not a language code: use two-letter ISO 639-1 codes such "
                    "as “en” or “ru”."
                )
                % {"code": str(code)[:20]},
                code="languages_invalid",
            )
        if code in seen:
            raise DomainError(
                gettext("%(language)s is listed twice: list each language once.")
                % {"language": language_label(code)},
                code="languages_invalid",
            )
        seen.append(code)
    if supported is not None and (missing := [code for code in seen if code not in supported]):
        raise DomainError(
            gettext(
                "This server's speech engine transcribes %(supported)s only, not "
                "%(languages)s. Choose %(supported)s, or ask the administrator to configure "
                "Gladia or a multilingual offline model."
            )
            % {
                "supported": languages_label(sorted(supported)),
                "languages": languages_label(missing),
            },
            code="language_unsupported",
        )
    return seen
