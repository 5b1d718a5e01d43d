"""Proposed tasks through the API and the pages: members list, accept (with edits) and dismiss
them; outsiders learn nothing; the space page and the analysis card show them; the card says
when the transcript was edited after the analysis and offers the re-run."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from sessions_app.analysis.services import analysis_mark_stale, task_accept, task_dismiss
from sessions_app.models import SessionAnalysis, Task, VideoSession
from sessions_app.services import session_end
from tests.sessions_app.analysis_support import (
    CHECKLIST,
    LAUNCH_DATE,
    LEGAL,
    MEETING_LINES,
    store_lines,
)

TS = Task.Status


@pytest.fixture(autouse=True)
def _offline(settings):
    settings.ANALYSIS_RUNNER = "celery"
    settings.ANALYSIS_PROVIDER = "offline"


@pytest.fixture
def proposed(video_session, owner, django_capture_on_commit_callbacks) -> VideoSession:
    """An ended session whose analysis proposed three tasks; the legal review was said in
    speech the recogniser was unsure of."""
    store_lines(video_session, MEETING_LINES, confidence={3: 0.3})
    with django_capture_on_commit_callbacks(execute=True):
        session_end(session=video_session, by=owner)
    return video_session


def _task(title: str) -> Task:
    return Task.objects.get(title=title)


def tasks_url(session: VideoSession, **query: str) -> str:
    url = reverse("api-space-tasks", kwargs={"slug": session.space.slug})
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def accept_url(task: Task) -> str:
    return reverse("api-task-accept", kwargs={"task_id": task.pk})


def dismiss_url(task: Task) -> str:
    return reverse("api-task-dismiss", kwargs={"task_id": task.pk})


# --- listing ------------------------------------------------------------------------------------


def test_member_lists_proposals_apart_from_the_spaces_tasks(member_api, proposed):
    tasks = member_api.get(tasks_url(proposed)).json()
    proposals = member_api.get(tasks_url(proposed, status="proposed")).json()

    assert tasks == []
    assert [p["title"] for p in proposals] == [LEGAL, CHECKLIST, LAUNCH_DATE]
    legal = proposals[0]
    assert legal["status"] == "PROPOSED" and legal["low_confidence"] is True
    assert legal["proposed_title"] == LEGAL and legal["accepted_by"] is None
    assert proposals[1]["low_confidence"] is False
    assert member_api.get(tasks_url(proposed, status="PROPOSED")).json() == proposals


def test_an_unknown_status_filter_is_400(member_api, proposed):
    response = member_api.get(tasks_url(proposed, status="maybe"))
    assert response.status_code == 400
    assert "status" in response.json()


def test_outsider_gets_404_for_the_proposals(outsider_api, proposed):
    response = outsider_api.get(tasks_url(proposed, status="proposed"))
    assert response.status_code == 404
    assert "legal" not in response.content.decode()


# --- POST /api/tasks/<id>/accept ----------------------------------------------------------------


def test_member_accepts_a_proposal_in_one_call(member_api, member, proposed):
    response = member_api.post(accept_url(_task(LEGAL)), {}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ACCEPTED" and body["accepted_by"] == member.identity
    assert body["title"] == LEGAL and body["assignee"] == member.identity
    assert [t["title"] for t in member_api.get(tasks_url(proposed)).json()] == [LEGAL]


def test_space_owner_accepts_with_edits(owner_api, owner, proposed):
    response = owner_api.post(
        accept_url(_task(LAUNCH_DATE)),
        {
            "title": "Confirm the launch date with sales",
            "assignee": owner.identity,
            "due_phrase": "Tuesday",
            "due_date": "2026-12-15",
        },
        format="json",
    )

    assert response.status_code == 200
    body = response.json()
    assert body["title"] == "Confirm the launch date with sales"
    assert body["proposed_title"] == LAUNCH_DATE
    assert (body["assignee"], body["assignee_name"]) == (owner.identity, "Olivia Owner")
    assert (body["due_phrase"], body["due_date"]) == ("Tuesday", "2026-12-15")


def test_accepting_for_nobody(member_api, proposed):
    body = member_api.post(accept_url(_task(LEGAL)), {"assignee": None}, format="json").json()
    assert (body["assignee"], body["owner_name"]) == (None, "")


@pytest.mark.parametrize("who", ["outsider", "garbage", "uuid"])
def test_accepting_for_someone_outside_the_space_is_400(member_api, outsider, proposed, who):
    identity = {
        "outsider": outsider.identity,
        "garbage": "not-an-identity",
        "uuid": "u-00000000000000000000000000000000",
    }[who]

    response = member_api.post(accept_url(_task(LEGAL)), {"assignee": identity}, format="json")

    assert response.status_code == 400
    assert "assignee" in response.json()
    assert _task(LEGAL).status == TS.PROPOSED


@pytest.mark.parametrize(
    "body",
    [
        '{"title": ""}',
        '{"title": "   "}',
        '{"due_date": "next Friday"}',
        '{"title": "x", "due_phrase": "' + "y" * 121 + '"}',
        "[1, 2]",
        '{"title": ',
    ],
)
def test_malformed_accept_is_400_and_changes_nothing(member_api, proposed, body):
    response = member_api.generic(
        "POST", accept_url(_task(LEGAL)), body, content_type="application/json"
    )
    assert response.status_code == 400
    assert _task(LEGAL).status == TS.PROPOSED


def test_accepting_twice_is_409(member_api, owner, proposed):
    task_accept(task=_task(LEGAL), by=owner)

    response = member_api.post(accept_url(_task(LEGAL)), {"title": "Mine now"}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "task_not_proposed"
    assert _task(LEGAL).accepted_by == owner


def test_outsider_gets_404_for_accept_and_dismiss(outsider_api, proposed):
    task = _task(LEGAL)
    assert outsider_api.post(accept_url(task), {}, format="json").status_code == 404
    assert outsider_api.post(dismiss_url(task)).status_code == 404
    task.refresh_from_db()
    assert task.status == TS.PROPOSED


def test_anonymous_cannot_accept_or_dismiss(proposed):
    task = _task(LEGAL)
    assert APIClient().post(accept_url(task), {}, format="json").status_code in (401, 403)
    assert APIClient().post(dismiss_url(task)).status_code in (401, 403)
    assert _task(LEGAL).status == TS.PROPOSED


# --- POST /api/tasks/<id>/dismiss ---------------------------------------------------------------


def test_member_dismisses_a_proposal(member_api, member, proposed):
    response = member_api.post(dismiss_url(_task(CHECKLIST)))

    assert response.status_code == 200
    assert response.json()["status"] == "DISMISSED"
    assert response.json()["dismissed_by"] == member.identity
    titles = [t["title"] for t in member_api.get(tasks_url(proposed, status="proposed")).json()]
    assert CHECKLIST not in titles
    dismissed = member_api.get(tasks_url(proposed, status="dismissed")).json()
    assert [t["title"] for t in dismissed] == [CHECKLIST]


def test_dismissing_an_accepted_task_is_409(member_api, owner, proposed):
    task_accept(task=_task(CHECKLIST), by=owner)
    response = member_api.post(dismiss_url(_task(CHECKLIST)))
    assert response.status_code == 409
    assert _task(CHECKLIST).status == TS.ACCEPTED


def test_a_proposal_cannot_be_ticked_off(member_api, proposed):
    url = reverse("api-task-update", kwargs={"task_id": _task(LEGAL).pk})
    response = member_api.patch(url, {"done": True}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "task_not_accepted"
    assert not _task(LEGAL).done


# --- the space page -----------------------------------------------------------------------------


class _Forms(HTMLParser):
    """The forms of a page: action → the fields a browser would send (submit buttons aside)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: dict[str, dict[str, str]] = {}
        self._form: dict[str, str] | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._form = self.forms.setdefault(a.get("action", ""), {})
        elif self._form is not None and tag == "input" and a.get("name"):
            self._form[a["name"]] = a.get("value", "")
        elif self._form is not None and tag == "select":
            self._select = a["name"]
            self._form.setdefault(self._select, "")
        elif self._select and tag == "option" and "selected" in a:
            self._form[self._select] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None


