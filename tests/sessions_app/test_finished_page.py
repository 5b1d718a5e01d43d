"""The finished-session page: speaker turns with times, search (PostgreSQL full-text search,
with the icontains fallback tested on its own), jump-to-time, pages, talk time, downloads."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from sessions_app.models import Participant, SessionAnalysis, VideoSession
from tests.transcription.transcripts import store_transcript
from transcription.archive import transcript

LINES = [
    (0.0, 3.0, "id-olivia", "Olivia Owner", "Welcome everyone to the budget review."),
    (3.0, 5.0, "id-olivia", "Olivia Owner", "Let's look at the numbers."),
    (6.0, 10.0, "id-max", "Max Member", "The meetings ran over budget again."),
    (10.5, 11.5, "", "", "Laughter."),
    (3605.0, 3612.5, "id-olivia", "Olivia Owner", "An hour in, the meeting ends."),
]


@pytest.fixture
def ended(video_session: VideoSession, owner, member) -> VideoSession:
    Participant.objects.create(
        session=video_session, user=owner, identity="id-olivia", name="Olivia Owner", role="HOST"
    )
    Participant.objects.create(
        session=video_session, user=member, identity="id-max", name="Max Member"
    )
    Participant.objects.create(session=video_session, identity="id-quiet", name="Quinn Quiet")
    store_transcript(video_session, LINES)
    video_session.status = VideoSession.Status.ENDED
    video_session.save()
    return video_session


def page_url(session: VideoSession) -> str:
    return reverse("sessions:detail", kwargs={"slug": session.slug})


_SEGMENT = re.compile(
    r'<span class="seg[^"]*" data-uid="[^"]*" data-rev="\d+" data-speaker="[^"]*"[^>]*>'
)


def unwrap(html: str) -> str:
    """A turn's HTML without the elements that name each segment for corrections."""
    return _SEGMENT.sub("", html).replace("</span>", "")


def turns_of(content: str) -> list[tuple[str, str, str]]:
    """(time, speaker, text) of every turn on the page (each segment's own element unwrapped)."""
    return [
        (time, speaker, unwrap(text))
        for time, speaker, text in re.findall(
            r'<a class="turn-time"[^>]*>([^<]+)</a>\s*<span class="speaker">([^<]+)</span>\s*'
            r"<p>(.*?)</p>",
            content,
            re.S,
        )
    ]


# --- which page --------------------------------------------------------------------------------


def test_live_session_still_shows_the_live_page(member_client, video_session):
    video_session.status = VideoSession.Status.LIVE
    video_session.save()

    response = member_client.get(page_url(video_session))

    assert response.templates[0].name == "sessions/detail.html"
    assert "sessions/finished.html" not in [t.name for t in response.templates]
    content = response.content.decode()
    assert 'id="video-grid"' in content
    # The transcript so far can be downloaded from the live page too.
    assert f'href="/api/sessions/{video_session.slug}/transcript.srt"' in content


def test_ended_session_shows_the_finished_page(member_client, ended):
    response = member_client.get(page_url(ended))

    assert response.status_code == 200
    assert response.templates[0].name == "sessions/finished.html"
    content = response.content.decode()
    assert 'id="video-grid"' not in content
    assert "Cost of this session" in content


def test_outsider_gets_404_for_the_finished_page(outsider_client, ended):
    assert outsider_client.get(page_url(ended)).status_code == 404
    assert outsider_client.get(page_url(ended) + "?q=budget").status_code == 404


def test_anonymous_is_sent_to_login_from_the_finished_page(client, ended):
    response = client.get(page_url(ended))

    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


# --- turns -------------------------------------------------------------------------------------


def test_consecutive_finals_of_a_speaker_become_one_turn_with_its_start_time(member_client, ended):
    content = member_client.get(page_url(ended)).content.decode()

    assert turns_of(content) == [
        (
            "0:00",
            "Olivia Owner",
            "Welcome everyone to the budget review. Let&#x27;s look at the numbers.",
        ),
        ("0:06", "Max Member", "The meetings ran over budget again."),
        ("0:10", "Room", "Laughter."),
        ("1:00:05", "Olivia Owner", "An hour in, the meeting ends."),
    ]
    for anchor in ("t-0", "t-6", "t-10", "t-3605"):
        assert f'id="{anchor}"' in content
        assert f'href="?page=1#{anchor}"' in content


def test_turns_starting_in_the_same_second_share_one_anchor(member_client, video_session):
    store_transcript(
        video_session,
        [
            (1.2, 1.6, "a", "Ada", "Yes."),
            (1.7, 3.0, "b", "Bo", "No."),
            (4.0, 5.0, "a", "Ada", "Ok."),
        ],
    )
    video_session.status = VideoSession.Status.ENDED
    video_session.save()

    content = member_client.get(page_url(video_session)).content.decode()

    assert [t[:2] for t in turns_of(content)] == [("0:01", "Ada"), ("0:01", "Bo"), ("0:04", "Ada")]
    assert content.count('id="t-1"') == 1
    assert content.count('id="t-4"') == 1


