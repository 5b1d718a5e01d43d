"""Peer-to-peer video end to end: real headless Chromium pages in a session without LiveKit.

Chromium's fake camera draws a moving pattern, so a remote tile whose frames advance proves
video went from one browser to another. The speaker's fake microphone plays the speech fixture
(the others' play silence): its words must reach the other pages' transcripts attributed to it,
and its audio must reach them over the peer connections. A participant who reloads is a new
peer: the others must end up with exactly one live tile for it.
"""

from __future__ import annotations

import json
import re
import time

import pytest
from django.urls import reverse

from spaces.models import SpaceMember
from tests.browser.test_live_transcript import EXPECTED_WORDS, READ_LINES_JS
from tests.factories import SpaceMemberFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WAIT_MS = 20_000
TRANSCRIPT_TIMEOUT_S = 60  # as test_live_transcript: the local engine shares the CPU

# Per remote tile: is its <video> playing, and what arrived over its peer connection.
REMOTE_TILES_JS = """async () => {
  const tiles = Array.from(document.querySelectorAll("#video-grid figure.tile:not(.self)"));
  return Promise.all(tiles.map(async (tile) => {
    const video = tile.querySelector("video");
    const entry = window.Rooms.mesh.peers.get(tile.dataset.peerId);
    let audioEnergy = 0;
    if (entry) {
      (await entry.pc.getStats()).forEach((r) => {
        if (r.type === "inbound-rtp" && r.kind === "audio") audioEnergy += r.totalAudioEnergy || 0;
      });
    }
    return {
      peer: tile.dataset.peerId,
      identity: tile.dataset.identity,
      name: tile.querySelector("figcaption").textContent,
      classes: tile.className,
      paused: video.paused,
      readyState: video.readyState,
      width: video.videoWidth,
      frames: video.getVideoPlaybackQuality().totalVideoFrames,
      connection: entry ? entry.pc.connectionState : null,
      audioEnergy,
    };
  }));
}"""

# True once every identity has exactly one remote tile and its video is playing.
PLAYING_JS = """(identities) => identities.every((identity) => {
  const tiles = document.querySelectorAll(
    `#video-grid figure.tile:not(.self)[data-identity="${identity}"]`);
  if (tiles.length !== 1 || tiles[0].classList.contains("video-off")) return false;
  const video = tiles[0].querySelector("video");
  return !video.paused && video.readyState >= 2 && video.videoWidth > 0;
})"""

# Frames each remote video presents within one second (requestVideoFrameCallback).
FRAMES_IN_ONE_SECOND_JS = """() => Promise.all(
  Array.from(document.querySelectorAll("#video-grid figure.tile:not(.self)")).map((tile) =>
    new Promise((resolve) => {
      const video = tile.querySelector("video");
      let count = 0;
      const until = performance.now() + 1000;
      const onFrame = (now) => {
        count += 1;
        if (now < until) video.requestVideoFrameCallback(onFrame);
      };
      video.requestVideoFrameCallback(onFrame);
      setTimeout(() => resolve([tile.dataset.identity, count]), 1000);
    })))"""


# The page sends the microphone it has now, live and on, to every peer.
SENDING_MIC_JS = """() => {
  const track = window.Rooms.micStream.getAudioTracks()[0];
  return track.readyState === "live" && track.enabled &&
    track.getSettings().deviceId === document.getElementById("select-mic").value &&
    [...window.Rooms.mesh.peers.values()].every((e) => e.senders.audio.track === track);
}"""

# The only peer connection of the page: its state, ICE ufrag, and whether it is the one marked.
PEER_JS = """() => {
  const e = [...window.Rooms.mesh.peers.values()][0];
  window.markedPc = window.markedPc || e.pc;
  return {
    stable: e.pc.signalingState === "stable",
    connected: e.pc.connectionState === "connected",
    ufrag: e.pc.localDescription && e.pc.localDescription.sdp.match(/a=ice-ufrag:(\\S+)/)[1],
    same: window.markedPc === e.pc,
  };
}"""


