"""Live caption translation: what a run translates into, and the LLM where the stream cannot.

**Targets** (``CaptionsMixin``, part of ``RunPipeline``). A run translates into the caption
languages (``User.caption_language``) of the people present in its session, read before its
stream starts, again half a second after a socket says someone chose one (``captions.changed``
on the run's control channel), and with every heartbeat (``RunBatcher``, one query for all runs
of the process). The set only grows during a run: dropping a language would cost Gladia a new
session and save little. A run with one fixed spoken language never translates into it. A new
target is translated from that moment on: its ``since`` (session seconds) tells the pages.
Gladia translates inside its stream (``SttStream.set_translation_languages``); other engines
get the LLM (below) when one is configured; else nobody translates (``via`` "").

Each translation, whoever made it, is broadcast to the session (sockets pass it only to readers
of its language), stored with the finals by the batcher (one row per segment and language), and
counted per language for the translation meter, checkpointed with the run's usage.

**The LLM** (``LlmTranslator``). The pipeline hands every final to ``LlmTranslator.add`` and
goes on: originals never wait for a translation. One worker task per run translates the finals
in order, in batches of up to ``TRANSLATION_LLM_MAX_BATCH`` finals or what arrived within
``TRANSLATION_LLM_BATCH_SECONDS`` of the first, with one request per target language
(``transcription.translation.llm_translate``; the requests of a batch run side by side, the
batches one after the other, so each language's translations come out in the order of their
finals). A request that fails, times out (``TRANSLATION_LLM_TIMEOUT_SECONDS``) or answers
nonsense loses that batch in that language: it is logged and counted
(``rooms.metrics.error("translation_llm_failed")``), and the next batch is tried as usual. A
final is translated into the targets of the moment it arrived, except into the language it was
spoken in.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from channels.db import database_sync_to_async
from django.conf import settings

from rooms import llm, metrics
from transcription.live import broadcast, store
from transcription.live.store import FinalTranslation
from transcription.live.stt.base import SttEvent, SttStream, SttTranslation
from transcription.models import TranscriptionRun
from transcription.translation import llm_translate
from transcription.usage.translation_meter import TranslationCounts, translation_baseline

if TYPE_CHECKING:
    from transcription.live.batching import RunBatcher

logger = logging.getLogger(__name__)

MAX_CAPTION_LANGUAGES = 12
"""Target languages of one run at most (the caption menu offers 12)."""
CAPTIONS_DEBOUNCE_SECONDS = 0.5
"""After a ``captions.changed`` nudge, the run reads the languages once this much later (so a
burst of choices is one query)."""
CAPTIONS_COALESCE_SECONDS = 0.1
"""Translations arriving within this window go out as one group message (captions come a second
or more after their final anyway; 0.1 s more is not seen)."""

MAX_BACKLOG = 500
"""Finals waiting for the LLM at most (it is far behind: the oldest are given up)."""

# The LLM client is synchronous; its requests wait in these threads, not in the event loop's
# default pool (which database calls share), so a slow LLM never holds up the database.
_executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="llm-translate")

Deliver = Callable[[SttTranslation], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class _Final:
    event: SttEvent
    targets: frozenset[str]


class LlmTranslator:
    """Translates one run's finals into its caption languages; ``deliver`` gets each result.

    Use from the run's event loop: ``set_targets``, ``add`` for each final, ``close`` at the
    end (it translates what is queued, within its timeout).
    """

    def __init__(
        self,
        *,
        deliver: Deliver,
        client: llm.LlmClient | None = None,
        batch_seconds: float | None = None,
        max_batch: int | None = None,
        timeout_seconds: float | None = None,
    ) -> None:
        self.deliver = deliver
        self.batch_seconds = batch_seconds or settings.TRANSLATION_LLM_BATCH_SECONDS
        self.max_batch = max_batch or settings.TRANSLATION_LLM_MAX_BATCH
        self.timeout_seconds = timeout_seconds or settings.TRANSLATION_LLM_TIMEOUT_SECONDS
        self.targets: frozenset[str] = frozenset()
        self._client = client
        self._owns_client = client is None
        self._queue: asyncio.Queue[_Final | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.requests = 0
        self.failures = 0
        self.dropped = 0

    def set_targets(self, languages: Iterable[str]) -> None:
        self.targets = frozenset(languages)

    def add(self, event: SttEvent) -> None:
        """Queue a final for translation into the current targets (not into its own language)."""
        targets = self.targets - {event.language} if event.language else self.targets
        if not targets or not event.text.strip() or self._closing:
            return
        if self._queue.qsize() >= MAX_BACKLOG:
            with contextlib.suppress(asyncio.QueueEmpty):
                self._queue.get_nowait()
            self.dropped += 1
            metrics.error("translation_llm_backlog")
            logger.warning("LLM translation is %d finals behind: dropped the oldest", MAX_BACKLOG)
        self._queue.put_nowait(_Final(event, targets))
        if self._task is None:
            self._task = asyncio.create_task(self._work(), name="llm translation")

    async def close(self, *, within: float) -> None:
        """Translate what is queued (giving up after ``within`` seconds), then stop."""
        self._closing = True
        if self._task is not None:
            self._queue.put_nowait(None)
            done, _ = await asyncio.wait({self._task}, timeout=within)
            if not done:
                logger.warning("LLM translation did not finish in %s s: stopped", within)
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        if self._client is not None and self._owns_client:
            self._client.close()
            self._client = None

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self._queue.get()
            if first is None:
                return
            batch = [first]
            deadline = loop.time() + self.batch_seconds
            last = False
            while len(batch) < self.max_batch:
                try:
                    item = await asyncio.wait_for(
                        self._queue.get(), max(0.0, deadline - loop.time())
                    )
                except TimeoutError:
                    break
                if item is None:
                    last = True
                    break
                batch.append(item)
            languages = sorted(frozenset().union(*(final.targets for final in batch)))
            await asyncio.gather(*(self._translate(batch, language) for language in languages))
            if last:
                return

    async def _translate(self, batch: list[_Final], language: str) -> None:
        finals = [final.event for final in batch if language in final.targets]
        if self._client is None:
            self._client = llm.LlmClient(llm.llm_config(timeout_seconds=self.timeout_seconds))
        ask = functools.partial(
            llm_translate, self._client, [event.text for event in finals], target=language
        )
        self.requests += 1
        try:
            texts = await asyncio.wait_for(
                asyncio.get_running_loop().run_in_executor(_executor, ask),
                # The client gives up by itself after the timeout; this is a last resort.
                self.timeout_seconds + 1.0,
            )
        except (llm.LlmError, TimeoutError) as exc:
            self._failed(language, len(finals), str(exc) or "timed out")
            return
        except Exception as exc:
            logger.exception("LLM translation into %s failed unexpectedly", language)
            self._failed(language, len(finals), repr(exc))
            return
        for event, text in zip(finals, texts, strict=True):
            if not text:
                continue
            translation = SttTranslation(
                utterance_id=event.utterance_id,
                language=language,
                text=text,
                start=event.start,
                end=event.end,
                source_language=event.language,
            )
            try:
                await self.deliver(translation)
            except Exception:
                logger.exception("an LLM translation into %s was not delivered", language)

    def _failed(self, language: str, count: int, reason: str) -> None:
        self.failures += 1
        metrics.error("translation_llm_failed")
        logger.warning(
            "LLM translation of %d finals into %s failed (%s): they stay untranslated",
            count,
            language,
            reason,
        )


def _resume_read(
    *, run_id: int, session_id: int
) -> tuple[set[str], dict[str, TranslationCounts], dict[str, Any] | None]:
    """Before a run's stream starts: the languages chosen in its session, its translation meter
    so far and the captions a previous runner of the run saved (one thread hop)."""
    chosen = store.caption_languages(session_ids=[session_id]).get(session_id, set())
    return chosen, translation_baseline(run_id=run_id), broadcast.captions_saved(run_id)


class CaptionsMixin:
    """The caption translation of a ``RunPipeline`` (see the module docstring)."""

    run_id: int
    session_id: int
    offset: float
    batcher: RunBatcher | None

    def stream_time(self) -> float:
        raise NotImplementedError

    def captions_init(self, run: TranscriptionRun) -> None:
        self.via = ""  # who translates: "gladia" (the stream), "llm", or "" (nobody)
        self.targets: set[str] = set()
        self.captions_since: dict[str, float] = {}  # language -> session seconds it started
        self._target_stream_at: dict[str, float] = {}  # language -> stream seconds it started
        self.translator: LlmTranslator | None = None
        self.translation_counts: dict[str, TranslationCounts] = {}
        self._translation_base: dict[str, TranslationCounts] = {}
        self._resumed_since: dict[str, float] = {}
        self._refused: set[str] = set()  # languages the stream cannot translate into
        spoken = list(run.languages or [])
        self._spoken = spoken[0] if len(spoken) == 1 else ""
        self._captions_stream: SttStream | None = None
        self._captions_lock = asyncio.Lock()
        self._captions_tasks: set[asyncio.Task[None]] = set()
        self._captions_nudge: asyncio.Task[None] | None = None
        # Translations to broadcast, coalesced (``on_translation``).
        self._outbox: list[dict[str, Any]] = []
        self._outbox_task: asyncio.Task[None] | None = None

    def _wanted(self, languages: Iterable[str]) -> set[str]:
        return {language for language in languages if language and language != self._spoken}

    def captions(self) -> dict[str, Any]:
        return broadcast.captions_payload(self.targets, self.captions_since, self.via)

    # --- start and end --------------------------------------------------------------------

    async def captions_resume(self) -> set[str]:
        """Before the stream is made: the targets to start with (the languages chosen by the
        people present, and those a previous runner of this run translated into)."""
        try:
            chosen, base, saved = await database_sync_to_async(_resume_read)(
                run_id=self.run_id, session_id=self.session_id
            )
        except Exception:
            logger.warning("run %s: caption languages not read; none for now", self.run_id)
            return set()
        self._translation_base = base
        self.translation_counts = {
            language: TranslationCounts(characters=c.characters, segments=c.segments)
            for language, c in base.items()
        }
        previous = set(saved.get("languages") or []) if saved else set()
        since = saved.get("since") if saved else None
        self._resumed_since = dict(since) if isinstance(since, dict) else {}
        return set(sorted(self._wanted(previous | chosen))[:MAX_CAPTION_LANGUAGES])

    async def captions_stream(self, stream: SttStream, targets: set[str]) -> None:
        """Decide who translates for ``stream`` (made with ``targets`` as its first ones)."""
        self._captions_stream = stream
        if stream.translates:
            self.via = "gladia"
            if stream.translation_languages != targets:  # a stream made elsewhere (tests)
                await stream.set_translation_languages(targets)
            # What it cannot translate into (Gladia's list, the spoken language) is left out.
            self.targets = set(targets & stream.translation_languages)
            self._refused = targets - self.targets
        elif llm.enabled():
            self.via = "llm"
            self.translator = LlmTranslator(deliver=self._llm_translated)
            self.targets = set(targets)
            self.translator.set_targets(self.targets)

    async def captions_started(self) -> None:
        """The run is active (``offset`` is known): date its first targets, publish them."""
        for language in self.targets:
            since = self._resumed_since.get(language)
            self.captions_since[language] = (
                float(since) if isinstance(since, int | float) else round(self.offset, 3)
            )
            self._target_stream_at[language] = 0.0
            self.translation_counts.setdefault(language, TranslationCounts())
        await self._captions_save()

    async def captions_close(self) -> None:
        """The stream has drained: stop following languages, finish the LLM's queue."""
        for task in [*self._captions_tasks, self._captions_nudge]:
            if task is not None:
                task.cancel()
        if self.translator is not None:
            await self.translator.close(within=settings.TRANSCRIPTION_DRAIN_SECONDS)
        if self._outbox_task is not None:
            await self._outbox_task

    # --- the targets grow -----------------------------------------------------------------

    def on_captions(self, languages: set[str]) -> None:
        """Heartbeat: the languages chosen by the people in the session now."""
        if self.via and self._wanted(languages) - self.targets - self._refused:
            self._captions_spawn(self._captions_apply(languages))

    def captions_nudged(self) -> None:
        """A socket said its person chose a language: read the languages again, shortly."""
        if self.via and (self._captions_nudge is None or self._captions_nudge.done()):
            self._captions_nudge = self._captions_spawn(self._captions_reread())

    def _captions_spawn(self, work: Any) -> asyncio.Task[None]:
        task = asyncio.create_task(work)
        self._captions_tasks.add(task)
        task.add_done_callback(self._captions_tasks.discard)
        return task

    async def _captions_reread(self) -> None:
        await asyncio.sleep(CAPTIONS_DEBOUNCE_SECONDS)
        try:
            chosen = await database_sync_to_async(store.caption_languages)(
                session_ids=[self.session_id]
            )
        except Exception:
            logger.warning("run %s: caption languages not read (database)", self.run_id)
            return
        await self._captions_apply(chosen.get(self.session_id, set()))

    async def _captions_apply(self, languages: set[str]) -> None:
        async with self._captions_lock:
            room = MAX_CAPTION_LANGUAGES - len(self.targets)
            new = sorted(self._wanted(languages) - self.targets - self._refused)
            stream = self._captions_stream
            if not new or not self.via or stream is None:
                return
            if len(new) > room:
                logger.warning(
                    "run %s: %d caption languages at most; not adding %s",
                    self.run_id,
                    MAX_CAPTION_LANGUAGES,
                    ", ".join(new[room:]),
                )
                self._refused.update(new[room:])
                new = new[: max(0, room)]
            if new and self.translator is None:
                try:
                    await stream.set_translation_languages(self.targets | set(new))
                except Exception:
                    logger.exception("run %s: the stream did not take the languages", self.run_id)
                    return
                accepted = stream.translation_languages
                self._refused.update(language for language in new if language not in accepted)
                new = [language for language in new if language in accepted]
            if not new:
                return
            now = self.stream_time()
            for language in new:
                self.captions_since[language] = round(self.offset + now, 3)
                self._target_stream_at[language] = now
                self.translation_counts.setdefault(language, TranslationCounts())
            self.targets.update(new)
            logger.info("run %s: captions now in %s", self.run_id, ", ".join(sorted(self.targets)))
            if self.translator is not None:
                self.translator.set_targets(self.targets)
            await self._captions_save()
            try:
                await broadcast.send_captions(self.session_id, self.captions())
            except Exception:
                logger.warning("run %s: captions not broadcast (channel layer)", self.run_id)

    async def _captions_save(self) -> None:
        try:
            await database_sync_to_async(broadcast.captions_save)(self.run_id, self.captions())
        except Exception:
            logger.warning("run %s: captions not saved (cache)", self.run_id)

    # --- translations -----------------------------------------------------------------------

    def captions_final(self, event: SttEvent) -> None:
        """A final: the LLM translates it (in the background) where it is the translator."""
        if self.translator is not None:
            self.translator.add(event)

    async def _llm_translated(self, translation: SttTranslation) -> None:
        await self.on_translation(translation, source="llm")

    async def on_translation(self, translation: SttTranslation, *, source: str) -> None:
        """A translation of a final: stored (batched), counted, broadcast."""
        start = round(self.offset + translation.start, 3)
        end = round(self.offset + max(translation.end, translation.start), 3)
        assert self.batcher is not None
        self.batcher.add_translation(
            FinalTranslation(
                session_id=self.session_id,
                run_id=self.run_id,
                utterance_id=translation.utterance_id,
                language=translation.language,
                text=translation.text,
                source=source,
            )
        )
        counts = self.translation_counts.setdefault(translation.language, TranslationCounts())
        counts.characters += len(translation.text)
        counts.segments += 1
        payload = {
            "type": "translation",
            "utterance_id": translation.utterance_id,
            "language": translation.language,
            "text": translation.text,
            "start": start,
            "end": end,
        }
        self._outbox.append(payload)
        if self._outbox_task is None:
            self._outbox_task = asyncio.create_task(self._outbox_send())

    async def _outbox_send(self) -> None:
        """Broadcast the translations that came within ``CAPTIONS_COALESCE_SECONDS`` as one
        group message: each process then receives one message per window, not one per language
        and final (the fan-out benchmark, docs/benchmarks.md)."""
        await asyncio.sleep(CAPTIONS_COALESCE_SECONDS)
        payloads, self._outbox, self._outbox_task = self._outbox, [], None
        try:
            await broadcast.send_translations(self.session_id, payloads)
        except Exception:
            # Redis is away: stored regardless, pages read it in ``history`` when they reconnect.
            logger.warning("run %s: translations not broadcast (channel layer)", self.run_id)

    def translation_meter(self) -> tuple[str, dict[str, TranslationCounts]] | None:
        """Totals per language since the run started, for the usage checkpoint."""
        if not self.translation_counts:
            return None
        stream = self._captions_stream
        provided = stream.translation_audio_seconds if stream is not None else {}
        totals: dict[str, TranslationCounts] = {}
        for language, counts in self.translation_counts.items():
            base = self._translation_base.get(language)
            if self.via == "gladia":
                live = provided.get(language, 0.0)
            elif language in self._target_stream_at:
                live = max(0.0, self.stream_time() - self._target_stream_at[language])
            else:
                live = 0.0
            totals[language] = TranslationCounts(
                characters=counts.characters,
                segments=counts.segments,
                audio_seconds=(base.audio_seconds if base else 0.0) + live,
            )
        return self.via or "llm", totals
