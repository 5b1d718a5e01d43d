"""The Russian catalogues are complete and match the code: every message the code and
templates mark is in them, translated, not fuzzy, with its placeholders intact, and the
committed compiled ``.mo`` files say the same as the ``.po`` sources."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import polib
import pytest

ROOT = Path(__file__).resolve().parents[2]
DOMAINS = ["django", "djangojs"]
# Messages whose Russian text may rightly be written in Latin letters: names and formats.
LATIN_ALLOWED = {
    "English",
    "JSON",
    "SRT",
    "WebVTT",
    "Markdown",
    "CSV",
    "Gladia",
    "LiveKit",
    "Whisper",
    "LLM",
    "API",
    "ID",
    "URL",
    "Swagger UI",
}


def po(domain: str, root: Path = ROOT) -> polib.POFile:
    return polib.pofile(str(root / "locale" / "ru" / "LC_MESSAGES" / f"{domain}.po"))


def keys(catalogue: polib.POFile) -> set[tuple[str | None, str, str]]:
    return {
        (entry.msgctxt, entry.msgid, entry.msgid_plural)
        for entry in catalogue
        if not entry.obsolete
    }


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_message_is_translated_and_none_is_fuzzy(domain):
    catalogue = po(domain)
    assert len(catalogue) > 0
    assert [e.msgid for e in catalogue.untranslated_entries()] == []
    assert [e.msgid for e in catalogue.fuzzy_entries()] == []
    assert [e.msgid for e in catalogue.obsolete_entries()] == []
    assert catalogue.metadata["Language"] == "ru"


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_plural_message_has_all_four_russian_forms(domain):
    # Django's Russian plural rule has four forms: 1 минута, 2 минуты, 5 минут, 1,5 минуты.
    catalogue = po(domain)
    assert catalogue.metadata["Plural-Forms"].startswith("nplurals=4;")
    for entry in catalogue:
        if entry.msgid_plural:
            forms = [entry.msgstr_plural.get(i, "") for i in range(4)]
            assert all(forms), (entry.msgid, forms)


@pytest.mark.parametrize("domain", DOMAINS)
def test_russian_texts_are_russian(domain):
    """A message "translated" by copying the English is caught: Russian text has Cyrillic
    letters unless the message is a name or a format."""
    untranslated = []
    for entry in po(domain):
        english = re.sub(r"%\(\w+\)[sd]|%[sd]|\{[^}]*\}|<[^>]+>|&\w+;", "", entry.msgid)
        if not re.search(r"[A-Za-z]{3,}", english) or entry.msgid in LATIN_ALLOWED:
            continue
        texts = list(entry.msgstr_plural.values()) if entry.msgid_plural else [entry.msgstr]
        if not all(re.search(r"[А-Яа-яЁё]", text) for text in texts):
            untranslated.append(entry.msgid)
    assert untranslated == []


@pytest.mark.parametrize("domain", DOMAINS)
def test_placeholders_and_formats_pass_msgfmt(domain, tmp_path):
    """``msgfmt --check-format``: every python-format/javascript-format placeholder of the
    English is in the Russian, so no interpolation fails or shows the wrong value."""
    path = ROOT / "locale" / "ru" / "LC_MESSAGES" / f"{domain}.po"
    result = subprocess.run(
        ["msgfmt", "--check-format", "-o", str(tmp_path / "out.mo"), str(path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("domain", DOMAINS)
def test_compiled_catalogue_matches_its_source(domain):
    source = po(domain)
    compiled = polib.mofile(str(ROOT / "locale" / "ru" / "LC_MESSAGES" / f"{domain}.mo"))
    expected = {
        (e.msgctxt, e.msgid): (e.msgstr, dict(e.msgstr_plural)) for e in source if not e.obsolete
    }
    found = {(e.msgctxt, e.msgid): (e.msgstr, dict(e.msgstr_plural)) for e in compiled if e.msgid}
    assert found == expected


def test_every_marked_string_in_the_code_is_in_the_catalogue(tmp_path):
    """Extract the messages again from a copy of the working tree: the result must be the
    committed catalogue. A string marked for translation but never added to it (or a message
    left behind after its string was removed) fails here."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    copy = tmp_path / "tree"
    for name in filter(None, (raw.decode() for raw in listed)):
        source = ROOT / name
        if source.is_file():
            target = copy / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    result = subprocess.run(
        [sys.executable, "scripts/i18n.py", "extract"], cwd=copy, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    for domain in DOMAINS:
        fresh, committed = po(domain, copy), po(domain)
        assert sorted(keys(fresh) - keys(committed), key=str) == [], f"{domain}: not in catalogue"
        assert sorted(keys(committed) - keys(fresh), key=str) == [], f"{domain}: no longer used"
