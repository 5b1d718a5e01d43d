"""Writes for spaces, members and invitations."""

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.crypto import get_random_string
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from identity.models import User
from rooms.errors import DomainError, Forbidden
from spaces.languages import languages_clean
from spaces.models import Space, SpaceInvite, SpaceMember, SpaceRemoval

INVITE_DEFAULT_TTL = timedelta(days=7)
INVITE_MAX_TTL = timedelta(days=30)
OWNER_REQUIRED_MESSAGE = gettext_lazy("Only an owner of this space can do that.")


def _space_slug(name: str) -> str:
    base = slugify(name)[:60] or "space"
    return f"{base}-{get_random_string(6, 'abcdefghijkmnpqrstuvwxyz23456789')}"


@transaction.atomic
def space_create(*, owner: User, name: str) -> Space:
    name = name.strip()
    if not name:
        raise DomainError(_("A space needs a name."), code="name_required")
    space = Space.objects.create(slug=_space_slug(name), name=name[:120], created_by=owner)
    SpaceMember.objects.create(space=space, user=owner, role=SpaceMember.Role.OWNER)
    return space


def require_owner(*, space: Space, by: User) -> None:
    if not SpaceMember.objects.filter(
        space=space, user_id=by.pk, role=SpaceMember.Role.OWNER
    ).exists():
        raise Forbidden(str(OWNER_REQUIRED_MESSAGE), code="owner_required")


def invite_create(*, space: Space, by: User, ttl: timedelta = INVITE_DEFAULT_TTL) -> SpaceInvite:
    require_owner(space=space, by=by)
    if ttl <= timedelta(0) or ttl > INVITE_MAX_TTL:
        raise DomainError(_("An invitation lasts between 1 hour and 30 days."), code="invalid_ttl")
    return SpaceInvite.objects.create(space=space, created_by=by, expires_at=timezone.now() + ttl)


def invite_revoke(*, invite: SpaceInvite, by: User) -> None:
    """Revoke ``invite`` (owners only; idempotent): its link stops admitting anyone at once.
    People who already joined through it stay members."""
    require_owner(space=invite.space, by=by)
    SpaceInvite.objects.filter(pk=invite.pk).update(revoked=True)
    invite.revoked = True


@transaction.atomic
def invite_accept(*, invite: SpaceInvite, user: User) -> SpaceMember:
    """Add ``user`` to the invite's space as MEMBER; an existing member keeps their role."""
    existing = SpaceMember.objects.filter(space_id=invite.space_id, user_id=user.pk).first()
    if existing is not None:
        return existing
    if not invite.is_valid():
        raise DomainError(_("This invitation has expired or was revoked."), code="invite_expired")
    if SpaceRemoval.objects.filter(
        space_id=invite.space_id, user_id=user.pk, removed_at__gte=invite.created_at
    ).exists():
        raise Forbidden(
            _(
                "You were removed from this space after this link was made. "
                "Ask an owner of the space for a new invitation."
            ),
            code="invite_predates_removal",
        )
    try:
        with transaction.atomic():
            member = SpaceMember.objects.create(
                space_id=invite.space_id, user=user, role=SpaceMember.Role.MEMBER
            )
    except IntegrityError:
        # Accepted twice at once: the other request created the membership.
        return SpaceMember.objects.get(space_id=invite.space_id, user_id=user.pk)
    SpaceInvite.objects.filter(pk=invite.pk).update(uses=F("uses") + 1)
    return member


@transaction.atomic
def member_remove(*, space: Space, member: SpaceMember, by: User) -> None:
    """Remove ``member`` from ``space``; owners only, and a space always keeps one owner.

    Access ends at once: after the commit the person's open session sockets are closed with
    4003 (``spaces.access``, from the membership's deletion), and invitation links created
    before now no longer let them back in (``SpaceRemoval``): only a new link does.

    The space's owner rows are locked before they are checked, so two owners removing each
    other at once cannot leave the space without one. (``QuerySet.count()`` would silently
    drop ``FOR UPDATE``: the rows themselves must be fetched.)
    """
    owners = dict(
        SpaceMember.objects.select_for_update()
        .filter(space=space, role=SpaceMember.Role.OWNER)
        .values_list("pk", "user_id")
    )
    if by.pk not in owners.values():
        raise Forbidden(str(OWNER_REQUIRED_MESSAGE), code="owner_required")
    if member.space_id != space.pk:
        raise DomainError(_("That person is not a member of this space."), code="not_member")
    if member.pk in owners and len(owners) <= 1:
        raise DomainError(_("A space must keep at least one owner."), code="last_owner")
    SpaceRemoval.objects.update_or_create(
        space=space,
        user_id=member.user_id,
        defaults={"removed_at": timezone.now(), "removed_by": by},
    )
    member.delete()


@transaction.atomic
def space_delete(*, space: Space, by: User) -> None:
    """Delete ``space`` with its sessions, transcripts and tasks (owners only).

    Every member's open session sockets are closed with 4003 after the commit (the cascade
    deletes each membership, which revokes its access: ``spaces.access``).
    """
    require_owner(space=space, by=by)
    space.delete()


def space_languages_set(
    *, space: Space, by: User, languages: list[object], supported: frozenset[str] | None
) -> Space:
    """Set the transcription languages new sessions of ``space`` take unless they choose
    otherwise (owners only): ``[]`` automatic detection, one code a fixed language, several
    the languages expected (the provider switches between them). Sessions already created keep
    theirs.

    ``supported``: the languages this server's speech engine can transcribe
    (``transcription.usage.limits.provider_languages()``; None for any). The caller passes it
    because spaces sit below transcription. Raises ``Forbidden`` (``owner_required``) and
    ``DomainError`` (``languages_invalid``, ``language_unsupported``:
    ``spaces.languages.languages_clean``).
    """
    require_owner(space=space, by=by)
    space.languages = languages_clean(languages, supported=supported)
    space.save(update_fields=["languages"])
    return space
