"""Template helpers for proposed tasks: the analysis card (``sessions/_analysis.html``) and the
space page's Tasks section. The pages have already checked membership."""

from __future__ import annotations

from dataclasses import dataclass

from django import template
from django.db.models import QuerySet

from sessions_app.analysis.services import task_title_key
from sessions_app.models import SessionAnalysis, Task, VideoSession
from sessions_app.selectors import task_list_for_session, task_list_for_space
from spaces.models import Space, SpaceMember
from spaces.selectors import space_member_list

register = template.Library()

# The space page lists this many proposals at most (the API lists them all).
SPACE_PROPOSALS_SHOWN = 100


@dataclass(frozen=True, slots=True)
class ItemRow:
    """An action item of the analysis and the task it became (None: no task, e.g. an older
    analysis whose tasks were deleted)."""

    item: dict
    task: Task | None


@register.simple_tag
def analysis_item_rows(session: VideoSession, analysis: SessionAnalysis | None) -> list[ItemRow]:
    """The done analysis's action items, each with its task (matched by proposed title)."""
    if analysis is None or analysis.status != SessionAnalysis.Status.DONE:
        return []
    tasks: dict[str, Task] = {}
    for task in task_list_for_session(session=session):
        tasks.setdefault(task_title_key(task.proposed_title or task.title), task)
    return [
        ItemRow(item=item, task=tasks.get(task_title_key(str(item.get("text", "")))))
        for item in analysis.action_items
        if isinstance(item, dict)
    ]


@register.simple_tag
def space_task_proposals(space: Space) -> QuerySet[Task]:
    """Proposals of the space's analyses that no member has accepted or dismissed yet."""
    return task_list_for_space(space=space, status=Task.Status.PROPOSED)[:SPACE_PROPOSALS_SHOWN]


@register.simple_tag
def space_members(space: Space) -> QuerySet[SpaceMember]:
    """The members a task may be assigned to (the accept form's owner choice)."""
    return space_member_list(space=space)
