// Live transcript sidebar: the transcript WebSocket (docs/transcript-protocol.md), the
// Start/Stop transcription buttons, the caption language (translated finals, the original on
// hover or for the whole sidebar) and, in browser mode (no LiveKit), the microphone audio.
(function () {
  "use strict";

  const root = document.getElementById("transcript");
  const Rooms = (window.Rooms = window.Rooms || {});
  if (!root || !Rooms.api) return;

  const config = JSON.parse(document.getElementById("page-config").textContent);
  const statusText = document.getElementById("transcript-status");
  const errorBox = document.getElementById("transcript-error");
  const scroller = document.getElementById("transcript-scroll");
  const finalsList = document.getElementById("transcript-lines");
  const partialsList = document.getElementById("transcript-partials");
  const jumpButton = document.getElementById("transcript-jump");
  const startButton = document.getElementById("btn-transcription-start");
  const stopButton = document.getElementById("btn-transcription-stop");
  const captionSelect = document.getElementById("caption-language");
  const originalToggle = document.getElementById("captions-show-original");
  const captionsNote = document.getElementById("captions-note");
  const captionsHelp = document.getElementById("captions-help");

  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 10000;
  const PING_EVERY_MS = 25000;
  // A connection that lived this long resets the backoff; one that dies at once does not.
  const STABLE_AFTER_MS = 10000;
  const MAX_BUFFERED_BYTES = 256 * 1024;
  // The server closes (4008) above 50 frames in one second; stay well under it.
  const MAX_FRAMES_PER_SECOND = 40;
  const MAX_PENDING_FRAMES = 25; // 1 s of audio
  const NEAR_BOTTOM_PX = 48;
  const CLOSE_MESSAGES = {
    4001: gettext("You are not signed in any more: reload the page to see the transcript."),
    4003: gettext("You do not have access to this session's transcript."),
  };
  // The transcription's state (in Russian, feminine: "расшифровка"), hence the context.
  const STATUS_LABELS = {
    NONE: pgettext("transcription", "Not started"),
    STARTING: pgettext("transcription", "Starting…"),
    ACTIVE: pgettext("transcription", "Transcribing"),
    STOPPING: pgettext("transcription", "Stopping…"),
    STOPPED: pgettext("transcription", "Stopped"),
    FAILED: pgettext("transcription", "Failed"),
  };
  // Numbers and language names in the page's language (base.html sets <html lang>).
  const pageLanguage = document.documentElement.lang || "en";
  const percent = new Intl.NumberFormat(pageLanguage, { style: "percent" });
  const languageNames = new Intl.DisplayNames([pageLanguage], { type: "language" });

  const lines = new Map(); // utterance_id → {el, start, final, segment}
  // The languages of the finals seen so far (history included): with more than one, every line
  // shows its language. Partials do not count: their language may still change.
  const languages = new Set();
  let join = null;
  let socket = null;
  let open = false;
  let openedAt = 0;
  let attempt = 0;
  let reconnectTimer = null;
  let pingTimer = null;
  let finished = false; // no more reconnects (session ended, forbidden, page leaving)
  let ended = false;
  let status = { status: null, mode: null, error: null };
  let pendingAction = false;
  let browserAudio = false;
  let activeSpeakers = null;
  let follow = true;
  let scrollQueued = false;
  // Captions: the language this socket reads ("" = as spoken), its stored and live
  // translations by utterance_id ({text, stale}), and when each language started in the run.
  const captions = { language: "", via: null, names: new Map(), since: {} };
  const translations = new Map();
  let wantedLanguage = null; // chosen while the socket was closed: sent on the next connect
  const pendingFrames = [];
  const sendTimes = [];
  Rooms.transcriptStats = { framesSent: 0, framesDropped: 0, bytesSent: 0 };

  // --- Rendering ------------------------------------------------------------------------------

  function formatTime(seconds) {
    const total = Math.max(0, Math.floor(Number(seconds) || 0));
    const s = String(total % 60).padStart(2, "0");
    const m = Math.floor(total / 60);
    if (m < 60) return `${String(m).padStart(2, "0")}:${s}`;
    return `${Math.floor(m / 60)}:${String(m % 60).padStart(2, "0")}:${s}`;
  }

  function fillLine(el, segment) {
    const start = Number(segment.start) || 0;
    el.dataset.start = String(start);
    el.querySelector(".speaker").textContent = segment.speaker_name || gettext("Room");
    const time = el.querySelector(".time");
    time.textContent = formatTime(start);
    time.dateTime = `PT${Math.floor(start)}S`;
    const text = el.querySelector(".text");
    fillText(text, segment);
    el.dataset.rev = String(segment.revision || 0);
    el.classList.toggle("edited", (segment.revision || 0) > 0);
    const language = typeof segment.language === "string" ? segment.language.toLowerCase() : "";
    if (language) {
      el.dataset.language = language;
      text.lang = language;
    }
    tagLanguage(el);
    fillCaption(el, segment);
  }

  /** A final's translation into the caption language, when there is one: shown instead of
   * the text as spoken (which stays in `.text`, for corrections and "Show original"). */
  function fillCaption(el, segment) {
    const partial = el.classList.contains("partial");
    const known = partial ? null : translations.get(el.dataset.utteranceId);
    let caption = el.querySelector(".caption");
    el.classList.toggle("translated", Boolean(known));
    if (!known) {
      if (caption) caption.remove();
      return;
    }
    if (!caption) {
      caption = document.createElement("span");
      caption.className = "caption";
      el.insertBefore(caption, el.querySelector(".text"));
    }
    caption.textContent = known.text;
    caption.lang = captions.language;
    caption.classList.toggle("stale", Boolean(known.stale));
    let title = interpolate(gettext("Original: %(text)s"), { text: segment.text || "" }, true);
    if (known.stale) {
      title += `\n${gettext("The original was corrected after this translation.")}`;
    }
    caption.title = title;
  }

  function refillCaptions() {
    for (const line of lines.values()) {
      if (line.final) fillCaption(line.el, line.segment);
    }
  }

  /** The line's language as a short tag ("RU", its name on hover), in multilingual sessions. */
  function tagLanguage(el) {
    const language = el.dataset.language;
    let tag = el.querySelector(".lang-tag");
    if (languages.size < 2 || !language) {
      if (tag) tag.remove();
      return;
    }
    if (!tag) {
      tag = document.createElement("abbr");
      tag.className = "lang-tag";
      el.insertBefore(tag, el.querySelector(".text"));
    }
    tag.textContent = language.toUpperCase();
    tag.title = languageName(language);
  }

  function languageName(code) {
    let name;
    try {
      name = languageNames.of(code);
    } catch {
      return code; // not a language tag Intl knows
    }
    return name ? name.charAt(0).toLocaleUpperCase(pageLanguage) + name.slice(1) : code;
  }

  /** A final in a language not seen before: the second one tags every line, earlier ones too. */
  function noteLanguage(segment) {
    const language = typeof segment.language === "string" ? segment.language.toLowerCase() : "";
    if (!language || languages.has(language)) return;
    languages.add(language);
    if (languages.size === 2) for (const line of lines.values()) tagLanguage(line.el);
  }

  /** The text, with the words the engine was unsure of underlined (confidence on hover). */
  function fillText(node, segment) {
    const text = segment.text || "";
    const words = Array.isArray(segment.words) ? segment.words : null;
    const threshold = Number(config.lowConfidence) || 0;
    node.replaceChildren();
    node.classList.remove("unsure");
    node.removeAttribute("title");
    const pieces = words ? words.map((w) => String(w.text || "").trim()) : [];
    if (words && pieces.filter(Boolean).join(" ") === text.split(/\s+/).filter(Boolean).join(" ")) {
      words.forEach((word, i) => {
        if (!pieces[i]) return;
        if (node.childNodes.length) node.append(" ");
        if (typeof word.confidence === "number" && word.confidence < threshold) {
          const mark = document.createElement("span");
          mark.className = "unsure";
          mark.title = confidenceTitle(word.confidence);
          mark.textContent = pieces[i];
          node.append(mark);
        } else {
          node.append(pieces[i]);
        }
      });
      return;
    }
    node.textContent = text;
    if (typeof segment.confidence === "number" && segment.confidence < threshold) {
      node.classList.add("unsure");
      node.title = confidenceTitle(segment.confidence);
    }
  }

  function confidenceTitle(confidence) {
    return interpolate(
      gettext("Recognised with %(percent)s confidence"),
      { percent: percent.format(confidence) },
      true
    );
  }

  /** People corrected a final already shown: it changes in place. */
  function applyUpdate(segment) {
    const known = lines.get(segment.utterance_id);
    if (!known || !known.final) return;
    // The translation shown was made of the text before this correction.
    const translation = translations.get(segment.utterance_id);
    if (translation && (segment.revision || 0) > Number(known.el.dataset.rev || 0)) {
      translation.stale = true;
    }
    known.segment = { ...known.segment, ...segment };
    if (known.editor) known.editor.notice(segment);
    else fillLine(known.el, known.segment);
  }

  // --- Correcting a final from the sidebar (text only; speakers on the finished page) -----------

  function openLineEditor(line) {
    const el = line.el;
    if (line.editor) return;
    const textNode = el.querySelector(".text");
    const input = document.createElement("textarea");
    input.className = "line-editor";
    input.rows = 2;
    input.maxLength = 5000;
    input.value = textNode.textContent;
    input.setAttribute(
      "aria-label",
      gettext("Correct this sentence (Enter saves, Escape cancels)")
    );
    const hint = document.createElement("span");
    hint.className = "line-hint";
    hint.setAttribute("role", "status");
    textNode.hidden = true;
    el.append(input, hint);
    let base = Number(el.dataset.rev || 0);
    const close = (segment) => {
      input.remove();
      hint.remove();
      textNode.hidden = false;
      line.editor = null;
      if (segment) applyUpdate(segment);
    };
    line.editor = {
      notice(segment) {
        base = segment.revision;
        hint.textContent = interpolate(
          gettext("Changed meanwhile to “%(text)s”: Enter keeps yours."),
          { text: segment.text },
          true
        );
      },
    };
    input.addEventListener("keydown", async (event) => {
      if (event.key === "Escape") close(null);
      if (event.key !== "Enter" || event.shiftKey) return;
      event.preventDefault();
      if (input.value.trim() === textNode.textContent.trim()) return close(null);
      hint.textContent = gettext("Saving…");
      const path = `/api/sessions/${encodeURIComponent(config.slug)}/segments/${encodeURIComponent(el.dataset.utteranceId)}`;
      const response = await fetch(path, {
        method: "PATCH",
        credentials: "same-origin",
        headers: {
          "X-CSRFToken": Rooms.csrfToken(),
          Accept: "application/json",
          "Content-Type": "application/json",
        },
        body: JSON.stringify({ base_revision: base, text: input.value }),
      });
      const body = await response.json().catch(() => ({}));
      if (response.ok) return close(body);
      if (response.status === 409 && body.current) return line.editor.notice(body.current);
      hint.textContent = body.detail || gettext("Could not save the correction.");
      return undefined;
    });
    input.focus();
  }

  finalsList.addEventListener("dblclick", (event) => {
    const el = event.target.closest("li.line");
    const line = el && lines.get(el.dataset.utteranceId);
    if (line && line.final) openLineEditor(line);
  });

  function createLine(segment, isFinal) {
    const el = document.createElement("li");
    el.className = isFinal ? "line" : "line partial";
    el.dataset.utteranceId = segment.utterance_id;
    for (const [tag, cls] of [["span", "speaker"], ["time", "time"], ["span", "text"]]) {
      const part = document.createElement(tag);
      part.className = cls;
      el.appendChild(part);
    }
    fillLine(el, segment);
    return el;
  }

  // Lists stay ordered by start time; new lines almost always belong at the end.
  function insertSorted(list, el, start) {
    let next = null;
    let prev = list.lastElementChild;
    while (prev && Number(prev.dataset.start) > start) {
      next = prev;
      prev = prev.previousElementSibling;
    }
    list.insertBefore(el, next);
  }

  /** Merges one segment: partials update in place; a final replaces its partial, once. */
  function upsert(segment) {
    if (!segment || typeof segment.utterance_id !== "string" || !segment.utterance_id) return;
    const id = segment.utterance_id;
    const start = Number(segment.start) || 0;
    const known = lines.get(id);
    if (known && known.final) {
      // A history after a reconnect may carry a translation that arrived while away.
      if (rememberTranslation(id, segment.translation)) fillCaption(known.el, known.segment);
      // A final changes only when people correct it (a reconnect's history may carry that).
      if ((segment.revision || 0) > Number(known.el.dataset.rev || 0)) applyUpdate(segment);
      return;
    }
    if (segment.is_final) {
      noteLanguage(segment);
      rememberTranslation(id, segment.translation);
      if (known) known.el.remove();
      const el = createLine(segment, true);
      lines.set(id, { el, start, final: true, segment });
      insertSorted(finalsList, el, start);
      updateCaptionsNote();
    } else if (known) {
      fillLine(known.el, segment);
      if (start !== known.start) {
        known.start = start;
        known.el.remove();
        insertSorted(partialsList, known.el, start);
      }
    } else {
      const el = createLine(segment, false);
      lines.set(id, { el, start, final: false, segment });
      insertSorted(partialsList, el, start);
    }
    queueScroll();
  }

  function dropPartials() {
    for (const [id, line] of lines) {
      if (!line.final) {
        line.el.remove();
        lines.delete(id);
      }
    }
  }

  /** History may be long: add it without making screen readers read it all out. */
  function mergeHistory(segments) {
    dropPartials(); // anything still in progress is sent again live
    finalsList.setAttribute("aria-live", "off");
    for (const segment of segments) upsert({ ...segment, is_final: true });
    setTimeout(() => finalsList.setAttribute("aria-live", "polite"), 250);
  }

  // --- Captions: the caption language, translations, "Show original" ----------------------------

  /** A `history` segment's translation (only ever in this socket's caption language). */
  function rememberTranslation(id, translation) {
    if (!translation || typeof translation.text !== "string" || !translation.text) return false;
    if (translation.language !== captions.language) return false;
    translations.set(id, { text: translation.text, stale: Boolean(translation.stale) });
    return true;
  }

  function languageLabel(code) {
    return captions.names.get(code) || languageName(code);
  }

  /** `connected.captions`: the menu's choices, this person's saved choice, who translates. */
  function setupCaptions(info) {
    if (!captionSelect || !info || typeof info !== "object") return;
    if (Array.isArray(info.choices)) {
      const choices = info.choices.filter((c) => Array.isArray(c) && typeof c[0] === "string");
      captions.names = new Map(choices.map((c) => [c[0], String(c[1] || c[0])]));
      const chosen = typeof info.language === "string" ? info.language : "";
      if (chosen && !captions.names.has(chosen)) captions.names.set(chosen, languageName(chosen));
      while (captionSelect.options.length > 1) captionSelect.remove(1);
      for (const [code, name] of captions.names) captionSelect.add(new Option(name, code));
    }
    captions.via = typeof info.via === "string" ? info.via : "";
    const translating = captions.via !== "";
    captionSelect.disabled = !translating;
    if (captionsHelp) captionsHelp.hidden = translating;
    const saved = typeof info.language === "string" ? info.language : "";
    if (wantedLanguage !== null && wantedLanguage !== saved && translating) {
      captionSelect.value = wantedLanguage;
      sendJson({ type: "caption_language", language: wantedLanguage });
    } else {
      setCaptionLanguage(saved, null);
    }
    wantedLanguage = null;
  }

  /** The server confirmed the caption language (with its stored translations, or null when
   * they arrive with the history). */
  function setCaptionLanguage(language, stored) {
    const changed = language !== captions.language;
    captions.language = language;
    if (captionSelect) captionSelect.value = language;
    if (changed || stored) translations.clear();
    if (Array.isArray(stored)) {
      for (const item of stored) {
        if (!item || typeof item.utterance_id !== "string") continue;
        if (typeof item.text !== "string" || !item.text) continue;
        translations.set(item.utterance_id, { text: item.text, stale: Boolean(item.stale) });
      }
    }
    root.dataset.captionLanguage = language;
    if (originalToggle) {
      originalToggle.disabled = !language;
      originalToggle.closest(".captions-original").hidden = !language;
    }
    updateDownloads();
    refillCaptions();
    updateCaptionsNote();
  }

  function applyTranslation(message) {
    if (typeof message.utterance_id !== "string" || typeof message.text !== "string") return;
    if (message.language !== captions.language || !message.text) return;
    translations.set(message.utterance_id, { text: message.text, stale: false });
    const line = lines.get(message.utterance_id);
    if (line && line.final) {
      fillCaption(line.el, line.segment);
      queueScroll();
    }
  }

  /** `captions` (or a status's `captions`): the languages the run translates, since when. */
  function applyCaptions(info) {
    captions.since = info && typeof info.since === "object" && info.since ? info.since : {};
    updateCaptionsNote();
  }

  /** Lines said before the chosen language started stay as spoken: say so, once. */
  function updateCaptionsNote() {
    if (!captionsNote) return;
    const language = captions.language;
    const since = language ? Number(captions.since[language]) : NaN;
    let earlier = false;
    if (Number.isFinite(since)) {
      for (const line of lines.values()) {
        if (line.final && line.start < since && !translations.has(line.el.dataset.utteranceId)) {
          earlier = true;
          break;
        }
      }
    }
    const text = earlier
      ? interpolate(
          gettext("%(language)s captions start at %(time)s; earlier lines stay as spoken."),
          { language: languageLabel(language), time: formatTime(since) },
          true
        )
      : "";
    if (captionsNote.textContent !== text) captionsNote.textContent = text;
    captionsNote.hidden = !text;
  }

  /** The sidebar's downloads come in the caption language too. */
  function updateDownloads() {
    for (const link of root.querySelectorAll(".transcript-downloads a")) {
      if (!link.dataset.base) link.dataset.base = link.getAttribute("href");
      const query = captions.language ? `?lang=${encodeURIComponent(captions.language)}` : "";
      link.setAttribute("href", link.dataset.base + query);
    }
  }

  if (captionSelect) {
    captionSelect.addEventListener("change", () => {
      const language = captionSelect.value;
      if (open) sendJson({ type: "caption_language", language });
      else wantedLanguage = language;
    });
  }
  if (originalToggle) {
    originalToggle.addEventListener("change", () => {
      root.classList.toggle("show-original", originalToggle.checked);
    });
  }

  // --- Scrolling: follow the bottom only while the reader is there ------------------------------

  function nearBottom() {
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight <= NEAR_BOTTOM_PX;
  }

  function queueScroll() {
    if (scrollQueued) return;
    scrollQueued = true;
    requestAnimationFrame(() => {
      scrollQueued = false;
      if (follow) scroller.scrollTop = scroller.scrollHeight;
      jumpButton.hidden = follow || nearBottom();
    });
  }

  // Only the reader moving up stops the following. A scroll event of our own arrives a frame
  // later, when more lines (or the status above) may already have moved the bottom away: judged
  // by distance alone, it stopped the following with nobody touching anything.
  let lastTop = 0;
  scroller.addEventListener("scroll", () => {
    const top = scroller.scrollTop;
    if (nearBottom()) follow = true;
    else if (top < lastTop) follow = false;
    lastTop = top;
    if (follow) jumpButton.hidden = true;
    else if (scroller.scrollHeight > scroller.clientHeight) jumpButton.hidden = false;
  });

  // Layout that changes without a new line (the status above, a web font, the window) moves the
  // bottom too: keep to it while following.
  if (typeof ResizeObserver === "function") {
    const keepBottom = new ResizeObserver(() => {
      if (follow) queueScroll();
    });
    keepBottom.observe(scroller);
    for (const list of scroller.children) keepBottom.observe(list);
  }

  jumpButton.addEventListener("click", () => {
    follow = true;
    scroller.scrollTop = scroller.scrollHeight;
    jumpButton.hidden = true;
  });

  // --- Status, errors, buttons ------------------------------------------------------------------

  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = !text;
  }

  function isRunning() {
    return ["STARTING", "ACTIVE", "STOPPING"].includes(status.status);
  }

  function renderStatus() {
    let text;
    if (ended) text = gettext("Ended"); // session.js's notice says it, once
    else if (finished && !open) text = gettext("Disconnected");
    else if (!open && status.status === null) {
      text = attempt ? gettext("Reconnecting…") : gettext("Connecting…");
    } else if (!open) text = gettext("Reconnecting…");
    else {
      text = STATUS_LABELS[status.status] || status.status;
      if (status.status === "FAILED" && status.errorCode === "limit_reached") {
        text = gettext("Limit reached");
      }
      if (status.status === "ACTIVE" && status.mode === "BROWSER" && browserAudio && !Rooms.mic.isOn()) {
        text = interpolate(gettext("%(status)s · your microphone is off"), { status: text }, true);
      }
    }
    statusText.textContent = text;
    statusText.dataset.status = ended ? "ENDED" : status.status || "";

    if (startButton && stopButton) {
      const running = isRunning();
      const usable = open && !ended && status.status !== null && !pendingAction;
      startButton.hidden = running;
      stopButton.hidden = !running;
      startButton.disabled = !usable || running;
      stopButton.disabled = !usable || status.status === "STOPPING";
    }
  }

  function errorText(message) {
    if (message.code === "too_many_senders" && message.name && message.limit) {
      return interpolate(
        ngettext(
          "%(name)s's microphone is not transcribed: this session transcribes %(limit)s microphone at once. When someone leaves, the next microphone is transcribed.",
          "%(name)s's microphone is not transcribed: this session transcribes %(limit)s microphones at once. When someone leaves, the next microphone is transcribed.",
          message.limit
        ),
        { name: message.name, limit: message.limit },
        true
      );
    }
    return message.message || gettext("Something went wrong with the transcript.");
  }

  function applyStatus(message) {
    const previous = status.status;
    if ("captions" in message) applyCaptions(message.captions);
    status = {
      status: message.status,
      mode: message.mode || null,
      error: message.error || null,
      errorCode: message.error_code || null,
    };
    if (status.status === "FAILED" && status.errorCode === "limit_reached") {
      // A limit stopped it: the message says which one and what to do.
      showError(status.error);
    } else if (status.status === "FAILED") {
      showError(
        interpolate(
          gettext("Transcription failed: %(error)s"),
          { error: status.error || gettext("unknown error") },
          true
        )
      );
    } else if (status.status === "STARTING" && previous !== "STARTING") {
      showError("");
    }
    if (["STOPPED", "FAILED", "NONE"].includes(status.status)) dropPartials();
    document.dispatchEvent(new CustomEvent("rooms:transcription-status", { detail: status }));
    // A new (or restarted) server-mode run knows nobody's speaking state yet: tell it.
    if (status.status === "ACTIVE" && previous !== "ACTIVE" && activeSpeakers) {
      sendJson({ type: "active_speakers", speakers: activeSpeakers });
    }
    renderStatus();
    updateAudio();
  }

  async function transcriptionAction(action) {
    pendingAction = true;
    renderStatus();
    if (action === "start") showError("");
    try {
      await Rooms.api(`/api/sessions/${encodeURIComponent(config.slug)}/transcription/${action}`);
    } catch (error) {
      showError(error.message);
    } finally {
      pendingAction = false;
      renderStatus();
    }
  }

  if (startButton) startButton.addEventListener("click", () => transcriptionAction("start"));
  if (stopButton) stopButton.addEventListener("click", () => transcriptionAction("stop"));

  /** Either socket learnt that the session ended (session.js tells the page once). */
  function sessionEnded() {
    if (Rooms.sessionEnded) Rooms.sessionEnded();
    else stopForEnd();
  }

  function stopForEnd() {
    if (ended) return;
    ended = true;
    finished = true;
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    showError("");
    dropPartials();
    if (browserAudio) Rooms.mic.stop();
    renderStatus();
  }
  document.addEventListener("rooms:session-ended", stopForEnd);

  // --- WebSocket ------------------------------------------------------------------------------

  function sendJson(message) {
    if (open) socket.send(JSON.stringify(message));
  }

  function connect() {
    if (finished) return;
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    const path = (join && join.transcript_ws_path) || `/ws/sessions/${config.slug}/transcript/`;
    const ws = new WebSocket(`${scheme}//${window.location.host}${path}`);
    ws.binaryType = "arraybuffer";
    socket = ws;
    ws.addEventListener("open", () => {
      if (socket !== ws) return;
      open = true;
      openedAt = performance.now();
      pingTimer = setInterval(() => sendJson({ type: "ping" }), PING_EVERY_MS);
      renderStatus();
    });
    ws.addEventListener("message", (event) => {
      if (socket === ws && typeof event.data === "string") handleMessage(event.data);
    });
    ws.addEventListener("close", (event) => {
      if (socket === ws) handleClose(event.code);
    });
  }

  function handleMessage(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    switch (message.type) {
      case "connected":
        setupCaptions(message.captions);
        if (activeSpeakers) sendJson({ type: "active_speakers", speakers: activeSpeakers });
        document.dispatchEvent(new CustomEvent("rooms:transcript-connected"));
        break;
      case "participants":
        // Who is in the session now: session.js shows it.
        if (Array.isArray(message.participants)) {
          document.dispatchEvent(
            new CustomEvent("rooms:participants", { detail: message.participants })
          );
        }
        break;
      case "history":
        if (Array.isArray(message.segments)) mergeHistory(message.segments);
        break;
      case "transcription_status":
        applyStatus(message);
        break;
      case "transcript":
        upsert(message);
        break;
      case "segment_updated":
        applyUpdate(message);
        break;
      case "caption_language":
        if (typeof message.language === "string") {
          const stored = Array.isArray(message.translations) ? message.translations : [];
          setCaptionLanguage(message.language, stored);
        }
        break;
      case "translation":
        applyTranslation(message);
        break;
      case "captions":
        applyCaptions(message);
        break;
      case "error":
        showError(errorText(message));
        break;
      case "session_ended":
        sessionEnded();
        break;
      case "access_revoked":
        // Then the server closes with 4003: say why instead of the generic refusal.
        if (typeof message.message === "string") CLOSE_MESSAGES[4003] = message.message;
        break;
      default:
        break; // pong, and types added later
    }
  }

  function handleClose(code) {
    if (open && performance.now() - openedAt >= STABLE_AFTER_MS) attempt = 0;
    open = false;
    socket = null;
    clearInterval(pingTimer);
    updateAudio();
    if (code === 4004) {
      sessionEnded();
      return;
    }
    if (CLOSE_MESSAGES[code]) {
      finished = true;
      showError(CLOSE_MESSAGES[code]);
    }
    renderStatus();
    scheduleReconnect();
  }

  function scheduleReconnect() {
    if (finished || reconnectTimer) return;
    // Exponential backoff with "equal jitter": half fixed, half random, capped at 10 s.
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    attempt += 1;
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

  window.addEventListener("pagehide", () => {
    finished = true;
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    if (socket) socket.close(1000);
  });

  // Back from the back/forward cache: the socket was closed on the way out.
  window.addEventListener("pageshow", (event) => {
    if (event.persisted && join && !ended) {
      finished = false;
      attempt = 0;
      connect();
    }
  });

  // --- Speakers (server mode) and microphone audio (browser mode) -------------------------------

  document.addEventListener("rooms:active-speakers", (event) => {
    const speakers = Array.isArray(event.detail) ? event.detail : [];
    activeSpeakers = speakers.filter((s) => typeof s === "string" && s.length <= 64).slice(0, 50);
    sendJson({ type: "active_speakers", speakers: activeSpeakers });
  });

  function shouldSendAudio() {
    return (
      browserAudio &&
      open &&
      status.status === "ACTIVE" &&
      status.mode === "BROWSER" &&
      Rooms.mic.isOn()
    );
  }

  function updateAudio() {
    if (!browserAudio) return;
    const on = shouldSendAudio();
    Rooms.mic.setTapEnabled(on);
    if (!on) pendingFrames.length = 0;
  }

  function framesInLastSecond(now) {
    while (sendTimes.length && now - sendTimes[0] >= 1000) sendTimes.shift();
    return sendTimes.length;
  }

  // Frames come every 40 ms; after a stall of the main thread they arrive in a burst. Latency
  // beats completeness: past 256 KiB of unsent data frames are dropped, and a burst is coalesced
  // into one larger frame so the server's frame-rate limit is never hit.
  function onFrame(buffer) {
    const stats = Rooms.transcriptStats;
    if (!shouldSendAudio()) return;
    if (socket.bufferedAmount > MAX_BUFFERED_BYTES) {
      stats.framesDropped += 1 + pendingFrames.length;
      pendingFrames.length = 0;
      return;
    }
    pendingFrames.push(buffer);
    if (pendingFrames.length > MAX_PENDING_FRAMES) {
      pendingFrames.shift();
      stats.framesDropped += 1;
    }
    const now = performance.now();
    if (framesInLastSecond(now) >= MAX_FRAMES_PER_SECOND) return;
    let payload = pendingFrames[0];
    if (pendingFrames.length > 1) {
      const joined = new Uint8Array(pendingFrames.reduce((n, b) => n + b.byteLength, 0));
      let offset = 0;
      for (const b of pendingFrames) {
        joined.set(new Uint8Array(b), offset);
        offset += b.byteLength;
      }
      payload = joined.buffer;
    }
    socket.send(payload);
    sendTimes.push(now);
    stats.framesSent += pendingFrames.length;
    stats.bytesSent += payload.byteLength;
    pendingFrames.length = 0;
  }

  // mic.js owns the microphone and its button; the transcript follows its state.
  for (const name of ["rooms:mic-muted", "rooms:mic-ended"]) {
    document.addEventListener(name, () => {
      renderStatus();
      updateAudio();
    });
  }

  // --- Start --------------------------------------------------------------------------------

  function start(payload) {
    if (join) return;
    join = payload;
    // With LiveKit, session.js owns the microphone and transcription uses server mode.
    browserAudio = !join.video_enabled && Boolean(Rooms.mic);
    if (browserAudio) Rooms.mic.onFrame(onFrame);
    renderStatus();
    connect();
  }

  document.addEventListener("rooms:joined", (event) => start(event.detail));
  if (window.RoomsSession && window.RoomsSession.join) start(window.RoomsSession.join);
  renderStatus();
})();
