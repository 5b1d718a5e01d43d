from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from rooms.errors import DomainError
from sessions_app.forms import SessionCreateForm
from sessions_app.selectors import session_list_for_space, task_list_for_space
from spaces import selectors, services
from spaces.forms import SpaceCreateForm, SpaceLanguagesForm
from spaces.languages import languages_label
from transcription.usage.limits import provider_languages
from transcription.usage.reports import space_summary


@login_required
def space_list(request: HttpRequest) -> HttpResponse:
    form = SpaceCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            space = services.space_create(owner=request.user, name=form.cleaned_data["name"])
        except DomainError as exc:
            form.add_error("name", exc.message)
        else:
            messages.success(request, _("Space “%(name)s” created.") % {"name": space.name})
            return redirect("spaces:detail", slug=space.slug)
    spaces = selectors.space_list_for_user(user=request.user)
    status = 400 if form.errors else 200
    return render(request, "spaces/list.html", {"spaces": spaces, "form": form}, status=status)


@login_required
def space_detail(request: HttpRequest, slug: str) -> HttpResponse:
    space = selectors.space_get_for_user(user=request.user, slug=slug)
    membership = space.membership
    invite_id = request.GET.get("invite")
    invites = selectors.invite_list_for_space(space=space) if membership.is_owner else []
    context = {
        "space": space,
        "membership": membership,
        "members": selectors.space_member_list(space=space),
        "sessions": session_list_for_space(space=space),
        "open_tasks": task_list_for_space(space=space, done=False)[:100],
        "done_tasks": task_list_for_space(space=space, done=True).order_by("-done_at")[:10],
        "session_form": SessionCreateForm(space=space),
        "languages_form": (
            SpaceLanguagesForm(space=space, supported=provider_languages())
            if membership.is_owner
            else None
        ),
        "invites": invites,
        "new_invite_id": invite_id,
        "usage": space_summary(space=space) if membership.is_owner else None,
    }
    return render(request, "spaces/detail.html", context)


@login_required
@require_POST
def invite_create(request: HttpRequest, slug: str) -> HttpResponse:
    space = selectors.space_get_for_user(user=request.user, slug=slug)
    try:
        invite = services.invite_create(space=space, by=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("spaces:detail", slug=space.slug)
    messages.success(request, _("Invitation link created. Share it with the people to invite."))
    return redirect(f"{reverse('spaces:detail', kwargs={'slug': space.slug})}?invite={invite.pk}")


@login_required
@require_POST
def invite_revoke(request: HttpRequest, slug: str, invite_id: int) -> HttpResponse:
    space = selectors.space_get_for_user(user=request.user, slug=slug)
    invite = get_object_or_404(space.invites.all(), pk=invite_id)
    try:
        services.invite_revoke(invite=invite, by=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Invitation link revoked: it admits nobody from now on."))
    return redirect("spaces:detail", slug=space.slug)


@login_required
@require_POST
def space_languages(request: HttpRequest, slug: str) -> HttpResponse:
    """The settings card's form: the transcription languages of the space's new sessions."""
    space = selectors.space_get_for_user(user=request.user, slug=slug)
    supported = provider_languages()
    form = SpaceLanguagesForm(request.POST, space=space, supported=supported)
    card = f"{reverse('spaces:detail', kwargs={'slug': space.slug})}#languages"
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect(card)
    try:
        services.space_languages_set(
            space=space, by=request.user, languages=form.languages_chosen(), supported=supported
        )
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            _("Transcription languages of new sessions: %(languages)s.")
            % {"languages": languages_label(space.languages)},
        )
    return redirect(card)


@login_required
@require_POST
def space_delete(request: HttpRequest, slug: str) -> HttpResponse:
    space = selectors.space_get_for_user(user=request.user, slug=slug)
    if request.POST.get("confirm_name", "").strip() != space.name:
        messages.error(request, _("Type the space's name exactly to delete it."))
        return redirect("spaces:detail", slug=space.slug)
    try:
        services.space_delete(space=space, by=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("spaces:detail", slug=space.slug)
    messages.success(request, _("Space “%(name)s” deleted.") % {"name": space.name})
    return redirect("spaces:list")


@login_required
@require_POST
def member_remove(request: HttpRequest, slug: str, member_id: int) -> HttpResponse:
    space = selectors.space_get_for_user(user=request.user, slug=slug)
    member = get_object_or_404(space.memberships.select_related("user"), pk=member_id)
    try:
        services.member_remove(space=space, member=member, by=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request, _("%(name)s was removed from the space.") % {"name": member.user.name}
        )
    return redirect("spaces:detail", slug=space.slug)


@login_required
def invite_accept(request: HttpRequest, token: str) -> HttpResponse:
    invite = selectors.invite_get(token=token)
    already = selectors.membership_get(user=request.user, space_id=invite.space_id)
    if already is not None:
        return redirect("spaces:detail", slug=invite.space.slug)
    if request.method == "POST":
        try:
            services.invite_accept(invite=invite, user=request.user)
        except DomainError as exc:
            messages.error(request, exc.message)
            return render(request, "spaces/invite.html", {"invite": invite}, status=410)
        messages.success(request, _("You joined “%(name)s”.") % {"name": invite.space.name})
        return redirect("spaces:detail", slug=invite.space.slug)
    status = 200 if invite.is_valid() else 410
    return render(request, "spaces/invite.html", {"invite": invite}, status=status)
