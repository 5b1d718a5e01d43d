// The local microphone when the page owns it (no LiveKit; with LiveKit, session.js owns it).
// One MediaStream for the whole page, `window.Rooms.micStream`, for every feature that needs it
// (a peer-to-peer call, the transcript), the #btn-mic toggle, and a PCM tap that turns the
// stream into 40 ms frames of PCM16LE 16 kHz mono through static/js/pcm-worklet.js.
//
// Events on `document`: "rooms:mic-stream" (detail: the MediaStream, when acquired and again
// after `setDevice` swapped it for another device's), "rooms:mic-muted" (detail: {muted}),
// "rooms:mic-ended" (the device went away). Whether the microphone is on is the track's
// `enabled` flag and nothing else: peers hear it and the transcript gets it only while it is set.
(function () {
  "use strict";

  const Rooms = (window.Rooms = window.Rooms || {});
  const workletUrl = document.currentScript.dataset.worklet;
  const button = document.getElementById("btn-mic");
  const notice = document.getElementById("video-notice");

  const CONSTRAINTS = {
    channelCount: 1,
    echoCancellation: true,
    noiseSuppression: true,
    autoGainControl: true,
  };

  let streamPromise = null;
  let context = null;
  let source = null;
  let node = null;
  let tapPromise = null;
  let frameHandler = null;
  let tapEnabled = false;
  let owned = false;
  let stopped = false;

  /** Makes `stream` the page's microphone, its tracks on or off, and tells the page. */
  function adopt(stream, on) {
    Rooms.micStream = stream;
    stream.getAudioTracks().forEach((track) => {
      track.enabled = on;
      track.addEventListener("ended", () => {
        if (Rooms.micStream !== stream) return; // replaced by setDevice, not unplugged
        render();
        document.dispatchEvent(new CustomEvent("rooms:mic-ended"));
      });
    });
    document.dispatchEvent(new CustomEvent("rooms:mic-stream", { detail: stream }));
    return stream;
  }

  /** The page's microphone stream, muted at first; asks for permission the first time. */
  function acquire() {
    if (!streamPromise) {
      streamPromise = navigator.mediaDevices
        .getUserMedia({ audio: CONSTRAINTS, video: false })
        .then((stream) => adopt(stream, false))
        .catch((error) => {
          streamPromise = null;
          throw error;
        });
    }
    return streamPromise;
  }

  /**
   * Switches to another microphone, keeping its on/off state; the PCM tap follows, and so does
   * everyone listening for "rooms:mic-stream" (the peer connections).
   */
  async function setDevice(deviceId) {
    const previous = await acquire();
    const on = isOn();
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { ...CONSTRAINTS, deviceId: { exact: deviceId } },
      video: false,
    });
    if (stopped || Rooms.micStream !== previous) {
      stream.getTracks().forEach((track) => track.stop());
      return Rooms.micStream;
    }
    streamPromise = Promise.resolve(stream);
    adopt(stream, on);
    previous.getTracks().forEach((track) => track.stop());
    if (context && node) {
      if (source) source.disconnect();
      source = context.createMediaStreamSource(stream);
      source.connect(node);
    }
    render();
    return stream;
  }

  /** The id of the microphone in use, or null before it is acquired. */
  function deviceId() {
    const track = Rooms.micStream && Rooms.micStream.getAudioTracks()[0];
    return track ? track.getSettings().deviceId || null : null;
  }

  function isOn() {
    const stream = Rooms.micStream;
    return Boolean(
      stream && stream.getAudioTracks().some((t) => t.enabled && t.readyState === "live")
    );
  }

  /** Mutes or unmutes the track (a muted track keeps its permission and its device). */
  async function setOn(on) {
    const stream = await acquire();
    stream.getAudioTracks().forEach((track) => {
      track.enabled = on;
    });
    if (on && context && context.state === "suspended") await context.resume();
    render();
    document.dispatchEvent(new CustomEvent("rooms:mic-muted", { detail: { muted: !on } }));
    return on;
  }

  /**
   * Starts the PCM tap (idempotent). Call it inside a user gesture the first time: the
   * AudioContext is created synchronously so that the browser lets it run.
   */
  function startTap() {
    if (!tapPromise) {
      // The browser's own rate (usually 48 kHz): the worklet resamples to 16 kHz itself.
      context = new AudioContext({ latencyHint: "interactive" });
      tapPromise = (async () => {
        await acquire();
        await context.audioWorklet.addModule(workletUrl);
        // The current stream: setDevice may have replaced it while the worklet loaded.
        source = context.createMediaStreamSource(Rooms.micStream);
        node = new AudioWorkletNode(context, "rooms-pcm", {
          numberOfInputs: 1,
          numberOfOutputs: 1,
          outputChannelCount: [1],
          channelCount: 1,
          channelCountMode: "explicit",
          channelInterpretation: "speakers",
        });
        node.port.onmessage = (event) => {
          if (frameHandler && event.data instanceof ArrayBuffer) frameHandler(event.data);
        };
        source.connect(node);
        // The node outputs silence; connecting it to the destination keeps every engine pulling it.
        node.connect(context.destination);
        node.port.postMessage({ type: "enable", on: tapEnabled });
        if (context.state === "suspended") await context.resume();
        return node;
      })().catch((error) => {
        tapPromise = null;
        if (context) context.close();
        context = null;
        source = null;
        node = null;
        throw error;
      });
    }
    return tapPromise;
  }

  /** `handler(ArrayBuffer)` receives each 1,280-byte frame while the tap is enabled. */
  function onFrame(handler) {
    frameHandler = handler;
  }

  /** Frames flow only while enabled; re-enabling starts a fresh frame (no stale audio). */
  function setTapEnabled(on) {
    if (on === tapEnabled) return;
    tapEnabled = on;
    if (node) node.port.postMessage({ type: "enable", on });
  }

  /** Releases the microphone and the audio graph for good (the session is over). */
  function stop() {
    stopped = true;
    setTapEnabled(false);
    if (Rooms.micStream) Rooms.micStream.getTracks().forEach((track) => track.stop());
    if (context) context.close();
    Rooms.micStream = null;
    streamPromise = tapPromise = context = source = node = null;
    if (owned) button.disabled = true;
    render();
    document.dispatchEvent(new CustomEvent("rooms:mic-muted", { detail: { muted: true } }));
  }

  function sampleRate() {
    return context ? context.sampleRate : null;
  }

  /** The button says the state ("Mic on" / "Mic off") as well as showing it (aria-pressed). */
  function render() {
    if (!owned) return;
    const on = isOn();
    button.setAttribute("aria-pressed", String(on));
    button.textContent = on ? gettext("Mic on") : gettext("Mic off");
  }

  async function toggle() {
    button.disabled = true;
    try {
      if (isOn()) {
        await setOn(false);
      } else {
        const tap = startTap(); // first, while this click still counts as a user gesture
        await setOn(true);
        await tap;
      }
    } catch (error) {
      notice.textContent = interpolate(
        gettext("Microphone unavailable: %(error)s"),
        { error: error.message || error.name },
        true
      );
      notice.hidden = false;
    } finally {
      button.disabled = stopped;
      render();
    }
  }

  function takeButton(join) {
    if (owned || !button || join.video_enabled) return;
    owned = true;
    button.disabled = false;
    button.addEventListener("click", toggle);
    render();
  }

  document.addEventListener("rooms:joined", (event) => takeButton(event.detail));
  if (window.RoomsSession && window.RoomsSession.join) takeButton(window.RoomsSession.join);

  Rooms.mic = {
    acquire,
    setDevice,
    deviceId,
    isOn,
    setOn,
    startTap,
    onFrame,
    setTapEnabled,
    stop,
    sampleRate,
  };
})();
