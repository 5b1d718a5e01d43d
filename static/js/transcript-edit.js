// Corrections on the finished-session page (templates/sessions/finished.html): click a sentence
// to correct its text or give it to another participant; rename or merge speakers; the host
// reverts changes. Other people's corrections arrive live over /ws/sessions/<slug>/edits/.
// API: /api/sessions/<slug>/segments/... (transcription/edits_api.py).
(function () {
  "use strict";

  // Texts: Django's JavaScript catalogue, which base.html loads (gettext, interpolate).
  const fill = (text, values) => interpolate(text, values, true);
  const configNode = document.getElementById("edit-config");
  if (!configNode) return;
  const config = JSON.parse(configNode.textContent);
  const transcript = document.getElementById("transcript");
  const notice = document.getElementById("edit-notice");
  const BACKOFF_MAX_MS = 10000;
  let editor = null; // {uid, base, form, textarea, select, message}

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  async function api(path, method, body) {
    const response = await fetch(`${config.api}${path}`, {
      method,
      credentials: "same-origin",
      headers: {
        "X-CSRFToken": csrfToken(),
        Accept: "application/json",
        "Content-Type": "application/json",
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({}));
    return { status: response.status, ok: response.ok, data };
  }

  function showNotice(text, withReload) {
    notice.textContent = text;
    if (withReload) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "link";
      button.textContent = gettext("Reload");
      button.addEventListener("click", () => window.location.reload());
      notice.append(" ", button);
    }
    notice.hidden = !text;
  }

  function segment(uid) {
    return transcript.querySelector(`.seg[data-uid="${CSS.escape(uid)}"]`);
  }

  // --- applying a segment's new state (ours or someone else's) -------------------------------

  function apply(payload) {
    const node = segment(payload.utterance_id);
    if (!node) return;
    const speakerChanged = (payload.speaker_identity || "") !== (node.dataset.speaker || "");
    node.textContent = payload.text;
    node.dataset.rev = String(payload.revision);
    node.classList.remove("unsure");
    node.classList.toggle("edited", payload.revision > 0);
    node.title = payload.revision > 0 ? gettext("Corrected by a person") : "";
    node.dataset.speaker = payload.speaker_identity || "";
    if (speakerChanged) {
      showNotice(gettext("Speakers changed: reload to see the turns regrouped."), true);
    }
    if (editor && editor.uid === payload.utterance_id && editor.base < payload.revision) {
      editor.base = payload.revision;
      editor.message.textContent = fill(
        gettext("Somebody just changed this sentence to: “%(text)s”. Saving now keeps your version."),
        { text: payload.text }
      );
    }
  }

  // --- the editor ----------------------------------------------------------------------------

  function closeEditor() {
    if (!editor) return;
    editor.form.remove();
    segment(editor.uid)?.classList.remove("editing");
    editor = null;
  }

  function speakerOptions(select, current) {
    const room = new Option(gettext("Room (nobody in particular)"), "");
    select.add(room);
    for (const person of config.participants) {
      select.add(new Option(person.name, person.identity));
    }
    select.value = current;
    if (select.value !== current) select.value = "";
  }

  function openEditor(node) {
    closeEditor();
    const uid = node.dataset.uid;
    const form = document.createElement("form");
    form.className = "segment-editor card";
    const label = document.createElement("label");
    label.textContent = gettext("Correct the sentence");
    const textarea = document.createElement("textarea");
    textarea.rows = 3;
    textarea.maxLength = 5000;
    textarea.value = node.textContent.trim();
    label.append(textarea);
    const speakerLabel = document.createElement("label");
    speakerLabel.textContent = gettext("Said by");
    const select = document.createElement("select");
    speakerOptions(select, node.dataset.speaker || "");
    speakerLabel.append(select);
    const message = document.createElement("p");
    message.className = "muted";
    message.setAttribute("role", "status");
    const save = document.createElement("button");
    save.type = "submit";
    save.className = "primary";
    save.textContent = gettext("Save");
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.textContent = gettext("Cancel");
    cancel.addEventListener("click", closeEditor);
    const actions = document.createElement("div");
    actions.className = "row-form";
    actions.append(save, cancel);
    form.append(label, speakerLabel, message, actions);
    node.closest("li").append(form);
    node.classList.add("editing");
    editor = { uid, base: Number(node.dataset.rev || 0), form, textarea, select, message, node };
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      submit();
    });
    form.addEventListener("keydown", (event) => {
      if (event.key === "Escape") closeEditor();
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) submit();
    });
    textarea.focus();
  }

  async function submit() {
    if (!editor) return;
    const current = editor;
    const body = { base_revision: current.base };
    if (current.textarea.value.trim() !== current.node.textContent.trim()) {
      body.text = current.textarea.value;
    }
    if (current.select.value !== (current.node.dataset.speaker || "")) {
      body.speaker_identity = current.select.value;
    }
    if (body.text === undefined && body.speaker_identity === undefined) {
      closeEditor();
      return;
    }
    current.message.textContent = gettext("Saving…");
    const result = await api(`/${encodeURIComponent(current.uid)}`, "PATCH", body);
    if (result.ok) {
      apply(result.data);
      if (editor === current) closeEditor();
    } else if (result.status === 409 && result.data.current) {
      // Nothing is lost: the draft stays, the base moves to what is there now.
      current.base = result.data.current.revision;
      apply(result.data.current);
      current.message.textContent = fill(
        gettext("%(detail)s “%(text)s”. Save again to replace it with yours."),
        { detail: result.data.detail, text: result.data.current.text }
      );
    } else {
      current.message.textContent = result.data.detail || gettext("Could not save the correction.");
    }
  }

  if (config.can_edit) {
    transcript.addEventListener("click", (event) => {
      const node = event.target.closest(".seg");
      if (node && !(editor && editor.uid === node.dataset.uid)) openEditor(node);
    });
    transcript.addEventListener("keydown", (event) => {
      const node = event.target.closest(".seg");
      if (node && event.key === "Enter") openEditor(node);
    });
    for (const node of transcript.querySelectorAll(".seg")) {
      node.tabIndex = 0;
      node.setAttribute("role", "button");
    }
  }

  // --- speakers: rename, merge -----------------------------------------------------------------

  function speakerForm(item) {
    if (item.querySelector(".speaker-form")) return;
    const identity = item.dataset.identity || "";
    const name = item.dataset.name || "";
    const form = document.createElement("form");
    form.className = "speaker-form";
    const input = document.createElement("input");
    input.type = "text";
    input.value = name;
    input.maxLength = 120;
    input.required = true;
    input.setAttribute("aria-label", gettext("New name"));
    const rename = document.createElement("button");
    rename.type = "submit";
    rename.textContent = gettext("Rename");
    const merge = document.createElement("select");
    merge.setAttribute("aria-label", gettext("Merge into"));
    merge.add(new Option(gettext("Merge into…"), ""));
    for (const other of document.querySelectorAll(".talk-times li")) {
      if (other === item) continue;
      const value = JSON.stringify([other.dataset.identity || "", other.dataset.name || ""]);
      merge.add(new Option(other.dataset.name, value));
    }
    const message = document.createElement("span");
    message.className = "muted";
    message.setAttribute("role", "status");
    form.append(input, rename, merge, message);
    item.append(form);
    const source = { speaker_identity: identity, speaker_name: name };
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const result = await api("/speakers/rename", "POST", { ...source, name: input.value });
      if (result.ok) window.location.reload();
      else message.textContent = result.data.detail || gettext("Could not rename.");
    });
    merge.addEventListener("change", async () => {
      if (!merge.value) return;
      const [targetIdentity, targetName] = JSON.parse(merge.value);
      const target = { speaker_identity: targetIdentity, speaker_name: targetName };
      const result = await api("/speakers/merge", "POST", { source, target });
      if (result.ok) window.location.reload();
      else message.textContent = result.data.detail || gettext("Could not merge.");
    });
    input.focus();
  }

  for (const button of document.querySelectorAll(".speaker-edit")) {
    button.addEventListener("click", () => speakerForm(button.closest("li")));
  }

  // --- history: revert -------------------------------------------------------------------------

  for (const button of document.querySelectorAll(".change-revert")) {
    button.addEventListener("click", async () => {
      button.disabled = true;
      const result = await api(`/changes/${encodeURIComponent(button.dataset.change)}/revert`, "POST");
      if (result.ok) window.location.reload();
      else {
        button.disabled = false;
        showNotice(result.data.detail || gettext("Could not revert."), false);
      }
    });
  }

  // --- other people's corrections, live ---------------------------------------------------------

  let attempt = 0;
  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${window.location.host}${config.edits_ws_path}`);
    let opened = 0;
    ws.addEventListener("open", () => {
      opened = performance.now();
    });
    ws.addEventListener("message", (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message.type === "segment_updated") apply(message);
      if (message.type === "access_revoked") showNotice(message.message, false);
    });
    ws.addEventListener("close", (event) => {
      if ([4001, 4003, 4004].includes(event.code)) return;
      if (opened && performance.now() - opened > 10000) attempt = 0;
      const ceiling = Math.min(BACKOFF_MAX_MS, 500 * 2 ** attempt);
      attempt += 1;
      setTimeout(connect, ceiling / 2 + Math.random() * (ceiling / 2));
    });
    transcript.dataset.live = "connecting";
    ws.addEventListener("open", () => {
      transcript.dataset.live = "on";
    });
  }
  connect();
})();
