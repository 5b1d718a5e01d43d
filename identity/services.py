from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from rest_framework.authtoken.models import Token

from identity.avatars import avatar_reencode
from identity.lockout import account_lock_clear
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
    """Update what other people see of ``user``. The avatar is validated by content, then
    stored re-encoded from its pixels (``identity.avatars``), never as uploaded."""
    user.display_name = display_name.strip()
    old_avatar_name = user.avatar.name if user.avatar else ""
    if avatar is not None:
        validate_avatar(avatar)
        content, ext = avatar_reencode(avatar)
        user.avatar.save(f"avatar.{ext}", content, save=False)
    elif clear_avatar:
        user.avatar = None
    user.save()
    if old_avatar_name and old_avatar_name != (user.avatar.name if user.avatar else ""):
        storage = user.avatar.storage
        transaction.on_commit(lambda: storage.delete(old_avatar_name))
    return user


def user_language_set(*, user: User, language: str) -> User:
    """Remember ``user``'s interface language (a code from ``settings.LANGUAGES``, or "" to
    follow the browser)."""
    if language and language not in dict(settings.LANGUAGES):
        raise ValueError(f"unknown interface language {language!r}")
    user.language = language
    user.save(update_fields=["language"])
    return user


def caption_language_set(*, user: User, language: str) -> User:
    """Remember the language ``user`` reads live captions in: "" for the original, else an
    ISO 639-1 code the caller has checked (``transcription.translation.caption_language_clean``:
    the list of languages belongs to a higher app)."""
    if len(language) > User._meta.get_field("caption_language").max_length:  # type: ignore[operator]
        raise ValueError(f"not a caption language: {language[:20]!r}")
    user.caption_language = language
    user.save(update_fields=["caption_language"])
    return user


def user_create(*, email: str, password: str, display_name: str = "") -> User:
    return User.objects.create_user(email=email, password=password, display_name=display_name)


def user_password_changed(*, user: User) -> None:
    """Called after ``user``'s password was changed, set or reset, by anyone: the API tokens
    issued under the old password stop working, and failed sign-ins counted against the
    account are forgotten (whoever set the password has proved access another way)."""
    api_tokens_revoke(user=user)
    account_lock_clear(email=user.email)


def api_token_get_or_create(*, user: User) -> Token:
    """``user``'s API token (DRF's ``Token``: one per user), made on first use."""
    token, _ = Token.objects.get_or_create(user=user)
    return token


def api_tokens_revoke(*, user: User) -> int:
    """Delete ``user``'s API tokens; return how many there were."""
    deleted, _ = Token.objects.filter(user=user).delete()
    return deleted