def _open(context, url: str, console_log, label: str, *, in_call: bool = True):
    page = context.new_page()
    console_log(page, label)
    page.goto(url)
    # The transcript socket has said where the transcription stands; the own tile is up.
    page.wait_for_selector('#transcript-status:not([data-status=""])', timeout=WAIT_MS)
    if in_call:
        page.wait_for_selector("#video-grid figure.tile.self", timeout=WAIT_MS)
    return page


def _assert_live_video_from(page, users, label: str) -> dict[str, int]:
    """Each of ``users`` has exactly one remote tile on ``page``, playing, frames advancing."""
    identities = [u.identity for u in users]
    try:
        page.wait_for_function(PLAYING_JS, arg=identities, timeout=WAIT_MS)
    except Exception as exc:
        raise AssertionError(f"{label}: {page.evaluate(REMOTE_TILES_JS)!r}") from exc
    tiles = page.evaluate(REMOTE_TILES_JS)
    assert sorted(t["identity"] for t in tiles) == sorted(identities), tiles
    by_identity = {t["identity"]: t for t in tiles}
    for user in users:
        assert by_identity[user.identity]["name"] == user.display_name, tiles
        assert by_identity[user.identity]["connection"] == "connected", tiles
    for _ in range(3):  # a connection that just came up is still ramping up
        frames = dict(page.evaluate(FRAMES_IN_ONE_SECOND_JS))
        if all(frames[i] >= 5 for i in identities):
            return frames
    raise AssertionError(f"{label}: frames in 1 s {frames}")


def _start_speaking(speaker, listeners) -> None:
    speaker.click("#btn-transcription-start")
    for page in (speaker, *listeners):
        page.wait_for_selector("#transcript-status[data-status=ACTIVE]", timeout=WAIT_MS)
    speaker.click("#btn-mic")
    speaker.wait_for_selector("#btn-mic[aria-pressed=true]", timeout=WAIT_MS)


def _words_by(page, name: str) -> set[str]:
    """Expected words in the lines (partial or final) that ``page`` attributes to ``name``."""
    words: set[str] = set()
    for line in page.evaluate(READ_LINES_JS):
        if line["speaker"] == name:
            words.update(re.findall(r"[a-z']+", line["text"].lower()))
    return words & EXPECTED_WORDS


def _assert_words_reach(listeners, speaker, speaker_user, daphne_server) -> float:
    """Seconds until every listener shows final lines by the speaker with expected words."""
    started = time.monotonic()
    pending = list(listeners)
    while pending and time.monotonic() - started < TRANSCRIPT_TIMEOUT_S:
        pending = [p for p in pending if len(_words_by(p, speaker_user.name)) < 2]
        if pending:
            pending[0].wait_for_timeout(250)
    assert not pending, (
        f"no words of {speaker_user.name} after {TRANSCRIPT_TIMEOUT_S} s: "
        f"{pending[0].evaluate(READ_LINES_JS)!r}; speaker audio "
        f"{speaker.evaluate('() => window.Rooms.transcriptStats')!r}\n"
        f"{daphne_server.log()[-3000:]}"
    )
    return time.monotonic() - started


def _assert_hears(page, speaker_user) -> None:
    """The speaker's audio arrives over the peer connection and lights its tile up."""
    tile = f'#video-grid figure.tile:not(.self)[data-identity="{speaker_user.identity}"]'
    page.wait_for_selector(f"{tile}.speaking", timeout=WAIT_MS)
    energy = {t["identity"]: t["audioEnergy"] for t in page.evaluate(REMOTE_TILES_JS)}
    assert energy[speaker_user.identity] > 0, energy


