from django.apps import AppConfig
from django.db.models.signals import post_delete
from django.utils.translation import gettext_lazy as _


class SpacesConfig(AppConfig):
    name = "spaces"
    verbose_name = _("Spaces")

    def ready(self) -> None:
        from spaces.handlers import membership_deleted
        from spaces.models import SpaceMember

        # However a membership goes (an owner, the admin, a deleted space or user), the
        # person's open session sockets close: see spaces.access.
        post_delete.connect(membership_deleted, sender=SpaceMember, dispatch_uid="access-end")
