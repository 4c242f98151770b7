// StemView: one row per track (waveform and/or spectrogram) over a shared time axis, and a
// mixer that plays every track in sync with Web Audio: one AudioBufferSourceNode -> GainNode
// per track, all started at the same AudioContext time with the same offset.
//
// anywidget ES module, no build step, no dependencies. The kernel (widget.py) sends the display
// data as traits and the MP3s as binary buffers of custom messages; see widget.py for the
// protocol. initialize() and each render() get different model proxies, so everything shared
// lives in a Player kept in a module-level Map keyed by the `_uid` trait.
//
// Notes (the `notes` trait, per row name): a row's notes toggle draws them over its plot from
// their times and pitches, with the same time -> x and frequency -> y mappings as the
// spectrogram (so zoom and scale changes keep them aligned), and its hear button plays them on a
// small Web Audio synth (NoteSynth) scheduled a little ahead against the stems' own transport.
// Test hooks: `row.noteBoxes` (the rectangles drawn, CSS px in the row's plot), the plot's
// `data-notes` attribute (how many), and `take.synth.scheduled` (voices scheduled this take).

// Shared by every copy of this module in the page (and the test hook).
const hook = (globalThis.__stemlab ??= { players: new Map(), ctx: null });
const players = hook.players;

const GAIN_MIN_DB = -60;
const GAIN_MAX_DB = 12;
const SMOOTHING = 0.012; // s: time constant of gain changes, click-free and still instant
const LOOKAHEAD = 0.03; // s: every source starts at now + LOOKAHEAD, the same instant
const SYNC_MS = 100; // position -> kernel while playing
const NO_KERNEL_MS = 5000; // no answer to "need-audio" by then: no kernel behind this model
const RELEASE_MS = 3000; // decoded audio is freed this long after the last view goes away
const MIN_SPAN = 0.002; // s: the narrowest window (as in explorer.py)
const DRAG_PX = 4; // a press that moves less is a click (seek)
const WINDOW_WAIT_MS = 2000; // at most one window at a time goes to the kernel, or after this
const CONTROL_OPTIONS = {
  view: [["waveform", "waveform"], ["spectrogram", "spectrogram"], ["both", "both"]],
  scale: [["log", "log"], ["mel", "mel"], ["linear", "linear"]],
  channels: [["mid", "mid"], ["stereo", "L/R"]],
  show: [["stems", "stems"], ["residual", "residual"]],
};
const CONTROL_CAPTIONS = { view: "view", scale: "frequency", channels: "waveform", show: "show" };
const ROW_HEIGHT = { both: 50, waveform: 34, spectrogram: 40 };
const AXIS_HEIGHT = 22;
const LOG_FMIN = 30; // Hz: the bottom of the log frequency axis (spectrogram.LOG_FMIN)
const NOTE_FIELDS = 5; // notes data: float32 onset, offset, pitch, velocity, confidence per note
const HEAR_MODES = ["audio", "notes", "both"];
const HEAR_TEXT = { audio: "A", notes: "N", both: "AN" };
const SYNTH_AHEAD = 0.35; // s: notes are scheduled this far ahead of the transport ...
const SYNTH_TICK_MS = 60; // ... by a timer this often
const TONE = { attack: 0.008, decay: 0.12, sustain: 0.55, release: 0.12, peak: 0.22 }; // ADSR (s) and level
// Drum kit pieces by General MIDI percussion key, and their lanes from the bottom of a row.
const DRUM_PIECES = ["kick", "snare", "tom", "hat", "cymbal"];
const DRUM_KEYS = { kick: [35, 36], snare: [37, 38, 39, 40], tom: [41, 43, 45, 47, 48, 50], hat: [42, 44, 46],
  cymbal: [49, 51, 52, 53, 55, 57, 59] };
const PERCUSSION_NAMES = { 54: "tamb", 56: "cowbell", 69: "cabasa", 70: "maracas", 75: "claves", 76: "block",
  77: "block", 60: "bongo", 61: "bongo", 62: "conga", 63: "conga", 64: "conga" };
const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948",
  "#b07aa1", "#ff9da7", "#9c755f", "#6b9ac4", "#d37295", "#8cd17d"];

// ---- small helpers -----------------------------------------------------------------------

function audioContext() {
  if (!hook.ctx || hook.ctx.state === "closed") {
    hook.ctx = new AudioContext({ latencyHint: "playback" });
  }
  return hook.ctx;
}

/** Uint8Array view of a DataView / ArrayBuffer / typed array (null for nothing). */
function bytesOf(data) {
  if (!data) return null;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return null;
}

/** Float32Array copy (buffers from the comm need not be 4-byte aligned). */
function float32Of(data) {
  const bytes = bytesOf(data);
  if (!bytes || bytes.byteLength < 4) return null;
  return new Float32Array(bytes.slice(0, bytes.byteLength - (bytes.byteLength % 4)).buffer);
}

function dbToGain(db) {
  return db <= GAIN_MIN_DB ? 0 : Math.pow(10, db / 20);
}

function formatDb(db) {
  if (db <= GAIN_MIN_DB) return "-\u221e dB";
  const rounded = Math.round(db * 10) / 10 || 0; // no "-0.0"
  return `${rounded > 0 ? "+" : ""}${rounded.toFixed(1)} dB`;
}

function formatTime(t) {
  const tenths = Math.max(0, Math.floor(t * 10 + 1e-6));
  const minutes = Math.floor(tenths / 600);
  return `${minutes}:${((tenths - minutes * 600) / 10).toFixed(1).padStart(4, "0")}`;
}

/** The visible window, precise enough to tell apart its ends at any zoom. */
function formatWindow(t0, t1) {
  const span = t1 - t0;
  if (span >= 10) return `${formatTime(t0)} \u2013 ${formatTime(t1)}`;
  const digits = span >= 1 ? 1 : span >= 0.1 ? 2 : 3;
  return `${t0.toFixed(digits)} \u2013 ${t1.toFixed(digits)} s`;
}

function clamp(x, lo, hi) {
  return Math.min(hi, Math.max(lo, x));
}

/** A gain change that is audible at once yet click-free, also mid-ramp. */
function glide(param, value, now, timeConstant = SMOOTHING) {
  if (param.cancelAndHoldAtTime) param.cancelAndHoldAtTime(now);
  else {
    param.cancelScheduledValues(now);
    param.setValueAtTime(param.value, now);
  }
  param.setTargetAtTime(value, now, timeConstant);
}

/** Tick positions and labels for [t0, t1] drawn `width` px wide. */
function timeTicks(t0, t1, width) {
  const span = t1 - t0;
  if (!(span > 0) || !(width > 0)) return [];
  const steps = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600];
  const step = steps.find((s) => (span / s) * 70 <= width) ?? 1200;
  const digits = step >= 1 ? 0 : Math.ceil(-Math.log10(step) - 1e-9);
  const minutes = t1 >= 60 && step >= 1;
  const ticks = [];
  for (let k = Math.ceil(t0 / step - 1e-9); k * step <= t1 + 1e-9; k++) {
    const t = k * step;
    let label;
    if (minutes) {
      const m = Math.floor(t / 60 + 1e-9);
      label = `${m}:${String(Math.round(t - m * 60)).padStart(2, "0")}`;
    } else label = `${t.toFixed(digits)} s`;
    ticks.push({ t, x: ((t - t0) / span) * width, label });
  }
  return ticks;
}

function el(tag, className, props = {}) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  // JupyterLab matches its shortcuts from the focused element upwards, stopping at this
  // attribute: without it, arrow keys on a fader or Enter on a button go to the notebook.
  if (tag === "button" || tag === "input") node.setAttribute("data-lm-suppress-shortcuts", "true");
  for (const [key, value] of Object.entries(props)) {
    if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value);
  }
  return node;
}

const ICON_PLAY = '<svg viewBox="0 0 16 16" width="12" height="12" aria-hidden="true"><path d="M4 2.5v11l9-5.5z" fill="currentColor"/></svg>';
const ICON_PAUSE = '<svg viewBox="0 0 16 16" width="12" height="12" aria-hidden="true"><path d="M4 2.5h3v11H4zM9 2.5h3v11H9z" fill="currentColor"/></svg>';

/** 256-entry RGB lookup table from the `colormap` trait (grayscale if absent). */
function lutOf(data) {
  const bytes = bytesOf(data);
  if (bytes && bytes.length === 768) return bytes.slice();
  const gray = new Uint8Array(768);
  for (let v = 0; v < 256; v++) gray.fill(v, v * 3, v * 3 + 3);
  return gray;
}

