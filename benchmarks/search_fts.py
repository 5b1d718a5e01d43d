"""Search across meetings over 1,000 two-hour sessions (~20 M words) in PostgreSQL.

Generates 50 spaces of 20 ENDED sessions, each a two-hour transcript of 2,500 finals of 4-12
words (~20,000 words) with their per-word timings (``words``, as both engines store them), in
English (70 % of the sessions), Russian (20 %) or both in turn (10 %); every tenth session also
has a translation of each final. Words follow a Zipf law over a vocabulary of common words
and a long tail of generated ones (names, jargon), a few set phrases recur. Rows go in with
``COPY`` (the generated ``search_vector`` is computed by PostgreSQL as they arrive; the GIN
indexes are rebuilt once at the end, as after a bulk load).

Then times ``transcription.search.search_segments`` (the selector the page, the API and "ask"
call: access check, the full-text query, the page's snippets) for typical queries: a rare word,
a common word, a phrase, a Russian word, and a member of three spaces searching one of them;
and the whole ``GET /api/search`` request through DRF's test client. Prints p50/p95/p99 and
the plan of the main query.

    .venv/bin/python -m benchmarks.search_fts             # a private PostgreSQL, then removed
    .venv/bin/python -m benchmarks.search_fts --keep DIR  # keep its data in DIR; --reuse later

With ``DATABASE_URL`` set it uses that (empty) database instead of starting one.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import shutil
import statistics
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.harness import ROOT, machine, setup_django

SPACES = 50
FINALS = 2500
SECONDS = 7200.0
TRANSLATED_EVERY = 10
ZIPF_S = 1.0
TAIL_WORDS = 40_000


def _words(text: str) -> list[str]:
    return text.split()


# Spoken English and Russian, most frequent first (stop words included: they are spoken).
ENGLISH = _words(
    """
the i you and to it that a we of is so in this think yeah know like just but what have
on for be not do can was with they if going right are all about there okay one at well
get would need then our as people go or because time really some see something maybe
from how now want an mean me next when out good make say up more work just team sure also
look week into other point new those actually different could should did way lot still
first any back thing two where much did question said these let yes kind already last
product customer plan release review meeting budget quarter design data issue today
numbers feedback test update deadline support roadmap share decide decision agree hiring
marketing sales launch client contract price cost risk problem change report project
schedule friday monday tomorrow morning process feature bug user users server database
performance security follow action items notes call email document slide deck demo
"""
)
RUSSIAN = _words(
    """