def forms_of(html: str) -> dict[str, dict[str, str]]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


def space_page(client: Client, session: VideoSession) -> str:
    return client.get(reverse("spaces:detail", args=[session.space.slug])).content.decode()


def form_accept_url(task: Task) -> str:
    return reverse("sessions:task-accept", args=[task.pk])


def form_dismiss_url(task: Task) -> str:
    return reverse("sessions:task-dismiss", args=[task.pk])


def test_space_page_lists_proposals_with_accept_and_dismiss(member_client, member, proposed):
    html = space_page(member_client, proposed)
    legal, checklist = _task(LEGAL), _task(CHECKLIST)

    assert "Proposed from meetings" in html
    proposals = html[html.index("Proposed from meetings") : html.index("No open tasks.")]
    for task in (legal, checklist, _task(LAUNCH_DATE)):
        assert task.title.replace("'", "&#x27;") in proposals
        assert form_accept_url(task) in proposals and form_dismiss_url(task) in proposals
    # Unsure speech says so on its proposal only.
    assert proposals.count("unsure speech — check the recording") == 1
    assert proposals.index("unsure speech") > proposals.index("finish the legal review")
    assert proposals.index("unsure speech") < proposals.index("update the launch checklist")
    # Proposals are not tasks: no tick-off box for them.
    assert reverse("sessions:task-done", args=[legal.pk]) not in html
    # The owner choice offers the members, the proposed owner chosen.
    fields = forms_of(html)[form_accept_url(legal)]
    assert fields["assignee"] == member.identity and fields["title"] == LEGAL
    assert f'<option value="{member.identity}" selected>Max Member</option>' in html


