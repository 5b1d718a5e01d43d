"""The finished page in a caption language: the language switch, translations with the original
on hover, stale translations marked, search in the shown translation, and re-translation with
the (fake) LLM — success, failure part-way, and who may ask for it."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse

from sessions_app.models import Participant, VideoSession
from tests.fakes.llm import FakeLlm
from tests.transcription.transcripts import store_transcript
from transcription.archive import retranslate
from transcription.models import SegmentTranslation, TranscriptSegment, TranslationUsage

LINES = [
    (0.0, 3.0, "id-olivia", "Olivia Owner", "Welcome everyone to the budget review."),
    (3.0, 5.0, "id-olivia", "Olivia Owner", "Let's look at the numbers."),
    (6.0, 10.0, "id-max", "Max Member", "The meetings ran over budget again."),
    (10.5, 11.5, "", "", "Laughter."),
]
RUSSIAN = {
    0: "Добро пожаловать на обсуждение бюджета.",
    1: "Давайте посмотрим на цифры.",
    2: "Встречи снова вышли за рамки бюджета.",
}


@pytest.fixture
def ended(video_session: VideoSession, owner, member) -> VideoSession:
    Participant.objects.create(
        session=video_session, user=owner, identity="id-olivia", name="Olivia Owner", role="HOST"
    )
    Participant.objects.create(
        session=video_session, user=member, identity="id-max", name="Max Member"
    )
    segments = store_transcript(video_session, LINES)
    SegmentTranslation.objects.bulk_create(
        SegmentTranslation(
            session=video_session,
            segment=segments[i],
            language="ru",
            text=text,
            source=SegmentTranslation.Source.GLADIA,
        )
        for i, text in RUSSIAN.items()
    )
    video_session.status = VideoSession.Status.ENDED
    video_session.save()
    return video_session


def page_url(session: VideoSession) -> str:
    return reverse("sessions:detail", kwargs={"slug": session.slug})


def translate_url(session: VideoSession) -> str:
    return reverse("sessions:translate", kwargs={"slug": session.slug})


def correct(session: VideoSession, utterance_id: str, text: str) -> None:
    """A person corrected the original after it was translated."""
    segment = TranscriptSegment.objects.get(session=session, utterance_id=utterance_id)
    segment.text = text
    segment.revision += 1
    segment.save()


def translated_spans(content: str) -> list[tuple[str, str, str, str]]:
    """(utterance id, lang, title, text) of every translated segment on the page."""
    return re.findall(
        r'<span class="seg-tr(?: stale)?" lang="([^"]+)" data-uid="([^"]+)" title="([^"]*)">'
        r"(.*?)</span>",
        content,
    )


# --- the language switch and translated turns ------------------------------------------------


def test_switch_offers_original_and_the_languages_the_session_has_translations_in(
    member_client, ended
):
    content = member_client.get(page_url(ended)).content.decode()

    switch = re.search(r'<nav class="transcript-language-switch".*?</nav>', content, re.S)
    assert switch is not None
    links = re.findall(r'<a href="([^"]+)"[^>]*?( aria-current="page")?>([^<]+)</a>', switch[0])
    assert links == [
        ("?page=1", ' aria-current="page"', "Original"),
        ("?page=1&amp;lang=ru", "", "Russian"),
    ]
    # As spoken: no translated segment on the page.
    assert translated_spans(content) == []
    assert "Welcome everyone to the budget review." in content


def test_no_switch_for_a_session_without_translations(member_client, video_session):
    store_transcript(video_session, LINES)
    video_session.status = VideoSession.Status.ENDED
    video_session.save()

    content = member_client.get(page_url(video_session)).content.decode()

    assert "transcript-language-switch" not in content


def test_page_in_a_language_shows_translations_with_the_original_on_hover(member_client, ended):
    response = member_client.get(page_url(ended), {"lang": "ru"})
    content = response.content.decode()

    assert translated_spans(content) == [
        ("ru", "u0", "Original: Welcome everyone to the budget review.", RUSSIAN[0]),
        ("ru", "u1", "Original: Let&#x27;s look at the numbers.", RUSSIAN[1]),
        ("ru", "u2", "Original: The meetings ran over budget again.", RUSSIAN[2]),
    ]
    # The line with no translation is shown as spoken (and still correctable), and said so.
    assert re.search(r'<span class="seg" data-uid="u3"[^>]*>Laughter\.</span>', content)
    assert "1 line has no translation and is shown as spoken." in content
    assert '<a href="?page=1&amp;lang=ru" hreflang="ru" aria-current="page">Russian</a>' in content
    # Downloads come in the shown language.
    assert f'href="/api/sessions/{ended.slug}/transcript.srt?lang=ru"' in content
    assert "outdated" not in content


def test_a_stale_translation_is_marked(member_client, ended):
    correct(ended, "u1", "Let's look at the final numbers.")

    content = member_client.get(page_url(ended), {"lang": "ru"}).content.decode()

    assert re.search(
        r'<span class="seg-tr stale" lang="ru" data-uid="u1" title="Original: Let&#x27;s look at '
        r'the final numbers.">[^<]+</span> <span class="badge tr-stale" title="The original was '
        r'corrected after this translation.">outdated</span>',
        content,
    )
    assert content.count("tr-stale") == 1
    assert "1 translation is marked “outdated”" in content


def test_an_unknown_lang_shows_the_original_and_says_why(member_client, ended):
    response = member_client.get(page_url(ended), {"lang": "zz"})

    assert response.status_code == 200
    content = response.content.decode()
    assert "“zz” is not a caption language here" in content
    assert translated_spans(content) == []


def test_a_language_with_no_translations_shows_everything_as_spoken(member_client, ended):
    content = member_client.get(page_url(ended), {"lang": "de"}).content.decode()

    assert translated_spans(content) == []
    assert "4 lines have no translation and are shown as spoken." in content
    assert "Re-translation needs an LLM configured on this server." in content


def test_pages_search_and_jump_keep_the_language(member_client, ended):
    response = member_client.get(page_url(ended), {"lang": "ru", "t": "6"})

    assert response.status_code == 302
    assert response["Location"].endswith("?lang=ru&page=1#t-6")
    content = member_client.get(page_url(ended), {"lang": "ru"}).content.decode()
    assert content.count('<input type="hidden" name="lang" value="ru">') == 2


# --- search ----------------------------------------------------------------------------------


def test_search_finds_text_in_the_shown_translation(member_client, ended):
    response = member_client.get(page_url(ended), {"lang": "ru", "q": "бюджета"})

    search = response.context["search"]
    assert search.count == 2
    assert [hit.label for hit in search.hits] == ["0:00", "0:06"]
    assert [hit.language for hit in search.hits] == ["ru", "ru"]
    assert "<mark>бюджета</mark>" in str(search.hits[0].html)
    content = response.content.decode()
    assert '<span class="hit-text" lang="ru">' in content


def test_search_in_the_original_does_not_look_at_translations(member_client, ended):
    assert member_client.get(page_url(ended), {"q": "бюджета"}).context["search"].count == 0
    # The original still matches in the translated view.
    search = member_client.get(page_url(ended), {"lang": "ru", "q": "laughter"}).context["search"]
    assert search.count == 1


# --- re-translation ----------------------------------------------------------------------------


def fake_russian(body: dict[str, Any]) -> str:
    """Translates each caption it is sent as "RU: <caption>"."""
    captions = json.loads(body["messages"][-1]["content"])
    return json.dumps({"translations": [f"RU: {text}" for text in captions]})


@pytest.fixture
def fake_llm(settings):
    with FakeLlm(api_key="sk-test", reply=fake_russian) as fake:
        settings.LLM_BASE_URL = fake.base_url
        settings.LLM_API_KEY = "sk-test"
        settings.LLM_MODEL = "fake-model-1"
        settings.LLM_ENABLED = True
        settings.LLM_TIMEOUT_SECONDS = 5.0
        yield fake


def stored(session: VideoSession, language: str = "ru") -> dict[str, tuple[str, str, int]]:
    rows = SegmentTranslation.objects.filter(session=session, language=language)
    return {
        uid: (text, source, revision)
        for uid, text, source, revision in rows.values_list(
            "segment__utterance_id", "text", "source", "source_revision"
        )
    }


def test_the_retranslate_button_is_offered_with_an_llm(member_client, ended, fake_llm):
    correct(ended, "u1", "Let's look at the final numbers.")

    content = member_client.get(page_url(ended), {"lang": "ru"}).content.decode()

    form = re.search(
        r'<form method="post" action="([^"]+)" class="retranslate-form">(.*?)</form>', content, re.S
    )
    assert form is not None and form[1] == translate_url(ended)
    assert 'name="csrfmiddlewaretoken"' in form[2]
    assert '<input type="hidden" name="language" value="ru">' in form[2]
    assert "2 outdated or missing lines, with the LLM." in form[2]
    # And any other caption language can be added.
    assert re.search(
        r'<select id="translate-language" name="language">.*<option value="de">', content
    )


def test_retranslate_translates_stale_and_missing_segments_and_meters_them(
    member_client, member, ended, fake_llm
):
    correct(ended, "u1", "Let's look at the final numbers.")

    response = member_client.post(translate_url(ended), {"language": "ru"})

    assert response.status_code == 302
    assert response["Location"] == page_url(ended) + "?lang=ru"
    assert stored(ended) == {
        "u0": (RUSSIAN[0], "gladia", 0),  # up to date: left alone
        "u1": ("RU: Let's look at the final numbers.", "llm", 1),
        "u2": (RUSSIAN[2], "gladia", 0),
        "u3": ("RU: Laughter.", "llm", 0),
    }
    (request,) = fake_llm.requests
    assert "into Russian" in request["messages"][0]["content"]
    assert json.loads(request["messages"][1]["content"]) == [
        "Let's look at the final numbers.",
        "Laughter.",
    ]
    usage = TranslationUsage.objects.get(session=ended)
    assert (usage.run_id, usage.user_id, usage.language, usage.provider) == (
        None,
        member.pk,
        "ru",
        "llm",
    )
    assert (usage.characters, usage.segments) == (
        len("Let's look at the final numbers.Laughter."),
        2,
    )
    assert usage.total_cost > Decimal(0)
    page = member_client.get(response["Location"]).content.decode()
    assert "2 lines were translated into Russian." in page
    assert "outdated" not in page and "retranslate-form" not in page


def test_retranslate_works_in_batches_and_keeps_batches_done_before_a_failure(
    member_client, ended, fake_llm, monkeypatch
):
    SegmentTranslation.objects.filter(session=ended).delete()
    monkeypatch.setattr(retranslate, "RETRANSLATE_BATCH_SEGMENTS", 3)

    def first_batch_only(body: dict[str, Any]) -> str:
        if len(fake_llm.requests) > 1:
            return json.dumps({"translations": []})  # not one per caption
        return fake_russian(body)

    fake_llm.reply = first_batch_only

    response = member_client.post(translate_url(ended), {"language": "ru"}, follow=True)

    assert len(fake_llm.requests) == 2
    assert sorted(stored(ended)) == ["u0", "u1", "u2"]
    assert TranslationUsage.objects.get(session=ended).segments == 3
    content = response.content.decode()
    assert (
        "The LLM could not translate: the LLM answer is not one translation per caption." in content
    )
    assert "Nothing was lost. 3 lines were translated into Russian." in content


def test_retranslate_when_the_llm_fails_loses_nothing(member_client, ended, fake_llm):
    correct(ended, "u1", "Let's look at the final numbers.")
    before = stored(ended)
    fake_llm.mode = "fail"

    response = member_client.post(translate_url(ended), {"language": "ru"}, follow=True)

    assert stored(ended) == before
    assert not TranslationUsage.objects.exists()
    content = response.content.decode()
    assert (
        "The LLM could not translate: the LLM API answered HTTP 500. Nothing was lost." in content
    )
    # Still marked, still offered.
    assert "tr-stale" in content and "retranslate-form" in content


def test_translating_into_a_new_language(member_client, ended, fake_llm):
    response = member_client.post(translate_url(ended), {"language": "de"}, follow=True)

    assert sorted(stored(ended, "de")) == ["u0", "u1", "u2", "u3"]
    assert "into German" in fake_llm.requests[0]["messages"][0]["content"]
    assert '<a href="?page=1&amp;lang=de" hreflang="de" aria-current="page">German</a>' in (
        response.content.decode()
    )


def test_segments_already_in_the_language_are_not_translated(member_client, ended, fake_llm):
    TranscriptSegment.objects.filter(session=ended, utterance_id="u3").update(language="ru")

    member_client.post(translate_url(ended), {"language": "ru"})

    assert fake_llm.requests == []
    assert "u3" not in stored(ended)


def test_retranslate_without_an_llm_says_so_and_changes_nothing(member_client, ended, settings):
    settings.LLM_ENABLED = False
    correct(ended, "u1", "Let's look at the final numbers.")

    content = member_client.get(page_url(ended), {"lang": "ru"}).content.decode()
    assert "retranslate-form" not in content and "translate-language" not in content
    assert "Re-translation needs an LLM configured on this server." in content

    response = member_client.post(translate_url(ended), {"language": "ru"}, follow=True)
    assert "Translating needs an LLM configured on this server." in response.content.decode()
    assert stored(ended)["u1"][1] == "gladia"


def test_retranslate_waits_for_the_session_to_end(member_client, ended, fake_llm):
    ended.status = VideoSession.Status.LIVE
    ended.save()

    member_client.post(translate_url(ended), {"language": "ru"})

    assert fake_llm.requests == []


# --- who may ask, and malformed requests ------------------------------------------------------


def test_outsider_gets_404_and_nothing_is_translated(outsider_client, ended, fake_llm):
    assert outsider_client.post(translate_url(ended), {"language": "ru"}).status_code == 404
    assert outsider_client.get(page_url(ended), {"lang": "ru"}).status_code == 404
    assert fake_llm.requests == []


def test_anonymous_is_sent_to_sign_in(client, ended, fake_llm):
    response = client.post(translate_url(ended), {"language": "ru"})

    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
    assert fake_llm.requests == []


def test_unknown_session_is_404(member_client, fake_llm):
    url = reverse("sessions:translate", kwargs={"slug": "no-such-session"})

    assert member_client.post(url, {"language": "ru"}).status_code == 404


@pytest.mark.parametrize("language", ["", "zz", "russian", "r" * 5000])
def test_a_malformed_language_is_400(member_client, ended, fake_llm, language):
    response = member_client.post(translate_url(ended), {"language": language})

    assert response.status_code == 400
    assert response.content.decode()
    assert fake_llm.requests == []


def test_get_is_not_allowed(member_client, ended):
    assert member_client.get(translate_url(ended)).status_code == 405


def test_the_form_needs_the_csrf_token(member, ended, fake_llm):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(member)

    assert client.post(translate_url(ended), {"language": "ru"}).status_code == 403
    assert fake_llm.requests == []
