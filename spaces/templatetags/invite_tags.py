"""``{% load invite_tags %}{% invite_from_next as invite %}``: the invitation a signed-out
visitor is on the way to, so sign-in and sign-up can say which space they are joining; and the
``next`` that the top bar's links and language switcher carry on (never one off this site)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import template
from django.http import Http404
from django.urls import Resolver404, resolve
from django.utils.http import url_has_allowed_host_and_scheme

from spaces.models import SpaceInvite
from spaces.selectors import invite_get

register = template.Library()

NEXT = "next"


@register.simple_tag(takes_context=True)
def invite_from_next(context: dict[str, Any]) -> SpaceInvite | None:
    """The valid invitation that the request's ``next`` (GET or POST) leads to, else ``None``.

    Only a local ``/invite/<token>/`` path counts; whoever holds the link may read the space's
    name on the invitation page anyway.
    """
    request = context.get("request")
    if request is None:
        return None
    target = request.POST.get(NEXT) or request.GET.get(NEXT) or ""
    if not target or not url_has_allowed_host_and_scheme(target, allowed_hosts=None):
        return None
    try:
        match = resolve(target.split("?", 1)[0])
    except Resolver404:
        return None
    if match.url_name != "invite-accept":
        return None
    try:
        invite = invite_get(token=match.kwargs["token"])
    except Http404:
        return None
    return invite if invite.is_valid() else None


@register.simple_tag(takes_context=True)
def next_query(context: dict[str, Any]) -> str:
    """``?next=…`` carrying the request's own ``next`` on (for the top bar's sign-in and sign-up
    links), or an empty string."""
    request = context.get("request")
    if request is None:
        return ""
    target = request.POST.get(NEXT) or request.GET.get(NEXT) or ""
    if not target or not url_has_allowed_host_and_scheme(target, allowed_hosts=None):
        return ""
    return "?" + urlencode({NEXT: target})


@register.simple_tag(takes_context=True)
def here_path(context: dict[str, Any]) -> str:
    """The request's path and query string, to come back to (the language switcher's
    ``next``), less a ``next`` that leads off this site: like the sign-in links, the top bar
    never carries one."""
    request = context.get("request")
    if request is None:
        return "/"
    query = request.GET.copy()
    if any(
        not url_has_allowed_host_and_scheme(target, allowed_hosts=None)
        for target in query.getlist(NEXT)
    ):
        del query[NEXT]
    encoded = query.urlencode()
    return f"{request.path}?{encoded}" if encoded else request.path
