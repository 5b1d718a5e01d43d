"""Avatar files are written from decoded pixels only.

An upload that Pillow accepts can still carry more than a picture: EXIF (a phone's GPS
position, its serial number), ICC profiles, text chunks, comments, and whatever was appended
after the image's last byte (an HTML page or a ZIP archive makes a "polyglot" that other
programs read as something else). Re-encoding the pixels into a new file drops all of it.
"""

from __future__ import annotations

import io

from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from PIL import Image, ImageOps

# What each format of validators.ALLOWED_AVATAR_FORMATS is stored as: a GIF becomes a still
# PNG (its first frame), an animated WebP its first frame.
STORED_FORMAT = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WEBP", "GIF": "PNG"}
EXTENSION = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
# Lossy formats are written at this quality (Pillow's default is 75 for JPEG, 80 for WebP).
QUALITY = 90


def avatar_reencode(upload: UploadedFile) -> tuple[ContentFile, str]:
    """A new image file holding only the pixels of ``upload``, and its file extension.

    ``upload`` must have passed ``identity.validators.validate_avatar`` (format and size are
    not checked again). The EXIF orientation is applied to the pixels before EXIF is dropped,
    so a photo keeps the way up it was taken.
    """
    upload.seek(0)
    with Image.open(upload) as source:
        stored_format = STORED_FORMAT[source.format or ""]
        image = ImageOps.exif_transpose(source)
        has_alpha = "A" in image.getbands() or "transparency" in image.info
        mode = "RGBA" if has_alpha and stored_format != "JPEG" else "RGB"
        image = image.convert(mode)
        # A new image made from raw pixel bytes: no info, EXIF, ICC profile or palette carries over.
        pixels = Image.frombytes(mode, image.size, image.tobytes())
    upload.seek(0)
    out = io.BytesIO()
    options = {"quality": QUALITY} if stored_format in ("JPEG", "WEBP") else {}
    pixels.save(out, format=stored_format, **options)
    return ContentFile(out.getvalue()), EXTENSION[stored_format]
