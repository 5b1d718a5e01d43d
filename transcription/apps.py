from django.apps import AppConfig


class TranscriptionConfig(AppConfig):
    name = "transcription"
    verbose_name = "Transcription"

    def ready(self) -> None:
        # Registers the Celery tasks the services queue by name (rooms.jobs).
        from transcription import tasks  # noqa: F401