/** Decode a gray PNG and colour it through the LUT into a canvas of its own size. */
async function colorize(png, lut) {
  const bitmap = await createImageBitmap(new Blob([png], { type: "image/png" }),
    { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  const canvas = document.createElement("canvas");
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const g = canvas.getContext("2d", { willReadFrequently: true });
  g.drawImage(bitmap, 0, 0);
  bitmap.close?.();
  const image = g.getImageData(0, 0, canvas.width, canvas.height);
  const px = image.data;
  for (let p = 0; p < px.length; p += 4) {
    const v = px[p] * 3;
    px[p] = lut[v];
    px[p + 1] = lut[v + 1];
    px[p + 2] = lut[v + 2];
    px[p + 3] = 255;
  }
  g.putImageData(image, 0, 0);
  return canvas;
}

/** Pad with silence or trim so that every track has the reference length. */
function fitLength(buffer, length) {
  const fitted = new AudioBuffer({ length, numberOfChannels: buffer.numberOfChannels, sampleRate: buffer.sampleRate });
  for (let c = 0; c < buffer.numberOfChannels; c++) {
    fitted.copyToChannel(buffer.getChannelData(c).subarray(0, length), c);
  }
  return fitted;
}

/** Gain for the source so that its power equals that of the stem mix: sqrt(g^T E g / E_ss). */
function matchedGain(energy, stemGains, src) {
  const n = stemGains.length;
  if (!Array.isArray(energy) || energy.length !== n || !(energy[src]?.[src] > 0)) return 1;
  let power = 0;
  for (let i = 0; i < n; i++) {
    if (!stemGains[i]) continue;
    for (let j = 0; j < n; j++) power += stemGains[i] * stemGains[j] * (energy[i]?.[j] ?? 0);
  }
  return power > 0 ? Math.sqrt(power / energy[src][src]) : 1; // silent mix: compare at unity
}

// ---- notes: parsing, the pitch and frequency axes, drum lanes ------------------------------

/** Hz of a MIDI note number (A4 = 69 = 440 Hz, 12 equal semitones per octave). */
function midiToHz(pitch) {
  return 440 * Math.pow(2, (pitch - 69) / 12);
}

/** HTK mel of a frequency (librosa's htk=True, as spectrogram.row_frequencies uses). */
function melOf(hz) {
  return 2595 * Math.log10(1 + hz / 700);
}

/** Where `hz` is on a spectrogram's frequency axis: 0 at the bottom, 1 at Nyquist.
 * spectrogram.row_frequencies makes the image's rows equal steps of the scale's warped
 * frequency (Hz, mel, or log Hz from LOG_FMIN) from the bottom edge up to Nyquist, and the image
 * is drawn stretched over the plot's height, so the fraction is linear in the warped frequency. */
function frequencyFraction(hz, scale, nyquist) {
  if (scale === "linear") return hz / nyquist;
  if (scale === "mel") return melOf(hz) / melOf(nyquist);
  return Math.log(Math.max(hz, 1e-3) / LOG_FMIN) / Math.log(nyquist / LOG_FMIN); // "log"
}

/** The kit piece of a General MIDI percussion key ("perc" for the rest). */
function drumPiece(key) {
  return DRUM_PIECES.find((piece) => DRUM_KEYS[piece].includes(key)) ?? "perc";
}

/** A row's `notes` entry as columns: {drums, n, onset, offset, pitch, velocity, confidence, low,
 * high (pitch range), lanes (drums: [{label}], bottom first), lane (per note)}; or {error}. */
function parseNotes(entry) {
  if (!entry || typeof entry !== "object") return null;
  if (entry.error) return { error: String(entry.error), n: 0 };
  const table = float32Of(entry.data) ?? new Float32Array(0);
  const n = Math.floor(table.length / NOTE_FIELDS);
  const column = (f) => Float32Array.from({ length: n }, (_, k) => table[k * NOTE_FIELDS + f]);
  const notes = { drums: !!entry.drums, n, onset: column(0), offset: column(1), pitch: column(2),
    velocity: column(3), confidence: column(4), low: Infinity, high: -Infinity };
  for (const p of notes.pitch) {
    notes.low = Math.min(notes.low, p);
    notes.high = Math.max(notes.high, p);
  }
  if (notes.drums) {
    // One lane per kit piece used (kick lowest), then one per other percussion key, in key order.
    const ids = Array.from(notes.pitch, (key) => (drumPiece(key) === "perc" ? `#${key}` : drumPiece(key)));
    const used = [...new Set(ids)];
    const order = (id) => (DRUM_PIECES.includes(id) ? DRUM_PIECES.indexOf(id) : 100 + Number(id.slice(1)));
    used.sort((a, b) => order(a) - order(b));
    notes.lanes = used.map((id) => ({ id, label: id.startsWith("#") ? PERCUSSION_NAMES[id.slice(1)] ?? id : id }));
    notes.lane = Uint8Array.from(ids, (id) => used.indexOf(id));
  }
  return notes;
}

/** First index whose value is >= x in an ascending array. */
function lowerBound(values, x) {
  let lo = 0;
  let hi = values.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (values[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Opacity of a note: louder and surer notes are more opaque. */
function noteAlpha(velocity, confidence) {
  return clamp(0.25 + 0.75 * (velocity / 127) * clamp(confidence, 0, 1), 0.2, 1);
}

// ---- NoteSynth: a row's notes played in sync with the stems --------------------------------

/** The pieces of a take's timeline that elapsed seconds [e0, e1) play: each piece is media time
 * [m0, m1) heard from AudioContext time `at`, within a pass that ends at media time `end`. The
 * take plays from `offset` (to the end, or round the loop [a, b] forever), starting at `when`. */
function timelinePieces(take, duration, e0, e1) {
  const pieces = [];
  const add = (s0, s1, startsAt) => { // a pass over media [s0, s1) that starts at elapsed `startsAt`
    const a = Math.max(e0, startsAt);
    const b = Math.min(e1, startsAt + (s1 - s0));
    if (b > a) pieces.push({ m0: s0 + (a - startsAt), m1: s0 + (b - startsAt), at: take.when + a, end: s1 });
  };
  if (!take.loop) {
    add(take.offset, duration, 0);
    return pieces;
  }
  const [a, b] = take.loop;
  const first = b - take.offset; // the first pass, from the offset to the loop's end
  add(take.offset, b, 0);
  for (let k = Math.max(1, Math.floor((e0 - first) / (b - a)) + 1); first + (k - 1) * (b - a) < e1; k++) {
    add(a, b, first + (k - 1) * (b - a));
  }
  return pieces;
}

/** White noise, one second of it per AudioContext (drum voices play slices of it). */
const noiseBuffers = new WeakMap();
function noiseBuffer(ctx) {
  if (!noiseBuffers.has(ctx)) {
    const buffer = new AudioBuffer({ length: ctx.sampleRate, numberOfChannels: 1, sampleRate: ctx.sampleRate });
    const data = buffer.getChannelData(0);
    for (let i = 0; i < data.length; i++) data[i] = Math.random() * 2 - 1;
    noiseBuffers.set(ctx, buffer);
  }
  return noiseBuffers.get(ctx);
}

/** A pitched note: a triangle oscillator through an ADSR envelope; returns {end, sources}. */
function toneVoice(ctx, out, pitch, level, start, length) {
  const osc = ctx.createOscillator();
  osc.type = "triangle";
  osc.frequency.value = midiToHz(pitch);
  const env = ctx.createGain();
  const peak = TONE.peak * level;
  const release = start + Math.max(length, TONE.attack + 0.02); // the note's offset
  env.gain.setValueAtTime(0, start);
  env.gain.linearRampToValueAtTime(peak, start + TONE.attack); // attack
  env.gain.setTargetAtTime(peak * TONE.sustain, start + TONE.attack, TONE.decay / 3); // decay to sustain
  env.gain.setTargetAtTime(0, release, TONE.release / 3); // release
  osc.connect(env).connect(out);
  const end = release + TONE.release * 2;
  osc.start(start);
  osc.stop(end);
  osc.onended = () => env.disconnect();
  return { end, sources: [osc] };
}

/** A drum hit: a falling sine (kick, toms) or filtered noise (snare, hats, cymbals, percussion). */
function drumVoice(ctx, out, key, level, start) {
  const piece = drumPiece(key);
  const env = ctx.createGain();
  env.connect(out);
  const sources = [];
  const hit = (peak, decay) => { // an instant attack, then an exponential decay (time constant)
    env.gain.setValueAtTime(peak * level, start);
    env.gain.setTargetAtTime(0, start + 0.002, decay);
    return start + decay * 6;
  };
  let end;
  if (piece === "kick" || piece === "tom") {
    const osc = ctx.createOscillator();
    const [high, low] = piece === "kick" ? [150, 45] : [90 + (key - 41) * 18, 60 + (key - 41) * 12];
    osc.frequency.setValueAtTime(high, start);
    osc.frequency.exponentialRampToValueAtTime(low, start + 0.12);
    osc.connect(env);
    end = hit(piece === "kick" ? 0.9 : 0.6, piece === "kick" ? 0.09 : 0.12);
    sources.push(osc);
  } else {
    const noise = ctx.createBufferSource();
    noise.buffer = noiseBuffer(ctx);
    const filter = ctx.createBiquadFilter();
    const shape = { snare: ["highpass", 1500, 0.05, 0.5], hat: ["highpass", 7000, key === 46 ? 0.12 : 0.025, 0.35],
      cymbal: ["highpass", 5000, 0.35, 0.3] }[piece] ?? ["bandpass", 2500 + (key % 12) * 350, 0.04, 0.45];
    filter.type = shape[0];
    filter.frequency.value = shape[1];
    noise.connect(filter).connect(env);
    end = hit(shape[3], shape[2]);
    sources.push(noise);
  }
  for (const source of sources) {
    source.start(start);
    source.stop(end);
  }
  sources[0].onended = () => env.disconnect();
  return { end, sources };
}

/** Plays the notes of the rows that hear them ("notes" or "both") during one take: a timer
 * schedules the notes starting in the next SYNTH_AHEAD seconds of the take's own timeline (so
 * play, pause, seek and loop, which make a new take, keep it in sync), each row through a
 * GainNode that follows its fader, mute and solo, into the take's bus. */
class NoteSynth {
  constructor(player, take) {
    this.player = player;
    this.take = take;
    this.ctx = hook.ctx;
    this.outputs = new Map(); // row index -> GainNode
    this.cursors = new Map(); // row name -> elapsed seconds of the take scheduled so far
    this.voices = []; // {end, sources}
    this.scheduled = 0; // voices scheduled in this take (a test hook)
  }

  start() {
    this.tick();
    this.timer = setInterval(() => this.tick(), SYNTH_TICK_MS);
  }

  stop(at) {
    clearInterval(this.timer);
    for (const voice of this.voices) {
      for (const source of voice.sources) {
        try {
          source.stop(at);
        } catch (err) {
          /* already stopped */
        }
      }
    }
    this.voices = [];
  }

  output(i) {
    if (!this.outputs.has(i)) {
      const gain = this.ctx.createGain();
      gain.gain.value = this.player.mix().synthGains[i] ?? 0;
      gain.connect(this.take.bus);
      this.outputs.set(i, gain);
    }
    return this.outputs.get(i);
  }

  setGains(gains, now) {
    this.outputs.forEach((node, i) => glide(node.gain, gains[i] ?? 0, now));
  }

  tick() {
    const now = this.ctx.currentTime;
    const elapsed = Math.max(0, now - this.take.when);
    const until = elapsed + SYNTH_AHEAD;
    (this.player.model.get("tracks") ?? []).forEach((track, i) => {
      const notes = this.player.noteSets.get(track.name);
      if (!notes?.n || this.player.hearMode(track.name) === "audio") {
        this.cursors.delete(track.name); // switched on again: from now on
        return;
      }
      const from = this.cursors.get(track.name) ?? elapsed;
      if (until > from) this.schedule(i, notes, from, until);
      this.cursors.set(track.name, Math.max(from, until));
    });
    this.voices = this.voices.filter((voice) => voice.end > now);
  }

  /** Every note of row i that starts within elapsed [e0, e1) of the take. */
  schedule(i, notes, e0, e1) {
    const out = this.output(i);
    for (const piece of timelinePieces(this.take, this.player.duration(), e0, e1)) {
      for (let k = lowerBound(notes.onset, piece.m0); k < notes.n && notes.onset[k] < piece.m1; k++) {
        const start = piece.at + (notes.onset[k] - piece.m0);
        const level = clamp(notes.velocity[k] / 127, 0, 1);
        const voice = notes.drums ? drumVoice(this.ctx, out, notes.pitch[k], level, start)
          : toneVoice(this.ctx, out, notes.pitch[k], level, start, Math.min(notes.offset[k], piece.end) - notes.onset[k]);
        this.voices.push(voice);
        this.scheduled += 1;
      }
    }
  }
}

// ---- Player: audio, mixer and transport for one model (shared by all of its views) ---------

class Player {
  constructor(model) {
    this.model = model;
    this.uid = model.get("_uid");
    this.views = new Set();
    this.buffers = []; // decoded AudioBuffers, one per track, all the same length
    this.incoming = null; // the audio set being decoded
    this.version = null; // version of the installed set
    this.ready = false;
    this.take = null; // the playing graph: {sources, gainNodes, bus, when, offset}
    this.lastTake = null;
    this.pausedAt = clamp(model.get("position") || 0, 0, model.get("duration") || 0);
    this.pendingPlay = false;
    this.heardFromKernel = false;
    this.noKernel = false;
    this.statusText = "";
    this.decodeSeconds = null;
    this.decodedCache = new Map(); // digest -> AudioBuffer, for the current and the previous set
    this.installedDigests = [];
    this.previousDigests = [];
    this.wantWindow = null; // a window the page shows but has not sent to the kernel yet
    this.windowSent = null; // the last window sent, until the kernel answers with `shown`
    this.baseWindow = this.modelWindow(); // the window of the data when nobody sets `shown`

    this.onMessage = (msg, buffers) => this.handleMessage(msg, buffers);
    this.onMixChange = () => this.applyMix();
    this.onPlayingChange = () => this.followPlayingTrait();
    model.on("msg:custom", this.onMessage);
    for (const name of ["gains_db", "muted", "soloed", "ab", "energy", "tracks", "hear"]) {
      model.on(`change:${name}`, this.onMixChange);
    }
    model.on("change:playing", this.onPlayingChange);
    this.noteSets = new Map(); // row name -> parsed notes (parseNotes), shared by views and synth
    this.onNotesChange = () => this.followNotes();
    model.on("change:notes", this.onNotesChange);
    this.followNotes();
    this.onTracksChange = () => this.followTracks();
    this.onLoopChange = () => this.followLoop();
    this.onShownChange = () => this.followShown();
    this.onWindowChange = () => this.followWindow();
    this.onDataChange = () => {
      if (!this.computed()) this.baseWindow = this.modelWindow();
    };
    model.on("change:tracks", this.onTracksChange);
    model.on("change:loop", this.onLoopChange);
    model.on("change:shown", this.onShownChange);
    model.on("change:t0", this.onWindowChange);
    model.on("change:t1", this.onWindowChange);
    model.on("change:waves", this.onDataChange);
    model.on("change:specs", this.onDataChange);
    // Audio is asked for when the first view appears (attach): the widget manager also restores
    // models that no cell shows (old widgets kept alive in the kernel by Out[n]).
    this.requested = false;
    this.released = false;
  }

  get ctx() {
    return hook.ctx;
  }
  get gainNodes() {
    return (this.take ?? this.lastTake)?.gainNodes ?? [];
  }
  get sources() {
    return (this.take ?? this.lastTake)?.sources ?? [];
  }
  get playing() {
    return !!this.take;
  }

  duration() {
    const d = this.model.get("duration");
    if (d > 0) return d;
    const b = this.buffers[0];
    return b ? b.duration : 0;
  }

  position() {
    const take = this.take;
    if (!take) return this.pausedAt;
    let t = take.offset + Math.max(0, hook.ctx.currentTime - take.when);
    if (take.loop && t >= take.loop[1]) {
      const [a, b] = take.loop;
      t = a + ((t - a) % (b - a));
    }
    return Math.min(this.duration(), t);
  }

  /** The loop trait as [t0, t1] within the audio, or null. */
  loopRange() {
    const loop = this.model.get("loop") ?? [];
    if (loop.length !== 2) return null;
    const d = this.duration();
    const a = clamp(Number(loop[0]), 0, d);
    const b = clamp(Number(loop[1]), 0, d);
    return b - a >= 0.005 ? [a, b] : null;
  }

  setLoop(loop) {
    this.model.set("loop", loop ? [loop[0], loop[1]] : []);
    this.save();
  }

  followLoop() {
    if (this.playing) this.play(this.position()); // every source restarts with the new loop
    this.views.forEach((v) => v.updateLoop());
  }

  /** A new track list: stop a take whose audio no longer fits, and go on when the new audio is in. */
  followTracks() {
    const n = (this.model.get("tracks") ?? []).length;
    if (this.playing && this.buffers.length !== n) {
      this.pausedAt = this.position();
      this.stopTake();
      this.stopSync();
      this.pendingPlay = true;
      this.refreshViews();
    }
  }

  // -- the visible window: the page zooms at once, the kernel recomputes the rows --

  modelWindow() {
    const d = this.duration();
    const t0 = this.model.get("t0") || 0;
    let t1 = this.model.get("t1") || 0;
    if (!(t1 > t0)) t1 = d > t0 ? d : t0 + 1;
    return { t0, t1 };
  }

  window() {
    return this.wantWindow ?? this.modelWindow();
  }

  /** Is someone (the kernel) computing rows for the window? Then `shown` says which. */
  computed() {
    const shown = this.model.get("shown");
    return !!shown && shown.t1 > shown.t0;
  }

  /** The window the data traits were computed for. */
  dataWindow() {
    const shown = this.model.get("shown");
    return this.computed() ? { t0: shown.t0, t1: shown.t1 } : this.baseWindow;
  }

  /** Does a kernel refine the rows after a zoom? (Not on a standalone page, nor without a kernel.) */
  refines() {
    return this.computed() && !this.noKernel;
  }

  setWindow(t0, t1) {
    const d = this.duration();
    let span = clamp(t1 - t0, Math.min(MIN_SPAN, d), d);
    t0 = clamp(t0, 0, d - span);
    this.wantWindow = { t0, t1: t0 + span };
    this.views.forEach((v) => v.windowChanged());
    this.flushWindow();
  }

  flushWindow() {
    clearTimeout(this.windowTimer);
    const want = this.wantWindow;
    if (!want) return;
    const waited = this.windowSent ? performance.now() - this.windowSent.at : Infinity;
    if (waited < WINDOW_WAIT_MS && this.refines()) { // the kernel is on the last one: send this one after
      this.windowTimer = setTimeout(() => this.flushWindow(), WINDOW_WAIT_MS - waited);
      return;
    }
    this.windowSent = { ...want, at: performance.now() };
    this.sendingWindow = true;
    this.model.set("t0", want.t0);
    this.model.set("t1", want.t1);
    this.sendingWindow = false;
    this.wantWindow = null;
    this.save();
    this.views.forEach((v) => v.windowChanged());
  }

  followWindow() {
    if (this.sendingWindow) return;
    const { t0, t1 } = this.modelWindow();
    const sent = this.windowSent;
    if (sent && sent.t0 === t0 && sent.t1 === t1) return; // our own window coming back
    this.wantWindow = null; // set from Python: it wins
    this.views.forEach((v) => v.windowChanged());
  }

  followShown() {
    const shown = this.model.get("shown") ?? {};
    const sent = this.windowSent;
    if (sent && Math.abs(shown.t0 - sent.t0) < 1e-9 && Math.abs(shown.t1 - sent.t1) < 1e-9) this.windowSent = null;
    else if (sent && performance.now() - sent.at > WINDOW_WAIT_MS) this.windowSent = null;
    if (this.wantWindow) this.flushWindow();
    this.views.forEach((v) => v.dataChanged());
  }

  /** Set a trait from the page's controls (the kernel observes it). */
  setTrait(name, value) {
    this.model.set(name, value);
    this.save();
    this.views.forEach((v) => v.dataChanged());
  }

  // -- kernel messages --

  requestAudio() {
    clearTimeout(this.noKernelTimer);
    this.heardFromKernel = false;
    this.setStatus("waiting for audio from the kernel\u2026", false);
    try {
      this.model.send({ type: "need-audio" });
    } catch (err) {
      this.markNoKernel();
      return;
    }
    this.noKernelTimer = setTimeout(() => {
      if (!this.heardFromKernel) this.markNoKernel();
    }, NO_KERNEL_MS);
  }

  markNoKernel() {
    this.noKernel = true;
    this.setStatus("Kernel not connected: re-run this cell to play.");
    this.views.forEach((v) => {
      v.dataChanged();
      v.updateMixer(); // no one to transcribe: the notes buttons of rows without notes are off
    });
  }

  handleMessage(msg, buffers) {
    if (!msg || typeof msg !== "object") return;
    if (msg.type === "audio" || msg.type === "no-audio") {
      this.heardFromKernel = true;
      this.noKernel = false;
    }
    if (msg.type === "audio-list") {
      this.heardFromKernel = true;
      this.noKernel = false;
      this.receiveList(msg);
    } else if (msg.type === "audio") this.receiveAudio(msg, buffers?.[0]);
    else if (msg.type === "no-audio") this.setStatus("no audio yet: call set_audio(...) in the kernel");
    else if (msg.type === "seek") this.seek(Number(msg.t));
  }

  /** The kernel's new audio set, as digests: take what is decoded already, ask for the rest. */
  receiveList({ version, count, digests }) {
    if (this.released) return;
    if (this.ready && version === this.version) { // back to the set installed (a quick round trip)
      if (this.incoming) {
        this.incoming = null;
        this.setStatus(`ready: ${this.buffers.length} tracks (decoded before)`);
        if (this.pendingPlay) this.play(this.position());
      }
      return;
    }
    const incoming = { version, count, decoded: new Array(count).fill(null), seen: new Set(), done: 0,
      started: performance.now(), digests: (digests ?? []).slice() };
    incoming.digests.forEach((digest, i) => {
      const cached = this.decodedCache.get(digest);
      if (!cached) return;
      incoming.decoded[i] = cached;
      incoming.seen.add(i);
      incoming.done += 1;
    });
    incoming.reused = incoming.done;
    this.incoming = incoming;
    if (incoming.done === count) {
      this.install(incoming);
      return;
    }
    const missing = [...Array(count).keys()].filter((i) => !incoming.seen.has(i));
    this.setStatus(`loading audio ${incoming.done}/${count}\u2026`, false);
    try {
      this.model.send({ type: "need-audio", version, missing });
    } catch (err) {
      this.markNoKernel();
    }
  }

  receiveAudio({ index, count, version, digest }, buffer) {
    if (this.released) return; // asked again when displayed again
    if (this.ready && version === this.version) return; // another page asked for the same set
    if (!this.incoming || this.incoming.version !== version || this.incoming.count !== count) {
      this.incoming = { version, count, decoded: new Array(count).fill(null), seen: new Set(), done: 0,
        started: performance.now(), digests: [] };
    }
    const incoming = this.incoming;
    const bytes = bytesOf(buffer);
    if (incoming.seen.has(index) || !bytes) return;
    incoming.seen.add(index);
    if (digest) incoming.digests[index] = digest;
    const name = this.model.get("tracks")?.[index]?.name ?? `track ${index + 1}`;
    // decodeAudioData detaches its argument, so give it a copy.
    audioContext().decodeAudioData(bytes.slice().buffer).then(
      (decoded) => {
        if (digest) this.decodedCache.set(digest, decoded);
        if (this.incoming !== incoming) return;
        incoming.decoded[index] = decoded;
        incoming.done += 1;
        if (incoming.done === count) this.install(incoming);
        else this.setStatus(`decoding audio ${incoming.done}/${count}\u2026`, false);
      },
      (err) => {
        if (this.incoming === incoming) this.setStatus(`could not decode the audio of '${name}': ${err?.message ?? err}`);
      },
    );
  }

  install(incoming) {
    const tracks = this.model.get("tracks") ?? [];
    let ref = tracks.findIndex((t) => t.kind === "source");
    if (ref < 0 || !incoming.decoded[ref]) ref = 0;
    const length = incoming.decoded[ref].length;
    const off = [];
    const buffers = incoming.decoded.map((b, i) => {
      if (b.length === length) return b;
      if (Math.abs(b.length - length) > 2) off.push(tracks[i]?.name ?? i);
      return fitLength(b, length);
    });
    const wasPlaying = this.playing;
    const at = this.position();
    this.stopTake();
    this.buffers = buffers;
    this.ready = true;
    this.version = incoming.version;
    this.incoming = null;
    this.decodeSeconds = (performance.now() - incoming.started) / 1000;
    // Keep the decoded audio of this set and of the previous one (the way back decodes nothing).
    const digests = incoming.digests.filter(Boolean);
    if (digests.join() !== this.installedDigests.join()) {
      this.previousDigests = this.installedDigests;
      this.installedDigests = digests;
    }
    const keep = new Set([...this.installedDigests, ...this.previousDigests]);
    for (const digest of [...this.decodedCache.keys()]) if (!keep.has(digest)) this.decodedCache.delete(digest);
    const rate = buffers[ref].sampleRate;
    let text = incoming.reused === buffers.length
      ? `ready: ${buffers.length} tracks (decoded before, ${(rate / 1000).toFixed(1)} kHz)`
      : `ready: ${buffers.length} tracks decoded in ${this.decodeSeconds.toFixed(1)} s (${(rate / 1000).toFixed(1)} kHz)`;
    if (off.length) text += `; padded/trimmed to the source's length: ${off.join(", ")}`;
    this.setStatus(text);
    if (wasPlaying || this.pendingPlay) this.play(at);
    else this.refreshViews();
  }

  // -- notes --

  /** New `notes` from the kernel: parse what changed; the mix and the drawings follow. */
  followNotes() {
    const entries = this.model.get("notes") ?? {};
    const parsed = new Map();
    for (const [name, entry] of Object.entries(entries)) {
      const old = this.noteSets.get(name);
      const notes = old && old.entry === entry ? old : parseNotes(entry);
      if (notes) parsed.set(name, old === notes ? old : { ...notes, entry });
    }
    this.noteSets = parsed;
    this.applyMix();
    this.views.forEach((v) => v.draw());
  }

  /** Has the page the notes of row `name` (to draw and play)? */
  hasNotes(name) {
    const notes = this.noteSets.get(name);
    return !!notes && !notes.error;
  }

  /** What row `name` plays: "audio", "notes" or "both" (its audio until its notes are in). */
  hearMode(name) {
    const mode = (this.model.get("hear") ?? {})[name];
    return HEAR_MODES.includes(mode) && this.hasNotes(name) ? mode : "audio";
  }

  // -- mixer --

  /** Linear gain of every track now, and which rows are audible. */
  mix() {
    const m = this.model;
    const tracks = m.get("tracks") ?? [];
    const db = m.get("gains_db") ?? [];
    const muted = m.get("muted") ?? [];
    const soloed = m.get("soloed") ?? [];
    const isStem = tracks.map((t) => t.kind !== "source");
    const anySolo = tracks.some((t, i) => isStem[i] && soloed[i]);
    const audible = tracks.map((t, i) => isStem[i] && !muted[i] && (!anySolo || !!soloed[i]));
    const stemGains = tracks.map((t, i) => (audible[i] ? dbToGain(db[i] ?? 0) : 0));
    const src = tracks.findIndex((t) => t.kind === "source");
    const match = src >= 0 ? matchedGain(m.get("energy"), stemGains, src) : 0;
    const sourceMode = m.get("ab") === "source" && src >= 0;
    if (!sourceMode) {
      // a row that hears its notes plays them through the synth, at the row's gain
      const modes = tracks.map((t) => this.hearMode(t.name));
      const gains = stemGains.map((g, i) => (modes[i] === "notes" ? 0 : g));
      const synthGains = stemGains.map((g, i) => (modes[i] === "audio" ? 0 : g));
      return { gains, synthGains, audible, match, src, sourceMode };
    }
    return { gains: tracks.map((t, i) => (i === src ? match : 0)), synthGains: tracks.map(() => 0),
      audible: tracks.map((t, i) => i === src), match, src, sourceMode };
  }

  applyMix() {
    const { gains, synthGains } = this.mix();
    if (this.take) {
      const now = hook.ctx.currentTime;
      this.take.gainNodes.forEach((node, i) => glide(node.gain, gains[i] ?? 0, now));
      this.take.synth?.setGains(synthGains, now);
    }
    this.views.forEach((v) => v.updateMixer());
  }

  /** Change mixer traits from the page: audio follows at once, the kernel gets them too. */
  setMixer(changes, sync = true) {
    for (const [name, value] of Object.entries(changes)) this.model.set(name, value);
    if (sync) this.save();
  }

  // -- transport --

  play(from) {
    const ctx = audioContext();
    if (ctx.state !== "running") ctx.resume().catch(() => {});
    // Not decoded yet, or a new track list whose audio is still decoding: start once it is in.
    const stale = this.buffers.length !== (this.model.get("tracks") ?? []).length;
    if (!this.ready || stale) {
      this.pendingPlay = true;
      if (from !== undefined) this.pausedAt = from;
      this.refreshViews();
      return;
    }
    for (const other of players.values()) if (other !== this && other.playing) other.pause();
    const duration = this.duration();
    let offset = from ?? this.pausedAt;
    if (!(offset < duration - 0.05)) offset = 0; // at the end: start over
    const loop = this.loopRange();
    if (loop && !(offset >= loop[0] && offset < loop[1])) offset = loop[0];
    this.stopTake();
    const when = ctx.currentTime + LOOKAHEAD;
    const bus = ctx.createGain(); // short fade in/out so that starts, seeks and stops do not click
    bus.gain.setValueAtTime(0, when);
    bus.gain.setTargetAtTime(1, when, 0.004);
    bus.connect(ctx.destination);
    const { gains } = this.mix();
    const sources = [];
    const gainNodes = [];
    this.buffers.forEach((buffer, i) => {
      const source = ctx.createBufferSource();
      source.buffer = buffer;
      const gain = ctx.createGain();
      gain.gain.value = gains[i] ?? 0;
      source.connect(gain).connect(bus);
      if (loop) {
        // every source loops the same span of the same-length buffers: they stay sample-synced
        source.loop = true;
        source.loopStart = loop[0];
        source.loopEnd = loop[1];
      }
      source.start(when, offset);
      sources.push(source);
      gainNodes.push(gain);
    });
    const take = { sources, gainNodes, bus, when, offset, loop };
    if (sources[0]) sources[0].onended = () => this.take === take && this.finish();
    this.take = take;
    take.synth = new NoteSynth(this, take); // the notes of the rows that hear them, on the same clock
    take.synth.start();
    this.pendingPlay = false;
    this.startSync();
    this.writeTransport();
    this.refreshViews();
    if (ctx.state !== "running") {
      setTimeout(() => {
        if (this.take === take && ctx.state !== "running") {
          this.setStatus("the browser holds audio until you click Play in the page");
        }
      }, 1000);
    }
  }

  pause() {
    this.pendingPlay = false;
    if (this.take) {
      this.pausedAt = this.position();
      this.stopTake();
    }
    this.stopSync();
    this.writeTransport();
    this.refreshViews();
  }

  finish() {
    this.pausedAt = this.duration();
    this.stopTake();
    this.stopSync();
    this.writeTransport();
    this.refreshViews();
  }

  toggle() {
    if (this.playing || this.pendingPlay) this.pause();
    else this.play();
  }

  seek(t) {
    if (!Number.isFinite(t)) return;
    t = clamp(t, 0, this.duration());
    if (this.playing) {
      this.play(t);
      return;
    }
    this.pausedAt = t;
    this.writeTransport();
    this.refreshViews();
  }

  stopTake() {
    const take = this.take;
    if (!take) return;
    this.take = null;
    this.lastTake = take;
    const now = hook.ctx.currentTime;
    glide(take.bus.gain, 0, now, 0.004);
    take.synth?.stop(now + 0.04);
    for (const source of take.sources) {
      source.onended = null;
      try {
        source.stop(now + 0.04);
      } catch (err) {
        /* already stopped */
      }
    }
    setTimeout(() => take.bus.disconnect(), 300);
  }

  followPlayingTrait() {
    const wanted = !!this.model.get("playing");
    if (wanted && !this.playing && !this.pendingPlay) this.play();
    else if (!wanted && (this.playing || this.pendingPlay)) this.pause();
  }

  startSync() {
    if (this.syncTimer) return;
    this.syncTimer = setInterval(() => {
      if (!this.take) return;
      if (!this.take.loop && this.position() >= this.duration() - 1e-3) this.finish(); // onended may lag in a background tab
      else this.writeTransport();
    }, SYNC_MS);
  }

  stopSync() {
    clearInterval(this.syncTimer);
    this.syncTimer = null;
  }

  writeTransport() {
    this.model.set("playing", this.playing);
    this.model.set("position", Math.round(this.position() * 1000) / 1000);
    this.save();
  }

  setStatus(text, sync = true) {
    this.statusText = text;
    if (sync) {
      this.model.set("status", text);
      this.save();
    }
    this.views.forEach((v) => v.updateTransport());
  }

  save() {
    try {
      this.model.save_changes();
    } catch (err) {
      /* no kernel (a notebook reopened from saved widget state): keep the page state only */
    }
  }

  attach(view) {
    this.views.add(view);
    clearTimeout(this.releaseTimer);
    if (!this.requested || this.released) {
      this.requested = true;
      this.released = false;
      this.requestAudio();
    }
  }

  detach(view) {
    this.views.delete(view);
    if (this.views.size) return;
    if (this.playing || this.pendingPlay) this.pause(); // output cleared: stop the sound too
    // A cell re-run leaves the old widget alive in the kernel (Out[n] holds it): free its
    // decoded audio (about 60 MB per stereo 3-minute track) until it is displayed again.
    clearTimeout(this.releaseTimer);
    this.releaseTimer = setTimeout(() => this.release(), RELEASE_MS);
  }

  release() {
    if (this.views.size || !this.ready) return;
    this.stopTake();
    this.buffers = [];
    this.decodedCache.clear();
    this.installedDigests = [];
    this.lastTake = null;
    this.ready = false;
    this.version = null;
    this.released = true;
    this.statusText = "audio released: no view shows this widget";
  }

  refreshViews() {
    this.views.forEach((v) => {
      v.updateTransport();
      v.updatePlayhead();
      if (this.playing) v.animate();
    });
  }

  destroy() {
    this.stopTake();
    this.stopSync();
    clearTimeout(this.noKernelTimer);
    clearTimeout(this.releaseTimer);
    this.model.off("msg:custom", this.onMessage);
    for (const name of ["gains_db", "muted", "soloed", "ab", "energy", "tracks", "hear"]) {
      this.model.off(`change:${name}`, this.onMixChange);
    }
    this.model.off("change:notes", this.onNotesChange);
    this.model.off("change:playing", this.onPlayingChange);
    this.model.off("change:tracks", this.onTracksChange);
    this.model.off("change:loop", this.onLoopChange);
    this.model.off("change:shown", this.onShownChange);
    this.model.off("change:t0", this.onWindowChange);
    this.model.off("change:t1", this.onWindowChange);
    this.model.off("change:waves", this.onDataChange);
    this.model.off("change:specs", this.onDataChange);
    clearTimeout(this.windowTimer);
    if (players.get(this.uid) === this) players.delete(this.uid);
  }
}

function playerFor(model) {
  const uid = model.get("_uid");
  let player = players.get(uid);
  if (!player) {
    player = new Player(model);
    players.set(uid, player);
  }
  return player;
}

// ---- View: the DOM and canvases of one display of the widget --------------------------------

class View {
  constructor(model, host, player) {
    this.model = model;
    this.player = player;
    // Keys typed inside the widget are ours, not JupyterLab's (arrow keys on a fader, Space).
    this.root = el("div", "stemlab", { tabindex: "0", "data-lm-suppress-shortcuts": "true" });
    this.root.addEventListener("keydown", (event) => this.onKey(event));
    host.appendChild(this.root);
    this.buildTransport();
    this.buildControls();
    this.grid = el("div", "sl-grid");
    this.busyBox = el("div", "sl-busy", { role: "status", "aria-live": "polite" });
    this.busyText = el("span", "sl-busy-text");
    this.busyBox.append(el("span", "sl-spinner"), this.busyText);
    this.root.append(this.grid, this.busyBox);
    this.rows = [];
    this.specImages = [];
    this.specGeneration = 0;
    this.waves = null;
    this.points = null;
    this.colors = null;
    this.raf = 0;

    const on = (names, fn) => names.split(" ").forEach((n) => model.on(`change:${n}`, fn));
    on("tracks", () => {
      this.specImages = []; // never the old rows' pictures under the new rows' names
      this.buildRows();
      this.decodeWaves();
      this.decodeSpecs();
    });
    on("view", () => {
      this.layout();
      this.dataChanged();
    });
    on("duration columns wave_channels freq_ticks", () => this.draw());
    on("scale channels show busy shown", () => this.dataChanged());
    on("controls", () => this.buildControls());
    on("waves wave_points", () => this.decodeWaves());
    on("specs colormap", () => this.decodeSpecs());
    on("db_label colormap", () => this.updateScale());
    on("ab_labels", () => this.labelAB());
    on("notes_shown nyquist notes", () => {
      this.updateMixer();
      this.draw();
    });

    this.resizeObserver = new ResizeObserver(() => this.resize());
    this.resizeObserver.observe(this.grid);
    this.themeObserver = new MutationObserver(() => {
      this.colors = null;
      this.draw();
    });
    this.themeObserver.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-light", "data-jp-theme-name"] });

    this.buildRows();
    this.decodeWaves();
    this.decodeSpecs();
    this.updateScale();
    this.updateControls();
    player.attach(this);
    this.dataChanged();
    this.updateTransport();
    if (player.playing) this.animate();
  }

  destroy() {
    cancelAnimationFrame(this.raf);
    this.resizeObserver.disconnect();
    this.themeObserver.disconnect();
    this.root.remove();
    this.player.detach(this);
  }

  // -- DOM --

  buildTransport() {
    const bar = el("div", "sl-transport");
    this.playButton = el("button", "sl-play", { type: "button", title: "Play / pause all tracks in sync" });
    this.playButton.addEventListener("click", () => {
      const ctx = audioContext();
      const held = ctx.state !== "running";
      ctx.resume().catch(() => {}); // inside the click: lets the browser start audio
      // Started from the kernel but held by the browser's autoplay policy: this click releases it.
      if (!(held && this.player.playing)) this.player.toggle();
    });
    this.timeReadout = el("span", "sl-time");
    const ab = el("div", "sl-ab", { role: "group", title: "A/B: the stem mix, or the source level-matched to it" });
    this.abButtons = ["stems", "source"].map((mode) => {
      const b = el("button", "sl-ab-button", { type: "button", dataset: { ab: mode } });
      b.addEventListener("click", () => this.player.setMixer({ ab: mode }));
      ab.appendChild(b);
      return b;
    });
    this.labelAB();
    this.statusLine = el("span", "sl-status");
    const scale = el("span", "sl-scale");
    this.colorbar = el("canvas", "sl-colorbar", { width: 256, height: 1 });
    this.dbLabel = el("span", "sl-db-label");
    scale.append(this.colorbar, this.dbLabel);
    bar.append(this.playButton, this.timeReadout, ab, this.statusLine, scale);
    this.root.appendChild(bar);
  }

  /** The row of controls under the transport: segmented buttons writing traits, zoom, loop. */
  buildControls() {
    const wanted = this.model.get("controls") ?? [];
    const bar = this.controlBar ?? el("div", "sl-controlbar");
    bar.replaceChildren();
    this.segments = {};
    for (const name of ["view", "scale", "channels", "show"]) {
      if (!wanted.includes(name)) continue;
      const group = el("div", "sl-group");
      const seg = el("div", "sl-seg", { role: "group", "aria-label": CONTROL_CAPTIONS[name], dataset: { control: name } });
      for (const [value, text] of CONTROL_OPTIONS[name]) {
        const b = el("button", "sl-seg-button", { type: "button", text, dataset: { value } });
        b.addEventListener("click", () => this.player.setTrait(name, value));
        seg.appendChild(b);
      }
      group.append(el("span", "sl-caption", { text: CONTROL_CAPTIONS[name] }), seg);
      bar.appendChild(group);
      this.segments[name] = seg;
    }
    this.zoomButtons = null;
    if (wanted.includes("zoom")) {
      const group = el("div", "sl-group sl-zoom", { role: "group", "aria-label": "zoom" });
      const make = (text, title, fn, cls = "") => {
        const b = el("button", `sl-tool ${cls}`, { type: "button", text, title });
        b.addEventListener("click", fn);
        group.appendChild(b);
        return b;
      };
      group.appendChild(el("span", "sl-caption", { text: "zoom" }));
      make("\u2212", "Zoom out (wheel over the plots)", () => this.zoomBy(2));
      make("+", "Zoom in (wheel over the plots, or drag across them)", () => this.zoomBy(0.5));
      this.zoomButtons = { full: make("full", "Show everything", () => this.player.setWindow(0, this.player.duration())) };
      bar.appendChild(group);
    }
    this.loopButton = null;
    if (wanted.includes("loop")) {
      const group = el("div", "sl-group sl-loop-group");
      this.loopButton = el("button", "sl-tool sl-loop-button", { type: "button", text: "loop",
        title: "Loop the visible span (shift-drag across the plots: loop a selection)" });
      this.loopButton.addEventListener("click", () => {
        if (this.player.loopRange()) this.player.setLoop(null);
        else {
          const { t0, t1 } = this.window();
          this.player.setLoop([t0, t1]);
        }
      });
      this.loopLabel = el("span", "sl-loop-label");
      this.loopClear = el("button", "sl-tool sl-loop-clear", { type: "button", text: "\u00d7", title: "Clear the loop",
        "aria-label": "Clear the loop" });
      this.loopClear.addEventListener("click", () => this.player.setLoop(null));
      group.append(this.loopButton, this.loopLabel, this.loopClear);
      bar.appendChild(group);
    }
    bar.style.display = bar.childElementCount ? "" : "none";
    if (!this.controlBar) {
      this.controlBar = bar;
      this.root.appendChild(bar);
    }
    this.updateControls();
  }

  updateControls() {
    for (const [name, seg] of Object.entries(this.segments ?? {})) {
      const value = this.model.get(name);
      for (const b of seg.children) {
        const on = b.dataset.value === value;
        b.classList.toggle("sl-on", on);
        b.setAttribute("aria-pressed", String(on));
      }
    }
    if (this.zoomButtons) {
      const { t0, t1 } = this.window();
      this.zoomButtons.full.disabled = t0 <= 0 && t1 >= this.player.duration() - 1e-6;
    }
    this.updateLoop();
  }

  zoomBy(factor, center) {
    const { t0, t1 } = this.window();
    const c = center ?? (t0 + t1) / 2;
    const span = (t1 - t0) * factor;
    this.player.setWindow(c - ((c - t0) / (t1 - t0)) * span, c - ((c - t0) / (t1 - t0)) * span + span);
  }

  labelAB() {
    const [stems, source] = this.model.get("ab_labels") ?? [];
    this.abButtons[0].textContent = stems || "Stems";
    this.abButtons[1].textContent = source || "Source";
  }

  buildRows() {
    const tracks = this.model.get("tracks") ?? [];
    this.grid.replaceChildren();
    this.rows = [];
    let stemNumber = 0;
    tracks.forEach((track, i) => {
      const isSource = track.kind === "source";
      const color = track.color || (isSource ? null : PALETTE[stemNumber++ % PALETTE.length]);
      const data = { index: String(i), name: track.name, kind: track.kind };
      const panel = el("div", `sl-panel sl-kind-${track.kind}`, { dataset: data, tabindex: "0",
        title: isSource ? track.name : `${track.name}: M mutes, S solos (when the row has focus)` });
      const head = el("div", "sl-name");
      const swatch = el("span", "sl-swatch");
      if (color) swatch.style.background = color;
      head.append(swatch, el("span", "sl-label", { text: track.label ?? track.name, title: track.name }));
      if (track.silent) head.appendChild(el("span", "sl-badge", { text: "silent", title: "No signal above the silence threshold" }));
      const controls = el("div", "sl-controls");
      const row = { panel, color, isSource, track };
      if (isSource) {
        row.listen = el("button", "sl-listen", { type: "button", text: "A/B", title: "Play the source instead of the stems, level-matched" });
        row.listen.addEventListener("click", () => this.player.setMixer({ ab: this.model.get("ab") === "source" ? "stems" : "source" }));
        row.match = el("span", "sl-match");
        controls.append(row.listen, row.match);
      } else {
        row.mute = el("button", "sl-mute", { type: "button", text: "M", title: "Mute" });
        row.solo = el("button", "sl-solo", { type: "button", text: "S", title: "Solo (Ctrl/Alt-click: solo only this)" });
        row.gain = el("input", "sl-gain", { type: "range", min: GAIN_MIN_DB, max: GAIN_MAX_DB, step: 0.5,
          title: "Gain (double-click: 0 dB)", "aria-label": `${track.label ?? track.name} gain` });
        row.db = el("span", "sl-db");
        row.notesButton = el("button", "sl-notes", { type: "button", text: "\u266a",
          "aria-label": `${track.label ?? track.name} notes` });
        row.notesButton.addEventListener("click", () => this.toggleNotes(i));
        row.hearButton = el("button", "sl-hear", { type: "button", dataset: { hear: "audio" },
          "aria-label": `${track.label ?? track.name}: hear audio, notes or both` });
        row.hearButton.addEventListener("click", () => this.cycleHear(i));
        row.mute.addEventListener("click", () => this.toggle("muted", i));
        row.solo.addEventListener("click", (e) => this.toggle("soloed", i, e.ctrlKey || e.metaKey || e.altKey));
        row.gain.addEventListener("input", () => this.setGain(i, Number(row.gain.value), false));
        row.gain.addEventListener("change", () => this.setGain(i, Number(row.gain.value), true));
        row.gain.addEventListener("dblclick", () => this.setGain(i, 0, true));
        controls.append(row.mute, row.solo, row.notesButton, row.hearButton, row.gain, row.db);
      }
      panel.append(head, controls);
      row.plot = el("div", "sl-plot", { dataset: data, tabindex: "-1" });
      row.canvas = el("canvas");
      row.plot.appendChild(row.canvas);
      this.attachPointer(row.plot);
      panel.style.gridRow = row.plot.style.gridRow = String(i + 1);
      if (track.silent) {
        panel.classList.add("sl-silent");
        row.plot.classList.add("sl-silent");
      }
      this.grid.append(panel, row.plot);
      this.rows.push(row);
    });
    const n = tracks.length;
    this.axisLabel = el("div", "sl-axis-label");
    this.axisLabel.style.gridRow = String(n + 1);
    this.axis = el("canvas", "sl-axis");
    this.axis.style.gridRow = String(n + 1);
    this.overlay = el("div", "sl-overlay");
    this.overlay.style.gridRow = `1 / ${Math.max(n, 1) + 1}`;
    this.playhead = el("div", "sl-playhead");
    this.hover = el("div", "sl-hover");
    this.hoverLabel = el("span", "sl-hover-label");
    this.hover.appendChild(this.hoverLabel);
    this.loopBand = el("div", "sl-loop");
    this.selection = el("div", "sl-selection");
    this.overlay.append(this.loopBand, this.selection, this.hover, this.playhead);
    this.grid.append(this.axisLabel, this.axis, this.overlay);
    this.layout();
    this.updateMixer();
    this.updateLoop();
  }

  layout() {
    const mode = this.model.get("view");
    const n = this.rows.length;
    this.root.dataset.view = mode;
    this.grid.style.gridTemplateRows = `repeat(${n}, ${ROW_HEIGHT[mode] ?? ROW_HEIGHT.both}px) ${AXIS_HEIGHT}px`;
    this.resize();
  }

  /** Click: seek. Drag: zoom to the selection. Shift-drag: loop it. Wheel (or pinch): zoom
   * around the pointer; horizontal wheel or shift-wheel: scroll. */
  attachPointer(plot) {
    const timeAt = (event) => {
      const rect = plot.getBoundingClientRect();
      const { t0, t1 } = this.window();
      return t0 + clamp((event.clientX - rect.left) / rect.width, 0, 1) * (t1 - t0);
    };
    plot.addEventListener("pointerdown", (event) => {
      if (event.button !== 0) return;
      plot.setPointerCapture?.(event.pointerId);
      this.drag = { x: event.clientX, t: timeAt(event), loop: event.shiftKey, moved: false };
    });
    plot.addEventListener("pointermove", (event) => {
      const t = timeAt(event);
      this.showHover(event.clientX, t);
      const drag = this.drag;
      if (!drag) return;
      if (Math.abs(event.clientX - drag.x) >= DRAG_PX) drag.moved = true;
      if (drag.moved) this.showSelection(Math.min(drag.t, t), Math.max(drag.t, t), drag.loop);
    });
    const end = (event, cancelled) => {
      const drag = this.drag;
      this.drag = null;
      this.selection.style.display = "none";
      if (!drag || cancelled) return;
      const t = timeAt(event);
      const [a, b] = [Math.min(drag.t, t), Math.max(drag.t, t)];
      if (!drag.moved) this.player.seek(drag.t);
      else if (drag.loop) this.player.setLoop([a, b]);
      else if (b - a > 0) this.player.setWindow(a, b);
    };
    plot.addEventListener("pointerup", (event) => end(event, false));
    plot.addEventListener("pointercancel", (event) => end(event, true));
    plot.addEventListener("pointerleave", () => (this.hover.style.display = "none"));
    plot.addEventListener("wheel", (event) => this.onWheel(event, timeAt(event), plot), { passive: false });
  }

  onWheel(event, t, plot) {
    const unit = event.deltaMode === 1 ? 16 : event.deltaMode === 2 ? 400 : 1;
    const dx = event.deltaX * unit;
    const dy = event.deltaY * unit;
    const { t0, t1 } = this.window();
    const span = t1 - t0;
    const full = t0 <= 0 && t1 >= this.player.duration();
    // Fully zoomed out, a plain wheel-down cannot zoom further: the page scrolls on (the notebook
    // is not held at the explorer).
    if (full && dy > 0 && !event.ctrlKey && !event.shiftKey && Math.abs(dy) >= Math.abs(dx)) return;
    event.preventDefault();
    if (event.shiftKey || Math.abs(dx) > Math.abs(dy)) { // scroll in time
      const px = event.shiftKey && !dx ? dy : dx;
      const shift = (px / Math.max(1, plot.clientWidth)) * span;
      this.player.setWindow(t0 + shift, t1 + shift);
      return;
    }
    // pinch arrives as ctrl+wheel with small deltas; a mouse notch (100 px) zooms by ~16%
    const factor = Math.exp(clamp(dy * (event.ctrlKey ? 0.01 : 0.0015), -1, 1));
    const d = this.player.duration();
    const next = clamp(span * factor, Math.min(MIN_SPAN, d), d);
    const start = t - ((t - t0) / span) * next; // the time under the pointer stays there
    this.player.setWindow(start, start + next);
  }

  showSelection(a, b, loop) {
    const { t0, t1 } = this.window();
    const width = this.overlay.clientWidth;
    const x0 = ((clamp(a, t0, t1) - t0) / (t1 - t0)) * width;
    const x1 = ((clamp(b, t0, t1) - t0) / (t1 - t0)) * width;
    this.selection.style.display = "block";
    this.selection.style.left = `${x0}px`;
    this.selection.style.width = `${Math.max(1, x1 - x0)}px`;
    this.selection.classList.toggle("sl-for-loop", loop);
  }

  updateLoop() {
    if (!this.loopBand) return;
    const loop = this.player.loopRange();
    const { t0, t1 } = this.window();
    const width = this.overlay.clientWidth;
    const visible = loop && loop[1] > t0 && loop[0] < t1 && width > 0;
    this.loopBand.style.display = visible ? "block" : "none";
    if (visible) {
      const x0 = ((Math.max(loop[0], t0) - t0) / (t1 - t0)) * width;
      const x1 = ((Math.min(loop[1], t1) - t0) / (t1 - t0)) * width;
      this.loopBand.style.left = `${x0}px`;
      this.loopBand.style.width = `${Math.max(1, x1 - x0)}px`;
      this.loopBand.classList.toggle("sl-open-left", loop[0] < t0);
      this.loopBand.classList.toggle("sl-open-right", loop[1] > t1);
    }
    if (this.loopButton) {
      this.loopButton.classList.toggle("sl-on", !!loop);
      this.loopButton.setAttribute("aria-pressed", String(!!loop));
      this.loopLabel.textContent = loop ? formatWindow(loop[0], loop[1]) : "";
      this.loopClear.style.display = loop ? "" : "none";
    }
  }

  /** The window moved (page or kernel): draw at once with the data there is. */
  windowChanged() {
    this.draw();
    this.updateControls();
    this.dataChanged();
  }

  /** Is what the plots hold what was asked for? Dim them, and say why, after 200 ms. */
  dataChanged() {
    const p = this.player;
    const m = this.model;
    const shown = m.get("shown") ?? {};
    const busy = m.get("busy") || "";
    const { t0, t1 } = this.window();
    const kernel = !p.noKernel;
    const stale = kernel && (!!busy || (p.computed() && (shown.view !== m.get("view") || shown.show !== m.get("show")
      || (m.get("view") !== "waveform" && shown.scale !== m.get("scale"))
      || (m.get("view") !== "spectrogram" && shown.channels !== m.get("channels")))));
    const refining = kernel && p.refines() && (Math.abs(shown.t0 - t0) > 1e-9 || Math.abs(shown.t1 - t1) > 1e-9);
    this.root.classList.toggle("sl-stale", stale);
    this.root.classList.toggle("sl-refining", refining && !stale);
    this.busyText.textContent = busy ? `${busy}\u2026` : stale ? "computing\u2026" : "refining\u2026";
    this.updateControls();
    this.draw();
  }

  /** May the layer be drawn? Not when it was computed for other settings (it would be stale). */
  layerCurrent(layer) {
    const shown = this.model.get("shown") ?? {};
    if (!this.player.computed() || !shown.view) return true;
    if (layer === "waves") return shown.view !== "spectrogram" && shown.channels === this.model.get("channels");
    return shown.view !== "waveform" && shown.scale === this.model.get("scale");
  }

  showHover(clientX, t) {
    const rect = this.overlay.getBoundingClientRect();
    this.hover.style.display = "block";
    this.hover.style.left = `${clientX - rect.left}px`;
    this.hoverLabel.textContent = formatTime(t);
    this.hover.classList.toggle("sl-flip", clientX - rect.left > rect.width - 60);
  }

  /** Space: play/pause. Home: to the start. M, S: mute, solo the row that has the focus.
   * Only while the focus is inside the widget; never in a text field. */
  onKey(event) {
    const target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (target.closest?.("textarea, select, [contenteditable], input:not([type=range])")) return;
    const control = target.closest?.("button, input"); // their own Space and Enter
    const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    if (key === " " && !control) this.player.toggle();
    else if (key === "Home" && !control) this.player.seek(0);
    else if (key === "m" || key === "s") {
      const row = this.rows[Number(target.closest?.(".sl-panel, .sl-plot")?.dataset.index)];
      if (!row || row.isSource) return;
      this.toggle(key === "m" ? "muted" : "soloed", this.rows.indexOf(row));
    } else return;
    event.preventDefault();
    event.stopPropagation();
  }

  toggle(name, i, exclusive = false) {
    const n = this.rows.length;
    const values = Array.from({ length: n }, (_, k) => !!(this.model.get(name) ?? [])[k]);
    if (exclusive) {
      const only = values.every((v, k) => v === (k === i));
      values.forEach((_, k) => (values[k] = !only && k === i));
    } else values[i] = !values[i];
    this.player.setMixer({ [name]: values });
  }

  setGain(i, db, sync) {
    const n = this.rows.length;
    const gains = Array.from({ length: n }, (_, k) => Number((this.model.get("gains_db") ?? [])[k] ?? 0));
    gains[i] = clamp(db, GAIN_MIN_DB, GAIN_MAX_DB);
    // While dragging the audio follows every step; the kernel gets at most ~7 updates/s.
    const now = performance.now();
    const due = sync || !this.lastGainSync || now - this.lastGainSync > 150;
    if (due) this.lastGainSync = now;
    this.player.setMixer({ gains_db: gains }, due);
  }

  /** The notes toggle of row i: draw its notes or not (the kernel sends them when first wanted). */
  toggleNotes(i) {
    const name = this.rows[i].track.name;
    const shown = (this.model.get("notes_shown") ?? []).filter((n) => n !== name);
    this.player.setTrait("notes_shown", shown.length === (this.model.get("notes_shown") ?? []).length
      ? [...shown, name] : shown);
  }

  /** The hear button of row i: audio -> notes -> both -> audio. */
  cycleHear(i) {
    const name = this.rows[i].track.name;
    const hear = this.model.get("hear") ?? {};
    const next = HEAR_MODES[(HEAR_MODES.indexOf(hear[name] ?? "audio") + 1) % HEAR_MODES.length];
    this.player.setMixer({ hear: { ...hear, [name]: next } });
  }

  /** The notes and hear buttons of a row: on or off, loading, failed, or not available here. */
  updateNotesButtons(row) {
    const name = row.track.name;
    const notes = this.player.noteSets.get(name);
    const shown = (this.model.get("notes_shown") ?? []).includes(name);
    const wanted = (this.model.get("hear") ?? {})[name] ?? "audio";
    // Without someone to transcribe (a page without a kernel) only rows that have notes can.
    const available = !!notes || this.player.refines();
    const loading = !notes && (shown || wanted !== "audio") && available;
    const error = notes?.error;
    row.notesButton.classList.toggle("sl-on", shown);
    row.notesButton.setAttribute("aria-pressed", String(shown));
    row.notesButton.classList.toggle("sl-loading", loading);
    row.notesButton.classList.toggle("sl-error", !!error);
    row.notesButton.disabled = !available;
    row.notesButton.title = error ? `No notes: ${error}` : !available ? "No notes in this page"
      : `Notes: draw ${name}'s transcribed notes over its plot${notes ? ` (${notes.n})` : ""}`;
    row.hearButton.dataset.hear = wanted;
    row.hearButton.textContent = HEAR_TEXT[wanted] ?? "A";
    row.hearButton.classList.toggle("sl-on", wanted !== "audio");
    row.hearButton.disabled = !available || !!error;
    row.hearButton.title = "Hear: the stem's audio (A), a synth playing its notes (N), or both (AN)";
  }

  // -- state -> DOM --

  updateMixer() {
    const { audible, match, src, sourceMode } = this.player.mix();
    const db = this.model.get("gains_db") ?? [];
    const muted = this.model.get("muted") ?? [];
    const soloed = this.model.get("soloed") ?? [];
    this.rows.forEach((row, i) => {
      row.plot.classList.toggle("sl-inaudible", !audible[i]);
      row.panel.classList.toggle("sl-inaudible", !audible[i]);
      if (row.isSource) {
        row.listen.classList.toggle("sl-on", sourceMode);
        row.listen.setAttribute("aria-pressed", String(sourceMode));
        row.match.textContent = `match ${formatDb(20 * Math.log10(Math.max(match, 1e-6)))}`;
        row.match.title = "Gain that makes the source as loud as the current stem mix";
        return;
      }
      this.updateNotesButtons(row);
      row.mute.classList.toggle("sl-on", !!muted[i]);
      row.mute.setAttribute("aria-pressed", String(!!muted[i]));
      row.solo.classList.toggle("sl-on", !!soloed[i]);
      row.solo.setAttribute("aria-pressed", String(!!soloed[i]));
      const value = clamp(Number(db[i] ?? 0), GAIN_MIN_DB, GAIN_MAX_DB);
      if (document.activeElement !== row.gain || Number(row.gain.value) !== value) row.gain.value = String(value);
      row.db.textContent = formatDb(value);
    });
    const ab = this.model.get("ab");
    this.abButtons.forEach((b) => {
      const on = b.dataset.ab === ab;
      b.classList.toggle("sl-on", on);
      b.setAttribute("aria-pressed", String(on));
      b.disabled = b.dataset.ab === "source" && src < 0;
    });
  }

  updateTransport() {
    const p = this.player;
    const active = p.playing || p.pendingPlay;
    this.playButton.innerHTML = `${active ? ICON_PAUSE : ICON_PLAY}<span>${active ? "Pause" : "Play"}</span>`;
    this.playButton.classList.toggle("sl-on", active);
    this.playButton.disabled = !p.ready && (p.noKernel || !p.heardFromKernel);
    this.statusLine.textContent = p.statusText;
    this.statusLine.title = p.statusText;
    this.statusLine.classList.toggle("sl-warn", p.noKernel || /could not|blocked|holds audio/.test(p.statusText));
    this.updateReadout();
  }

  updateReadout() {
    const text = `${formatTime(this.player.position())} / ${formatTime(this.player.duration())}`;
    if (this.timeReadout.textContent !== text) this.timeReadout.textContent = text;
  }

  updateScale() {
    const lut = lutOf(this.model.get("colormap"));
    const g = this.colorbar.getContext("2d");
    const image = g.createImageData(256, 1);
    for (let v = 0; v < 256; v++) image.data.set([lut[3 * v], lut[3 * v + 1], lut[3 * v + 2], 255], 4 * v);
    g.putImageData(image, 0, 0);
    const label = this.model.get("db_label") ?? "";
    this.dbLabel.textContent = label;
    this.colorbar.parentElement.style.display = label ? "" : "none";
  }

  window() {
    return this.player.window();
  }

  /** x in px of time t, in a plot `width` px wide. */
  xOf(t, width) {
    const { t0, t1 } = this.window();
    return ((t - t0) / (t1 - t0)) * width;
  }

  updatePlayhead() {
    if (!this.overlay) return;
    const { t0, t1 } = this.window();
    const t = this.player.position();
    const width = this.overlay.clientWidth;
    const visible = t >= t0 && t <= t1 && width > 0;
    this.playhead.style.display = visible ? "block" : "none";
    if (visible) this.playhead.style.left = `${((t - t0) / (t1 - t0)) * width}px`;
    this.updateReadout();
    this.updateLoop();
  }

  animate() {
    if (this.raf) return;
    const frame = () => {
      this.updatePlayhead();
      this.raf = this.player.playing ? requestAnimationFrame(frame) : 0;
    };
    this.raf = requestAnimationFrame(frame);
  }

  // -- data --

  decodeWaves() {
    this.waves = float32Of(this.model.get("waves"));
    this.points = float32Of(this.model.get("wave_points"));
    this.draw();
  }

  async decodeSpecs() {
    const generation = ++this.specGeneration;
    const specs = this.model.get("specs") ?? [];
    const lut = lutOf(this.model.get("colormap"));
    const images = await Promise.all(specs.map(async (png, i) => {
      const bytes = bytesOf(png);
      if (!bytes || !bytes.length) return null;
      try {
        return await colorize(bytes, lut);
      } catch (err) {
        console.warn(`stemlab: spectrogram ${i} is not a readable PNG`, err);
        return null;
      }
    }));
    if (generation !== this.specGeneration) return; // newer images are on their way
    this.specImages = images;
    this.draw();
  }

  // -- drawing --

  palette() {
    if (!this.colors) {
      const css = getComputedStyle(this.root);
      const v = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
      this.colors = { fg: v("--sl-fg", "#222"), fg2: v("--sl-fg2", "#666"), plot: v("--sl-plot-bg", "#f4f4f4"),
        grid: v("--sl-grid", "#ddd"), source: v("--sl-source-wave", "#555"), font: v("--sl-font", "sans-serif") };
    }
    return this.colors;
  }

  resize() {
    if (!this.rows.length && !this.axis) return;
    const dpr = window.devicePixelRatio || 1;
    const fit = (canvas) => {
      const w = Math.max(1, Math.round(canvas.clientWidth * dpr));
      const h = Math.max(1, Math.round(canvas.clientHeight * dpr));
      if (canvas.width !== w || canvas.height !== h) {
        canvas.width = w;
        canvas.height = h;
      }
    };
    this.rows.forEach((row) => fit(row.canvas));
    if (this.axis) fit(this.axis);
    this.draw();
  }

  draw() {
    if (this.drawQueued) return;
    this.drawQueued = true;
    requestAnimationFrame(() => {
      this.drawQueued = false;
      this.data = this.player.dataWindow();
      this.rows.forEach((_, i) => this.drawRow(i));
      this.drawAxis();
      this.updatePlayhead();
    });
  }

  drawRow(i) {
    const canvas = this.rows[i].canvas;
    const dpr = window.devicePixelRatio || 1;
    const width = canvas.width / dpr;
    const height = canvas.height / dpr;
    if (!(width > 1 && height > 1)) return;
    const g = canvas.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, width, height);
    const mode = this.model.get("view");
    let area; // where the notes go: the spectrogram, or the waveform when there is none
    if (mode === "waveform") {
      this.drawWave(g, i, 0, width, height);
      area = { top: 0, height, spectrogram: false };
    } else if (mode === "spectrogram") {
      this.drawSpec(g, i, 0, width, height);
      area = { top: 0, height, spectrogram: true };
    } else {
      const waveHeight = Math.round(height * 0.38);
      this.drawWave(g, i, 0, width, waveHeight);
      this.drawSpec(g, i, waveHeight + 1, width, height - waveHeight - 1);
      area = { top: waveHeight + 1, height: height - waveHeight - 1, spectrogram: true };
    }
    this.drawNotes(g, i, width, area);
  }

  /** The vertical band [y0, y1] (px) of MIDI `pitch` in `area`: on a spectrogram its semitone
   * (a quarter tone below and above its frequency) on the frequency scale shown; over a
   * waveform one of equal rows spanning the notes' range with a semitone to spare. */
  pitchBand(pitch, notes, area) {
    if (area.spectrogram) {
      const scale = this.model.get("scale");
      const nyquist = this.model.get("nyquist") || 22050;
      const yOf = (hz) => area.top + (1 - frequencyFraction(hz, scale, nyquist)) * area.height;
      return [yOf(midiToHz(pitch + 0.5)), yOf(midiToHz(pitch - 0.5))];
    }
    const low = notes.low - 1;
    const rows = notes.high + 1 - low + 1;
    const step = area.height / rows;
    const y0 = area.top + (notes.high + 1 - pitch) * step;
    return [y0, y0 + step];
  }

  /** Row i's notes, if its toggle is on: a rectangle per note from onset to offset at its pitch,
   * or for drums a tick at each onset in its kit piece's lane. x is the spectrogram's own
   * mapping (xOf, over the visible window), so the notes stay on the picture as it zooms. */
  drawNotes(g, i, width, area) {
    const row = this.rows[i];
    row.noteBoxes = [];
    const notes = this.player.noteSets.get(row.track.name);
    const shown = (this.model.get("notes_shown") ?? []).includes(row.track.name);
    if (!shown || !notes?.n) {
      if (shown) row.plot.dataset.notes = "0";
      else delete row.plot.dataset.notes;
      return;
    }
    const { t0, t1 } = this.window();
    const bottom = area.top + area.height;
    const lanes = notes.drums ? notes.lanes.length : 0;
    const laneHeight = lanes ? area.height / lanes : 0;
    g.save();
    g.beginPath();
    g.rect(0, area.top, width, area.height);
    g.clip();
    g.fillStyle = row.color ?? "#ffffff";
    g.strokeStyle = area.spectrogram ? "rgba(255,255,255,0.9)" : "rgba(0,0,0,0.55)";
    g.lineWidth = 1;
    const last = lowerBound(notes.onset, t1); // notes are sorted by onset
    for (let k = 0; k < last; k++) {
      if (notes.offset[k] < t0 && !notes.drums) continue;
      const x = this.xOf(notes.onset[k], width);
      let y;
      let w;
      let h;
      if (notes.drums) { // a tick 3 px wide in the lane, bottom lane first
        if (x < -3) continue;
        const lane = notes.lane[k];
        y = bottom - (lane + 0.9) * laneHeight;
        h = laneHeight * 0.8;
        w = 3;
      } else {
        const [y0, y1] = this.pitchBand(notes.pitch[k], notes, area);
        if (y1 < area.top || y0 > bottom) continue; // off this frequency axis
        w = Math.max(2, this.xOf(notes.offset[k], width) - x);
        h = Math.max(2, y1 - y0); // at least 2 px, centred on the band
        y = (y0 + y1) / 2 - h / 2;
      }
      const alpha = noteAlpha(notes.velocity[k], notes.confidence[k]);
      g.globalAlpha = 0.5 * alpha; // the spectrogram shows through the fill, the outline marks the note
      g.fillRect(x, y, w, h);
      g.globalAlpha = alpha;
      g.strokeRect(x + 0.5, y + 0.5, Math.max(0, w - 1), Math.max(0, h - 1));
      row.noteBoxes.push({ k, x, y, w, h, onset: notes.onset[k], pitch: notes.pitch[k] });
    }
    g.globalAlpha = 1;
    if (notes.drums && laneHeight >= 8) this.labelLanes(g, notes.lanes, area, laneHeight);
    g.restore();
    row.plot.dataset.notes = String(row.noteBoxes.length);
  }

  /** Kit piece names at the left of a drum row's lanes. */
  labelLanes(g, lanes, area, laneHeight) {
    const c = this.palette();
    g.font = `8px ${c.font}`;
    g.textBaseline = "middle";
    g.textAlign = "left";
    lanes.forEach((lane, j) => {
      const y = area.top + area.height - (j + 0.5) * laneHeight;
      const w = g.measureText(lane.label).width;
      g.fillStyle = "rgba(0,0,0,0.5)";
      g.fillRect(2, y - 4.5, w + 4, 9);
      g.fillStyle = "#fff";
      g.fillText(lane.label, 4, y + 0.5);
    });
  }

  drawWave(g, i, top, width, height) {
    const c = this.palette();
    const row = this.rows[i];
    g.fillStyle = c.plot;
    g.fillRect(0, top, width, height);
    const { t0, t1 } = this.window();
    g.fillStyle = c.grid;
    for (const tick of timeTicks(t0, t1, width)) g.fillRect(Math.round(tick.x), top, 1, height);

    const n = this.rows.length;
    const channels = this.model.get("wave_channels") || 1;
    const bandHeight = height / channels;
    const color = row.color ?? c.source;
    g.fillStyle = color;
    g.strokeStyle = color;
    const current = this.layerCurrent("waves");
    const data = this.data ?? { t0, t1 };
    const dataSpan = data.t1 - data.t0;
    for (let ch = 0; ch < channels; ch++) {
      const mid = top + bandHeight * (ch + 0.5);
      const amp = bandHeight * 0.46;
      if (ch > 0) {
        g.fillStyle = c.grid;
        g.fillRect(0, Math.round(top + bandHeight * ch), width, 1);
        g.fillStyle = color;
      }
      if (!current) continue; // computed for other settings: nothing rather than something stale
      if (this.points && this.points.length % (n * channels) === 0) {
        const count = this.points.length / (n * channels);
        const base = (i * channels + ch) * count;
        const xAt = (k) => this.xOf(data.t0 + (count > 1 ? (k / (count - 1)) * dataSpan : 0), width);
        const step = count > 1 ? xAt(1) - xAt(0) : 0;
        g.lineWidth = 1.25;
        g.beginPath();
        for (let k = 0; k < count; k++) {
          const y = mid - clamp(this.points[base + k], -1, 1) * amp;
          if (k === 0) g.moveTo(xAt(k), y);
          else g.lineTo(xAt(k), y);
        }
        g.stroke();
        if (step >= 5) {
          for (let k = 0; k < count; k++) {
            const x = xAt(k);
            if (x < -2 || x > width + 2) continue;
            g.beginPath();
            g.arc(x, mid - clamp(this.points[base + k], -1, 1) * amp, 1.6, 0, 2 * Math.PI);
            g.fill();
          }
        }
        continue;
      }
      const columns = this.model.get("columns") || 1;
      if (!this.waves || this.waves.length < n * channels * 2 * columns) {
        g.fillRect(0, Math.round(mid), width, 1);
        continue;
      }
      const base = (i * channels + ch) * 2 * columns;
      // the columns span the data's window, which is the visible one unless the page just zoomed
      const xAt = (k) => this.xOf(data.t0 + ((k + 0.5) / columns) * dataSpan, width);
      const step = Math.max(1e-9, xAt(1) - xAt(0));
      const first = clamp(Math.floor(-xAt(0) / step) - 1, 0, columns - 1);
      const last = clamp(Math.ceil((width - xAt(0)) / step) + 1, 0, columns - 1);
      g.beginPath();
      for (let k = first; k <= last; k++) g.lineTo(xAt(k), mid - clamp(this.waves[base + columns + k], -1, 1) * amp);
      for (let k = last; k >= first; k--) g.lineTo(xAt(k), mid - clamp(this.waves[base + k], -1, 1) * amp);
      g.closePath();
      g.fill();
      g.lineWidth = 0.8; // keeps near-silent passages visible as a hairline
      g.stroke();
    }
  }

  drawSpec(g, i, top, width, height) {
    const c = this.palette();
    const image = this.layerCurrent("specs") ? this.specImages[i] : null;
    const track = this.rows[i].track;
    const { t0, t1 } = this.window();
    const data = this.data ?? { t0, t1 };
    const a = Math.max(t0, data.t0);
    const b = Math.min(t1, data.t1);
    if (image && b > a) {
      g.fillStyle = c.plot;
      g.fillRect(0, top, width, height);
      g.imageSmoothingEnabled = true;
      g.imageSmoothingQuality = "high";
      // the part of the image (computed for the data's window) that is visible
      const sx = ((a - data.t0) / (data.t1 - data.t0)) * image.width;
      const sw = ((b - a) / (data.t1 - data.t0)) * image.width;
      const x0 = this.xOf(a, width);
      g.drawImage(image, sx, 0, Math.max(sw, 1e-3), image.height, x0, top, this.xOf(b, width) - x0, height);
    } else {
      g.fillStyle = c.plot;
      g.fillRect(0, top, width, height);
      if (track.silent) {
        g.fillStyle = c.fg2;
        g.font = `italic 10px ${c.font}`;
        g.textBaseline = "middle";
        g.fillText("silent", 6, top + height / 2);
      }
    }
    const ticks = this.model.get("freq_ticks") ?? [];
    if (!ticks.length) return;
    g.font = `9px ${c.font}`;
    g.textAlign = "right";
    g.textBaseline = "middle";
    let lastY = Infinity;
    for (const [fraction, label] of ticks) {
      const y = top + (1 - fraction) * height;
      if (y < top || y > top + height) continue;
      g.fillStyle = "rgba(255,255,255,0.75)";
      g.fillRect(width - 4, Math.round(y), 4, 1);
      // Labels on the first row only (the scale is shared), skipping those that would collide.
      if (i !== 0 || Math.abs(lastY - y) < 10 || y - top < 4 || top + height - y < 4) continue;
      lastY = y;
      const w = g.measureText(label).width;
      g.fillStyle = "rgba(0,0,0,0.55)";
      g.fillRect(width - w - 10, y - 5.5, w + 5, 11);
      g.fillStyle = "#fff";
      g.fillText(label, width - 6, y + 0.5);
    }
    g.textAlign = "left";
  }

  drawAxis() {
    const canvas = this.axis;
    if (!canvas) return;
    const dpr = window.devicePixelRatio || 1;
    const width = canvas.width / dpr;
    const height = canvas.height / dpr;
    const g = canvas.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, width, height);
    const c = this.palette();
    const { t0, t1 } = this.window();
    g.fillStyle = c.grid;
    g.fillRect(0, 0, width, 1);
    g.font = `10px ${c.font}`;
    g.textBaseline = "top";
    const ticks = timeTicks(t0, t1, width);
    ticks.forEach((tick, k) => {
      g.fillStyle = c.grid;
      g.fillRect(Math.round(tick.x), 0, 1, 5);
      g.fillStyle = c.fg2;
      const w = g.measureText(tick.label).width;
      const x = clamp(tick.x - w / 2, 0, width - w);
      g.fillText(tick.label, x, 7);
    });
    this.axisLabel.textContent = t0 > 0 || t1 < this.player.duration() - 1e-6 ? formatWindow(t0, t1) : "time";
  }
}

// ---- anywidget entry points --------------------------------------------------------------

export default {
  initialize({ model }) {
    const player = playerFor(model);
    return () => player.destroy();
  },
  render({ model, el: host }) {
    const view = new View(model, host, playerFor(model));
    hideSnapshot(host);
    return () => view.destroy();
  },
};

// The kernel displays a still picture of the explorer just before it (for a notebook reopened
// without a kernel, where widgets cannot render). A live widget hides that picture.
function hideSnapshot(host) {
  requestAnimationFrame(() => {
    const output = host.closest(".jp-OutputArea-child, .output_area");
    let previous = output?.previousElementSibling;
    for (let hops = 0; previous && hops < 3; hops += 1, previous = previous.previousElementSibling) {
      const snapshot = previous.querySelector(".stemlab-snapshot");
      if (snapshot) {
        previous.style.display = "none";
        return;
      }
    }
  });
}
