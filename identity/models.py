import uuid

from django.conf import settings
from django.contrib.auth.models import (
    AbstractBaseUser,
    BaseUserManager,
    PermissionsMixin,
)
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra: object) -> "User":
        if not email:
            raise ValueError("An email address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: object) -> "User":
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: object) -> "User":
        extra["is_staff"] = True
        extra["is_superuser"] = True
        return self._create_user(email, password, **extra)


def avatar_upload_to(instance: "User", filename: str) -> str:
    # The stored name never comes from the client: a random name with the validated extension.
    ext = filename.rsplit(".", 1)[-1].lower()
    return f"avatars/{instance.public_id.hex}/{uuid.uuid4().hex}.{ext}"


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signs in with an email address.

    ``public_id`` is the stable identity shown to LiveKit and to other participants; the
    database primary key never leaves the server.
    """

    email = models.EmailField(_("email address"), unique=True)
    public_id = models.UUIDField(
        _("public ID"),
        default=uuid.uuid4,
        unique=True,
        editable=False,
        help_text=_("Who the person is in calls and transcripts; never changes."),
    )
    display_name = models.CharField(_("display name"), max_length=80, blank=True)
    avatar = models.ImageField(_("avatar"), upload_to=avatar_upload_to, blank=True)
    is_staff = models.BooleanField(
        _("staff status"),
        default=False,
        help_text=_("Whether the person can sign in to this admin site."),
    )
    is_active = models.BooleanField(
        _("active"),
        default=True,
        help_text=_("Unticked: the person can no longer sign in. Untick this instead of deleting."),
    )
    date_joined = models.DateTimeField(_("date joined"), default=timezone.now)
    # The interface language the person chose (one of settings.LANGUAGES); blank: follow the
    # browser's Accept-Language.
    language = models.CharField(
        _("interface language"),
        max_length=8,
        blank=True,
        default="",
        db_default="",
        choices=settings.LANGUAGES,
        help_text=_("Empty: the language the browser asks for."),
    )
    # The language live captions are shown in (ISO 639-1); blank: as spoken (the original).
    # Remembered across sessions; the run translates into the languages of the people present.
    caption_language = models.CharField(
        _("caption language"),
        max_length=16,
        blank=True,
        default="",
        db_default="",
        help_text=_("Empty: captions as spoken, untranslated."),
    )

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email

    @property
    def name(self) -> str:
        """What other people see: the display name, else the part of the email before the @."""
        return self.display_name or self.email.split("@", 1)[0]

    @property
    def identity(self) -> str:
        """The participant identity used in LiveKit rooms and transcript attribution."""
        return f"u-{self.public_id.hex}"

    def get_full_name(self) -> str:
        return self.name

    def get_short_name(self) -> str:
        return self.name