@pytest.mark.daphne_env(MESH_MAX_PARTICIPANTS=2)
def test_two_participants_see_and_hear_each_other_and_read_the_speakers_words(
    daphne_server,
    launch_chromium,
    login_context,
    console_log,
    speech_wav,
    silence_wav,
    owner,
    member,
    space,
    video_session,
    artifacts_dir,
):
    url = daphne_server.url + reverse("sessions:detail", args=[video_session.slug])
    speaker = _open(login_context(launch_chromium(speech_wav), owner), url, console_log, "speaker")
    listeners_browser = launch_chromium(silence_wav)
    listener = _open(login_context(listeners_browser, member), url, console_log, "listener")

    _assert_live_video_from(speaker, [member], "speaker")
    _assert_live_video_from(listener, [owner], "listener")
    assert speaker.get_attribute("#btn-cam", "aria-pressed") == "true"
    own = speaker.evaluate(
        """() => { const v = document.querySelector("#video-grid figure.tile.self video");
        return {muted: v.muted, transform: getComputedStyle(v).transform, playing: !v.paused}; }"""
    )
    assert own == {"muted": True, "transform": "matrix(-1, 0, 0, 1, 0, 0)", "playing": True}, own

    _start_speaking(speaker, [listener])
    _assert_hears(listener, owner)
    speaker.wait_for_selector("#video-grid figure.tile.self.speaking", timeout=WAIT_MS)
    _assert_words_reach([listener], speaker, owner, daphne_server)
    speaker.screenshot(path=str(artifacts_dir / "mesh-2p-speaker.png"))
    listener.screenshot(path=str(artifacts_dir / "mesh-2p-listener.png"))

    # The camera goes off for the others and comes back (a new track on the same sender).
    member_tile = f'#video-grid figure.tile[data-identity="{member.identity}"]'
    listener.click("#btn-cam")
    listener.wait_for_selector("#btn-cam[aria-pressed=false]", timeout=WAIT_MS)
    speaker.wait_for_selector(f"{member_tile}.video-off", timeout=WAIT_MS)
    listener.click("#btn-cam")
    listener.wait_for_selector("#btn-cam[aria-pressed=true]", timeout=WAIT_MS)
    _assert_live_video_from(speaker, [member], "speaker after camera toggle")

    # Another microphone: mic.js swaps the stream, the peer connection and the transcript follow.
    options = speaker.eval_on_selector_all("#select-mic option", "os => os.map(o => o.value)")
    current = speaker.input_value("#select-mic")
    assert len(options) >= 2 and current in options, options
    assert speaker.eval_on_selector_all("#select-camera option", "os => os.length") >= 1
    speaker.select_option("#select-mic", next(o for o in options if o != current))
    speaker.wait_for_function(SENDING_MIC_JS, timeout=WAIT_MS)
    sent = speaker.evaluate("() => window.Rooms.transcriptStats.framesSent")
    speaker.wait_for_function(
        "(n) => window.Rooms.transcriptStats.framesSent > n + 10", arg=sent, timeout=WAIT_MS
    )
    assert speaker.is_visible("#btn-mic[aria-pressed=true]")

    # Muting is one switch: the others see it, and no more frames go to the transcript.
    speaker.click("#btn-mic")
    listener.wait_for_selector(
        f'#video-grid figure.tile.audio-off[data-identity="{owner.identity}"]', timeout=WAIT_MS
    )
    sent = speaker.evaluate("() => window.Rooms.transcriptStats.framesSent")
    speaker.wait_for_timeout(500)
    assert speaker.evaluate("() => window.Rooms.transcriptStats.framesSent") == sent

    # A third person does not fit a mesh of two: told why, pointed to LiveKit, never shown.
    late = UserFactory(email="late@example.com", display_name="Lara Late")
    SpaceMemberFactory(space=space, user=late, role=SpaceMember.Role.MEMBER)
    refused = _open(
        login_context(listeners_browser, late), url, console_log, "refused", in_call=False
    )
    refused.wait_for_selector("#video-notice[data-reason=mesh-full]", timeout=WAIT_MS)
    assert "LiveKit" in refused.text_content("#video-notice")
    refused.screenshot(path=str(artifacts_dir / "mesh-2p-full.png"))
    for page, other in ((speaker, member), (listener, owner)):
        _assert_live_video_from(page, [other], "with a refused third")

    # The host ends the session (after confirming): the other page hangs up and says so.
    speaker.click("#btn-end")
    speaker.click("#end-form button[type=submit]")
    listener.wait_for_selector("#video-notice[data-reason=ended]", timeout=WAIT_MS)
    assert listener.locator("#video-grid figure.tile").count() == 0
    assert listener.evaluate("() => window.Rooms.mesh.peers.size") == 0


