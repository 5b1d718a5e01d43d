"""Server mode: latency added by Rooms, RTMP audio in -> `transcript` event at a client.

What runs is the production path of server mode, minus LiveKit and the provider: a real Daphne
(the client's WebSocket), a real Celery ingest worker (the run: publish gate, ffmpeg listener,
pipeline, batcher), Redis between them, and this process playing LiveKit (its Twirp API, a
fake) and the egress (an RTMP publisher written here).

How the audio is timed, given that AAC is lossy (a marker in the samples does not survive it):

- The source is silence with a 50 ms 1 kHz tone burst every ``--spacing`` seconds, encoded once
  as egress sends it (AAC-LC 48 kHz stereo in FLV). Decoding that FLV offline with ffmpeg says
  at which decoded sample each burst's onset lies; the AAC decoder emits exactly one 1024-sample
  frame per packet, so sample ``n`` comes out of packet ``n // 1024``: the packet that carries
  the onset is known.
- The publisher here speaks RTMP itself (handshake, connect, createStream, publish, then one
  audio message per AAC packet, paced at real time as an encoder produces them) and notes the
  ``perf_counter`` at which it wrote each packet to the socket.
- In the worker, the STT stream is an onset detector (:class:`OnsetSttStream`, selected with
  ``STT_PROVIDER=benchmarks.egress_latency:OnsetSttStream``): the moment a chunk whose first
  loud sample follows silence reaches "the provider", it emits a final carrying the
  ``perf_counter`` of detection (CLOCK_MONOTONIC, the same clock in every process).
- The client timestamps the `transcript` event. A detection is matched to the last onset packet
  sent before it (bursts are far apart compared to the latency).

So ``rtmp_to_client`` = client receipt - the packet with the onset leaving the publisher, the
whole of our side; it splits into ``rtmp_to_provider`` (gate splice, ffmpeg decode and resample,
pipe, chunking, the run's source loop) and ``provider_to_client`` (attribution, broadcast over
Redis, Daphne, WebSocket). ``first_audio`` is publish start -> first PCM at the provider
(ffmpeg's probe).

``rtmp_to_provider`` is also the egress delay our side adds for speaker attribution: audio that
left the egress at wall time W reaches the provider ``rtmp_to_provider`` later, which is what
``TRANSCRIPTION_EGRESS_DELAY_SECONDS`` must cover on top of LiveKit's own egress buffering
(several seconds in production; not measured here).

    .venv/bin/python -m benchmarks.egress_latency --sessions 3 --seconds 40

Uses ``REDIS_URL`` (and ``DATABASE_URL``) when set; otherwise starts a private redis-server and
uses a throwaway SQLite database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.harness import (
    ROOT,
    VENV_BIN,
    free_port,
    machine,
    percentiles,
    setup_django,
    start_daphne,
)
from transcription.live.stt.base import END_OF_EVENTS, SttEvent, SttStream

SOURCE_RATE = 48000
AAC_FRAME = 1024
ONSET_THRESHOLD = 4000
QUIET_SECONDS = 0.3
BURST_SECONDS = 0.05
FIRST_AUDIO = "first-audio"


# --- the provider side: runs in the Celery worker ------------------------------------------


class OnsetSttStream(SttStream):
    """A "provider" that answers at once: a final per loud onset after silence, and one
    ``first-audio`` final for the first audio it gets. Text: ``<kind> <perf_counter> <t>``."""

    def __init__(self, *, languages: list[str], sample_rate: int = 16000, **_: object) -> None:
        super().__init__(sample_rate=sample_rate)
        self._token = secrets.token_hex(4)
        self._rate = sample_rate
        self._samples = 0
        self._last_loud = -(10**12)
        self._onsets = 0

    async def start(self) -> None:
        return None

    def _emit(self, kind: str, at: float) -> None:
        self._events.put_nowait(
            SttEvent(
                utterance_id=f"o{self._token}-{kind}-{self._onsets}",
                text=f"{kind} {time.perf_counter():.6f} {at:.3f}",
                is_final=True,
                start=at,
                end=at + 0.05,
                language="en",
            )
        )

    async def send_audio(self, pcm: bytes) -> None:
        if not self._samples and pcm:
            self._emit(FIRST_AUDIO, 0.0)
        samples = np.frombuffer(pcm, dtype=np.int16)
        quiet = int(QUIET_SECONDS * self._rate)
        for i in np.flatnonzero(np.abs(samples.astype(np.int32)) > ONSET_THRESHOLD):
            n = self._samples + int(i)
            if n - self._last_loud > quiet:
                self._onsets += 1
                self._emit("onset", n / self._rate)
            self._last_loud = n
        self._samples += len(samples)
        self._accepted_bytes += len(pcm)

    async def close(self) -> None:
        self._events.put_nowait(END_OF_EVENTS)


# --- the audio ----------------------------------------------------------------------------------


@dataclass
class Audio:
    packets: list[tuple[int, bytes]]
    """(timestamp ms, FLV audio tag body) in order; the first is the AAC sequence header."""
    onset_packets: list[int]
    """Index into ``packets`` of the packet whose decoding yields each burst's onset."""
    spacing: float


