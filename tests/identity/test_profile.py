"""The profile page: display name and avatar, validated by content and size."""

from __future__ import annotations

import io
import os
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image, PngImagePlugin

from identity.avatars import STORED_FORMAT
from identity.validators import ALLOWED_AVATAR_FORMATS

PROFILE_URL = reverse("identity:profile")


def image_upload(
    name: str = "me.png", *, fmt: str = "PNG", size: tuple[int, int] = (32, 32), noise: bool = False
) -> SimpleUploadedFile:
    if noise:
        image = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    else:
        image = Image.new("RGB", size, (200, 80, 40))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type=f"image/{fmt.lower()}")


def post_profile(client, **data):
    data.setdefault("display_name", "")
    return client.post(PROFILE_URL, data)


@pytest.mark.django_db
def test_anonymous_is_redirected_to_login_from_profile(client):
    response = client.get(PROFILE_URL)

    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


def test_profile_page_shows_my_name_and_email(owner_client, owner):
    response = owner_client.get(PROFILE_URL)

    assert response.status_code == 200
    assert owner.display_name in response.content.decode()
    assert owner.email in response.content.decode()


def test_profile_page_states_the_configured_avatar_size_limit(owner_client, settings):
    settings.AVATAR_MAX_BYTES = 512 * 1024

    response = owner_client.get(PROFILE_URL)

    assert "at most 512.0\xa0KB" in response.content.decode()


def test_display_name_is_saved_trimmed(owner_client, owner):
    response = post_profile(owner_client, display_name="  Olivia O.  ")

    assert response.status_code == 302
    owner.refresh_from_db()
    assert owner.display_name == "Olivia O."


def test_blank_display_name_falls_back_to_email_local_part(owner_client, owner):
    post_profile(owner_client, display_name="")

    owner.refresh_from_db()
    assert owner.display_name == ""
    assert owner.name == "owner"


def test_too_long_display_name_is_rejected(owner_client, owner):
    response = post_profile(owner_client, display_name="x" * 81)

    assert response.status_code == 400
    owner.refresh_from_db()
    assert owner.display_name == "Olivia Owner"


def test_valid_png_avatar_is_stored_under_a_random_name(owner_client, owner):
    response = post_profile(
        owner_client, display_name="Olivia", avatar=image_upload("../../etc/passwd.png")
    )

    assert response.status_code == 302
    owner.refresh_from_db()
    assert owner.avatar.name.startswith(f"avatars/{owner.public_id.hex}/")
    assert owner.avatar.name.endswith(".png")
    assert "passwd" not in owner.avatar.name
    with owner.avatar.open("rb") as stored, Image.open(stored) as image:
        assert image.format == "PNG"


def test_avatar_extension_comes_from_content_not_from_file_name(owner_client, owner):
    post_profile(owner_client, avatar=image_upload("photo.jpg", fmt="PNG"))

    owner.refresh_from_db()
    assert owner.avatar.name.endswith(".png")


def test_text_file_renamed_png_is_rejected(owner_client, owner):
    fake = SimpleUploadedFile("me.png", b"just some text, not an image", content_type="image/png")

    response = post_profile(owner_client, display_name="Changed", avatar=fake)

    assert response.status_code == 400
    assert response.context["form"].errors["avatar"]
    owner.refresh_from_db()
    assert not owner.avatar
    assert owner.display_name == "Olivia Owner"


def test_oversized_avatar_is_rejected(owner_client, owner, settings):
    settings.AVATAR_MAX_BYTES = 1024
    upload = image_upload(size=(64, 64), noise=True)
    assert upload.size > 1024

    response = post_profile(owner_client, avatar=upload)

    assert response.status_code == 400
    assert "at most 1 KiB" in " ".join(response.context["form"].errors["avatar"])
    owner.refresh_from_db()
    assert not owner.avatar


def test_avatar_in_a_format_outside_the_allowed_list_is_rejected(owner_client, owner):
    response = post_profile(owner_client, avatar=image_upload("me.bmp", fmt="BMP"))

    assert response.status_code == 400
    owner.refresh_from_db()
    assert not owner.avatar