def test_three_participants_mesh_and_a_reload_rejoins_with_one_tile(
    daphne_server,
    launch_chromium,
    login_context,
    console_log,
    speech_wav,
    silence_wav,
    owner,
    member,
    space,
    video_session,
    artifacts_dir,
):
    third = UserFactory(email="third@example.com", display_name="Theo Third")
    SpaceMemberFactory(space=space, user=third, role=SpaceMember.Role.MEMBER)
    url = daphne_server.url + reverse("sessions:detail", args=[video_session.slug])
    speaker = _open(login_context(launch_chromium(speech_wav), owner), url, console_log, "speaker")
    listeners_browser = launch_chromium(silence_wav)  # the silent two share one process
    first = _open(login_context(listeners_browser, member), url, console_log, "first")
    second = _open(login_context(listeners_browser, third), url, console_log, "second")
    pages = {owner: speaker, member: first, third: second}

    for user, page in pages.items():
        _assert_live_video_from(page, [u for u in pages if u != user], user.name)

    _start_speaking(speaker, [first, second])
    _assert_words_reach([first, second], speaker, owner, daphne_server)
    for user, page in pages.items():
        page.screenshot(path=str(artifacts_dir / f"mesh-3p-{user.name.split()[0].lower()}.png"))

    # A reload is a new peer: the others drop the old one's tile and get exactly one new one.
    old_peer = speaker.get_attribute(
        f'figure.tile[data-identity="{third.identity}"]', "data-peer-id"
    )
    second.reload()
    second.wait_for_selector("#video-grid figure.tile.self", timeout=WAIT_MS)
    _assert_live_video_from(second, [owner, member], "second after reload")
    for page in (speaker, first):
        page.wait_for_selector(f'figure.tile[data-peer-id="{old_peer}"]', state="detached")
        _assert_live_video_from(page, [u for u in pages if pages[u] is not page], "after reload")
    speaker.screenshot(path=str(artifacts_dir / "mesh-3p-after-reload.png"))

    # Leaving hangs up at once: the others drop the tile without waiting for a timeout.
    first.click("#btn-leave")
    first.wait_for_url(re.compile(r"/spaces/"))
    for page in (speaker, second):
        page.wait_for_selector(f'figure.tile[data-identity="{member.identity}"]', state="detached")


