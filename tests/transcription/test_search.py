"""Search across meetings: ``transcription.search.search_segments`` on PostgreSQL (the stored,
language-aware vectors of migration 0009), its rounds over the newest sessions, and the
fallback used without PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection

from sessions_app.models import VideoSession
from spaces.models import SpaceMember
from spaces.services import member_remove, space_create
from tests.factories import SpaceMemberFactory, UserFactory, VideoSessionFactory
from transcription.archive.edits import segment_edit
from transcription.models import SegmentTranslation, TranscriptionRun, TranscriptSegment
from transcription.search import (
    SearchTooSlow,
    group_by_session,
    postgres,
    search_segments,
    session_scope,
)
from transcription.search import fallback as fallback_search

pytestmark = pytest.mark.django_db

# (start seconds, speaker name, text, language)
Final = tuple[float, str, str, str]


def meeting(space, *, title: str, started: datetime | None = None, by=None) -> VideoSession:
    return VideoSessionFactory(
        space=space,
        created_by=by or space.created_by,
        title=title,
        status=VideoSession.Status.ENDED,
        started_at=started,
        created_at=started or datetime(2026, 11, 1, tzinfo=UTC),
    )


def say(session: VideoSession, finals: list[Final]) -> list[TranscriptSegment]:
    run = TranscriptionRun.objects.create(
        session=session, mode="BROWSER", provider="local", status="STOPPED"
    )
    offset = session.segments.count()
    return TranscriptSegment.objects.bulk_create(
        TranscriptSegment(
            session=session,
            run=run,
            speaker_identity=f"id-{name}",
            speaker_name=name,
            utterance_id=f"u{offset + i}",
            text=text,
            language=language,
            start_offset=start,
            end_offset=start + 2,
        )
        for i, (start, name, text, language) in enumerate(finals)
    )


def translate(segment: TranscriptSegment, language: str, text: str) -> SegmentTranslation:
    return SegmentTranslation.objects.create(
        session_id=segment.session_id,
        segment=segment,
        language=language,
        text=text,
        source=SegmentTranslation.Source.LLM,
    )


@pytest.fixture
def other_space(outsider):
    return space_create(owner=outsider, name="Outsider's space")


def texts(page) -> list[str]:
    return [hit.text for hit in page.hits]


def test_the_migration_stores_a_language_aware_vector_with_a_gin_index():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename, indexdef FROM pg_indexes WHERE indexname IN "
            "('transcription_segment_search_idx', 'transcription_translation_search_idx')"
        )
        indexes = dict(cursor.fetchall())
    assert "USING gin (search_vector)" in indexes["transcription_transcriptsegment"]
    assert "USING gin (search_vector)" in indexes["transcription_segmenttranslation"]


def test_finds_finals_across_the_meetings_of_a_space_with_links_to_the_moment(owner, space):
    monday = meeting(space, title="Monday", started=datetime(2026, 11, 2, 9, tzinfo=UTC))
    friday = meeting(space, title="Friday", started=datetime(2026, 11, 6, 9, tzinfo=UTC))
    say(monday, [(12.4, "Ada", "The budget is tight this quarter.", "en")])
    say(friday, [(3.0, "Bo", "Nothing about money.", "en"), (65.0, "Bo", "Budget approved!", "en")])

    page = search_segments(user=owner, query="budget")

    assert page.total == 2 and page.pages == 1 and not page.capped
    assert {hit.session_title for hit in page.hits} == {"Monday", "Friday"}
    hit = next(h for h in page.hits if h.session_title == "Monday")
    assert hit.url == f"/sessions/{monday.slug}/?q=budget&t=13"  # the next whole second
    assert hit.snippet == "The <mark>budget</mark> is tight this quarter."
    assert (hit.speaker_name, hit.language, hit.start, hit.space_slug) == (
        "Ada",
        "en",
        12.4,
        space.slug,
    )
    assert hit.started_at == monday.started_at and hit.rank > 0 and not hit.translated
    assert hit.label == "0:12"


def test_english_and_russian_finals_match_other_forms_of_the_words(owner, space):
    session = meeting(space, title="Mixed")
    say(
        session,
        [
            (1, "Ada", "We reviewed the meetings schedule.", "en"),
            (2, "Пётр", "Обсудили бюджет на следующий квартал.", "ru"),
            (3, "Ada", "Das Budget ist knapp.", "de"),
        ],
    )

    assert texts(search_segments(user=owner, query="meeting")) == [
        "We reviewed the meetings schedule."
    ]
    assert texts(search_segments(user=owner, query="бюджета")) == [
        "Обсудили бюджет на следующий квартал."
    ]
    russian = search_segments(user=owner, query="бюджета").hits[0]
    assert "<mark>бюджет</mark>" in russian.snippet
    # German is not stemmed ("simple"): the word as said matches.
    assert texts(search_segments(user=owner, query="knapp")) == ["Das Budget ist knapp."]


def test_a_phrase_alternatives_and_a_left_out_word(owner, space):
    session = meeting(space, title="Planning")
    say(
        session,
        [
            (1, "Ada", "Plans for the next quarter.", "en"),
            (2, "Ada", "The quarter after next.", "en"),
            (3, "Bo", "Hiring is on hold.", "en"),
            (4, "Bo", "The draft budget.", "en"),
            (5, "Bo", "The final budget.", "en"),
        ],
    )

    assert texts(search_segments(user=owner, query='"next quarter"')) == [
        "Plans for the next quarter."
    ]
    assert len(search_segments(user=owner, query="quarter").hits) == 2
    assert set(texts(search_segments(user=owner, query="hiring or draft"))) == {
        "Hiring is on hold.",
        "The draft budget.",
    }
    assert texts(search_segments(user=owner, query="budget -draft")) == ["The final budget."]
    assert search_segments(user=owner, query="-budget").total == 0  # nothing asked for
    assert search_segments(user=owner, query="   ").total == 0


def test_only_the_spaces_of_the_user_are_ever_searched(owner, member, outsider, space, other_space):
    ours = meeting(space, title="Ours")
    theirs = meeting(other_space, title="Theirs", by=outsider)
    say(ours, [(1, "Ada", "Secret roadmap ours.", "en")])
    say(theirs, [(1, "Oscar", "Secret roadmap theirs.", "en")])

    assert texts(search_segments(user=member, query="roadmap")) == ["Secret roadmap ours."]
    assert texts(search_segments(user=outsider, query="roadmap")) == ["Secret roadmap theirs."]
    # A space or session passed in narrows the search; it never widens it.
    assert search_segments(user=member, query="roadmap", space=other_space).total == 0
    assert search_segments(user=member, query="roadmap", session=theirs).total == 0
    # Someone in both spaces finds both.
    SpaceMemberFactory(space=other_space, user=member)
    assert search_segments(user=member, query="roadmap").total == 2
    assert texts(search_segments(user=member, query="roadmap", space=other_space)) == [
        "Secret roadmap theirs."
    ]


def test_a_removed_member_finds_nothing_any_more(owner, member, space):
    say(meeting(space, title="Before"), [(1, "Ada", "The salary bands.", "en")])
    assert search_segments(user=member, query="salary").total == 1

    member_remove(space=space, member=SpaceMember.objects.get(space=space, user=member), by=owner)

    assert search_segments(user=member, query="salary").total == 0
    assert search_segments(user=member, query="salary", space=space).total == 0


def test_filters_speaker_days_session_and_language(owner, space):
    early = meeting(space, title="Early", started=datetime(2026, 10, 1, 23, tzinfo=UTC))
    late = meeting(space, title="Late", started=datetime(2026, 10, 20, 8, tzinfo=UTC))
    say(early, [(1, "Ada Lovelace", "Release plan.", "en"), (2, "Bo", "Release notes.", "en")])
    say(late, [(1, "Ada Lovelace", "Release day.", "en"), (2, "Пётр", "Release готов.", "ru")])

    def found(**filters) -> set[str]:
        return set(texts(search_segments(user=owner, query="release", **filters)))

    assert found(speaker="lovelace") == {"Release plan.", "Release day."}
    assert found(speaker="ada love") == {"Release plan.", "Release day."}
    assert found(speaker="%") == set()  # a LIKE wildcard is a character like any other
    assert found(date_from=date(2026, 10, 2)) == {"Release day.", "Release готов."}
    assert found(date_to=date(2026, 10, 1)) == {"Release plan.", "Release notes."}  # inclusive
    assert found(date_from=date(2026, 10, 5), date_to=date(2026, 10, 10)) == set()
    assert found(session=early) == {"Release plan.", "Release notes."}
    assert found(language="ru") == {"Release готов."}
    assert found(language="en", session=late) == {"Release day."}


def test_translations_are_searched_and_said_to_be_translations(owner, space):
    session = meeting(space, title="Bilingual")
    [spoken, both] = say(
        session,
        [(10, "Ada", "We need a bigger budget.", "en"), (20, "Ada", "Budget again.", "en")],
    )
    translate(spoken, "ru", "Нам нужен бюджет побольше.")
    translate(both, "ru", "Снова бюджет.")

    page = search_segments(user=owner, query="бюджет")
    assert page.total == 2
    hit = next(h for h in page.hits if h.segment_id == spoken.pk)
    assert (hit.translated, hit.language, hit.text) == (True, "ru", "Нам нужен бюджет побольше.")
    assert hit.start == 10 and hit.url.endswith("t=10")
    # A final matched in its own words and in a translation is listed once, as said.
    english = search_segments(user=owner, query="budget")
    assert sorted(texts(english)) == ["Budget again.", "We need a bigger budget."]
    assert search_segments(user=owner, query="бюджет", language="ru").total == 2
    assert search_segments(user=owner, query="бюджет", language="en").total == 0


def test_corrections_are_what_is_searched(owner, space):
    session = meeting(space, title="Corrected")
    [segment] = say(session, [(1, "Ada", "The new hire starts on Monday.", "en")])

    segment_edit(
        session=session,
        utterance_id=segment.utterance_id,
        by=owner,
        base_revision=0,
        text="The new hire starts on Tuesday.",
    )

    assert search_segments(user=owner, query="Monday").total == 0
    assert texts(search_segments(user=owner, query="tuesday")) == [
        "The new hire starts on Tuesday."
    ]


def test_pages_of_hits_best_first(owner, space):
    session = meeting(space, title="Long")
    say(
        session, [(i, "Ada", f"Invoice number {i}." + " invoice" * (i % 3), "en") for i in range(5)]
    )

    first = search_segments(user=owner, query="invoice", per_page=2)
    last = search_segments(user=owner, query="invoice", per_page=2, page=3)
    beyond = search_segments(user=owner, query="invoice", per_page=2, page=4)

    assert (first.total, first.pages, len(first.hits)) == (5, 3, 2)
    assert [h.rank for h in first.hits] == sorted((h.rank for h in first.hits), reverse=True)
    assert first.hits[0].rank >= last.hits[0].rank
    assert len(last.hits) == 1 and beyond.hits == [] and beyond.total == 5
    seen = {
        h.segment_id
        for p in (1, 2, 3)
        for h in search_segments(user=owner, query="invoice", per_page=2, page=p).hits
    }
    assert len(seen) == 5
    assert len(search_segments(user=owner, query="invoice", per_page=500).hits) == 5


def test_a_common_word_ranks_the_matches_of_the_newest_sessions(owner, space, monkeypatch):
    monkeypatch.setattr(postgres, "MATCHES_RANKED", 3)
    monkeypatch.setattr(postgres, "FIRST_ROUND_SESSIONS", (1, 1))
    start = datetime(2026, 9, 1, tzinfo=UTC)
    sessions = [
        meeting(space, title=f"Day {day}", started=start + timedelta(days=day)) for day in range(8)
    ]
    for session in sessions:
        say(session, [(1, "Ada", "Status update.", "en"), (2, "Bo", "Another status.", "en")])

    page = search_segments(user=owner, query="status")

    # Round 1: the newest session (2 matches, not more than 3); round 2: the 4 newest (8).
    assert page.capped and page.total == 8
    assert {hit.session_title for hit in page.hits} == {"Day 7", "Day 6", "Day 5", "Day 4"}
    say(sessions[0], [(9, "Ada", "Quarterly figures.", "en")])
    rare = search_segments(user=owner, query="figures")
    assert not rare.capped and rare.total == 1  # rounds until every session was searched
    assert rare.hits[0].session_title == "Day 0"


def test_snippets_are_escaped(owner, space):
    say(
        meeting(space, title="Tags"),
        [(1, "Ada", 'Type <script>alert("x")</script> budget & co', "en")],
    )
    [hit] = search_segments(user=owner, query="budget").hits
    # ts_headline drops what looks like a tag; the rest is escaped, our <mark> only added.
    assert "<script" not in hit.snippet and "alert(&quot;x&quot;)" in hit.snippet
    assert "<mark>budget</mark> &amp; co" in hit.snippet
    assert hit.text == 'Type <script>alert("x")</script> budget & co'  # as stored


def test_a_search_that_runs_too_long_is_stopped(owner, space, monkeypatch):
    say(meeting(space, title="Slow"), [(1, "Ada", "Budget.", "en")])
    original = postgres.tsqueries

    def slow(cursor, query):
        cursor.execute("SELECT pg_sleep(0.2)")
        return original(cursor, query)

    monkeypatch.setattr(postgres, "STATEMENT_TIMEOUT_MS", 20)
    monkeypatch.setattr(postgres, "tsqueries", slow)
    with pytest.raises(SearchTooSlow):
        search_segments(user=owner, query="budget")


def test_hits_grouped_by_session_in_order_of_their_best_hit(owner, space):
    first = meeting(space, title="First")
    second = meeting(space, title="Second")
    say(first, [(50, "Ada", "Deadline.", "en"), (5, "Ada", "Deadline deadline deadline.", "en")])
    say(second, [(9, "Bo", "The deadline deadline.", "en")])

    groups = group_by_session(search_segments(user=owner, query="deadline").hits)

    assert [g.session_title for g in groups] == ["First", "Second"]
    assert [h.start for h in groups[0].hits] == [5, 50]  # as said, within a session
    assert groups[0].space_name == space.name


def test_an_anonymous_user_finds_nothing(space):
    from django.contrib.auth.models import AnonymousUser

    say(meeting(space, title="Any"), [(1, "Ada", "Budget.", "en")])
    assert search_segments(user=AnonymousUser(), query="budget").total == 0


# --- the fallback without PostgreSQL (its ORM queries run on any database) -------------------


def fallback(user, query: str, **filters):
    options = {"speaker": "", "language": "", "page": 1, "per_page": 20, **filters}
    return fallback_search.search(scope=session_scope(user=user), query=query, **options)


def test_fallback_finds_every_word_phrases_alternatives_and_leaves_words_out(owner, space):
    session = meeting(space, title="Plain")
    say(
        session,
        [
            (1, "Ada", "Plans for the next quarter.", "en"),
            (2, "Ada", "The quarter after next.", "en"),
            (3, "Bo", "Hiring is on hold.", "en"),
            (4, "Bo", "The draft budget.", "en"),
        ],
    )

    assert len(fallback(owner, "next quarter").hits) == 2
    assert texts(fallback(owner, '"next quarter"')) == ["Plans for the next quarter."]
    assert set(texts(fallback(owner, "hiring or draft"))) == {
        "Hiring is on hold.",
        "The draft budget.",
    }
    assert texts(fallback(owner, "the -quarter")) == ["The draft budget."]
    [hit] = fallback(owner, "HIRING").hits
    assert hit.snippet == "<mark>Hiring</mark> is on hold."
    assert hit.url == f"/sessions/{session.slug}/?q=HIRING&t=3"


def test_fallback_keeps_to_the_users_spaces_filters_and_translations(
    owner, member, outsider, space, other_space
):
    ours = meeting(space, title="Ours")
    [segment] = say(ours, [(1, "Ada", "Roadmap review.", "en")])
    translate(segment, "ru", "Обзор дорожной карты.")
    say(meeting(other_space, title="Theirs", by=outsider), [(1, "Oscar", "Roadmap secrets.", "en")])

    assert texts(fallback(member, "roadmap")) == ["Roadmap review."]
    assert texts(fallback(outsider, "roadmap")) == ["Roadmap secrets."]
    [hit] = fallback(member, "дорожной").hits
    assert hit.translated and hit.language == "ru" and hit.segment_id == segment.pk
    assert fallback(member, "roadmap", speaker="bo").total == 0
    assert fallback(member, "roadmap", language="ru").total == 0
    assert fallback(member, "roadmap", speaker="ADA").total == 1


def test_the_search_reads_every_row_once_per_round(owner, space, django_assert_max_num_queries):
    for n in range(3):
        say(
            meeting(space, title=f"S{n}"),
            [(i, "Ada", f"Budget line {i}.", "en") for i in range(30)],
        )
    newcomer = UserFactory()
    SpaceMemberFactory(space=space, user=newcomer)

    with django_assert_max_num_queries(12):
        page = search_segments(user=newcomer, query="budget")
    assert page.total == 90 and len(page.hits) == 20
