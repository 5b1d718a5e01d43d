from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from PIL import Image, UnidentifiedImageError

ALLOWED_AVATAR_FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}


def validate_avatar(upload: UploadedFile) -> str:
    """Check an uploaded avatar by its content, not its name; return the file extension to use.

    Raises ``ValidationError`` for files over ``AVATAR_MAX_BYTES``, files Pillow cannot decode,
    formats outside ``ALLOWED_AVATAR_FORMATS`` and images over ``AVATAR_MAX_PIXELS`` a side.
    """
    if upload.size is None or upload.size > settings.AVATAR_MAX_BYTES:
        limit_kib = settings.AVATAR_MAX_BYTES // 1024
        raise ValidationError(f"The avatar must be at most {limit_kib} KiB.", code="too_large")
    try:
        upload.seek(0)
        with Image.open(upload) as image:
            image_format = image.format or ""
            width, height = image.size
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ValidationError("The avatar is not a valid image.", code="invalid_image") from exc
    finally:
        upload.seek(0)
    if image_format not in ALLOWED_AVATAR_FORMATS:
        raise ValidationError(
            "The avatar must be a JPEG, PNG, WebP or GIF image.", code="invalid_format"
        )
    if max(width, height) > settings.AVATAR_MAX_PIXELS:
        raise ValidationError(
            f"The avatar must be at most {settings.AVATAR_MAX_PIXELS} pixels a side.",
            code="too_many_pixels",
        )
    return ALLOWED_AVATAR_FORMATS[image_format]
