"""Speech-to-text providers behind one small async interface (:class:`SttStream`).

``open_stream("gladia" | "local", languages=[...], **config)`` builds an unstarted
stream; the caller then drives it as described in :mod:`transcription.stt.base`.
"""

from __future__ import annotations

import importlib
from typing import Any

from .base import SttError, SttErrorCode, SttEvent, SttStream

PROVIDERS = ("gladia", "local")

__all__ = ["PROVIDERS", "SttError", "SttErrorCode", "SttEvent", "SttStream", "open_stream"]


def open_stream(
    provider: str,
    *,
    languages: list[str],
    sample_rate: int = 16000,
    **config: Any,
) -> SttStream:
    """Build (not start) a stream for ``provider``.

    ``languages`` lists ISO 639-1 codes; empty means auto-detect where the provider
    can. ``config`` is passed to the provider's constructor: for ``"gladia"``
    ``api_key`` (required), ``api_url``, ``max_session_seconds`` and the timeouts of
    :class:`~transcription.stt.gladia.GladiaSttStream`; for ``"local"``
    ``partial_interval`` and ``max_backlog_seconds``. Raises ``ValueError`` for an
    unknown provider or bad settings. Provider modules are imported lazily so that
    using one never requires the other's dependencies.
    """
    if provider == "gladia":
        from .gladia import GladiaSttStream

        return GladiaSttStream(languages=languages, sample_rate=sample_rate, **config)
    if provider == "local":
        from .local import LocalSttStream

        return LocalSttStream(languages=languages, sample_rate=sample_rate, **config)
    if ":" in provider:
        # "package.module:Class": a custom engine (benchmarks use an instant one).
        module_name, _, class_name = provider.partition(":")
        stream_class = getattr(importlib.import_module(module_name), class_name)
        return stream_class(languages=languages, sample_rate=sample_rate, **config)
    raise ValueError(f"unknown STT provider {provider!r}; expected one of {PROVIDERS}")
