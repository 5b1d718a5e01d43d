"""The people an action item may name: participants, members and speakers."""

from __future__ import annotations

import re

from sessions_app.analysis.text import fold_yo, is_cyrillic

# A Russian name loses its final vowel (or й, ь) before a case ending: Мария → Марии,
# Иван → Ивану, Алексей → Алексею, Ольга → Ольге, Петров → Петровым. (Snowball stems names
# unevenly, Иван → ива but Ивану → иван, so the ending is matched instead.)
_BASE_RE = re.compile(r"[аяеоиыйь]$")
_CASE_ENDING_RE = re.compile(r"(?:|а|я|у|ю|е|и|ы|ой|ей|ом|ем|ою|ею|ым|им)")


def _unique(choices: dict[str, set[str]]) -> dict[str, str]:
    return {key: next(iter(names)) for key, names in choices.items() if len(names) == 1}


def _russian_base(name: str) -> str:
    return _BASE_RE.sub("", fold_yo(name))


def is_case_of(word: str, name: str) -> bool:
    """Whether the lower-case ``word`` is the Russian ``name`` (lower-case) in some case."""
    base = _russian_base(name)
    return (
        len(base) >= 2
        and fold_yo(word).startswith(base)
        and _CASE_ENDING_RE.fullmatch(fold_yo(word)[len(base) :]) is not None
    )


class NameBook:
    """Known people: full names and unambiguous first names, matched case-insensitively.

    A Russian first name is also matched in another case (``Марии``, ``Ивану`` → ``Мария``,
    ``Иван``) when no other known first name could have been declined into it.
    """

    def __init__(self, names: list[str]) -> None:
        self._full: dict[str, str] = {}
        firsts: dict[str, set[str]] = {}
        # Russian first names by base: two names of one base (Мария, Марий) match neither.
        bases: dict[str, set[tuple[str, str]]] = {}
        for name in names:
            clean = " ".join(name.split())
            if not clean:
                continue
            self._full.setdefault(clean.lower(), clean)
            first = clean.split(" ")[0].lower()
            firsts.setdefault(first, set()).add(clean)
            if is_cyrillic(first):
                bases.setdefault(_russian_base(first), set()).add((first, clean))
        self._first = _unique(firsts)
        self._russian_firsts = [next(iter(v)) for v in bases.values() if len(v) == 1]

    def resolve(self, said: str) -> str | None:
        """The known display name ``said`` refers to (full name or first name), else None."""
        key = " ".join(said.split()).lower()
        if key in self._full:
            return self._full[key]
        if key in self._first:
            return self._first[key]
        first = key.split(" ")[0]
        found = self._first.get(first) or self._full.get(first)
        if found is None and is_cyrillic(first):
            found = self._declined(fold_yo(first))
        return found

    def _declined(self, word: str) -> str | None:
        """The Russian first name ``word`` is a case of, if exactly one fits."""
        fits = {name for first, name in self._russian_firsts if is_case_of(word, first)}
        return fits.pop() if len(fits) == 1 else None
