import uuid

from identity.models import User


def user_get_by_identity(*, identity: str) -> User | None:
    """The active user behind a participant identity (``u-<public id hex>``), or None."""
    if not identity.startswith("u-"):
        return None
    try:
        public_id = uuid.UUID(hex=identity[2:])
    except ValueError:
        return None
    return User.objects.filter(public_id=public_id, is_active=True).first()
