// Peer-to-peer video for sessions that do not use LiveKit (`config.videoMode === "mesh"`): every
// pair of participants is connected by the browsers' own RTCPeerConnection, and the session's
// signalling socket (docs/mesh-protocol.md) only relays offers, answers and ICE candidates.
//
// Negotiation: the newcomer offers to every peer its `welcome` lists; existing peers wait for that
// offer and answer it, so first contact normally never collides. Camera and microphone changes
// replace tracks (`replaceTrack`) and need no renegotiation at all. Offers can still cross (two
// people joining at the same instant each find the other in their welcome; a renegotiation, such
// as a sender added for a kind the first offer lacked, can start on both sides at once), so every
// offer goes through a "perfect negotiation" guard (`makingOffer`, `ignoreOffer`, an answer being
// applied): of each pair, the peer with the greater peer id is polite, the other impolite.
// - The impolite one ignores an offer that crosses its own.
// - The polite one gives way, but does not roll its offer back on a live connection: Chromium
//   (156) then keeps decoding the peer's video without delivering a frame to the track. At first
//   contact it drops its connection and answers on a fresh one; on a live connection it starts
//   over with a fresh connection and a new offer, which the other side takes for a restart (a new
//   SDP session id) and answers.
//
// Media: the microphone is mic.js's (`Rooms.micStream`, toggled by #btn-mic, the same track the
// transcript taps), the camera is this file's (#btn-cam). A toggle or a device change replaces
// the track on each connection's sender (`replaceTrack`): no renegotiation. The camera starts
// on, unless this person turned it off the last time (remembered in this browser).
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("page-config").textContent);
  const Rooms = (window.Rooms = window.Rooms || {});
  const grid = document.getElementById("video-grid");
  if (config.videoMode !== "mesh" || !grid || !Rooms.mic) return;

  const notice = document.getElementById("video-notice");
  const camButton = document.getElementById("btn-cam");
  const soundButton = document.getElementById("btn-sound");
  const leaveButton = document.getElementById("btn-leave");
  const cameraSelect = document.getElementById("select-camera");

  const PING_EVERY_MS = 15000;
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 10000;
  const STABLE_AFTER_MS = 10000; // a socket that lived this long resets the backoff
  const CONNECT_TIMEOUT_MS = 20000; // a peer that never connects is given up (stale slot)
  const REDIALS_MAX = 2;
  const LEVEL_EVERY_MS = 100;
  const SPEAKING_RMS = 0.015; // about -36 dBFS
  const SPEAKING_HANGOVER_MS = 700;
  const CAMERA = { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 24 } };
  const CAMERA_CHOICE_KEY = "rooms.camera"; // "off" once the person turned their camera off
  const FINAL_CLOSES = {
    4001: gettext("You are not signed in any more: reload the page to rejoin the call."),
    4003: gettext("You do not have access to this session's call."),
    4010: gettext("This call is open in another tab or window."),
  };

  let join = null;
  let socket = null;
  let openedAt = 0;
  let attempt = 0;
  let reconnectTimer = null;
  let pingTimer = null;
  let finished = false; // no more reconnects: left, ended, refused, full
  let myPeerId = null;
  let iceServers = [];
  const roster = new Map(); // peer_id → {peer_id, identity, name, audio, video}
  const peers = new Map(); // peer_id → connection entry (see createPeer)
  const redials = new Map(); // peer_id → attempts
  // The stream id our senders announce (msid), so a peer sees our audio and video as one stream.
  const outgoing = new MediaStream();
  let cameraTrack = null;
  let cameraDeviceId = null;
  let cameraBusy = false;
  let selfTile = null;

  Rooms.mesh = { peers, roster, stats: { offers: 0, answers: 0, reconnects: 0 } };

  // --- Notices and tiles ------------------------------------------------------------------------

  /** `format` ("…: %(error)s") filled with what the browser said about a media error. */
  function unavailable(format, error) {
    return interpolate(format, { error: error.message || error.name }, true);
  }

  function showNotice(text, reason) {
    notice.textContent = text;
    notice.dataset.reason = reason || "";
    notice.hidden = !text;
  }

  function makeTile(key, identity, name, self) {
    const tile = document.createElement("figure");
    tile.className = self ? "tile self video-off" : "tile connecting";
    tile.dataset.peerId = key;
    tile.dataset.identity = identity;
    const video = document.createElement("video");
    video.autoplay = true;
    video.playsInline = true;
    if (self) video.muted = true; // never hear yourself
    const initials = document.createElement("span");
    initials.className = "tile-initials";
    initials.setAttribute("aria-hidden", "true");
    const label = document.createElement("figcaption");
    // Shown after the name while the person's microphone is off (rooms.css, .audio-off).
    label.dataset.muted = " · " + gettext("muted");
    label.dataset.mutedSpoken = ", " + gettext("microphone off");
    tile.append(video, initials, label);
    nameTile(tile, name || identity, self);
    if (self) grid.prepend(tile);
    else grid.appendChild(tile);
    return tile;
  }

  function nameTile(tile, name, self) {
    tile.querySelector("figcaption").textContent = self
      ? interpolate(gettext("%(name)s (you)"), { name }, true)
      : name;
    tile.querySelector(".tile-initials").textContent = name
      .split(/\s+/)
      .filter(Boolean)
      .slice(0, 2)
      .map((word) => word[0].toUpperCase())
      .join("");
  }

  function applyMedia(tile, state) {
    if (!tile || !state) return;
    tile.classList.toggle("video-off", state.video === false);
    tile.classList.toggle("audio-off", state.audio === false);
  }

  function play(video) {
    const started = video.play();
    if (!started) return;
    started.catch((error) => {
      if (error.name !== "NotAllowedError") return; // AbortError: a newer srcObject took over
      // No sound before the user interacts with the page: play muted, offer a button.
      video.muted = true;
      video.play().catch(() => {});
      if (soundButton) soundButton.hidden = false;
    });
  }

  if (soundButton) {
    soundButton.addEventListener("click", () => {
      grid.querySelectorAll(".tile:not(.self) video").forEach((video) => {
        video.muted = false;
        video.play().catch(() => {});
      });
      soundButton.hidden = true;
    });
  }

  // --- Active speaker: audio levels (WebAudio AnalyserNode per track) ---------------------------

  let levels = null;
  const meters = new Map(); // tile key → {source, analyser, data, tile, loudAt}

  function levelsContext() {
    if (!levels) {
      levels = new AudioContext();
      setInterval(measure, LEVEL_EVERY_MS);
    }
    return levels;
  }

  function meter(key, track, tile) {
    unmeter(key);
    if (!track || !tile) return;
    const context = levelsContext();
    const source = context.createMediaStreamSource(new MediaStream([track]));
    const analyser = context.createAnalyser();
    analyser.fftSize = 1024;
    source.connect(analyser); // an analyser is pulled without reaching the destination
    meters.set(key, { source, analyser, data: new Float32Array(analyser.fftSize), tile, loudAt: 0 });
  }

  function unmeter(key) {
    const found = meters.get(key);
    if (!found) return;
    found.source.disconnect();
    found.tile.classList.remove("speaking");
    meters.delete(key);
  }

  /** Loud now, or loud less than a hangover ago (speech has gaps between words). */
  function measure() {
    const now = performance.now();
    for (const m of meters.values()) {
      m.analyser.getFloatTimeDomainData(m.data);
      let sum = 0;
      for (const v of m.data) sum += v * v;
      if (Math.sqrt(sum / m.data.length) >= SPEAKING_RMS) m.loudAt = now;
      m.tile.classList.toggle("speaking", m.loudAt > 0 && now - m.loudAt < SPEAKING_HANGOVER_MS);
    }
  }

  // An AudioContext made before any user gesture starts suspended: resume it on the first one.
  function resumeAudio() {
    if (levels && levels.state === "suspended") levels.resume().catch(() => {});
  }
  document.addEventListener("pointerdown", resumeAudio, true);
  document.addEventListener("keydown", resumeAudio, true);

  // --- Local media ------------------------------------------------------------------------------

  function micTrack() {
    const stream = Rooms.micStream;
    return (stream && stream.getAudioTracks()[0]) || null;
  }

  function localTrack(kind) {
    return kind === "audio" ? micTrack() : cameraTrack;
  }

  function mediaState() {
    return {
      audio: Rooms.mic.isOn(),
      video: Boolean(cameraTrack && cameraTrack.readyState === "live"),
    };
  }

  function sendMedia() {
    const state = mediaState();
    applyMedia(selfTile, state);
    send({ type: "media", ...state });
  }

  /** Puts `track` (or nothing) on every connection's sender of `kind`. */
  function setOutgoing(kind, track) {
    for (const entry of peers.values()) {
      const sender = entry.senders[kind];
      if (sender) sender.replaceTrack(track).catch((e) => console.warn("replaceTrack", e));
      else if (track && entry.pc.remoteDescription) addSender(entry, kind, track);
    }
  }

  function devicesInUse() {
    return {
      videoinput: cameraTrack ? cameraTrack.getSettings().deviceId : cameraDeviceId,
      audioinput: Rooms.mic.deviceId(),
    };
  }

  function refreshDevices() {
    if (Rooms.devices) Rooms.devices.refresh(devicesInUse());
  }

  function renderCamera() {
    const on = mediaState().video;
    Rooms.setToggle(camButton, on);
    camButton.disabled = finished || cameraBusy;
    if (cameraSelect && finished) cameraSelect.disabled = true;
    const video = selfTile && selfTile.querySelector("video");
    const shown = video && video.srcObject ? video.srcObject.getVideoTracks()[0] : null;
    if (video && shown !== (on ? cameraTrack : null)) {
      video.srcObject = on ? new MediaStream([cameraTrack]) : null;
      if (on) play(video);
    }
  }

  async function cameraOn(deviceId) {
    const stream = await navigator.mediaDevices.getUserMedia({
      video: deviceId ? { ...CAMERA, deviceId: { exact: deviceId } } : CAMERA,
      audio: false,
    });
    const track = stream.getVideoTracks()[0];
    if (finished) {
      track.stop();
      return;
    }
    track.contentHint = "motion";
    track.addEventListener("ended", () => {
      if (cameraTrack !== track) return;
      cameraTrack = null; // unplugged, or the permission was revoked
      setOutgoing("video", null);
      renderCamera();
      sendMedia();
    });
    const previous = cameraTrack;
    cameraTrack = track;
    cameraDeviceId = track.getSettings().deviceId || deviceId || null;
    setOutgoing("video", track);
    if (previous) previous.stop();
  }

  function cameraOff() {
    const previous = cameraTrack;
    cameraTrack = null;
    setOutgoing("video", null);
    if (previous) previous.stop(); // the camera light goes off
  }

  async function setCamera(on, deviceId) {
    cameraBusy = true;
    renderCamera();
    try {
      if (on) await cameraOn(deviceId || cameraDeviceId);
      else cameraOff();
    } catch (error) {
      showNotice(unavailable(gettext("Camera unavailable: %(error)s"), error), "camera");
    } finally {
      cameraBusy = false;
      renderCamera();
      sendMedia();
      refreshDevices();
    }
  }

  function cameraChoice(on) {
    try {
      if (on === undefined) return window.localStorage.getItem(CAMERA_CHOICE_KEY) !== "off";
      window.localStorage.setItem(CAMERA_CHOICE_KEY, on ? "on" : "off");
    } catch {
      // Storage blocked: the camera simply starts on.
    }
    return true;
  }

  camButton.addEventListener("click", () => {
    const on = !mediaState().video;
    cameraChoice(on);
    setCamera(on);
  });

  if (Rooms.devices) {
    Rooms.devices.onChosen("videoinput", (deviceId) => {
      cameraDeviceId = deviceId;
      if (mediaState().video) setCamera(true, deviceId);
    });
    Rooms.devices.onChosen("audioinput", async (deviceId) => {
      try {
        await Rooms.mic.setDevice(deviceId); // "rooms:mic-stream" moves the peers over
      } catch (error) {
        showNotice(unavailable(gettext("Microphone unavailable: %(error)s"), error), "microphone");
      }
      refreshDevices();
    });
  }

  // mic.js owns the microphone: follow its stream (a new one after a device change) and state.
  document.addEventListener("rooms:mic-stream", (event) => {
    const track = event.detail.getAudioTracks()[0] || null;
    setOutgoing("audio", track);
    if (selfTile) meter("self", track, selfTile);
    sendMedia();
  });
  document.addEventListener("rooms:mic-muted", () => sendMedia());
  document.addEventListener("rooms:mic-ended", () => sendMedia());

  // --- Peer connections -------------------------------------------------------------------------

  /** The session id on the SDP `o=` line: a new one means the peer made a new connection. */
  function sdpSession(sdp) {
    const match = /^o=\S+ (\d+) /m.exec(sdp);
    return match ? match[1] : null;
  }

  /** A transceiver that sends `track` (or, until there is one, nothing) and receives `kind`. */
  function addSender(entry, kind, track) {
    const transceiver = entry.pc.addTransceiver(track || kind, {
      direction: "sendrecv",
      streams: [outgoing],
    });
    entry.senders[kind] = transceiver.sender;
  }

  /**
   * A connection to `info.peer_id`. The `initiator` (the newcomer) adds an audio and a video
   * transceiver, which fires `negotiationneeded` and so sends the first offer; the other side
   * takes its senders from that offer (`takeSenders`).
   */
  function createPeer(info, initiator) {
    const id = info.peer_id;
    const known = roster.get(id) || info;
    const pc = new RTCPeerConnection({ iceServers });
    const entry = {
      id,
      pc,
      initiator,
      polite: myPeerId > id,
      makingOffer: false,
      ignoreOffer: false,
      settingAnswer: false,
      pendingCandidates: [],
      remoteSession: null,
      senders: {},
      remoteStream: new MediaStream(),
      chain: Promise.resolve(),
      tile: makeTile(id, known.identity || "", known.name || gettext("Guest"), false),
      timer: null,
    };
    peers.set(id, entry);
    applyMedia(entry.tile, known);

    pc.addEventListener("negotiationneeded", async () => {
      try {
        entry.makingOffer = true;
        await pc.setLocalDescription();
        if (pc.localDescription.type !== "offer") return;
        send({ type: "offer", to: id, sdp: pc.localDescription.sdp });
        Rooms.mesh.stats.offers += 1;
      } catch (error) {
        console.warn("mesh: offer failed", error);
      } finally {
        entry.makingOffer = false;
      }
    });
    pc.addEventListener("icecandidate", ({ candidate }) => {
      send({ type: "ice", to: id, candidate: candidate ? candidate.toJSON() : null });
    });
    pc.addEventListener("track", ({ track }) => {
      if (!entry.remoteStream.getTracks().includes(track)) entry.remoteStream.addTrack(track);
      const video = entry.tile.querySelector("video");
      video.srcObject = entry.remoteStream; // again: picks up the track just added
      play(video);
      if (track.kind === "audio") meter(id, track, entry.tile);
    });
    pc.addEventListener("connectionstatechange", () => {
      const state = pc.connectionState;
      entry.tile.classList.toggle("connecting", state !== "connected");
      if (state === "connected") {
        clearTimeout(entry.timer);
        redials.delete(id);
      } else if (state === "failed" || state === "closed") {
        dropPeer(id, state === "failed");
      }
    });
    entry.timer = setTimeout(() => {
      if (peers.get(id) === entry && pc.connectionState !== "connected") dropPeer(id, true);
    }, CONNECT_TIMEOUT_MS);

    if (initiator) {
      addSender(entry, "audio", micTrack());
      addSender(entry, "video", cameraTrack);
    }
    return entry;
  }

  /** After a remote offer: send our tracks on the transceivers it created. */
  async function takeSenders(entry) {
    for (const transceiver of entry.pc.getTransceivers()) {
      const kind = transceiver.receiver.track.kind;
      if (entry.senders[kind] || transceiver.direction === "stopped") continue;
      transceiver.direction = "sendrecv";
      if (transceiver.sender.setStreams) transceiver.sender.setStreams(outgoing);
      entry.senders[kind] = transceiver.sender;
      await transceiver.sender.replaceTrack(localTrack(kind));
    }
  }

  async function onDescription(entry, type, sdp) {
    const pc = entry.pc;
    const readyForOffer =
      !entry.makingOffer && (pc.signalingState === "stable" || entry.settingAnswer);
    const collision = type === "offer" && !readyForOffer;
    entry.ignoreOffer = !entry.polite && collision;
    if (entry.ignoreOffer) return; // the polite peer gives way
    if (collision) {
      redial(entry.id); // polite, on a live connection: start over (see the top of this file)
      return;
    }
    entry.settingAnswer = type === "answer";
    try {
      await pc.setRemoteDescription({ type, sdp });
    } finally {
      entry.settingAnswer = false;
    }
    entry.remoteSession = sdpSession(sdp) || entry.remoteSession;
    for (const candidate of entry.pendingCandidates.splice(0)) await addCandidate(entry, candidate);
    if (type === "offer") {
      await takeSenders(entry);
      await pc.setLocalDescription();
      send({ type: "answer", to: entry.id, sdp: pc.localDescription.sdp });
      Rooms.mesh.stats.answers += 1;
    }
  }

  async function addCandidate(entry, candidate) {
    const remote = entry.pc.remoteDescription;
    const ufrag = candidate && candidate.usernameFragment;
    // From a connection the peer dropped, or from before an ICE restart: nothing to pair with.
    if (ufrag && remote && !remote.sdp.includes(`a=ice-ufrag:${ufrag}\r\n`)) return;
    try {
      await entry.pc.addIceCandidate(candidate || undefined);
    } catch (error) {
      if (!entry.ignoreOffer) console.warn("mesh: bad ICE candidate", error);
    }
  }

  function onSignal(message) {
    const from = message.from;
    let entry = peers.get(from);
    if (message.type === "offer" && entry) {
      const session = sdpSession(message.sdp);
      if (entry.remoteSession && session && session !== entry.remoteSession) {
        dropPeer(from, false); // the peer started over with a new connection
        entry = null;
      } else if (entry.initiator && !entry.pc.remoteDescription) {
        // We both dialled (see the top of this file): only the impolite one's offer counts.
        if (!entry.polite) return;
        dropPeer(from, false);
        entry = null;
      }
    }
    if (message.type === "offer" && !entry) entry = createPeer({ peer_id: from }, false);
    if (!entry) return; // an answer or candidate for a connection we no longer have
    const current = entry;
    current.chain = current.chain
      .then(() => {
        if (peers.get(from) !== current) return undefined;
        if (message.type === "ice") {
          if (!current.pc.remoteDescription) current.pendingCandidates.push(message.candidate);
          else return addCandidate(current, message.candidate);
          return undefined;
        }
        return onDescription(current, message.type, message.sdp);
      })
      .catch((error) => console.warn(`mesh: ${message.type} from ${from} failed`, error));
  }

  /** Replaces the connection to `id` with a fresh one that we offer. */
  function redial(id) {
    dropPeer(id, false);
    createPeer(roster.get(id) || { peer_id: id }, true);
  }

  /** Closes the connection to `id` and removes its tile; a failure may be dialled again. */
  function dropPeer(id, failed) {
    const entry = peers.get(id);
    if (!entry) return;
    peers.delete(id);
    clearTimeout(entry.timer);
    unmeter(id);
    entry.pc.close();
    entry.tile.remove();
    // After a failure the peer with the smaller id dials again (only one side does: no glare).
    const tries = redials.get(id) || 0;
    if (failed && !finished && roster.has(id) && myPeerId < id && tries < REDIALS_MAX) {
      redials.set(id, tries + 1);
      setTimeout(() => {
        if (!finished && roster.has(id) && !peers.has(id)) createPeer(roster.get(id), true);
      }, 1000 * 2 ** tries);
    }
  }

  function dropAllPeers() {
    roster.clear();
    for (const id of Array.from(peers.keys())) dropPeer(id, false);
  }

  // --- Signalling socket ------------------------------------------------------------------------

  function send(message) {
    if (socket && socket.readyState === WebSocket.OPEN && myPeerId) {
      socket.send(JSON.stringify(message));
    }
  }

  function connect() {
    if (finished) return;
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    const path = `/ws/sessions/${encodeURIComponent(config.slug)}/signal/`;
    const ws = new WebSocket(`${scheme}//${window.location.host}${path}`);
    socket = ws;
    ws.addEventListener("open", () => {
      if (socket !== ws) return;
      openedAt = performance.now();
      pingTimer = setInterval(() => send({ type: "ping" }), PING_EVERY_MS);
    });
    ws.addEventListener("message", (event) => {
      if (socket !== ws || typeof event.data !== "string") return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      handleMessage(message);
    });
    ws.addEventListener("close", (event) => {
      if (socket === ws) handleClose(event.code);
    });
  }

  function handleMessage(message) {
    switch (message.type) {
      case "welcome":
        myPeerId = message.peer_id;
        iceServers = Array.isArray(message.ice_servers) ? message.ice_servers : [];
        if (notice.dataset.reason === "signal") showNotice("");
        for (const peer of message.peers || []) {
          roster.set(peer.peer_id, { ...peer });
          createPeer(peer, true);
        }
        sendMedia();
        break;
      case "peer_joined": {
        roster.set(message.peer_id, { ...message });
        const entry = peers.get(message.peer_id);
        if (entry) {
          // Its offer came first: name the tile now.
          nameTile(entry.tile, message.name || message.identity, false);
          entry.tile.dataset.identity = message.identity;
        }
        sendMedia(); // so the newcomer knows whether our camera and microphone are on
        break;
      }
      case "peer_left":
        roster.delete(message.peer_id);
        dropPeer(message.peer_id, false);
        break;
      case "peer_media": {
        const known = roster.get(message.peer_id);
        if (known) Object.assign(known, { audio: message.audio, video: message.video });
        const entry = peers.get(message.peer_id);
        if (entry) applyMedia(entry.tile, message);
        break;
      }
      case "offer":
      case "answer":
      case "ice":
        if (typeof message.from === "string") onSignal(message);
        break;
      case "mesh_full":
        meshFull(message);
        break;
      case "session_ended":
        Rooms.sessionEnded();
        break;
      case "access_revoked":
        // Then the server closes with 4003: say why instead of the generic refusal.
        if (typeof message.message === "string") FINAL_CLOSES[4003] = message.message;
        break;
      default:
        break; // pong, and types added later
    }
  }

  function handleClose(code) {
    if (performance.now() - openedAt >= STABLE_AFTER_MS) attempt = 0;
    socket = null;
    myPeerId = null;
    clearInterval(pingTimer);
    // Our peer id is gone with the socket: the others drop us, we drop them, and a reconnect
    // joins as a newcomer.
    dropAllPeers();
    if (code === 4004) return Rooms.sessionEnded();
    if (code === 4013) return meshFull({});
    if (FINAL_CLOSES[code]) {
      finished = true;
      stopMedia();
      return showNotice(FINAL_CLOSES[code], "refused");
    }
    if (finished) return undefined;
    showNotice(gettext("Connection to the call lost: reconnecting…"), "signal");
    return scheduleReconnect();
  }

  function scheduleReconnect() {
    if (finished || reconnectTimer) return;
    // Exponential backoff with "equal jitter": half fixed, half random, capped at 10 s.
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    attempt += 1;
    Rooms.mesh.stats.reconnects += 1;
    reconnectTimer = setTimeout(() => {
      reconnectTimer = null;
      connect();
    }, delay);
  }

  window.addEventListener("online", () => {
    if (!socket && reconnectTimer) {
      clearTimeout(reconnectTimer);
      reconnectTimer = null;
      connect();
    }
  });

  // --- Lifecycle --------------------------------------------------------------------------------

  function stopMedia() {
    cameraOff();
    renderCamera();
    unmeter("self");
  }

  /** Leaves the call for good: tells the server, closes every connection and the camera. */
  function hangUp() {
    finished = true;
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    clearInterval(pingTimer);
    const ws = socket;
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "leave" }));
    socket = null;
    dropAllPeers();
    if (ws) ws.close(1000);
    stopMedia();
  }

  function meshFull(message) {
    const limit = message.max_peers || config.meshMaxPeers;
    hangUp();
    if (selfTile) selfTile.remove();
    selfTile = null;
    grid.dataset.empty = gettext("You are not in the video call.");
    const limited = ngettext(
      "Peer-to-peer video is limited to %(limit)s person. Larger meetings need LiveKit: ask your administrator to configure it.",
      "Peer-to-peer video is limited to %(limit)s people. Larger meetings need LiveKit: ask your administrator to configure it.",
      limit
    );
    showNotice(message.message || interpolate(limited, { limit }, true), "mesh-full");
  }

  // The session ended (either socket said so; session.js shows the one notice): hang up.
  document.addEventListener("rooms:session-ended", () => {
    hangUp();
    Rooms.mic.stop();
    grid.replaceChildren();
    selfTile = null;
  });

  leaveButton.addEventListener("click", () => {
    hangUp();
    Rooms.mic.stop();
  });
  window.addEventListener("pagehide", () => {
    if (!finished) hangUp();
  });
  // Back from the back/forward cache: the call was hung up on the way out; join afresh.
  window.addEventListener("pageshow", (event) => {
    if (event.persisted && join) window.location.reload();
  });

  async function start(payload) {
    if (join) return;
    join = payload;
    selfTile = makeTile("self", join.identity, join.name, true);
    camButton.disabled = false;
    connect(); // at once: watching and listening need no camera
    const [mic] = await Promise.allSettled([
      Rooms.mic.acquire(), // muted until #btn-mic; "rooms:mic-stream" hands it to the peers
      cameraChoice() ? setCamera(true) : renderCamera(),
    ]);
    if (mic.status === "rejected") {
      const text = unavailable(gettext("Microphone unavailable: %(error)s"), mic.reason);
      showNotice(text, "microphone");
    }
    refreshDevices(); // labels are readable once a device was granted
  }

  document.addEventListener("rooms:joined", (event) => start(event.detail));
  if (window.RoomsSession && window.RoomsSession.join) start(window.RoomsSession.join);
})();
