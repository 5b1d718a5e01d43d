from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from identity.models import User
from identity.validators import validate_avatar


@transaction.atomic
def profile_update(
    *,
    user: User,
    display_name: str,
    avatar: UploadedFile | None = None,
    clear_avatar: bool = False,
) -> User:
    """Update what other people see of ``user``; the avatar is validated by content first."""
    user.display_name = display_name.strip()
    old_avatar_name = user.avatar.name if user.avatar else ""
    if avatar is not None:
        ext = validate_avatar(avatar)
        user.avatar.save(f"avatar.{ext}", avatar, save=False)
    elif clear_avatar:
        user.avatar = None
    user.save()
    if old_avatar_name and old_avatar_name != (user.avatar.name if user.avatar else ""):
        storage = user.avatar.storage
        transaction.on_commit(lambda: storage.delete(old_avatar_name))
    return user


def user_create(*, email: str, password: str, display_name: str = "") -> User:
    return User.objects.create_user(email=email, password=password, display_name=display_name)
