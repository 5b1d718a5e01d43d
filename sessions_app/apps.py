from django.apps import AppConfig
from django.db.models.signals import post_delete
from django.utils.translation import gettext_lazy as _


class SessionsAppConfig(AppConfig):
    name = "sessions_app"
    verbose_name = _("Sessions")

    def ready(self) -> None:
        from sessions_app import handlers, tasks  # noqa: F401 (tasks: queued by name, rooms.jobs)
        from sessions_app.models import VideoSession
        from spaces.models import SpaceMember
        from transcription.events import speech_stored, transcript_edited

        post_delete.connect(
            handlers.session_deleted, sender=VideoSession, dispatch_uid="session-deleted"
        )
        post_delete.connect(
            handlers.membership_deleted, sender=SpaceMember, dispatch_uid="participants-leave"
        )
        transcript_edited.connect(handlers.transcript_edited, dispatch_uid="analysis-stale")
        speech_stored.connect(handlers.speech_stored, dispatch_uid="sessions-touch")