и в не что я на это как то так мы у вы он с да но она ну вот там они по все
есть если о нет бы же за его к уже мне еще когда был было надо можно думаю
тоже просто очень сейчас потом здесь может вообще который нужно давайте хорошо
сделать будет работа команда вопрос время день неделя проект задача план встреча
бюджет квартал клиент продукт релиз дизайн данные решение проблема отчёт цена
стоимость договор риск срок пятница понедельник завтра утро процесс функция ошибка
пользователь сервер база безопасность письмо документ презентация демо запуск
продажи маркетинг найм обратная связь обновление поддержка тестирование дорожная
карта согласны решили договорились итоги результаты цифры показатели
"""
)
PHRASES = {
    "en": ["next quarter", "action items", "follow up", "budget review", "release plan"],
    "ru": ["следующий квартал", "обратная связь", "план релиза", "итоги встречи"],
}
SPEAKERS = {
    "en": ["Ada Lovelace", "Grace Hopper", "Alan Turing", "Edsger Dijkstra", "Barbara Liskov"],
    "ru": ["Анна Иванова", "Пётр Смирнов", "Ольга Кузнецова", "Иван Попов", "Мария Соколова"],
}
QUERIES = {
    # label: (query, who: "all" = member of every space, "few" = of three; filters)
    "rare word": ("{rare}", "all", {}),
    "middling word (0.5 % of finals)": ("customer", "all", {}),
    "common word (3.5 % of finals)": ("think", "all", {}),
    "phrase": ('"next quarter"', "all", {}),
    "two words": ("budget review", "all", {}),
    "Russian word": ("бюджета", "all", {}),
    "three words with or": ("hiring or roadmap or deadline", "all", {}),
    "common word, speaker and month": ("think", "all", {"speaker": "grace", "month": True}),
    "middling word, member of 3 spaces": ("customer", "few", {}),
    "common word, one space (member of 3)": ("think", "few", {"space": True}),
}


def _syllables(consonants: str, vowels: str) -> list[str]:
    return [c + v for c in consonants for v in vowels]


def vocabulary(language: str, rng: random.Random) -> list[str]:
    """Common words first, then ``TAIL_WORDS`` made-up words (names, jargon): the Zipf tail."""
    head = ENGLISH if language == "en" else RUSSIAN
    syllables = (
        _syllables("bdfgklmnprstvz", "aeiou")
        if language == "en"
        else _syllables("бвгдзклмнпрстх", "аеиоуы")
    )
    tail: set[str] = set()
    while len(tail) < TAIL_WORDS:
        tail.add("".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))))
    return [*dict.fromkeys(head), *sorted(tail - set(head))]


def zipf(n: int) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** ZIPF_S
    return np.cumsum(weights / weights.sum())


class Transcripts:
    """Generates the finals of one session at a time as ``COPY`` text lines."""

    def __init__(self, seed: int) -> None:
        rng = random.Random(seed)
        self.rng = np.random.default_rng(seed)
        self.vocab = {lang: np.array(vocabulary(lang, rng), dtype=object) for lang in ("en", "ru")}
        self.cdf = {lang: zipf(len(words)) for lang, words in self.vocab.items()}

    def words(self, language: str, count: int) -> np.ndarray:
        picks = np.searchsorted(self.cdf[language], self.rng.random(count))
        return self.vocab[language][np.minimum(picks, len(self.vocab[language]) - 1)]

    def sentences(self, language: str, lengths: np.ndarray) -> list[str]:
        tokens = self.words(language, int(lengths.sum()))
        out, at = [], 0
        for length in lengths:
            words = list(tokens[at : at + length])
            at += length
            if self.rng.random() < 0.03:
                phrases = PHRASES[language]
                phrase = phrases[int(self.rng.integers(len(phrases)))]
                words.insert(int(self.rng.integers(len(words) + 1)), phrase)
            text = " ".join(words)
            out.append(text[:1].upper() + text[1:] + ".")
        return out

    def session(
        self, *, session_id: int, run_id: int, first_id: int, kind: str, created: str
    ) -> tuple[str, list[tuple[int, str]]]:
        """COPY lines of a session's finals, and (id, language) of each."""
        lengths = self.rng.integers(4, 13, size=FINALS)
        if kind == "mixed":
            languages = np.where(self.rng.random(FINALS) < 0.5, "en", "ru")
        else:
            languages = np.full(FINALS, kind)
        texts: dict[str, list[str]] = {}
        for language in ("en", "ru"):
            chosen = lengths[languages == language]
            texts[language] = self.sentences(language, chosen) if len(chosen) else []
        cursor = {"en": 0, "ru": 0}
        step = SECONDS / FINALS
        lines = []
        ids = []
        speaker = 0
        for i in range(FINALS):
            language = str(languages[i])
            text = texts[language][cursor[language]]
            cursor[language] += 1
            if self.rng.random() < 0.4:
                speaker = int(self.rng.integers(5))
            start = i * step
            end = start + step * 0.9
            tokens = text.split()
            per = (end - start) / len(tokens)
            words = ", ".join(
                f'{{"text": "{w}", "start": {start + k * per:.2f}, '
                f'"end": {start + (k + 1) * per:.2f}, "confidence": 0.9{k % 10}}}'
                for k, w in enumerate(tokens)
            )
            pk = first_id + i
            ids.append((pk, language))
            name = SPEAKERS[language][speaker]
            lines.append(
                f"{pk}\t{session_id}\t{run_id}\tsp{speaker}\t{name}\tu{i}\t{text}\t{language}\t"
                f"{start:.2f}\t{end:.2f}\t0.9\t[{words}]\t0\t{created}\n"
            )
        return "".join(lines), ids


