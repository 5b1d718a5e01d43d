from django.apps import AppConfig
from django.db.models.signals import post_delete


class SessionsAppConfig(AppConfig):
    name = "sessions_app"
    verbose_name = "Sessions"

    def ready(self) -> None:
        from sessions_app import handlers
        from sessions_app.models import VideoSession
        from spaces.models import SpaceMember
        from transcription.events import transcript_edited

        post_delete.connect(
            handlers.session_deleted, sender=VideoSession, dispatch_uid="session-deleted"
        )
        post_delete.connect(
            handlers.membership_deleted, sender=SpaceMember, dispatch_uid="participants-leave"
        )
        transcript_edited.connect(handlers.transcript_edited, dispatch_uid="analysis-stale")
