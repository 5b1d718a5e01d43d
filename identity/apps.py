from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IdentityConfig(AppConfig):
    name = "identity"
    verbose_name = _("Identity")

    def ready(self) -> None:
        from allauth.account import signals

        from identity import handlers

        # However a user's password changes through allauth's pages, the API tokens issued
        # under the old one stop working and the per-account sign-in lock is lifted. The
        # admin's password form calls the same service (identity.admin).
        for signal, uid in (
            (signals.password_changed, "password-changed"),
            (signals.password_set, "password-set"),
            (signals.password_reset, "password-reset"),
        ):
            signal.connect(handlers.password_changed, dispatch_uid=f"identity-{uid}")
