// Session page: joins the session through the API, then connects video: LiveKit here when the
// session uses it (`config.videoMode === "livekit"`), else the peer-to-peer mesh of mesh.js.
// The live transcript sidebar is driven by transcript.js, the page's microphone by mic.js.
// This file also keeps the page's shared parts live: the participants list (from the server,
// through the transcript socket), the cost box, the "End session" confirmation, and the one
// notice when the session ends (`Rooms.sessionEnded()`), after which the page turns into the
// session's finished page.
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("page-config").textContent);
  // Texts come from Django's JavaScript catalogue (base.html loads it: gettext, ngettext,
  // pgettext, interpolate); numbers are written the page language's way.
  const number = new Intl.NumberFormat(document.documentElement.lang || "en");
  const fill = (text, values) => interpolate(text, values, true);
  const grid = document.getElementById("video-grid");
  const notice = document.getElementById("video-notice");
  const micButton = document.getElementById("btn-mic");
  const camButton = document.getElementById("btn-cam");
  const leaveButton = document.getElementById("btn-leave");
  // After the session ended, the finished page replaces this one after this pause (time to read
  // the notice).
  const ENDED_REDIRECT_MS = 3000;

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
      const error = new Error(
        body.detail || fill(gettext("Request failed (%(status)s)"), { status: response.status })
      );
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
  // A device whose label the page may not read yet: "Camera 1", "Microphone 2".
  const PICKER_FALLBACK = {
    videoinput: gettext("Camera %(number)s"),
    audioinput: gettext("Microphone %(number)s"),
  };

  /** Lists the devices; `inUse` ({videoinput, audioinput}: device ids) selects what runs now. */
  async function refreshDevices(inUse) {
    if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
    const devices = await navigator.mediaDevices.enumerateDevices().catch(() => []);
    for (const [kind, select] of Object.entries(pickers)) {
      if (!select) continue;
      const current = (inUse && inUse[kind]) || select.value;
      const options = devices
        .filter((d) => d.kind === kind && d.deviceId)
        .map(
          (d, i) =>
            new Option(d.label || fill(PICKER_FALLBACK[kind], { number: i + 1 }), d.deviceId)
        );
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

  let ended = false;

  function showNotice(text, reason) {
    if (ended) return; // the end's notice stays
    notice.textContent = text;
    notice.dataset.reason = reason || "";
    notice.hidden = !text;
  }

  /** The media toggles say what they are: "Mic on" / "Mic off", "Camera on" / "Camera off". */
  function setToggle(button, on) {
    button.setAttribute("aria-pressed", String(on));
    const labels =
      button === camButton
        ? [gettext("Camera on"), gettext("Camera off")]
        : [gettext("Mic on"), gettext("Mic off")];
    button.textContent = on ? labels[0] : labels[1];
  }
  Rooms.setToggle = setToggle;

  // --- The end of the session: one notice, then its finished page ------------------------------

  /**
   * Both sockets report the end (`session_ended`, close 4004): whichever comes first shows the
   * one notice and tells the page's parts ("rooms:session-ended"); then the same URL is loaded
   * again, which is the finished page once the session has ended. The host who ended it is on
   * the way there already (the end form).
   */
  Rooms.sessionEnded = function sessionEnded() {
    if (ended) return;
    document.dispatchEvent(new CustomEvent("rooms:session-ended"));
    showNotice(gettext("The session has ended. Opening its transcript…"), "ended");
    ended = true;
    // Nothing left to see or press in the call: the notice stands alone until the page changes.
    grid.hidden = true;
    const controls = document.querySelector(".controls");
    if (controls) controls.hidden = true;
    const badge = document.getElementById("session-status");
    if (badge) {
      badge.textContent = gettext("Ended");
      badge.className = "badge status-ended";
    }
    if (!Rooms.ending) {
      // Without a #fragment, or it would only scroll instead of loading the page again.
      const again = window.location.href.split("#")[0];
      setTimeout(() => window.location.replace(again), ENDED_REDIRECT_MS);
    }
  };

  const endButton = document.getElementById("btn-end");
  const endDialog = document.getElementById("end-dialog");
  if (endButton && endDialog) {
    endButton.addEventListener("click", () => endDialog.showModal());
    document.getElementById("btn-end-cancel").addEventListener("click", () => endDialog.close());
    endDialog.querySelector("form").addEventListener("submit", (event) => {
      Rooms.ending = true;
      if (event.submitter) event.submitter.disabled = true; // one click ends it once
    });
  }

  // --- Participants: who is in the session, from the server --------------------------------------

  const participantList = document.getElementById("participant-list");
  const participantCount = document.getElementById("participant-count");
  const participantNews = document.getElementById("participant-news");
  const ROLE_LABELS = { HOST: gettext("Host"), GUEST: gettext("Guest") };
  // Bumped by every list the socket brings, so a slower read never overwrites a newer list.
  let participantsVersion = 0;

  function participantItem(p) {
    const li = document.createElement("li");
    li.dataset.identity = p.identity;
    li.dataset.present = String(p.present);
    if (!p.present) li.className = "left";
    const name = document.createElement("span");
    name.className = "participant-name";
    name.textContent = p.name || p.identity;
    li.append(name);
    if (p.identity === config.identity) {
      const you = document.createElement("span");
      you.className = "muted";
      you.textContent = gettext("(you)");
      li.append(" ", you);
    }
    const role = document.createElement("span");
    role.className = "badge";
    role.textContent = ROLE_LABELS[p.role] || p.role;
    li.append(" ", role);
    if (!p.present) {
      const left = document.createElement("span");
      left.className = "muted";
      left.textContent = pgettext("participant", "left");
      li.append(" ", left);
    }
    return li;
  }

  /** Shows `list` ([{identity, name, role, present}]): those here first, then those who left. */
  function renderParticipants(list) {
    if (!participantList || ended) return;
    const before = new Map(
      Array.from(participantList.querySelectorAll("li[data-identity]"), (li) => [
        li.dataset.identity,
        li.dataset.present === "true",
      ])
    );
    const ordered = [...list.filter((p) => p.present), ...list.filter((p) => !p.present)];
    const items = ordered.map(participantItem);
    if (!items.length) {
      const empty = document.createElement("li");
      empty.className = "muted empty";
      empty.textContent = gettext("Nobody has joined yet.");
      items.push(empty);
    }
    participantList.replaceChildren(...items);
    if (participantCount) {
      const count = list.filter((p) => p.present).length;
      participantCount.textContent = fill(ngettext("%(count)s here", "%(count)s here", count), {
        count: number.format(count),
      });
    }
    // Screen readers hear who came and went, not the whole list again.
    const news = ordered
      .filter((p) => p.identity !== config.identity && before.get(p.identity) !== p.present)
      .filter((p) => p.present || before.has(p.identity))
      .map((p) =>
        fill(p.present ? gettext("%(name)s joined") : gettext("%(name)s left"), { name: p.name })
      );
    if (participantNews && news.length) participantNews.textContent = news.join(". ");
  }

  async function readParticipants() {
    if (!config.participantsUrl) return;
    const version = participantsVersion;
    try {
      const response = await fetch(config.participantsUrl, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (!response.ok) return;
      const rows = await response.json();
      if (version !== participantsVersion || !Array.isArray(rows)) return;
      renderParticipants(
        rows.map((r) => ({ identity: r.identity, name: r.name, role: r.role, present: !r.left_at }))
      );
    } catch {
      // Offline for a moment: the socket's next list (or reconnect) brings it.
    }
  }

  // transcript.js relays the socket: a fresh read on every (re)connect, then each change.
  document.addEventListener("rooms:transcript-connected", readParticipants);
  document.addEventListener("rooms:participants", (event) => {
    if (!Array.isArray(event.detail)) return;
    participantsVersion += 1;
    renderParticipants(event.detail);
  });

  // --- Cost of this session (host and space owners): follows the meter while a run is live -------

  const costBox = document.getElementById("session-cost");
  const RUNNING = ["STARTING", "ACTIVE", "STOPPING"];
  let costTimer = null;
  let lastRunStatus = null;

  function muted(text) {
    const span = document.createElement("span");
    span.className = "muted";
    span.textContent = text;
    return span;
  }

  async function refreshCost() {
    if (!costBox || !config.usageUrl) return;
    let body;
    try {
      const response = await fetch(config.usageUrl, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (!response.ok) return;
      body = await response.json();
    } catch {
      return; // the next tick tries again
    }
    const cells = costBox.querySelectorAll(".cost-table dd");
    if (cells.length < 3 || !body.cost || !body.totals) return;
    const { minutes, runs } = body.totals;
    // Amounts as the page writes them (with the currency) when the API gives them so.
    const amount = (name) => (body.cost.formatted || body.cost)[name];
    const billed = ngettext(
      "%(minutes)s min in %(runs)s run",
      "%(minutes)s min in %(runs)s runs",
      runs
    );
    cells[0].replaceChildren(
      `${amount("transcription_cost")} `,
      muted(`(${fill(billed, { minutes: number.format(minutes), runs: number.format(runs) })})`)
    );
    if (body.cost.uses_livekit) {
      const people = body.cost.participant_minutes;
      const video = ngettext(
        "%(minutes)s participant-minute",
        "%(minutes)s participant-minutes",
        people
      );
      cells[1].replaceChildren(
        `${amount("video_cost")} `,
        muted(`(${fill(video, { minutes: number.format(people) })})`)
      );
    }
    const translated = costBox.querySelector(".cost-table dd.cost-translation");
    if (translated && body.translation) {
      const parts = (body.translation.languages || []).map((l) =>
        fill(
          ngettext(
            "%(language)s: %(characters)s character, %(cost)s",
            "%(language)s: %(characters)s characters, %(cost)s",
            l.characters
          ),
          { language: l.name, characters: number.format(l.characters), cost: l.formatted_cost }
        )
      );
      translated.replaceChildren(
        `${body.translation.formatted_cost} `,
        muted(`(${parts.length ? parts.join("; ") : gettext("nothing translated")})`)
      );
    }
    cells[cells.length - 1].textContent = amount("total_cost");
    costBox.dataset.refreshedAt = new Date().toISOString();
  }

  // A run starting or stopping changes the box at once; while one runs it is read every minute
  // (billed minutes change at most that often).
  document.addEventListener("rooms:transcription-status", (event) => {
    const status = event.detail && event.detail.status;
    if (!costBox || !status) return;
    if (lastRunStatus !== null && status !== lastRunStatus) refreshCost();
    lastRunStatus = status;
    const running = RUNNING.includes(status);
    if (running && !costTimer) {
      costTimer = setInterval(refreshCost, (Number(config.costRefreshSeconds) || 60) * 1000);
    } else if (!running && costTimer) {
      clearInterval(costTimer);
      costTimer = null;
    }
  });
  document.addEventListener("rooms:session-ended", () => {
    clearInterval(costTimer);
    costTimer = null;
  });

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
      .on(LK.RoomEvent.Disconnected, () =>
        showNotice(gettext("Disconnected from the video room."))
      );
    await room.connect(join.livekit_url, join.livekit_token);
    await room.localParticipant.enableCameraAndMicrophone().catch(() => {
      showNotice(gettext("Camera or microphone unavailable: you can still watch and listen."));
    });
    room.localParticipant.videoTrackPublications.forEach((pub) => {
      if (pub.track) {
        const you = fill(gettext("%(name)s (you)"), { name: join.name });
        tileFor(join.identity, you).prepend(pub.track.attach());
      }
    });
    micButton.disabled = camButton.disabled = false;
    setToggle(micButton, room.localParticipant.isMicrophoneEnabled);
    setToggle(camButton, room.localParticipant.isCameraEnabled);
    micButton.addEventListener("click", async () => {
      const on = !room.localParticipant.isMicrophoneEnabled;
      await room.localParticipant.setMicrophoneEnabled(on);
      setToggle(micButton, on);
    });
    camButton.addEventListener("click", async () => {
      const on = !room.localParticipant.isCameraEnabled;
      await room.localParticipant.setCameraEnabled(on);
      setToggle(camButton, on);
    });
    leaveButton.addEventListener("click", () => room.disconnect());
    document.addEventListener("rooms:session-ended", () => {
      room.disconnect();
      micButton.disabled = camButton.disabled = true;
    });
    const activeDevices = () => ({
      videoinput: room.getActiveDevice("videoinput"),
      audioinput: room.getActiveDevice("audioinput"),
    });
    for (const kind of ["videoinput", "audioinput"]) {
      onDeviceChosen(kind, async (deviceId) => {
        try {
          await room.switchActiveDevice(kind, deviceId);
        } catch (error) {
          showNotice(fill(gettext("Could not switch device: %(error)s"), { error: error.message }));
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
      status.textContent = gettext("Live");
      status.className = "badge status-live";
    }
    if (join.video_enabled && window.LivekitClient) {
      try {
        await connectLiveKit(join);
      } catch (error) {
        showNotice(fill(gettext("Video could not connect: %(error)s"), { error: error.message }));
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