def _flv_audio_tags(flv: Path) -> list[tuple[int, bytes]]:
    data = flv.read_bytes()
    pos = int.from_bytes(data[5:9], "big") + 4
    tags = []
    while pos + 11 <= len(data):
        kind = data[pos]
        size = int.from_bytes(data[pos + 1 : pos + 4], "big")
        ts = int.from_bytes(data[pos + 4 : pos + 7], "big") | (data[pos + 7] << 24)
        body = data[pos + 11 : pos + 11 + size]
        if kind == 8:
            tags.append((ts, body))
        pos += 11 + size + 4
    return tags


def _onsets(samples: np.ndarray, rate: int) -> list[int]:
    quiet = int(QUIET_SECONDS * rate)
    last, found = -(10**12), []
    for n in np.flatnonzero(np.abs(samples.astype(np.int32)) > ONSET_THRESHOLD):
        if n - last > quiet:
            found.append(int(n))
        last = int(n)
    return found


def make_audio(workdir: Path, seconds: float, spacing: float, noise: float = 0.003) -> Audio:
    """Bursts every ``spacing`` s from 1 s on, over a bed of ``noise`` (peak amplitude, full
    scale 1.0: a quiet room's tone, well under the onset threshold), encoded like egress; find
    each onset's packet."""
    import soundfile

    from tests.fakes.livekit import encode_flv
    from transcription.live.ingest import ffmpeg_path

    t = np.arange(int(seconds * SOURCE_RATE)) / SOURCE_RATE
    signal = np.random.default_rng(7).uniform(-noise, noise, len(t))
    starts = np.arange(1.0, seconds - 1.0, spacing)
    for start in starts:
        inside = (t >= start) & (t < start + BURST_SECONDS)
        signal[inside] = 0.5 * np.sin(2 * np.pi * 1000 * (t[inside] - start))
    wav = workdir / "bursts.wav"
    soundfile.write(wav, np.stack([signal, signal], axis=1), SOURCE_RATE, subtype="PCM_16")
    flv = encode_flv(wav, workdir / "bursts.flv")
    packets = _flv_audio_tags(flv)
    decoded = subprocess.run(
        [
            *(ffmpeg_path(), "-hide_banner", "-loglevel", "error", "-i", str(flv)),
            *("-ac", "1", "-ar", str(SOURCE_RATE), "-f", "s16le", "pipe:1"),
        ],
        check=True,
        capture_output=True,
    ).stdout
    pcm = np.frombuffer(decoded, dtype=np.int16)
    raw_packets = len(packets) - 1  # the first tag is the AAC sequence header
    if abs(len(pcm) - raw_packets * AAC_FRAME) > AAC_FRAME:
        raise RuntimeError(f"{len(pcm)} samples from {raw_packets} AAC packets: not 1024 each")
    onsets = _onsets(pcm, SOURCE_RATE)
    if len(onsets) != len(starts):
        raise RuntimeError(f"found {len(onsets)} onsets in the decoded audio, made {len(starts)}")
    return Audio(packets, [1 + n // AAC_FRAME for n in onsets], spacing)


# --- the egress side: an RTMP publisher ---------------------------------------------------------


def _message(csid: int, type_id: int, payload: bytes, *, ts: int = 0, stream_id: int = 0) -> bytes:
    """One RTMP message in one chunk (the chunk size is raised first)."""
    extended = ts >= 0xFFFFFF
    header = bytes([csid]) + (0xFFFFFF if extended else ts).to_bytes(3, "big")
    header += len(payload).to_bytes(3, "big") + bytes([type_id]) + stream_id.to_bytes(4, "little")
    if extended:
        header += ts.to_bytes(4, "big")
    return header + payload


@dataclass
class Publisher:
    """Publishes ``audio`` to an RTMP URL in real time, noting when each packet left."""

    url: str
    audio: Audio
    sent: list[float] = field(default_factory=list)
    started: float = 0.0
    error: str = ""
    finished: bool = False
    late: float = 0.0
    """The most any packet left after its due time (this process falling behind), seconds."""

    async def run(self, stop_at: float) -> None:
        from transcription.live.ingest.gate import (
            AMF0_COMMAND,
            ChunkReader,
            amf0_decode,
            amf0_encode,
            client_handshake,
        )

        rest = self.url.removeprefix("rtmp://")
        hostport, app, key = rest.split("/", 2)
        host, port = hostport.rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            await client_handshake(reader, writer)
            chunk_size = 65536
            writer.write(_message(2, 1, struct.pack(">I", chunk_size)))

            def command(*values: object, stream_id: int = 0, csid: int = 3) -> None:
                writer.write(
                    _message(csid, AMF0_COMMAND, amf0_encode(*values), stream_id=stream_id)
                )

            command(
                "connect",
                1.0,
                {"app": app, "type": "nonprivate", "tcUrl": f"rtmp://{hostport}/{app}"},
            )
            command("releaseStream", 2.0, None, key)
            command("FCPublish", 3.0, None, key)
            command("createStream", 4.0, None)
            await writer.drain()
            replies = ChunkReader(reader)
            stream_id = 0
            while not stream_id:
                values = await self._command_reply(replies, amf0_decode, AMF0_COMMAND)
                if values[:2] == ["_result", 4.0]:
                    stream_id = int(values[3])
            command("publish", 5.0, None, key, "live", stream_id=stream_id, csid=4)
            await writer.drain()
            while True:
                values = await self._command_reply(replies, amf0_decode, AMF0_COMMAND)
                if values and values[0] == "onStatus":
                    code = values[3].get("code", "") if isinstance(values[3], dict) else ""
                    if code != "NetStream.Publish.Start":
                        raise ConnectionError(f"publish refused: {code}")
                    break
            drain = asyncio.ensure_future(_drain(reader))
            self.started = time.perf_counter()
            for ts, body in self.audio.packets:
                due = self.started + ts / 1000
                if due > stop_at:
                    break
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                writer.write(_message(6, 8, body, ts=ts, stream_id=stream_id))
                await writer.drain()
                self.sent.append(time.perf_counter())
                self.late = max(self.late, self.sent[-1] - due)
            drain.cancel()
            await asyncio.gather(drain, return_exceptions=True)
        except (OSError, asyncio.IncompleteReadError, ConnectionError) as exc:
            at = time.perf_counter() - self.started if self.started else 0.0
            self.error = f"{type(exc).__name__}: {exc} ({len(self.sent)} packets, {at:.1f} s)"
        finally:
            self.finished = True
            writer.close()

    @staticmethod
    async def _command_reply(replies, amf0_decode, command_type) -> list[object]:
        while True:
            message = await asyncio.wait_for(replies.read_message(), 10)
            if message.type_id == command_type:
                return amf0_decode(message.payload)


async def _drain(reader: asyncio.StreamReader) -> None:
    while await reader.read(65536):
        pass


# --- the fake LiveKit API that starts our publisher ----------------------------------------------


def _fake_livekit(audio: Audio, publishers: dict[str, Publisher], stop_at: list[float]):
    from tests.fakes.livekit import FakeLiveKit

    class TimedEgressLiveKit(FakeLiveKit):
        """The fake Twirp API; its egress is the timed publisher instead of an ffmpeg pusher."""

        async def _push(self, egress, index: int) -> None:  # type: ignore[override]
            publisher = Publisher(egress.urls[index], audio)
            publishers[egress.info.room_name] = publisher
            egress.pushes += 1
            await publisher.run(stop_at[0])

    return TimedEgressLiveKit


# --- the benchmark -------------------------------------------------------------------------------


def prepare(sessions: int) -> tuple[str, list[tuple[str, str]]]:
    from rest_framework.authtoken.models import Token

    from identity.models import User
    from sessions_app.models import VideoSession
    from sessions_app.services import session_join
    from sessions_app.tokens import transcription_token_create
    from spaces.models import SpaceMember
    from spaces.services import space_create

    host = User.objects.create_user(email="host@bench.local", password="x", display_name="Host")
    listener = User.objects.create_user(
        email="listener@bench.local", password="x", display_name="Listener"
    )
    space = space_create(owner=host, name="Bench")
    SpaceMember.objects.create(space=space, user=listener)
    out = []
    for i in range(sessions):
        session = VideoSession.objects.create(space=space, created_by=host, title=f"egress {i}")
        session_join(session=session, user=host)
        token = transcription_token_create(session_slug=session.slug, identity=listener.identity)
        out.append((session.slug, token))
    return Token.objects.create(user=host).key, out


async def run(
    port: int, api_token: str, sessions: list[tuple[str, str]], seconds: float, audio: Audio, lk
) -> dict:
    import httpx
    from websockets.asyncio.client import connect

    publishers: dict[str, Publisher] = {}
    stop_at = [time.perf_counter() + 3600]
    fake = _fake_livekit(audio, publishers, stop_at)(
        api_key=lk["key"], api_secret=lk["secret"], port=lk["port"], audio=Path(lk["flv"])
    )
    await fake.start()
    received: dict[str, list[tuple[str, float, float, float]]] = {s: [] for s, _ in sessions}
    actives = {slug: asyncio.Event() for slug, _ in sessions}

    async def listen(slug: str, ws) -> None:
        async for raw in ws:
            now = time.perf_counter()
            message = json.loads(raw)
            if message["type"] == "transcription_status" and message["status"] == "ACTIVE":
                actives[slug].set()
            elif message["type"] == "transcript" and message["is_final"]:
                kind, detected, at = message["text"].split()
                received[slug].append((kind, float(detected), float(at), now))

    base, origin = f"ws://127.0.0.1:{port}", f"http://127.0.0.1:{port}"
    sockets, tasks = [], []
    for slug, token in sessions:
        ws = await connect(f"{base}/ws/sessions/{slug}/transcript/?token={token}", origin=origin)
        sockets.append(ws)
        tasks.append(asyncio.create_task(listen(slug, ws)))
    headers = {"Authorization": f"Token {api_token}"}
    async with httpx.AsyncClient(base_url=origin, headers=headers, timeout=30) as http:
        for slug, _ in sessions:
            (await http.post(f"/api/sessions/{slug}/transcription/start")).raise_for_status()
        await asyncio.wait_for(asyncio.gather(*(a.wait() for a in actives.values())), 60)
        deadline = time.monotonic() + 30
        while len(publishers) < len(sessions) or not all(p.sent for p in publishers.values()):
            if time.monotonic() > deadline:
                raise TimeoutError("not every egress started publishing")
            await asyncio.sleep(0.05)
        stop_at[0] = time.perf_counter() + seconds
        await asyncio.sleep(seconds)
        deadline = time.monotonic() + 30
        while not all(p.finished for p in publishers.values()):
            if time.monotonic() > deadline:
                raise TimeoutError("a publisher did not finish")
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # the last detections reach the clients
        for slug, _ in sessions:
            (await http.post(f"/api/sessions/{slug}/transcription/stop")).raise_for_status()
        await asyncio.sleep(1.0)
    for ws in sockets:
        await ws.close()
    for task in tasks:
        task.cancel()
    await fake.stop()

    total, to_provider, from_provider, first_audio = [], [], [], []
    unmatched = 0
    for slug, events in received.items():
        publisher = publishers[slug]
        if publisher.error:
            raise RuntimeError(f"publisher of {slug}: {publisher.error}")
        onset_sent = [
            (publisher.sent[i], i) for i in audio.onset_packets if i < len(publisher.sent)
        ]
        for kind, detected, _at, client_at in events:
            if kind == FIRST_AUDIO:
                first_audio.append((detected - publisher.started) * 1000)
                continue
            before = [(sent, i) for sent, i in onset_sent if sent <= detected]
            if not before or detected - before[-1][0] > audio.spacing / 2:
                unmatched += 1
                continue
            sent = before[-1][0]
            if sent - publisher.started < 2.0:
                continue  # warm-up: the first seconds include ffmpeg's probe
            total.append((client_at - sent) * 1000)
            to_provider.append((detected - sent) * 1000)
            from_provider.append((client_at - detected) * 1000)
    return {
        "rtmp_to_client_ms": percentiles(total),
        "rtmp_to_provider_ms": percentiles(to_provider),
        "provider_to_client_ms": percentiles(from_provider),
        "first_audio_ms": percentiles(first_audio),
        "unmatched_detections": unmatched,
        "publisher_max_late_ms": round(max(p.late for p in publishers.values()) * 1000, 1),
        "onsets_sent": sum(
            sum(1 for i in audio.onset_packets if i < len(p.sent)) for p in publishers.values()
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--spacing", type=float, default=1.5, help="seconds between bursts")
    parser.add_argument(
        "--noise",
        type=float,
        default=0.003,
        help="peak amplitude of the background (0: digital silence, which AAC packs into "
        "8-byte frames, and ffmpeg's first output then waits ~1 s for enough bytes)",
    )
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="egress-bench-"))
    redis = None
    redis_url = os.environ.get("REDIS_URL", "")
    if not redis_url:
        redis_port = free_port()
        redis = subprocess.Popen(
            [
                *("redis-server", "--bind", "127.0.0.1", "--port", str(redis_port)),
                *("--save", "", "--dir", str(workdir)),
            ],
            stdout=subprocess.DEVNULL,
        )
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
        time.sleep(0.3)
    lk = {"port": free_port(), "key": "bench-key", "secret": "bench-secret-0123456789abcdef0123"}
    base = 30000 + free_port() % 1000 * 20
    env = setup_django(
        {
            "REDIS_URL": redis_url,
            "LIVEKIT_URL": f"ws://127.0.0.1:{lk['port']}",
            "LIVEKIT_API_KEY": lk["key"],
            "LIVEKIT_API_SECRET": lk["secret"],
            "INGEST_PORT_RANGE": f"{base}-{base + 19}",
            "STT_PROVIDER": "benchmarks.egress_latency:OnsetSttStream",
            "TRANSCRIPTION_RUNNER": "celery",
            "TRANSCRIPTION_MODE": "SERVER",
        }
    )
    audio = make_audio(workdir, args.seconds + 15, args.spacing, args.noise)
    lk["flv"] = str(workdir / "bursts.flv")
    api_token, sessions = prepare(args.sessions)
    port = free_port()
    logs = ROOT / "artifacts"
    daphne = start_daphne(env, port, logs / "bench-egress-daphne.log")
    worker_log = (logs / "bench-egress-worker.log").open("wb")
    worker = subprocess.Popen(
        [
            *(str(VENV_BIN / "celery"), "-A", "rooms", "worker", "-Q", "ingest", "-l", "info"),
            *("-c", str(args.sessions), "--without-gossip", "--without-mingle"),
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
        stdout=worker_log,
        stderr=subprocess.STDOUT,
    )
    try:
        time.sleep(3.0)  # the worker's start-up
        result = asyncio.run(run(port, api_token, sessions, args.seconds, audio, lk))
        result.update(
            sessions=args.sessions,
            seconds=args.seconds,
            burst_spacing_s=args.spacing,
            noise_amplitude=args.noise,
            machine=machine(),
        )
    finally:
        for process in (worker, daphne):
            process.terminate()
            process.wait(timeout=30)
        if redis is not None:
            redis.terminate()
            redis.wait(timeout=10)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