def generate(sessions: int, seed: int) -> dict[str, Any]:
    from django.db import connection
    from django.utils import timezone

    from identity.models import User
    from sessions_app.models import VideoSession
    from spaces.models import Space, SpaceMember
    from transcription.models import TranscriptionRun

    now = timezone.now()
    per_space = max(1, sessions // SPACES)
    spaces = max(1, sessions // per_space)
    everyone = User.objects.create_user("all@example.com", display_name="Member of all")
    few = User.objects.create_user("few@example.com", display_name="Member of three")
    space_rows = Space.objects.bulk_create(
        Space(slug=f"space-{i}", name=f"Space {i}", created_by=everyone) for i in range(spaces)
    )
    SpaceMember.objects.bulk_create(
        [SpaceMember(space=s, user=everyone, role=SpaceMember.Role.OWNER) for s in space_rows]
        + [SpaceMember(space=s, user=few) for s in space_rows[:3]]
    )
    kinds = ["en"] * 7 + ["ru"] * 2 + ["mixed"]
    session_rows = VideoSession.objects.bulk_create(
        VideoSession(
            title=f"Weekly meeting {i}",
            space=space_rows[i % spaces],
            created_by=everyone,
            status=VideoSession.Status.ENDED,
            languages=["en", "ru"] if kinds[i % 10] == "mixed" else [kinds[i % 10]],
            created_at=now - timedelta(days=365 * i / sessions),
            started_at=now - timedelta(days=365 * i / sessions),
            ended_at=now - timedelta(days=365 * i / sessions) + timedelta(hours=2),
        )
        for i in range(sessions)
    )
    runs = TranscriptionRun.objects.bulk_create(
        TranscriptionRun(session=s, mode="BROWSER", provider="local", status="STOPPED")
        for s in session_rows
    )
    maker = Transcripts(seed)
    created = now.isoformat()
    started = time.monotonic()
    with connection.cursor() as cursor:
        # A bulk load: build the GIN indexes once at the end rather than row by row.
        cursor.execute("DROP INDEX transcription_segment_search_idx")
        cursor.execute("DROP INDEX transcription_translation_search_idx")
        raw = cursor.connection
        columns = (
            "id, session_id, run_id, speaker_identity, speaker_name, utterance_id, text, "
            "language, start_offset, end_offset, confidence, words, revision, created_at"
        )
        translated: list[tuple[int, list[tuple[int, str]]]] = []
        for i, (session, run) in enumerate(zip(session_rows, runs, strict=True)):
            lines, ids = maker.session(
                session_id=session.pk,
                run_id=run.pk,
                first_id=i * FINALS + 1,
                kind=kinds[i % 10],
                created=created,
            )
            with (
                raw.cursor() as c,
                c.copy(f"COPY transcription_transcriptsegment ({columns}) FROM STDIN") as copy,
            ):
                copy.write(lines)
            if i % TRANSLATED_EVERY == 3:
                translated.append((session.pk, ids))
            if i % 50 == 49:
                print(f"  {i + 1} sessions, {time.monotonic() - started:.0f} s", flush=True)
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('transcription_transcriptsegment', 'id'), "
            "(SELECT max(id) FROM transcription_transcriptsegment))"
        )
        for session_id, ids in translated:
            buffer = io.StringIO()
            for pk, language in ids:
                target = "ru" if language == "en" else "en"
                text = maker.sentences(target, maker.rng.integers(4, 13, size=1))[0]
                buffer.write(
                    f"{session_id}\t{pk}\t{target}\t{text}\tllm\t0\t{created}\t{created}\n"
                )
            with (
                raw.cursor() as c,
                c.copy(
                    "COPY transcription_segmenttranslation (session_id, segment_id, language, "
                    "text, "
                    "source, source_revision, created_at, updated_at) FROM STDIN"
                ) as copy,
            ):
                copy.write(buffer.getvalue())
        print(f"  loaded in {time.monotonic() - started:.0f} s; building the indexes", flush=True)
        cursor.execute("SET maintenance_work_mem = '1GB'")
        cursor.execute(
            "CREATE INDEX transcription_segment_search_idx "
            "ON transcription_transcriptsegment USING gin (search_vector)"
        )
        cursor.execute(
            "CREATE INDEX transcription_translation_search_idx "
            "ON transcription_segmenttranslation USING gin (search_vector)"
        )
        cursor.execute("VACUUM ANALYZE")
    print(f"  ready in {time.monotonic() - started:.0f} s", flush=True)
    return {"rare": maker.vocab["en"][-7]}


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _private_postgres(keep: str | None, port: int) -> tuple[Path, bool]:
    """Start a PostgreSQL of our own (``scripts/services.sh``) and point DATABASE_URL at it."""
    directory = Path(keep) if keep else Path(f"/tmp/rooms-bench-search-{os.getpid()}")
    env = {**os.environ, "PG_PORT": str(port), "REDIS_PORT": str(port + 1)}
    out = subprocess.run(
        [ROOT / "scripts" / "services.sh", "start", str(directory)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for line in out.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        os.environ[name] = value
    subprocess.run(
        ["createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "rooms", "rooms"],
        capture_output=True,
    )
    return directory, keep is None


def _stop_postgres(directory: Path, remove: bool, port: int) -> None:
    env = {**os.environ, "PG_PORT": str(port), "REDIS_PORT": str(port + 1)}
    action = "stop" if remove else "halt"
    subprocess.run([ROOT / "scripts" / "services.sh", action, str(directory)], env=env)
    if remove:
        shutil.rmtree(directory, ignore_errors=True)


def _users() -> dict[str, Any]:
    """The member of every space, the member of three, and one of those three spaces."""
    from identity.models import User
    from spaces.models import Space

    return {
        "all": User.objects.get(email="all@example.com"),
        "few": User.objects.get(email="few@example.com"),
        "space": Space.objects.get(slug="space-1"),
    }


def _kwargs(people: dict[str, Any], template: str, who: str, filters: dict, rare: str) -> dict:
    kwargs: dict[str, Any] = {"user": people[who], "query": template.format(rare=rare)}
    if filters.get("space"):
        kwargs["space"] = people["space"]
    if filters.get("speaker"):
        kwargs["speaker"] = filters["speaker"]
    if filters.get("month"):
        today = datetime.now(UTC).date()
        kwargs["date_from"], kwargs["date_to"] = today - timedelta(days=30), today
    return kwargs


def bench_selector(rare: str, repeat: int) -> list[dict[str, Any]]:
    """Every query once per pass, ``repeat`` passes (after 3 warm-up passes)."""
    from transcription.search import postgres, search_segments

    people = _users()
    rounds: list[int] = []
    ranked = postgres.Matches.ranked

    def counted(self: Any, session_ids: list[int]) -> tuple[str, list[object]]:
        rounds[-1] += 1
        return ranked(self, session_ids)

    postgres.Matches.ranked = counted  # type: ignore[method-assign]
    calls = {
        label: _kwargs(people, template, who, filters, rare)
        for label, (template, who, filters) in QUERIES.items()
    }
    timings: dict[str, list[float]] = {label: [] for label in calls}
    pages: dict[str, Any] = {}
    used: dict[str, int] = {}
    for n in range(repeat + 3):
        for label, kwargs in calls.items():
            rounds.append(0)
            started = time.perf_counter()
            pages[label] = search_segments(**kwargs)
            if n >= 3:
                timings[label].append((time.perf_counter() - started) * 1000)
            used[label] = rounds[-1]
    postgres.Matches.ranked = ranked  # type: ignore[method-assign]
    rows = []
    for label, values in timings.items():
        page = pages[label]
        row = {
            "label": label,
            "query": calls[label]["query"],
            "total": f"{'≥' if page.capped else ''}{page.total}",
            "rounds": used[label],
            "p50": statistics.median(values),
            "p95": _p(values, 0.95),
            "p99": _p(values, 0.99),
            "max": max(values),
        }
        rows.append(row)
        print(
            f"{label:<38} {row['query']!r:<32} {row['total']:>7} hits {row['rounds']} rounds  "
            f"p50 {row['p50']:6.1f}  p95 {row['p95']:6.1f}  p99 {row['p99']:6.1f}  "
            f"max {row['max']:6.1f} ms",
            flush=True,
        )
    every = [value for values in timings.values() for value in values]
    print(
        f"{'all of them':<38} {'':<32} {'':>7}      {'':>8}  p50 {statistics.median(every):6.1f}  "
        f"p95 {_p(every, 0.95):6.1f}  p99 {_p(every, 0.99):6.1f}  max {max(every):6.1f} ms"
    )
    return rows


def bench_api(rare: str, repeat: int) -> None:
    """The whole request (middleware, auth, throttles, serializer) through DRF's test client."""
    from rest_framework.test import APIClient

    people = _users()
    for label in ("rare word", "common word (3.5 % of finals)", "three words with or"):
        template, who, _filters = QUERIES[label]
        client = APIClient(HTTP_HOST="localhost")
        client.force_authenticate(people[who])
        timings = []
        for index in range(repeat + 3):
            started = time.perf_counter()
            response = client.get("/api/search", {"q": template.format(rare=rare)})
            if index >= 3:
                timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.content[:300]
        print(
            f"GET /api/search  {label:<36} p50 {statistics.median(timings):6.1f} ms  "
            f"p95 {_p(timings, 0.95):6.1f} ms  p99 {_p(timings, 0.99):6.1f} ms",
            flush=True,
        )


def explain(query: str, who: str) -> None:
    from django.db import connection, transaction

    from transcription.search import postgres, session_scope

    sql, params, sessions = postgres.explain_sql(
        scope=session_scope(user=_users()[who]), query=query
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    print(f"--- {query!r} ({who}), first round over {sessions} sessions\n{plan}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument(
        "--port", type=int, default=54421, help="of the private PostgreSQL (its Redis: +1)"
    )
    parser.add_argument("--keep", help="keep the private database in this directory")
    parser.add_argument("--reuse", action="store_true", help="time the data of an earlier run")
    parser.add_argument("--explain", action="store_true", help="print query plans too")
    args = parser.parse_args()

    directory = None
    if not os.environ.get("DATABASE_URL"):
        directory, remove = _private_postgres(args.keep, args.port)
    try:
        setup_django({"DB_CONN_MAX_AGE": "60"})
        from django.db import connection

        print(
            f"{machine()}; PostgreSQL {connection.pg_version // 10000}; "
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; load average {os.getloadavg()}"
        )
        if not args.reuse:
            generate(args.sessions, args.seed)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*), sum(array_length(regexp_split_to_array(text, ' '), 1)), "
                "pg_size_pretty(pg_total_relation_size('transcription_transcriptsegment')), "
                "pg_size_pretty(pg_relation_size('transcription_segment_search_idx')) "
                "FROM transcription_transcriptsegment"
            )
            finals, words, size, index = cursor.fetchone()
            cursor.execute("SELECT count(*) FROM transcription_segmenttranslation")
            translations = cursor.fetchone()[0]
        print(
            f"{finals:,} finals, {words:,} words, {translations:,} translations; "
            f"segments table {size}, GIN index {index}"
        )
        rare = vocabulary("en", random.Random(args.seed))[-7]
        bench_selector(rare, args.repeat)
        bench_api(rare, max(20, args.repeat // 2))
        if args.explain:
            for query, who in ((rare, "all"), ("think", "all"), ("customer", "few")):
                explain(query, who)
        print(f"load average after: {os.getloadavg()}")
    finally:
        if directory is not None:
            _stop_postgres(directory, remove, args.port)


if __name__ == "__main__":
    main()
