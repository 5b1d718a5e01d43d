import uuid

from django.contrib.auth.models import (
    AbstractBaseUser,
    BaseUserManager,
    PermissionsMixin,
)
from django.db import models
from django.utils import timezone


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

    email = models.EmailField("email address", unique=True)
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    display_name = models.CharField(max_length=80, blank=True)
    avatar = models.ImageField(upload_to=avatar_upload_to, blank=True)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
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
