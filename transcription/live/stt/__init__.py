"""Speech-to-text providers behind one small async interface (:class:`SttStream`).

``open_stream("gladia" | "local", languages=[...], translation_languages=[...], **config)``
builds an unstarted stream; the caller then drives it as described in
:mod:`transcription.live.stt.base`.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any

from .base import SttError, SttErrorCode, SttEvent, SttStream, SttTranslation

PROVIDERS = ("gladia", "local")

__all__ = [
    "PROVIDERS",
    "SttError",
    "SttErrorCode",
    "SttEvent",
    "SttStream",
    "SttTranslation",
    "open_stream",
]


def open_stream(
    provider: str,
    *,
    languages: list[str],
    sample_rate: int = 16000,
    translation_languages: Iterable[str] = (),
    **config: Any,
) -> SttStream:
    """Build (not start) a stream for ``provider``.

    ``languages`` lists ISO 639-1 codes; empty means auto-detect where the provider
    can. ``translation_languages`` are the first translation targets: Gladia translates
    into them inside the stream (``stream.translates``); other streams just record them.
    ``config`` is passed to the provider's constructor: for ``"gladia"``
    ``api_key`` (required), ``api_url``, ``max_session_seconds`` and the timeouts of
    :class:`~transcription.live.stt.gladia.GladiaSttStream`; for ``"local"`` those of
    :class:`~transcription.live.stt.local.LocalSttStream`, defaulting to the ``OFFLINE_STT_*``
    settings when Django is configured. Raises ``ValueError`` for an
    unknown provider or bad settings. Provider modules are imported lazily so that
    using one never requires the other's dependencies.
    """
    if provider == "gladia":
        from .gladia import GladiaSttStream

        return GladiaSttStream(
            languages=languages,
            sample_rate=sample_rate,
            translation_languages=tuple(translation_languages),
            **config,
        )
    stream: SttStream
    if provider == "local":
        from .local import LocalSttStream

        config = {**_offline_settings(languages), **config}
        stream = LocalSttStream(languages=languages, sample_rate=sample_rate, **config)
    elif ":" in provider:
        # "package.module:Class": a custom engine (benchmarks use an instant one).
        module_name, _, class_name = provider.partition(":")
        stream_class = getattr(importlib.import_module(module_name), class_name)
        stream = stream_class(languages=languages, sample_rate=sample_rate, **config)
    else:
        raise ValueError(f"unknown STT provider {provider!r}; expected one of {PROVIDERS}")
    stream.translation_languages = frozenset(translation_languages)
    return stream


def _offline_settings(languages: list[str]) -> dict[str, Any]:
    """The local engine's configuration from the ``OFFLINE_STT_*`` settings (none when
    Django is not configured, e.g. in a standalone benchmark). A run that is not English
    only (other codes, or none: detect) gets the multilingual model when there is one."""
    from django.conf import settings

    if not settings.configured:
        return {}
    names = {  # all defined in rooms/settings.py
        "model_dir": "OFFLINE_STT_MODEL_DIR",
        "workers": "OFFLINE_STT_WORKERS",
        "cpu_threads": "OFFLINE_STT_CPU_THREADS",
        "compute_type": "OFFLINE_STT_COMPUTE_TYPE",
        "min_window_seconds": "OFFLINE_STT_MIN_WINDOW_SECONDS",
        "partial_seconds": "OFFLINE_STT_PARTIAL_SECONDS",
        "silence_seconds": "OFFLINE_STT_SILENCE_SECONDS",
        "max_utterance_seconds": "OFFLINE_STT_MAX_UTTERANCE_SECONDS",
    }
    config = {key: getattr(settings, name) for key, name in names.items()}
    if settings.OFFLINE_STT_MULTILINGUAL_MODEL_DIR and set(languages) != {"en"}:
        config["model_dir"] = settings.OFFLINE_STT_MULTILINGUAL_MODEL_DIR
    if not config.get("model_dir"):
        config.pop("model_dir", None)
    return config
