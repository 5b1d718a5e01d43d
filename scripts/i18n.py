"""Rooms' translation catalogues (a developer tool; needs gettext's xgettext, msgmerge, msgfmt).

    python scripts/i18n.py extract   # re-extract locale/ru/LC_MESSAGES/{django,djangojs}.po
    python scripts/i18n.py merge     # extract, fill in .tmp/i18n/*.json, compile the .mo files
    python scripts/i18n.py check     # list untranslated, fuzzy and obsolete messages

``make messages`` runs ``merge``. The compiled ``.mo`` files are committed, so running the
product never needs gettext. ``.tmp/i18n/*.json`` hold translations waiting to be merged (work
in progress, not committed): an object mapping each English ``msgid`` to its Russian text, or,
for a message with plural forms, to the list of its three Russian forms (one, few, many:
"минута", "минуты", "минут"). A ``msgctxt`` goes in front of the msgid, joined by ``\\u0004``.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import polib

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "locale"
LANGUAGES = ["ru"]
PENDING = ROOT / ".tmp" / "i18n"
# What makemessages must not read: third-party code, build output, tests and tools.
IGNORE = {
    "django": [
        ".venv/*",
        "staticfiles/*",
        "static/*",
        "tests/*",
        "benchmarks/*",
        "artifacts/*",
        "media/*",
        "deploy/*",
        "scripts/*",
        ".tmp/*",
        ".run/*",
        ".services/*",
    ],
    "djangojs": [
        ".venv/*",
        "staticfiles/*",
        "static/vendor/*",
        "tests/*",
        "benchmarks/*",
        "artifacts/*",
        ".tmp/*",
    ],
}
# Django's own Russian catalogues have four plural forms (the fourth for fractions, which
# Russian words like the "few" form: "1,5 минуты"); ours match so that they merge.
PLURAL_FORMS = (
    "nplurals=4; plural=(n%10==1 && n%100!=11 ? 0 : n%10>=2 && n%10<=4 && (n%100<12 || "
    "n%100>14) ? 1 : n%10==0 || (n%10>=5 && n%10<=9) || (n%100>=11 && n%100<=14)? 2 : 3);"
)


def po_path(language: str, domain: str) -> Path:
    return LOCALE / language / "LC_MESSAGES" / f"{domain}.po"


@contextmanager
def locked() -> Iterator[None]:
    LOCALE.mkdir(exist_ok=True)
    with open(LOCALE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def manage(*args: str) -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "rooms.settings"}
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True)


def extract() -> None:
    for domain, ignore in IGNORE.items():
        args = ["makemessages", "--no-location", "--no-obsolete", "-d", domain, "-v", "0"]
        for language in LANGUAGES:
            args += ["-l", language]
        for pattern in ignore:
            args += ["--ignore", pattern]
        manage(*args)
    for language in LANGUAGES:
        for domain in IGNORE:
            path = po_path(language, domain)
            po = polib.pofile(str(path))
            po.metadata.update(
                {
                    "Project-Id-Version": "Rooms",
                    "Language": language,
                    "Language-Team": "Rooms",
                    "Last-Translator": "Rooms",
                    "Plural-Forms": PLURAL_FORMS,
                }
            )
            po.metadata_is_fuzzy = False
            po.header = "Rooms' Russian interface. See scripts/i18n.py."
            po.save()


def pending() -> dict[str, str | list[str]]:
    found: dict[str, str | list[str]] = {}
    for path in sorted(PENDING.glob("*.json")):
        found.update(json.loads(path.read_text(encoding="utf-8")))
    return found


def fill(language: str) -> None:
    translations = pending()
    for domain in IGNORE:
        path = po_path(language, domain)
        po = polib.pofile(str(path))
        for entry in po:
            key = f"{entry.msgctxt}\u0004{entry.msgid}" if entry.msgctxt else entry.msgid
            if key not in translations:
                continue
            text = translations[key]
            if entry.msgid_plural:
                forms = [text] * 3 if isinstance(text, str) else list(text)
                if len(forms) == 3:
                    forms.append(forms[1])
                entry.msgstr_plural = dict(enumerate(forms))
            else:
                entry.msgstr = text if isinstance(text, str) else text[0]
            if "fuzzy" in entry.flags:
                entry.flags.remove("fuzzy")
            entry.previous_msgid = entry.previous_msgid_plural = entry.previous_msgctxt = None
        po.save()


def compile_all() -> None:
    manage("compilemessages", "-v", "0", *[arg for lang in LANGUAGES for arg in ("-l", lang)])


def problems(language: str) -> list[str]:
    found = []
    for domain in IGNORE:
        po = polib.pofile(str(po_path(language, domain)))
        for entry in po.untranslated_entries():
            found.append(f"{domain}: untranslated: {entry.msgid!r}")
        for entry in po.fuzzy_entries():
            found.append(f"{domain}: fuzzy: {entry.msgid!r}")
        for entry in po.obsolete_entries():
            found.append(f"{domain}: obsolete: {entry.msgid!r}")
    return found


def main(command: str) -> int:
    with locked():
        if command in ("extract", "merge"):
            extract()
        if command == "merge":
            for language in LANGUAGES:
                fill(language)
            compile_all()
        if command in ("merge", "check"):
            missing = [line for lang in LANGUAGES for line in problems(lang)]
            print("\n".join(missing) or "every message is translated")
            return 1 if missing and command == "check" else 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "merge"))
