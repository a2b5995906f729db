// @ts-check
// Piano sound in the browser: Salamander Grand Piano samples (one every 3 semitones, pitch-shifted
// to the keys between), with a small synth as a stand-in until (or if) they cannot be loaded.
//
// What loads when: little at first, so the page stays light and the first press sounds soon.
// `load()` fetches the FIRST set only, a sample every 6 semitones (C and F#, 15 files, every key
// within MAX_SHIFT of one), which the site's service worker precaches (pianogenie/site.py's
// FIRST_SAMPLES names the same files); `loadRest()` fetches the other 15 one by one at idle after
// the first note, so the piano improves as they arrive (dynamics.js adds the velocity layers the
// same way). Offline, a sample the service worker has not cached is not asked for (`fetchSample`):
// its keys use the nearest one.

// The npm packages ship A, C, D#, F# of each octave: A0 .. C8.
const SAMPLE_NAMES = ['C', 'D#', 'F#', 'A'];
const RELEASE_S = 0.35; // damper: how long a released note takes to fade
export const BASE_LAYER = 10; // Salamander's mezzo-forte layer: the one the first press plays
const MAX_SHIFT = 3; // semitones a sample is pitch-shifted at most (the FIRST set's half spacing)
const IDLE_TIMEOUT_MS = 500; // a busy page still gets its samples

/** [midi pitch, file name] of one layer's samples. */
export function layerSamples(layer) {
  const out = [];
  for (let p = 21; p <= 108; p++) {
    if ((p % 12) % 3 === 0) out.push([p, `${SAMPLE_NAMES[(p % 12) / 3]}${Math.floor(p / 12) - 1}v${layer}.mp3`]);
  }
  return out;
}

/** The first set: C and F#, every 6 semitones (A0..B0 are within 3 of C1). */
export const isFirst = (pitch) => pitch % 6 === 0;

/** The sample nearest `pitch` in `samples` (Map pitch -> buffer) within MAX_SHIFT, or null. */
export function nearestSample(samples, pitch) {
  let best = null;
  for (const p of samples.keys()) {
    if (best === null || Math.abs(p - pitch) < Math.abs(best - pitch)) best = p;
  }
  return best !== null && Math.abs(best - pitch) <= MAX_SHIFT ? best : null;
}

/** Whether the site's service worker holds `url` (any of its caches). */
async function cached(url) {
  try {
    return 'caches' in window && Boolean(await caches.match(new URL(url, document.baseURI).href, { ignoreSearch: true }));
  } catch {
    return false;
  }
}

/**
 * Fetch and decode one sample -> AudioBuffer, or null when offline and not cached (a request that
 * could only fail is never made).
 */
