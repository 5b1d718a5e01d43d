"""The events the transcription app declares for the apps above it.

``transcription`` never imports another app's services: when something here matters to a
higher layer it sends one of these, after the commit, and the interested app connects a
handler in its ``AppConfig.ready()``.
"""

from django.dispatch import Signal

transcript_edited = Signal()
"""People changed a session's stored transcript. Keyword argument: ``session_id``."""
