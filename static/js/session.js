// Session page: joins the session through the API, then connects video: LiveKit here when the
// session uses it (`config.videoMode === "livekit"`), else the peer-to-peer mesh of mesh.js.
// The live transcript sidebar is driven by transcript.js, the page's microphone by mic.js.
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("page-config").textContent);
  const grid = document.getElementById("video-grid");
  const notice = document.getElementById("video-notice");
  const micButton = document.getElementById("btn-mic");
  const camButton = document.getElementById("btn-cam");
  const leaveButton = document.getElementById("btn-leave");

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  async function api(path, options) {
    const response = await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
      ...options,
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new Error(body.detail || `Request failed (${response.status})`);
      error.code = body.code;
      throw error;
    }
    return body;
  }

  // Shared with the page's other scripts (transcript.js).
  const Rooms = (window.Rooms = window.Rooms || {});
  Rooms.csrfToken = csrfToken;
  Rooms.api = api;

  // Device pickers (#select-camera, #select-mic), for both video modes: filled from
  // enumerateDevices() once the page may see device labels; what a choice does is the mode's.
  const pickers = {
    videoinput: document.getElementById("select-camera"),
    audioinput: document.getElementById("select-mic"),
  };
  const PICKER_FALLBACK = { videoinput: "Camera", audioinput: "Microphone" };

  /** Lists the devices; `inUse` ({videoinput, audioinput}: device ids) selects what runs now. */
  async function refreshDevices(inUse) {
    if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
    const devices = await navigator.mediaDevices.enumerateDevices().catch(() => []);
    for (const [kind, select] of Object.entries(pickers)) {
      if (!select) continue;
      const current = (inUse && inUse[kind]) || select.value;
      const options = devices
        .filter((d) => d.kind === kind && d.deviceId)
        .map((d, i) => new Option(d.label || `${PICKER_FALLBACK[kind]} ${i + 1}`, d.deviceId));
      select.replaceChildren(...options);
      if (options.some((o) => o.value === current)) select.value = current;
      select.disabled = options.length === 0;
    }
  }

  /** `handler(deviceId)` runs when the user picks a device of `kind`. */
  function onDeviceChosen(kind, handler) {
    const select = pickers[kind];
    if (select) select.addEventListener("change", () => handler(select.value));
  }

  if (navigator.mediaDevices && navigator.mediaDevices.addEventListener) {
    navigator.mediaDevices.addEventListener("devicechange", () => refreshDevices());
  }
  Rooms.devices = { refresh: refreshDevices, onChosen: onDeviceChosen };

  function showNotice(text) {
    notice.textContent = text;
    notice.hidden = false;
  }

  function tileFor(identity, name) {
    let tile = grid.querySelector(`[data-identity="${CSS.escape(identity)}"]`);
    if (!tile) {
      tile = document.createElement("figure");
      tile.className = "tile";
      tile.dataset.identity = identity;
      const label = document.createElement("figcaption");
      label.textContent = name || identity;
      tile.appendChild(label);
      grid.appendChild(tile);
    }
    return tile;
  }

  function removeTile(identity) {
    const tile = grid.querySelector(`[data-identity="${CSS.escape(identity)}"]`);
    if (tile) tile.remove();
  }

  async function connectLiveKit(join) {
    const LK = window.LivekitClient;
    const room = new LK.Room({ adaptiveStream: true, dynacast: true });
    room
      .on(LK.RoomEvent.TrackSubscribed, (track, _pub, participant) => {
        const element = track.attach();
        tileFor(participant.identity, participant.name).prepend(element);
      })
      .on(LK.RoomEvent.TrackUnsubscribed, (track) => track.detach().forEach((el) => el.remove()))
      .on(LK.RoomEvent.ParticipantDisconnected, (participant) => removeTile(participant.identity))
      .on(LK.RoomEvent.ActiveSpeakersChanged, (speakers) => {
        const active = new Set(speakers.map((s) => s.identity));
        grid.querySelectorAll(".tile").forEach((tile) => {
          tile.classList.toggle("speaking", active.has(tile.dataset.identity));
        });
        document.dispatchEvent(
          new CustomEvent("rooms:active-speakers", { detail: Array.from(active) })
        );
      })
      .on(LK.RoomEvent.Disconnected, () => showNotice("Disconnected from the video room."));
    await room.connect(join.livekit_url, join.livekit_token);
    await room.localParticipant.enableCameraAndMicrophone().catch(() => {
      showNotice("Camera or microphone unavailable: you can still watch and listen.");
    });
    room.localParticipant.videoTrackPublications.forEach((pub) => {
      if (pub.track) tileFor(join.identity, `${join.name} (you)`).prepend(pub.track.attach());
    });
    micButton.disabled = camButton.disabled = false;
    micButton.setAttribute("aria-pressed", String(room.localParticipant.isMicrophoneEnabled));
    camButton.setAttribute("aria-pressed", String(room.localParticipant.isCameraEnabled));
    micButton.addEventListener("click", async () => {
      const on = !room.localParticipant.isMicrophoneEnabled;
      await room.localParticipant.setMicrophoneEnabled(on);
      micButton.setAttribute("aria-pressed", String(on));
    });
    camButton.addEventListener("click", async () => {
      const on = !room.localParticipant.isCameraEnabled;
      await room.localParticipant.setCameraEnabled(on);
      camButton.setAttribute("aria-pressed", String(on));
    });
    leaveButton.addEventListener("click", () => room.disconnect());
    const activeDevices = () => ({
      videoinput: room.getActiveDevice("videoinput"),
      audioinput: room.getActiveDevice("audioinput"),
    });
    for (const kind of ["videoinput", "audioinput"]) {
      onDeviceChosen(kind, async (deviceId) => {
        try {
          await room.switchActiveDevice(kind, deviceId);
        } catch (error) {
          showNotice(`Could not switch device: ${error.message}`);
        }
        refreshDevices(activeDevices());
      });
    }
    refreshDevices(activeDevices());
    return room;
  }

  async function main() {
    let join;
    try {
      join = await api(`/api/sessions/${config.slug}/join`);
    } catch (error) {
      showNotice(error.message);
      grid.dataset.empty = "";
      return;
    }
    window.RoomsSession = { config, join };
    document.dispatchEvent(new CustomEvent("rooms:joined", { detail: join }));
    const status = document.getElementById("session-status");
    if (status) {
      status.textContent = "Live";
      status.className = "badge status-live";
    }
    if (join.video_enabled && window.LivekitClient) {
      try {
        await connectLiveKit(join);
      } catch (error) {
        showNotice(`Video could not connect: ${error.message}`);
      }
    } else if (config.videoMode === "mesh") {
      grid.dataset.empty = ""; // mesh.js shows the call
    } else {
      grid.dataset.empty = "";
      showNotice(join.message);
    }
    leaveButton.addEventListener("click", () => {
      window.location.href = document.querySelector(".stage-header a").href;
    });
  }

  main();
})();
