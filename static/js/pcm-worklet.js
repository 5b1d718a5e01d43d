// AudioWorkletProcessor "rooms-pcm": microphone audio at the context's own rate in,
// 40 ms frames of PCM16LE 16 kHz mono out (posted to the main thread as ArrayBuffers).
//
// Why resample here instead of `new AudioContext({sampleRate: 16000})`: Chromium accepts that,
// but other engines have refused or mishandled connecting a microphone stream to a context whose
// rate differs from the device's, and the browser's own resampler is not ours to tune. So the
// context runs at whatever rate the browser gives (usually 48 kHz) and this processor converts
// with a band-limited (windowed-sinc, polyphase) resampler: a low-pass at 7.2 kHz — under the
// 8 kHz Nyquist limit of the output — so nothing above it aliases into the speech band. Any input
// rate works (48 kHz → 16 kHz is one phase of 54 taps; 44.1 kHz → 16 kHz is 160 phases).
"use strict";

const OUT_RATE = 16000;
const FRAME_SAMPLES = 640; // 40 ms at 16 kHz = 1,280 bytes
const CUTOFF_HZ = 7200;
const ZERO_CROSSINGS = 8; // per side of the sinc kernel
const KAISER_BETA = 8.0; // ~80 dB stop-band attenuation

function gcd(a, b) {
  while (b) [a, b] = [b, a % b];
  return a;
}

// Zeroth-order modified Bessel function of the first kind (for the Kaiser window).
function besselI0(x) {
  let sum = 1;
  let term = 1;
  for (let k = 1; k < 50; k++) {
    term *= (x / (2 * k)) * (x / (2 * k));
    sum += term;
    if (term < sum * 1e-12) break;
  }
  return sum;
}

// Polyphase filter bank for resampling inRate → outRate. Output sample n sits at input position
// n * M / L; its phase is (n * M) mod L. Each phase holds 2 * half taps for the input samples
// around that position, normalised to unity gain at DC.
function designResampler(inRate, outRate) {
  const g = gcd(inRate, outRate);
  const L = outRate / g;
  const M = inRate / g;
  const fc = Math.min(CUTOFF_HZ, 0.45 * Math.min(inRate, outRate)) / inRate; // cycles per input sample
  const half = Math.ceil(ZERO_CROSSINGS / (2 * fc));
  const taps = 2 * half;
  const bank = new Float32Array(L * taps);
  const i0Beta = besselI0(KAISER_BETA);
  for (let p = 0; p < L; p++) {
    const frac = p / L;
    let sum = 0;
    for (let j = 0; j < taps; j++) {
      const t = j - (half - 1) - frac; // distance (input samples) from the output position
      const x = 2 * fc * t;
      const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
      const r = t / half;
      const window = Math.abs(r) >= 1 ? 0 : besselI0(KAISER_BETA * Math.sqrt(1 - r * r)) / i0Beta;
      const h = 2 * fc * sinc * window;
      bank[p * taps + j] = h;
      sum += h;
    }
    for (let j = 0; j < taps; j++) bank[p * taps + j] /= sum;
  }
  return { L, M, half, taps, bank };
}

class RoomsPcmProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.passthrough = sampleRate === OUT_RATE;
    this.filter = this.passthrough ? null : designResampler(sampleRate, OUT_RATE);
    // Input history: `pos` is the index of the input sample at or just before the next output
    // position, `phase` its fractional part in 1/L steps.
    this.input = new Float32Array(8192);
    this.frame = new ArrayBuffer(FRAME_SAMPLES * 2);
    this.view = new DataView(this.frame);
    this.enabled = false;
    this.reset();
    this.port.onmessage = (event) => {
      if (event.data && event.data.type === "enable") {
        const on = Boolean(event.data.on);
        if (on && !this.enabled) this.reset();
        this.enabled = on;
      }
    };
  }

  reset() {
    const half = this.filter ? this.filter.half : 0;
    this.input.fill(0);
    this.length = half; // start with `half` samples of silence as history
    this.pos = half > 0 ? half - 1 : 0;
    this.phase = 0;
    this.filled = 0;
  }

  push(sample) {
    const s = sample > 1 ? 1 : sample < -1 ? -1 : sample;
    this.view.setInt16(this.filled * 2, s < 0 ? Math.round(s * 0x8000) : Math.round(s * 0x7fff), true);
    this.filled += 1;
    if (this.filled === FRAME_SAMPLES) {
      this.port.postMessage(this.frame, [this.frame]);
      this.frame = new ArrayBuffer(FRAME_SAMPLES * 2);
      this.view = new DataView(this.frame);
      this.filled = 0;
    }
  }

  append(samples) {
    if (this.length + samples.length > this.input.length) {
      const grown = new Float32Array(Math.max(this.input.length * 2, this.length + samples.length));
      grown.set(this.input.subarray(0, this.length));
      this.input = grown;
    }
    this.input.set(samples, this.length);
    this.length += samples.length;
  }

  resample() {
    const { L, M, half, taps, bank } = this.filter;
    const x = this.input;
    // The output at input position pos + phase/L needs x[pos - half + 1 .. pos + half].
    while (this.pos + half < this.length) {
      const base = this.pos - half + 1;
      const offset = this.phase * taps;
      let acc = 0;
      for (let j = 0; j < taps; j++) acc += x[base + j] * bank[offset + j];
      this.push(acc);
      this.phase += M;
      this.pos += Math.floor(this.phase / L);
      this.phase %= L;
    }
    // Keep only the history the next output still needs.
    const keepFrom = this.pos - half + 1;
    if (keepFrom > 0) {
      x.copyWithin(0, keepFrom, this.length);
      this.length -= keepFrom;
      this.pos -= keepFrom;
    }
  }

  process(inputs) {
    const channels = inputs[0];
    if (!this.enabled || !channels || channels.length === 0) return true;
    // Down-mix to mono (microphones are usually mono already).
    let mono = channels[0];
    if (channels.length > 1) {
      mono = new Float32Array(mono.length);
      for (const channel of channels) {
        for (let i = 0; i < mono.length; i++) mono[i] += channel[i] / channels.length;
      }
    }
    if (this.passthrough) {
      for (let i = 0; i < mono.length; i++) this.push(mono[i]);
    } else {
      this.append(mono);
      this.resample();
    }
    return true;
  }
}

registerProcessor("rooms-pcm", RoomsPcmProcessor);