export async function fetchSample(ctx, url) {
  if (!navigator.onLine && !(await cached(url))) return null;
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: ${r.status}`);
  return ctx.decodeAudioData(await r.arrayBuffer());
}

/** @returns {Promise<void>} */
const idle = () => new Promise((resolve) => (window.requestIdleCallback
  ? requestIdleCallback(() => resolve(), { timeout: IDLE_TIMEOUT_MS }) : setTimeout(resolve, 0)));

/**
 * Run `tasks` (async functions) `concurrency` at a time, each when the page is idle, so that
 * fetching and decoding never compete with a press. A failed task is reported and skipped.
 */
export async function atIdle(tasks, concurrency = 2) {
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const task = tasks[next++];
      await idle();
      await task().catch((e) => console.warn(`piano: ${e.message}; its keys use the nearest sample`));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/**
 * Start a voice in `ctx` at time `when`: each part a buffer source through a gain into `out`, all
 * started at that instant; no parts: the synth (a decaying triangle) at `level`. The live piano and
 * the offline render (render.js) play notes with this same code. `onEnd` once every part has ended.
 * @returns {{parts: {src: AudioScheduledSourceNode, gain: GainNode}[], live: number}}
 */
export function startVoice(ctx, out, parts, level, pitch, when, onEnd = () => {}) {
  const voice = { parts: [], live: 0 };
  const start = (src, gain) => {
    gain.connect(out);
    src.connect(gain);
    src.onended = () => {
      src.disconnect();
      gain.disconnect();
      if (--voice.live === 0) onEnd();
    };
    voice.parts.push({ src, gain });
    voice.live++;
  };
  for (const { buffer, shift, level: partLevel } of parts) {
    const src = ctx.createBufferSource(), gain = ctx.createGain();
    src.buffer = buffer;
    src.playbackRate.value = 2 ** (shift / 12);
    gain.gain.setValueAtTime(partLevel, when);
    start(src, gain);
  }
  if (!parts.length) {
    const src = ctx.createOscillator(), gain = ctx.createGain();
    src.type = 'triangle';
    src.frequency.value = 440 * 2 ** ((pitch - 69) / 12);
    gain.gain.setValueAtTime(0, when);
    gain.gain.linearRampToValueAtTime(0.4 * level, when + 0.005);
    gain.gain.exponentialRampToValueAtTime(0.001, when + 3);
    start(src, gain);
  }
  for (const { src } of voice.parts) src.start(when);
  return voice;
}

/** Damp a voice from time `when`: it fades over `release` seconds, then stops. */
export function stopVoice(voice, when, release = RELEASE_S) {
  for (const { src, gain } of voice.parts) {
    gain.gain.cancelScheduledValues(when);
    gain.gain.setTargetAtTime(0, when, release / 4);
    src.stop(when + release);
  }
}

export { RELEASE_S };

export class Piano {
  /** @param {string} sampleBaseUrl  where the `C4v10.mp3`-style files are served */
  constructor(sampleBaseUrl) {
    this.baseUrl = sampleBaseUrl;
    this.ctx = new AudioContext({ latencyHint: 'interactive' });
    this.out = this.ctx.createDynamicsCompressor(); // many loud notes at once must not clip
    this.out.connect(this.ctx.destination);
    this.samples = new Map(); // midi pitch -> AudioBuffer
    this.voices = new Map(); // midi pitch -> {parts: [{src, gain}], live: parts not yet ended}
    this.muted = false; // e.g. while a MIDI synth plays the notes
  }

  /** How many samples the first load fetches. */
  get sampleCount() {
    return layerSamples(BASE_LAYER).filter(([p]) => isFirst(p)).length;
  }

  /**
   * Fetch and decode the first set (in parallel); resolves to how many samples are in. Keys play
   * the synth until their sample arrives. onProgress(loaded, total) after each sample.
   * @param {(loaded: number, total: number) => void} [onProgress]  @returns {Promise<number>}
   */
  async load(onProgress = () => {}) {
    const list = layerSamples(BASE_LAYER).filter(([p]) => isFirst(p));
    let done = 0;
    const results = await Promise.allSettled(list.map(async ([pitch, file]) => {
      try {
        const buffer = await fetchSample(this.ctx, this.baseUrl + encodeURIComponent(file));
        if (buffer) this.samples.set(pitch, buffer);
      } finally {
        onProgress(++done, list.length);
      }
    }));
    const failed = results.filter((r) => r.status === 'rejected');
    if (failed.length) console.warn(`piano: ${failed.length} samples failed to load, using a synth for those keys`, failed[0].reason);
    return this.samples.size;
  }

  /** Tasks that fetch the rest of the base layer (for `atIdle`), each adding its sample when in. */
  restTasks() {
    return layerSamples(BASE_LAYER).filter(([p]) => !isFirst(p) && !this.samples.has(p)).map(([pitch, file]) => async () => {
      const buffer = await fetchSample(this.ctx, this.baseUrl + encodeURIComponent(file));
      if (buffer) this.samples.set(pitch, buffer);
    });
  }

  /** Browsers start audio only after a user gesture: call from one. */
  resume() {
    if (this.ctx.state !== 'running') this.ctx.resume().catch(() => {});
  }

  /** Seconds from a note start to sound at the speakers: the context's buffering + the output's. */
  get outputLatency() {
    return (this.ctx.baseLatency || 0) + (this.ctx.outputLatency || 0);
  }

  /** What a note plays: [{buffer, shift (semitones), level}], [] for the synth; and the synth's level. */
  parts(pitch, velocity = 80) {
    const level = (velocity / 127) ** 1.5;
    const nearest = nearestSample(this.samples, pitch);
    return { parts: nearest === null ? [] : [{ buffer: this.samples.get(nearest), shift: pitch - nearest, level }], level };
  }

  noteOn(pitch, velocity = 80) {
    const { parts, level } = this.parts(pitch, velocity);
    this.play(pitch, parts, level);
  }

  /**
   * Start a note (restriking `pitch` if it sounds): `parts` [{buffer, shift (semitones), level}],
   * all started at the same instant, each through a gain of its own (dynamics.js crossfades two
   * layers this way); no parts: the synth at `level`. noteOff stops every part.
   */
  play(pitch, parts, level) {
    this.noteOff(pitch, 0.05);
    if (this.muted) return;
    const voice = startVoice(this.ctx, this.out, parts, level, pitch, this.ctx.currentTime, () => {
      if (this.voices.get(pitch) === voice) this.voices.delete(pitch);
    });
    this.voices.set(pitch, voice);
  }

  noteOff(pitch, release = RELEASE_S) {
    const voice = this.voices.get(pitch);
    if (!voice) return;
    this.voices.delete(pitch);
    stopVoice(voice, this.ctx.currentTime, release);
  }

  allNotesOff() {
    for (const pitch of [...this.voices.keys()]) this.noteOff(pitch);
  }
}
