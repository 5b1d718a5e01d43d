from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from PIL import Image, UnidentifiedImageError

# Pillow's format names; identity.avatars says what each is stored as.
ALLOWED_AVATAR_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "GIF"})


def validate_avatar(upload: UploadedFile) -> None:
    """Check an uploaded avatar by its content, not its name.

    Raises ``ValidationError`` for files over ``AVATAR_MAX_BYTES``, files Pillow cannot decode,
    formats outside ``ALLOWED_AVATAR_FORMATS`` and images over ``AVATAR_MAX_PIXELS`` a side.
    """
    if upload.size is None or upload.size > settings.AVATAR_MAX_BYTES:
        limit_kib = settings.AVATAR_MAX_BYTES // 1024
        raise ValidationError(
            _("The avatar must be at most %(limit)s KiB.") % {"limit": limit_kib}, code="too_large"
        )
    try:
        upload.seek(0)
        with Image.open(upload) as image:
            image_format = image.format or ""
            width, height = image.size
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ValidationError(_("The avatar is not a valid image."), code="invalid_image") from exc
    finally:
        upload.seek(0)
    if image_format not in ALLOWED_AVATAR_FORMATS:
        raise ValidationError(
            _("The avatar must be a JPEG, PNG, WebP or GIF image."), code="invalid_format"
        )
    if max(width, height) > settings.AVATAR_MAX_PIXELS:
        raise ValidationError(
            ngettext(
                "The avatar must be at most %(limit)s pixel a side.",
                "The avatar must be at most %(limit)s pixels a side.",
                settings.AVATAR_MAX_PIXELS,
            )
            % {"limit": settings.AVATAR_MAX_PIXELS},
            code="too_many_pixels",
        )
