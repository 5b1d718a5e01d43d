from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TranscriptionConfig(AppConfig):
    name = "transcription"
    verbose_name = _("Transcription")

    def ready(self) -> None:
        # Registers the Celery tasks the services queue by name (rooms.jobs).
        from transcription import tasks  # noqa: F401