def test_crossing_offers_and_a_lost_signalling_socket_end_in_one_live_connection(
    daphne_server,
    launch_chromium,
    login_context,
    console_log,
    silence_wav,
    owner,
    member,
    video_session,
):
    """Offers that cross must end in one live connection (static/js/mesh.js explains the rules).

    Staged by holding back what the server sends page A: two people joining at the same instant
    (A's welcome rewritten to list B, B's offer released once A's own is out), a renegotiation
    from one side, and renegotiations started on both sides at once. Then A's signalling socket
    is cut."""
    url = daphne_server.url + reverse("sessions:detail", args=[video_session.slug])
    browser = launch_chromium(silence_wav)
    held: list[str] = []
    state = {"hold": True, "welcome_b": None, "page_a": None, "server_a": None}

    def release() -> None:
        """Deliver what was held, in order, then let messages through again."""
        while held:  # more may be held while these are sent
            state["page_a"].send(held.pop(0))
        state["hold"] = False

    def route_a(ws):
        server = ws.connect_to_server()

        def from_server(message):
            if state["hold"]:
                held.append(message)
            else:
                ws.send(message)

        server.on_message(from_server)
        state["page_a"], state["server_a"] = ws, server

    def route_b(ws):
        server = ws.connect_to_server()

        def from_server(message):
            parsed = json.loads(message)
            if parsed["type"] == "welcome":
                state["welcome_b"] = parsed
            ws.send(message)

        server.on_message(from_server)

    signal = re.compile(r"/ws/sessions/[^/]+/signal/$")
    context_a, context_b = login_context(browser, owner), login_context(browser, member)
    context_a.route_web_socket(signal, route_a)
    context_b.route_web_socket(signal, route_b)
    page_a = _open(context_a, url, console_log, "A")
    while not held:
        page_a.wait_for_timeout(50)
    page_b = _open(context_b, url, console_log, "B")
    while not any(json.loads(m)["type"] == "offer" for m in held):
        page_a.wait_for_timeout(50)

    welcome_a = json.loads(held.pop(0))
    b = state["welcome_b"]
    welcome_a["peers"] = [{k: b[k] for k in ("peer_id", "identity", "name")}]
    state["page_a"].send(json.dumps(welcome_a))
    page_a.wait_for_function("() => window.Rooms.mesh.stats.offers === 1", timeout=WAIT_MS)
    release()

    _assert_live_video_from(page_a, [member], "A")
    _assert_live_video_from(page_b, [owner], "B")
    stats = [p.evaluate("() => window.Rooms.mesh.stats") for p in (page_a, page_b)]
    assert [s["offers"] for s in stats] == [1, 1], stats  # they did cross
    assert sorted(s["answers"] for s in stats) == [0, 1], stats  # the impolite one's offer won

    # A renegotiation from one side (an ICE restart): the same connection, new ICE credentials.
    ufrags = [p.evaluate(PEER_JS)["ufrag"] for p in (page_a, page_b)]
    page_b.evaluate("() => window.Rooms.mesh.peers.forEach((e) => e.pc.restartIce())")
    for page, ufrag in zip((page_a, page_b), ufrags, strict=True):
        page.wait_for_function(
            f"() => ({PEER_JS})().stable && ({PEER_JS})().ufrag !== '{ufrag}'", timeout=WAIT_MS
        )
        assert page.evaluate(PEER_JS)["same"], "renegotiated, not replaced"
    _assert_live_video_from(page_a, [member], "A after an ICE restart")

    # Both renegotiate at once, crossing again: the impolite one ignores the polite one's offer,
    # the polite one starts over with a fresh connection, which the other answers afresh.
    held.clear()
    state["hold"] = True
    offers = [p.evaluate("() => window.Rooms.mesh.stats.offers") for p in (page_a, page_b)]
    for page in (page_a, page_b):
        page.evaluate("() => window.Rooms.mesh.peers.forEach((e) => e.pc.restartIce())")
    for page, before in zip((page_a, page_b), offers, strict=True):
        page.wait_for_function(
            "(n) => window.Rooms.mesh.stats.offers > n", arg=before, timeout=WAIT_MS
        )
    while not any(json.loads(m)["type"] == "offer" for m in held):
        page_a.wait_for_timeout(50)
    release()
    for page in (page_a, page_b):
        page.wait_for_function(
            f"() => !({PEER_JS})().same && ({PEER_JS})().connected", timeout=WAIT_MS
        )
    _assert_live_video_from(page_a, [member], "A after crossing renegotiations")
    _assert_live_video_from(page_b, [owner], "B after crossing renegotiations")

    # A's signalling socket drops (a network blip): A reconnects with backoff as a new peer, B
    # drops the old peer's tile, and each ends up with exactly one live tile for the other.
    old_peer = page_b.get_attribute(
        f'figure.tile[data-identity="{owner.identity}"]', "data-peer-id"
    )
    state["server_a"].close()
    state["page_a"].close(code=4500, reason="network blip")
    page_b.wait_for_selector(f'figure.tile[data-peer-id="{old_peer}"]', state="detached")
    assert page_a.evaluate("() => window.Rooms.mesh.stats.reconnects") == 1
    _assert_live_video_from(page_a, [member], "A after reconnecting")
    _assert_live_video_from(page_b, [owner], "B after A reconnected")
