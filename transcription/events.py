"""The events the transcription app declares for the apps above it.

``transcription`` never imports another app's services: when something here matters to a
higher layer it sends one of these, after the commit, and the interested app connects a
handler in its ``AppConfig.ready()``.
"""

from django.dispatch import Signal

transcript_edited = Signal()
"""People changed a session's stored transcript. Keyword argument: ``session_id``."""

speech_stored = Signal()
"""Finals of these sessions were stored (speech is activity; sent at most once a minute per
session). Keyword argument: ``session_ids``. Sent in the storing thread, after the write."""
