// Piano sound in the browser: Salamander Grand Piano samples (one every 3 semitones, pitch-shifted
// to the keys between), with a small synth as a stand-in until (or if) they cannot be loaded.

// The npm package ships A, C, D#, F# of each octave: A0 .. C8.
const SAMPLE_NAMES = ['C', 'D#', 'F#', 'A'];
const RELEASE_S = 0.35; // damper: how long a released note takes to fade

function sampleList() {
  const out = []; // [midi pitch, file name]
  for (let p = 21; p <= 108; p++) {
    const pc = p % 12;
    if (pc % 3 !== 0) continue;
    const name = SAMPLE_NAMES[pc / 3];
    out.push([p, `${name}${Math.floor(p / 12) - 1}v10.mp3`]);
  }
  return out;
}

export class Piano {
  /** @param {string} sampleBaseUrl  where the `C4v10.mp3`-style files are served */
  constructor(sampleBaseUrl) {
    this.baseUrl = sampleBaseUrl;
    this.ctx = new AudioContext({ latencyHint: 'interactive' });
    this.out = this.ctx.createDynamicsCompressor(); // many loud notes at once must not clip
    this.out.connect(this.ctx.destination);
    this.samples = new Map(); // midi pitch -> AudioBuffer
    this.voices = new Map(); // midi pitch -> {src, gain}
    this.muted = false; // e.g. while a MIDI synth plays the notes
  }

  /** How many samples there are to load. */
  get sampleCount() {
    return sampleList().length;
  }

  /**
   * Fetch and decode every sample (in parallel); resolves to how many loaded. Keys play the synth
   * until their sample arrives. onProgress(loaded, total) after each sample.
   */
  async load(onProgress = () => {}) {
    const list = sampleList();
    let done = 0;
    const results = await Promise.allSettled(list.map(async ([pitch, file]) => {
      try {
        const r = await fetch(this.baseUrl + encodeURIComponent(file));
        if (!r.ok) throw new Error(`${file}: ${r.status}`);
        this.samples.set(pitch, await this.ctx.decodeAudioData(await r.arrayBuffer()));
      } finally {
        onProgress(++done, list.length);
      }
    }));
    const failed = results.filter((r) => r.status === 'rejected');
    if (failed.length) console.warn(`piano: ${failed.length} samples failed to load, using a synth for those keys`, failed[0].reason);
    return this.samples.size;
  }

  /** Browsers start audio only after a user gesture: call from one. */
  resume() {
    if (this.ctx.state !== 'running') this.ctx.resume().catch(() => {});
  }

  /** Seconds from a note start to sound at the speakers: the context's buffering + the output's. */
  get outputLatency() {
    return (this.ctx.baseLatency || 0) + (this.ctx.outputLatency || 0);
  }

  noteOn(pitch, velocity = 80) {
    this.noteOff(pitch, 0.05);
    if (this.muted) return;
    const ctx = this.ctx, now = ctx.currentTime;
    const gain = ctx.createGain();
    const level = (velocity / 127) ** 1.5;
    gain.connect(this.out);
    let src;
    const nearest = this._nearestSample(pitch);
    if (nearest !== null) {
      src = ctx.createBufferSource();
      src.buffer = this.samples.get(nearest);
      src.playbackRate.value = 2 ** ((pitch - nearest) / 12);
      gain.gain.setValueAtTime(level, now);
    } else {
      src = ctx.createOscillator(); // stand-in: a decaying triangle
      src.type = 'triangle';
      src.frequency.value = 440 * 2 ** ((pitch - 69) / 12);
      gain.gain.setValueAtTime(0, now);
      gain.gain.linearRampToValueAtTime(0.4 * level, now + 0.005);
      gain.gain.exponentialRampToValueAtTime(0.001, now + 3);
    }
    src.connect(gain);
    src.start(now);
    const voice = { src, gain };
    src.onended = () => {
      gain.disconnect();
      if (this.voices.get(pitch) === voice) this.voices.delete(pitch);
    };
    this.voices.set(pitch, voice);
  }

  noteOff(pitch, release = RELEASE_S) {
    const voice = this.voices.get(pitch);
    if (!voice) return;
    this.voices.delete(pitch);
    const now = this.ctx.currentTime;
    voice.gain.gain.cancelScheduledValues(now);
    voice.gain.gain.setTargetAtTime(0, now, release / 4);
    voice.src.stop(now + release);
  }

  allNotesOff() {
    for (const pitch of [...this.voices.keys()]) this.noteOff(pitch);
  }

  _nearestSample(pitch) {
    let best = null;
    for (const p of this.samples.keys()) {
      if (best === null || Math.abs(p - pitch) < Math.abs(best - pitch)) best = p;
    }
    return best !== null && Math.abs(best - pitch) <= 2 ? best : null;
  }
}
