"""Access-checked reads of spaces: an outsider always gets ``Http404`` and learns nothing."""

from django.db.models import F, QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from identity.models import User
from spaces.models import Space, SpaceInvite, SpaceMember


def space_list_for_user(*, user: User) -> QuerySet[Space]:
    """The user's spaces, each annotated with ``role`` (the user's role in it)."""
    return (
        Space.objects.filter(memberships__user=user)
        .annotate(role=F("memberships__role"))
        .order_by("name")
    )


def space_get_for_user(*, user: User, slug: str) -> Space:
    """The space named by ``slug`` if ``user`` is a member, with ``membership`` attached."""
    membership = (
        SpaceMember.objects.select_related("space")
        .filter(space__slug=slug, user_id=user.pk)
        .first()
        if user.is_authenticated
        else None
    )
    if membership is None:
        raise Http404(_("No such space."))
    space = membership.space
    space.membership = membership  # type: ignore[attr-defined]
    space.role = membership.role  # type: ignore[attr-defined]
    return space


def membership_get(*, user: User, space_id: int) -> SpaceMember | None:
    if not user.is_authenticated:
        return None
    return SpaceMember.objects.filter(space_id=space_id, user_id=user.pk).first()


def space_member_list(*, space: Space) -> QuerySet[SpaceMember]:
    return space.memberships.select_related("user").order_by("-role", "joined_at")


def invite_get(*, token: str) -> SpaceInvite:
    """The invite for ``token`` (valid or not; the caller decides); unknown tokens are 404."""
    invite = SpaceInvite.objects.select_related("space").filter(token=token).first()
    if invite is None:
        raise Http404(_("No such invitation."))
    return invite


def invite_list_for_space(*, space: Space) -> QuerySet[SpaceInvite]:
    """Links that still admit people (not revoked, not expired), newest first; owners only
    (the caller checks)."""
    return (
        space.invites.filter(revoked=False, expires_at__gt=timezone.now())
        .select_related("created_by")
        .order_by("-created_at")
    )