def test_accepting_unchanged_from_the_page_keeps_the_proposal(member_client, member, proposed):
    html = space_page(member_client, proposed)
    launch, legal = _task(LAUNCH_DATE), _task(LEGAL)

    for task in (launch, legal):
        fields = forms_of(html)[form_accept_url(task)]
        response = member_client.post(form_accept_url(task), fields)
        assert response.status_code == 302
        assert response.url == reverse("spaces:detail", args=[proposed.space.slug]) + "#proposals"

    launch.refresh_from_db()
    legal.refresh_from_db()
    assert (launch.status, launch.title, launch.due_phrase, launch.assignee) == (
        TS.ACCEPTED,
        LAUNCH_DATE,
        "next week",
        None,
    )
    assert (legal.assignee, legal.owner_name, legal.due_date) == (member, "Max Member", None)
    page = space_page(member_client, proposed)
    open_tasks = page[page.index("tasks-open") :]
    assert LEGAL in open_tasks and reverse("sessions:task-done", args=[legal.pk]) in page


def test_accepting_from_the_page_keeps_a_spoken_owner_who_is_not_a_member(member_client, proposed):
    Task.objects.filter(title=LAUNCH_DATE).update(owner_name="Dana")
    html = space_page(member_client, proposed)
    fields = forms_of(html)[form_accept_url(_task(LAUNCH_DATE))]
    assert fields["assignee"] == "keep"
    assert "Dana (as said; not a member)" in html

    member_client.post(form_accept_url(_task(LAUNCH_DATE)), fields)

    task = _task(LAUNCH_DATE)
    assert (task.status, task.owner_name, task.assignee) == (TS.ACCEPTED, "Dana", None)


def test_accepting_from_the_page_with_edits(member_client, owner, proposed):
    task = _task(CHECKLIST)
    fields = forms_of(space_page(member_client, proposed))[form_accept_url(task)]
    fields.update(
        title="Update the launch checklist with legal",
        assignee=owner.identity,
        due_phrase="",
        due_date="2026-12-18",
    )

    member_client.post(form_accept_url(task), fields)

    task.refresh_from_db()
    assert task.status == TS.ACCEPTED
    assert (task.title, task.assignee, task.due_phrase, str(task.due_date)) == (
        "Update the launch checklist with legal",
        owner,
        "",
        "2026-12-18",
    )


def test_accepting_from_the_page_for_an_outsider_is_refused(member_client, outsider, proposed):
    task = _task(CHECKLIST)
    response = member_client.post(
        form_accept_url(task), {"assignee": outsider.identity}, follow=True
    )
    assert "Pick a member of this space." in response.content.decode()
    assert _task(CHECKLIST).status == TS.PROPOSED


def test_dismissing_from_the_page(member_client, member, proposed):
    task = _task(CHECKLIST)
    response = member_client.post(
        form_dismiss_url(task), {"next": f"/sessions/{proposed.slug}/#analysis"}
    )

    assert response.status_code == 302 and response.url == f"/sessions/{proposed.slug}/#analysis"
    task.refresh_from_db()
    assert (task.status, task.dismissed_by) == (TS.DISMISSED, member)
    page = space_page(member_client, proposed)
    assert CHECKLIST.replace("'", "&#x27;") not in page[page.index('class="tasks"') :]


def test_deciding_twice_from_the_page_says_why(member_client, owner, proposed):
    task_dismiss(task=_task(CHECKLIST), by=owner)
    response = member_client.post(form_accept_url(_task(CHECKLIST)), {}, follow=True)
    assert "This proposal was dismissed." in response.content.decode()
    assert _task(CHECKLIST).status == TS.DISMISSED


def test_the_forms_refuse_an_offsite_next(member_client, proposed):
    response = member_client.post(form_dismiss_url(_task(LEGAL)), {"next": "https://evil.example/"})
    assert response.url == reverse("spaces:detail", args=[proposed.space.slug])