def test_download_links_for_every_format(member_client, ended):
    content = member_client.get(page_url(ended)).content.decode()

    for fmt in ("txt", "srt", "vtt", "json", "md"):
        assert f'href="/api/sessions/{ended.slug}/transcript.{fmt}"' in content


def test_the_page_shows_the_sessions_analysis(member_client, ended):
    SessionAnalysis.objects.create(
        session=ended,
        status=SessionAnalysis.Status.DONE,
        summary="We reviewed the budget.",
        topics=["budget review"],
        action_items=[{"text": "Send the numbers", "owner": "Max", "due": "Friday", "start": 3605}],
    )

    response = member_client.get(page_url(ended))

    assert response.context["analysis"].summary == "We reviewed the budget."
    content = response.content.decode()
    assert 'id="analysis"' in content
    assert "We reviewed the budget." in content
    # The action item links to its moment through jump-to-time, which lands on its turn.
    link = f"{page_url(ended)}?t=3605"
    assert f'href="{link}"' in content
    assert member_client.get(link).url == f"{page_url(ended)}?page=1#t-3605"
    assert 'id="t-3605"' in content


def test_empty_transcript_says_so(member_client, video_session):
    video_session.status = VideoSession.Status.ENDED
    video_session.save()

    response = member_client.get(page_url(video_session))

    assert response.status_code == 200
    assert "No transcript was recorded in this session." in response.content.decode()


# --- talk time ---------------------------------------------------------------------------------


def test_talk_time_is_summed_per_participant_and_silent_ones_are_listed(member_client, ended):
    talk = member_client.get(page_url(ended)).context["talk_times"]

    assert [(t.name, t.seconds, t.segments, t.turns) for t in talk] == [
        ("Olivia Owner", pytest.approx(12.5), 3, 2),
        ("Max Member", pytest.approx(4.0), 1, 1),
        ("Room", pytest.approx(1.0), 1, 1),
        ("Quinn Quiet", 0.0, 0, 0),
    ]
    assert [t.percent for t in talk] == [71, 23, 6, 0]


# --- search ------------------------------------------------------------------------------------


def test_search_uses_full_text_search_with_stemming_and_highlights(member_client, ended):
    response = member_client.get(page_url(ended), {"q": "meeting"})

    search = response.context["search"]
    # English stemming: "meeting" also finds "meetings".
    assert search.count == 2
    assert [hit.label for hit in search.hits] == ["0:06", "1:00:05"]
    assert [str(hit.html) for hit in search.hits] == [
        "The <mark>meetings</mark> ran over budget again.",
        "An hour in, the <mark>meeting</mark> ends.",
    ]
    content = response.content.decode()
    assert '<span id="search-count">2</span> matches' in content
    assert 'href="?q=meeting&amp;page=1#t-6"' in content
    # The turns on the page are highlighted too.
    assert "<p>The <mark>meetings</mark> ran over budget again.</p>" in unwrap(content)


def test_search_with_no_match_says_so(member_client, ended):
    response = member_client.get(page_url(ended), {"q": "giraffe"})

    assert response.context["search"].count == 0
    assert "Nothing in this transcript matches" in response.content.decode()


def test_search_escapes_transcript_text_and_the_query(member_client, video_session):
    store_transcript(
        video_session,
        [
            (
                1.0,
                2.0,
                "x",
                "<img src=x onerror=alert(1)>",
                '<script>alert("budget")</script> budget',
            )
        ],
    )
    video_session.status = VideoSession.Status.ENDED
    video_session.save()

    response = member_client.get(page_url(video_session), {"q": "budget"})

    content = response.content.decode()
    assert response.context["search"].count == 1
    assert "<script>alert" not in content
    assert "<img src=x" not in content
    escaped = "&lt;script&gt;alert(&quot;budget&quot;)&lt;/script&gt; budget"
    (hit,) = response.context["search"].hits
    assert "<mark>budget</mark>" in hit.html
    # Only our own <mark> tags are markup; everything else is the escaped transcript text.
    assert hit.html.replace("<mark>", "").replace("</mark>", "") == escaped
    assert f'<span class="hit-text">{hit.html}</span>' in content
    assert f"<p>{hit.html}</p>" in unwrap(content)
    assert "&lt;img src=x onerror=alert(1)&gt;" in content
    hostile_query = member_client.get(page_url(video_session), {"q": "<script>x</script>"})
    assert "<script>x" not in hostile_query.content.decode()
    assert "“&lt;script&gt;x&lt;/script&gt;”" in hostile_query.content.decode()


