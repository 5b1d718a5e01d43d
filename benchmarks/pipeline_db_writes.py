"""Database write round-trips of the pipeline: batched per process, not per event.

N browser-mode runs execute in this process's event loop (the embedded runner's situation)
with a scripted STT stream that emits, per session, a partial every 100 ms and a final every
second. Every INSERT/UPDATE statement on any database connection is counted. At the end the
stored finals are compared with the emitted ones: none lost, none duplicated.

    .venv/bin/python -m benchmarks.pipeline_db_writes --sessions 100 --seconds 30
(PostgreSQL when DATABASE_URL is set, else a throwaway SQLite file.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import threading
import time

from benchmarks.harness import machine, setup_django

WRITE_PREFIXES = ("INSERT", "UPDATE", "DELETE")


class WriteCounter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.writes = 0
        self.reads = 0
        self.samples: dict[str, int] = {}

    def __call__(self, execute, sql, params, many, context):
        with self.lock:
            if sql.lstrip().upper().startswith(WRITE_PREFIXES):
                self.writes += 1
                self.samples[sql[:60]] = self.samples.get(sql[:60], 0) + 1
            else:
                self.reads += 1
        return execute(sql, params, many, context)


def scripted_stream_class():
    from transcription.live.stt.base import END_OF_EVENTS, SttEvent, SttStream

    class ScriptedStream(SttStream):
        """A partial every 100 ms and a final every second of audio, like busy speech."""

        emitted: list[str] = []

        def __init__(self, **_: object) -> None:
            super().__init__(sample_rate=16000)
            self.token = secrets.token_hex(4)
            self.next_partial = 0.1
            self.utterance = 0

        async def start(self) -> None:
            return None

        async def send_audio(self, pcm: bytes) -> None:
            self._accepted_bytes += len(pcm)
            now = self.audio_seconds
            while now >= self.next_partial:
                t = self.next_partial
                final = round(t * 10) % 10 == 0
                uid = f"{self.token}-{self.utterance}"
                self._events.put_nowait(
                    SttEvent(uid, f"words {self.utterance}", final, t - 0.9, t, "en")
                )
                if final:
                    ScriptedStream.emitted.append(uid)
                    self.utterance += 1
                self.next_partial += 0.1

        async def close(self) -> None:
            self._events.put_nowait(END_OF_EVENTS)

    return ScriptedStream


async def run(sessions: int, seconds: float, counter: WriteCounter) -> dict:
    from channels.db import database_sync_to_async

    from identity.models import User
    from sessions_app.models import VideoSession
    from spaces.services import space_create
    from transcription.live.pipeline import RunPipeline
    from transcription.models import TranscriptionRun, TranscriptionUsage, TranscriptSegment

    def prepare() -> list[TranscriptionRun]:
        owner = User.objects.create_user(
            email=f"db-{secrets.token_hex(3)}@bench.local", password="x"
        )
        space = space_create(owner=owner, name="DB bench")
        runs = []
        for i in range(sessions):
            session = VideoSession.objects.create(space=space, created_by=owner, title=f"s{i}")
            run = TranscriptionRun.objects.create(
                session=session, mode="BROWSER", provider="scripted"
            )
            TranscriptionUsage.objects.create(session=session, run=run, provider="scripted")
            runs.append(TranscriptionRun.objects.select_related("session").get(pk=run.pk))
        return runs

    runs = await database_sync_to_async(prepare)()
    stream_class = scripted_stream_class()
    pipelines = [RunPipeline(run, stream=stream_class()) for run in runs]
    tasks = [asyncio.create_task(p.run()) for p in pipelines]
    while not all(p.batcher is not None for p in pipelines):
        await asyncio.sleep(0.05)
    writes0, t0 = counter.writes, time.monotonic()
    await asyncio.sleep(seconds)
    writes_active = counter.writes - writes0
    elapsed = time.monotonic() - t0
    for p in pipelines:
        p.stop_requested.set()
    await asyncio.gather(*tasks)

    stored = await database_sync_to_async(
        lambda: list(
            TranscriptSegment.objects.filter(run__in=runs).values_list("utterance_id", flat=True)
        )
    )()
    emitted = stream_class.emitted
    events = sum(p.counters.final_count + p.counters.partial_count for p in pipelines)
    finals = sum(p.counters.final_count for p in pipelines)
    return {
        "sessions": sessions,
        "seconds": round(elapsed, 1),
        "writes_while_active": writes_active,
        "writes_per_session_per_second": round(writes_active / sessions / elapsed, 3),
        "transcript_events": events,
        "finals": finals,
        "events_per_write": round(events / max(1, writes_active), 1),
        "finals_emitted": len(emitted),
        "finals_stored": len(stored),
        "finals_lost": len(set(emitted) - set(stored)),
        "finals_duplicated": len(stored) - len(set(stored)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    setup_django({"TRANSCRIPTION_RUNNER": "embedded"})
    from django.db import connection
    from django.db.backends.signals import connection_created

    counter = WriteCounter()

    def install(sender, connection, **kwargs):
        # The same wrapper object lives on per thread; reconnecting must not stack it.
        if counter not in connection.execute_wrappers:
            connection.execute_wrappers.append(counter)

    connection_created.connect(install)
    connection.execute_wrappers.append(counter)
    result = asyncio.run(run(args.sessions, args.seconds, counter))
    result["database"] = connection.vendor
    result["machine"] = machine()
    result["write_statements_by_kind"] = counter.samples
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