def test_avatar_with_too_many_pixels_is_rejected(owner_client, owner, settings):
    settings.AVATAR_MAX_PIXELS = 16

    response = post_profile(owner_client, avatar=image_upload(size=(32, 8)))

    assert response.status_code == 400
    owner.refresh_from_db()
    assert not owner.avatar


def test_replacing_the_avatar_deletes_the_old_file(
    owner_client, owner, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        post_profile(owner_client, avatar=image_upload())
    owner.refresh_from_db()
    first = owner.avatar.name
    storage = owner.avatar.storage

    with django_capture_on_commit_callbacks(execute=True):
        post_profile(owner_client, avatar=image_upload("again.png"))

    owner.refresh_from_db()
    assert owner.avatar.name != first
    assert storage.exists(owner.avatar.name)
    assert not storage.exists(first)


def test_clearing_the_avatar_removes_it(owner_client, owner, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        post_profile(owner_client, avatar=image_upload())
    owner.refresh_from_db()
    old = owner.avatar.name
    storage = owner.avatar.storage

    with django_capture_on_commit_callbacks(execute=True):
        response = post_profile(owner_client, display_name="Olivia", clear_avatar="on")

    assert response.status_code == 302
    owner.refresh_from_db()
    assert not owner.avatar
    assert not storage.exists(old)


def _stored_bytes(user) -> bytes:
    with user.avatar.open("rb") as stored:
        return stored.read()


def test_avatar_is_stored_without_metadata_or_bytes_appended_to_it(owner_client, owner):
    """The attack: a valid PNG carrying EXIF, a text chunk and an HTML page + ZIP archive
    after its end was stored byte for byte, a polyglot served from our media URL."""
    image = Image.frombytes("RGB", (16, 16), bytes(range(256)) * 3)
    exif = Image.Exif()
    exif[0x010F] = "SpyCam"  # Make
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "secret-comment")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", exif=exif, pnginfo=info)
    payload = b"<html><script>alert(document.cookie)</script></html>" + _zip_bytes()
    upload = SimpleUploadedFile("me.png", buffer.getvalue() + payload, content_type="image/png")

    response = post_profile(owner_client, avatar=upload)

    assert response.status_code == 302
    owner.refresh_from_db()
    stored = _stored_bytes(owner)
    for marker in (b"<script", b"PK\x03\x04", b"SpyCam", b"secret-comment", b"eXIf", b"tEXt"):
        assert marker not in stored, marker
    assert stored.endswith(b"IEND\xaeB`\x82")  # nothing after the PNG's last chunk
    with Image.open(io.BytesIO(stored)) as clean:
        assert clean.format == "PNG"
        assert not clean.getexif()
        assert clean.convert("RGB").tobytes() == image.tobytes()


def test_jpeg_avatar_loses_its_exif_but_keeps_its_way_up(owner_client, owner):
    image = Image.new("RGB", (40, 20), (10, 120, 200))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the camera was turned; viewers rotate 90° clockwise
    exif[0x010F] = "SpyCam"
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    upload = SimpleUploadedFile("me.jpg", buffer.getvalue(), content_type="image/jpeg")

    post_profile(owner_client, avatar=upload)

    owner.refresh_from_db()
    assert owner.avatar.name.endswith(".jpg")
    stored = _stored_bytes(owner)
    assert b"Exif" not in stored
    assert b"SpyCam" not in stored
    with Image.open(io.BytesIO(stored)) as clean:
        assert clean.format == "JPEG"
        assert not clean.getexif()
        assert clean.size == (20, 40)


def test_gif_avatar_is_stored_as_a_still_png(owner_client, owner):
    frames = [Image.new("P", (8, 8), color) for color in (1, 2)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], comment=b"hi")
    upload = SimpleUploadedFile("me.gif", buffer.getvalue(), content_type="image/gif")

    post_profile(owner_client, avatar=upload)

    owner.refresh_from_db()
    assert owner.avatar.name.endswith(".png")
    with Image.open(io.BytesIO(_stored_bytes(owner))) as clean:
        assert clean.format == "PNG"
        assert getattr(clean, "n_frames", 1) == 1


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.html", "<script>alert(1)</script>")
    return buffer.getvalue()


def test_every_accepted_avatar_format_has_a_stored_format():
    assert set(STORED_FORMAT) == ALLOWED_AVATAR_FORMATS
