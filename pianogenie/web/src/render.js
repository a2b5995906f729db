// @ts-check
// A recording as sound: its notes rendered offline with the same piano (samples, velocity layers,
// their crossfade: the live piano's own voice code, audio.js's startVoice / stopVoice) and the
// same pedal, to a WAV file anyone can play, or to replay in the page.
//
// `soundSpans` and `encodeWav` have no DOM or audio (tested in Node); `renderRecording` runs an
// OfflineAudioContext.

import { RELEASE_S, startVoice, stopVoice } from './audio.js';

export const TAIL_S = 1.0; // after the recording's end: the last notes' release rings out
export const MAX_SECONDS = 15 * 60; // a longer recording is not rendered (about 170 MB of WAV)
const RESTRIKE_S = 0.05; // a key struck again cuts its previous sound this fast (as Piano.play)

/**
 * When each recorded note sounds: from its start to its key-up, or while the sustain pedal (CC64
 * >= 64) holds it, to the pedal's next release; a key struck again ends its previous sound then.
 * @param {{pitch: number, velocity: number, start: number, end: number}[]} notes  seconds from the start
 * @param {{time: number, controller: number, value: number}[]} controls  the pedal's changes
 * @param {number} duration  the recording's length (a pedal still down then lets go there)
 * @returns {{pitch: number, velocity: number, start: number, stop: number, release: number}[]} by start
 */
export function soundSpans(notes, controls, duration) {
  const pedal = controls.filter((c) => c.controller === 64).sort((a, b) => a.time - b.time);
  const downAt = (t) => { // is the pedal down at time t (changes at t count as made)?
    let down = false;
    for (const c of pedal) { if (c.time > t) break; down = c.value >= 64; }
    return down;
  };
  const nextUp = (t) => { const c = pedal.find((p) => p.time >= t && p.value < 64); return c ? c.time : duration; };
  const spans = [...notes].sort((a, b) => a.start - b.start).map((n) => {
    const end = Math.min(n.end ?? duration, duration);
    return { pitch: n.pitch, velocity: n.velocity, start: n.start, stop: downAt(end) ? nextUp(end) : end, release: RELEASE_S };
  });
  const last = new Map(); // pitch -> its latest span
  for (const s of spans) {
    const prev = last.get(s.pitch);
    if (prev && prev.stop > s.start) Object.assign(prev, { stop: s.start, release: RESTRIKE_S });
    last.set(s.pitch, s);
  }
  return spans;
}

/**
 * Channels of float samples (-1..1) -> a 16-bit PCM WAV file.
 * @param {Float32Array[]} channels  @param {number} sampleRate  @returns {Uint8Array<ArrayBuffer>}
 */
export function encodeWav(channels, sampleRate) {
  const n = channels[0].length, c = channels.length, bytes = 44 + n * c * 2;
  const view = new DataView(new ArrayBuffer(bytes));
  const text = (at, s) => { for (let i = 0; i < s.length; i++) view.setUint8(at + i, s.charCodeAt(i)); };
  text(0, 'RIFF');
  view.setUint32(4, bytes - 8, true);
  text(8, 'WAVE');
  text(12, 'fmt ');
  view.setUint32(16, 16, true); // PCM header size
  view.setUint16(20, 1, true); // PCM
  view.setUint16(22, c, true);
  view.setUint32(24, sampleRate, true);
  view.setUint32(28, sampleRate * c * 2, true);
  view.setUint16(32, c * 2, true);
  view.setUint16(34, 16, true);
  text(36, 'data');
  view.setUint32(40, n * c * 2, true);
  let at = 44;
  for (let i = 0; i < n; i++) {
    for (let ch = 0; ch < c; ch++) {
      const x = Math.max(-1, Math.min(1, channels[ch][i]));
      view.setInt16(at, x < 0 ? x * 0x8000 : x * 0x7fff, true);
      at += 2;
    }
  }
  return new Uint8Array(view.buffer);
}

/**
 * Render spans (soundSpans) offline with `piano`'s sound: its parts for each note (samples, layers)
 * into a compressor as the live piano's, for `duration` + TAIL_S seconds. -> an AudioBuffer.
 * @param {{parts: (pitch: number, velocity: number) => {parts: object[], level: number}, ctx: BaseAudioContext}} piano
 */
export async function renderRecording(piano, spans, duration, sampleRate = piano.ctx.sampleRate) {
  if (!(duration >= 0 && duration <= MAX_SECONDS)) throw new RangeError(`a recording of ${duration} s: at most ${MAX_SECONDS} s is rendered`);
  const ctx = new OfflineAudioContext(2, Math.ceil((duration + TAIL_S) * sampleRate), sampleRate);
  const out = ctx.createDynamicsCompressor(); // as Piano's output: many loud notes at once must not clip
  out.connect(ctx.destination);
  for (const s of spans) {
    const { parts, level } = piano.parts(s.pitch, s.velocity);
    const voice = startVoice(ctx, out, parts, level, s.pitch, s.start);
    stopVoice(voice, Math.max(s.stop, s.start), s.release);
  }
  return ctx.startRendering();
}