@pytest.mark.parametrize("url_of", [form_accept_url, form_dismiss_url])
def test_outsider_gets_404_for_the_proposal_forms(outsider_client, proposed, url_of):
    assert outsider_client.post(url_of(_task(LEGAL)), {}).status_code == 404
    assert _task(LEGAL).status == TS.PROPOSED


@pytest.mark.parametrize("url_of", [form_accept_url, form_dismiss_url])
def test_anonymous_is_sent_to_login_by_the_proposal_forms(proposed, url_of):
    response = Client().post(url_of(_task(LEGAL)), {})
    assert response.status_code == 302 and response.url.startswith(reverse("account_login"))
    assert _task(LEGAL).status == TS.PROPOSED


@pytest.mark.parametrize("url_of", [form_accept_url, form_dismiss_url])
def test_the_proposal_forms_need_post(member_client, proposed, url_of):
    assert member_client.get(url_of(_task(LEGAL))).status_code == 405


# --- the analysis card on the finished page -----------------------------------------------------


def card(client: Client, session: VideoSession) -> str:
    return client.get(reverse("sessions:analysis-partial", args=[session.slug])).content.decode()


def test_the_card_offers_each_proposal_and_shows_decisions(member_client, owner, proposed):
    task_accept(task=_task(LAUNCH_DATE), by=owner)
    task_dismiss(task=_task(CHECKLIST), by=owner)

    html = card(member_client, proposed)

    legal = _task(LEGAL)
    assert form_accept_url(legal) in html and form_dismiss_url(legal) in html
    assert "unsure speech — check the recording" in html
    assert f'href="/sessions/{proposed.slug}/?t=22"' in html
    assert forms_of(html)[form_accept_url(legal)]["next"] == f"/sessions/{proposed.slug}/#analysis"
    for decided in (_task(LAUNCH_DATE), _task(CHECKLIST)):
        assert form_accept_url(decided) not in html
    assert "Accepted by Olivia Owner" in html and "Dismissed by Olivia Owner" in html


def test_the_finished_page_shows_the_proposals(member_client, proposed):
    html = member_client.get(reverse("sessions:detail", args=[proposed.slug])).content.decode()
    assert 'id="analysis"' in html
    assert form_accept_url(_task(LEGAL)) in html


def test_the_card_says_when_the_transcript_was_edited_and_the_host_may_rerun(
    owner_client, member_client, owner_api, proposed, django_capture_on_commit_callbacks
):
    stale_note = "The transcript was edited after this analysis."
    assert stale_note not in card(owner_client, proposed)

    analysis_mark_stale(session=proposed)

    host_card, member_card = card(owner_client, proposed), card(member_client, proposed)
    assert stale_note in host_card and stale_note in member_card
    note = host_card[host_card.index(stale_note) :]
    assert 'class="analysis-rerun"' in note[: note.index("</p>")]
    assert "Re-run analysis" not in member_card
    assert "The host or an owner of the space can re-run it." in member_card
    assert owner_api.get(reverse("api-session-analysis", args=[proposed.slug])).json()["stale"]

    with django_capture_on_commit_callbacks(execute=True):
        rerun = owner_api.post(reverse("api-session-analysis-rerun", args=[proposed.slug]))
    assert rerun.status_code == 202

    assert SessionAnalysis.objects.get(session=proposed).status == SessionAnalysis.Status.DONE
    assert stale_note not in card(owner_client, proposed)


@pytest.fixture
def many_proposals(video_session, owner, django_capture_on_commit_callbacks) -> VideoSession:
    lines = [
        (i * 5.0, i * 5.0 + 4, "u-max", "Max Member", f"I'll send report {i} to the auditors.")
        for i in range(30)
    ]
    store_lines(video_session, lines)
    with django_capture_on_commit_callbacks(execute=True):
        session_end(session=video_session, by=owner)
    assert Task.objects.filter(status=TS.PROPOSED).count() == 30
    return video_session


def test_the_card_and_the_space_page_read_a_bounded_number_of_queries(
    member_client, many_proposals, django_assert_max_num_queries
):
    # 30 proposals: a query per proposal (its session, owner, members) would blow the bound.
    with django_assert_max_num_queries(10):
        html = card(member_client, many_proposals)
    assert html.count('<li class="task-proposal') == 30
    with django_assert_max_num_queries(14):
        html = space_page(member_client, many_proposals)
    assert html.count('<li class="task-proposal') == 30