# --- pages and jump-to-time --------------------------------------------------------------------


@pytest.fixture
def long_session(video_session: VideoSession) -> VideoSession:
    """450 turns of alternating speakers, two finals each: three pages of 200 turns."""
    lines = []
    for turn in range(450):
        speaker = ("id-a", "Ada") if turn % 2 == 0 else ("id-b", "Bo")
        start = turn * 10.0
        words = "needle in a haystack" if turn == 350 else f"turn number {turn}"
        lines += [
            (start, start + 4, *speaker, words),
            (start + 4, start + 8, *speaker, "and more"),
        ]
    store_transcript(video_session, lines)
    video_session.status = VideoSession.Status.ENDED
    video_session.save()
    return video_session


def test_long_transcripts_are_paginated_by_turns(member_client, long_session):
    first = member_client.get(page_url(long_session))
    second = member_client.get(page_url(long_session), {"page": 2})
    last = member_client.get(page_url(long_session), {"page": 99})

    assert first.context["page_count"] == 3
    assert len(turns_of(first.content.decode())) == 200
    second_turns = turns_of(second.content.decode())
    assert len(second_turns) == 200
    assert second_turns[0] == ("33:20", "Ada", "turn number 200 and more")
    assert last.context["page"] == 3
    assert len(turns_of(last.content.decode())) == 50
    assert member_client.get(page_url(long_session), {"page": "x"}).context["page"] == 1


def test_the_page_reads_a_bounded_number_of_queries(
    member_client, long_session, django_assert_max_num_queries
):
    # 15, and 4 for corrections: who took part, may this person revert (an owner?), which
    # engines made the transcript, and the latest changes; 1 for the languages it has
    # translations in. None grows with the transcript.
    with django_assert_max_num_queries(20):
        member_client.get(page_url(long_session), {"page": 2, "q": "haystack"})


def test_search_results_link_into_the_right_page(member_client, long_session):
    response = member_client.get(page_url(long_session), {"q": "haystack"})

    (hit,) = response.context["search"].hits
    assert (hit.page, hit.anchor) == (2, 3500)
    assert 'href="?q=haystack&amp;page=2#t-3500"' in response.content.decode()
    on_page = member_client.get(page_url(long_session), {"q": "haystack", "page": 2})
    assert "<mark>haystack</mark>" in on_page.content.decode()


def test_jump_to_time_redirects_to_the_turn_being_spoken(member_client, long_session):
    # 58:25 = 3505 s: inside turn 350 (3500 to 3508 s), on page 2.
    response = member_client.get(page_url(long_session), {"t": "58:25"})

    assert response.status_code == 302
    assert response.url == f"{page_url(long_session)}?page=2#t-3500"
    assert member_client.get(page_url(long_session), {"t": "1:15:00"}).url.endswith(
        "?page=3#t-4490"
    )
    assert member_client.get(page_url(long_session), {"t": "5"}).url.endswith("?page=1#t-0")


def test_jump_to_time_keeps_the_search(member_client, long_session):
    response = member_client.get(page_url(long_session), {"t": "3500", "q": "haystack"})

    assert response.url == f"{page_url(long_session)}?q=haystack&page=2#t-3500"


def test_a_bad_jump_time_is_explained_not_an_error(member_client, long_session):
    response = member_client.get(page_url(long_session), {"t": "soon<b>"})

    assert response.status_code == 200
    content = response.content.decode()
    assert "Enter a time like 1:05:30, 12:40 or 95." in content
    assert 'value="soon&lt;b&gt;"' in content


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [("95", 95), ("12:40", 760), ("1:05:30", 3930), ("65:30", 3930), ("0:07.5", 7)],
)
def test_jump_times_are_read_as_h_mm_ss(raw, seconds):
    from sessions_app.finished import parse_offset

    assert parse_offset(raw) == seconds


@pytest.mark.parametrize("raw", ["", "abc", "1:75", "1:60:00", "-5", "1::2"])
def test_jump_times_that_are_not_times_are_refused(raw):
    from sessions_app.finished import parse_offset

    assert parse_offset(raw) is None


# --- the fallback search used without PostgreSQL -------------------------------------------------


def test_fallback_search_finds_segments_containing_every_word(ended):
    found = transcript.fallback_search(ended, 'BUDGET "again"')

    assert list(found.values_list("text", flat=True)) == ["The meetings ran over budget again."]
    assert not transcript.fallback_search(ended, '" "').exists()


def test_fallback_highlight_marks_every_word_and_escapes_the_rest():
    html = transcript.highlight_words("<b>Budget</b> & budgets", ["budget", "&"])

    assert (
        str(html)
        == "&lt;b&gt;<mark>Budget</mark>&lt;/b&gt; <mark>&amp;</mark> <mark>budget</mark>s"
    )
