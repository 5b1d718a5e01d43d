"""The speech-to-text provider interface shared by every engine.

An :class:`SttStream` turns one continuous PCM16LE mono stream into partial and
final :class:`SttEvent` objects. It is used from a single asyncio event loop:

* ``await start()`` once, then ``await send_audio(pcm)`` for each chunk, while another
  task iterates ``events()``;
* ``await close()`` flushes: pending audio is transcribed, the remaining finals are
  emitted, then ``events()`` ends.

A stream that translates inside the provider (``translates``; Gladia) also yields
:class:`SttTranslation` objects for its finals, into ``translation_languages``, which
``set_translation_languages()`` may change while it runs.

A failure the stream cannot recover from surfaces as :class:`SttError`, raised by
``start()`` or by the ``events()`` iterator (and by ``send_audio()`` afterwards).
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import ClassVar, Literal

SttErrorCode = Literal["auth", "rate_limited", "provider"]


@dataclass(frozen=True, slots=True)
class SttWord:
    """One recognised word: times as in :class:`SttEvent`, ``confidence`` in [0, 1]."""

    text: str
    start: float
    end: float
    confidence: float


@dataclass(frozen=True, slots=True)
class SttEvent:
    """One transcript update.

    ``utterance_id`` is unique per stream and stable for an utterance: its partials and
    its final share it, and a final re-sent by the provider keeps it, so consumers can
    replace partials and upsert finals idempotently. ``start``/``end`` are seconds since
    the first audio byte sent to the stream, continuous across provider reconnects and
    session rollovers.
    """

    utterance_id: str
    text: str
    is_final: bool
    start: float
    end: float
    language: str
    confidence: float | None = None
    """The engine's confidence in the whole utterance, in [0, 1] (None: it gives none)."""
    words: tuple[SttWord, ...] = ()
    """Per-word times and confidences, where the engine gives them (finals)."""


@dataclass(frozen=True, slots=True)
class SttTranslation:
    """A final's text in another language, made by the provider.

    ``utterance_id`` is exactly the :attr:`SttEvent.utterance_id` of the final it
    translates (which usually, but not always, came first); ``start``/``end`` are stream
    seconds like :class:`SttEvent`'s. A stream yields at most one per (utterance,
    ``language``).
    """

    utterance_id: str
    language: str
    """The target language (ISO 639-1)."""
    text: str
    start: float
    end: float
    source_language: str = ""
    """The language the original was spoken in, where the provider says."""


class SttError(Exception):
    """An unrecoverable provider failure.

    ``code`` is ``"auth"`` (the API key was rejected), ``"rate_limited"`` (the provider's
    concurrency limit was hit) or ``"provider"`` (anything else). ``str(error)`` is a
    message fit to show to the end user.
    """

    def __init__(self, code: SttErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: SttErrorCode = code
        self.message = message


class _EndOfEvents:
    """Queue sentinel: no more events will follow."""


END_OF_EVENTS = _EndOfEvents()

EventQueueItem = SttEvent | SttTranslation | SttError | _EndOfEvents


class SttStream(abc.ABC):
    """One live transcription stream (see the module docstring for the lifecycle).

    Subclasses push events, errors and the end marker into ``self._events`` (an
    unbounded queue: a slow consumer must not stall decoding or the provider socket);
    the shared :meth:`events` iterator turns them into the public contract.
    """

    translates: ClassVar[bool] = False
    """True where the provider translates inside the stream (:class:`SttTranslation`)."""
    sample_rate: int
    reconnects: int
    """How many times the provider connection was re-established (for metrics)."""
    translation_languages: frozenset[str]
    """The current translation targets (the constructor's, or the last ones set)."""
    translation_audio_seconds: dict[str, float]
    """Seconds of audio sent to the provider while each language was a target (streams
    that translate fill it; the rest leave it empty)."""

    def __init__(self, *, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self.reconnects = 0
        self.translation_languages = frozenset()
        self.translation_audio_seconds = {}
        self._accepted_bytes = 0
        self._events: asyncio.Queue[EventQueueItem] = asyncio.Queue()
        self._events_iterated = False

    @property
    def audio_seconds(self) -> float:
        """Seconds of audio accepted by :meth:`send_audio` so far."""
        return self._accepted_bytes / (2 * self.sample_rate)

    @abc.abstractmethod
    async def start(self) -> None:
        """Open the provider (connections, models). Raises :class:`SttError`."""

    @abc.abstractmethod
    async def send_audio(self, pcm: bytes) -> None:
        """Queue PCM16LE mono audio at ``sample_rate``.

        Cheap and non-blocking: the work happens elsewhere. Chunks may have any even
        length. Raises :class:`SttError` if the stream has already failed, and
        ``RuntimeError`` if called before ``start()`` or after ``close()``.
        """

    @abc.abstractmethod
    async def close(self) -> None:
        """Flush and stop: pending audio is transcribed, its finals emitted, and then
        ``events()`` ends. Idempotent; never raises :class:`SttError` (a failure is
        reported through ``events()``)."""

    async def set_translation_languages(self, languages: Iterable[str]) -> None:
        """Translate from now on into ``languages`` (ISO 639-1 codes; empty: none).

        Here it only records them; a stream that ``translates`` starts translating into
        the new set (not retroactively) and never raises for it.
        """
        self.translation_languages = frozenset(languages)

    async def events(self) -> AsyncIterator[SttEvent | SttTranslation]:
        """Partials, finals and (where the stream translates) translations in arrival
        order; ends once ``close()`` has drained.

        Raises :class:`SttError` if the stream fails. Iterate it from one task only.
        """
        if self._events_iterated:
            raise RuntimeError("events() can only be iterated once per stream")
        self._events_iterated = True
        while True:
            item = await self._events.get()
            if isinstance(item, _EndOfEvents):
                return
            if isinstance(item, SttError):
                raise item
            yield item
