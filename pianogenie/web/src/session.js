// @ts-check
// A performance in progress: buttons pressed over time -> keys. No DOM, no audio.
//
// Owns the musical state the decoder is conditioned on (previous key, previous onset time), the
// keys each held button is sounding (so release(button) can end the right note), and a seedable
// random source for sampling keys from the decoder's logits. With a velocity head (velocity.js)
// each press also sets `session.velocity`, the model's velocity for the key it chose, and each
// look-ahead `session.aheadVelocities`, the velocity each button's key would be played at. A
// press's `shift` (the player's dynamics: expression.js) moves the velocity played, not the one the
// head's history records: the model keeps its own phrasing under the player's loudness.

import { playedVelocity } from './expression.js';
import { DEFAULT_VELOCITY, meanVelocity } from './velocity.js';

const clampVelocity = (v) => Math.min(Math.max(Math.round(v), 1), 127);

/** mulberry32: small, fast, seedable uniform [0, 1) generator (Math.random cannot be seeded). */
export function makeRng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Sample an index from softmax(logits / temperature); temperature 0 means argmax. With `mask`
 * (1 = allowed, one entry per key), only allowed keys are candidates.
 */
export function sampleKey(logits, temperature, rng, mask = null) {
  let best = -1;
  for (let k = 0; k < logits.length; k++) {
    if ((mask === null || mask[k]) && (best < 0 || logits[k] > logits[best])) best = k;
  }
  if (!(temperature > 0)) return best;
  const m = logits[best];
  let total = 0;
  for (let k = 0; k < logits.length; k++) if (mask === null || mask[k]) total += Math.exp((logits[k] - m) / temperature);
  let u = rng() * total;
  for (let k = 0; k < logits.length; k++) {
    if (mask !== null && !mask[k]) continue;
    u -= Math.exp((logits[k] - m) / temperature);
    if (u < 0) return k;
  }
  return best; // u landed on the rounding slack at the end
}

export class Session {
  /**
   * @param {import('./decoder.js').Decoder} decoder
   * @param {{numButtons: number, deltaTimeMax: number, sos: number, buttonValues?: number[]}} config
   * @param {{seed?: number, velocityHead?: import('./velocity.js').VelocityHead | null}} options
   */
  constructor(decoder, config, { seed = Date.now(), velocityHead = null } = {}) {
    this.decoder = decoder;
    this.config = config;
    this.seed = seed;
    this.velocityHead = velocityHead;
    this.mask = new Uint8Array(decoder.numKeys || 88); // the allowed keys of the current press
    this.saved = decoder.newState ? decoder.newState() : null; // for lookAhead
    this.reset();
  }

  /** Start a new performance: fresh LSTM state, no previous key or time, nothing held. */
  reset(seed = this.seed) {
    this.decoder.reset();
    if (this.velocityHead) this.velocityHead.reset();
    this.velocity = DEFAULT_VELOCITY; // of the last press
    this.aheadVelocities = null; // of the last look-ahead, one per button (null: no velocity head)
    this.rng = makeRng(seed);
    this.kM1 = this.config.sos;
    this.lastTime = null;
    this.held = new Map(); // button -> key it is sounding
  }

  /**
   * A button goes down at `time` (seconds, any monotonic clock) -> the key (0..87) to play;
   * `this.velocity` is then its velocity: the model's, or `velocity` (1..127) when given (e.g. a
   * MIDI controller's), which the model's velocity history records either way. Without a velocity
   * head it is `velocity` or DEFAULT_VELOCITY. `shift` (velocity steps, the player's dynamics) is
   * added to the model's velocity (not to a given one), within MIN_VELOCITY..127 (expression.js);
   * the history records the model's own.
   * @param {number} temperature  0 = always the most likely key; higher = more adventurous
   * @param {Iterable<number>|null} keys  the allowed keys (0..87), as PianoGenie.press(..., keys=)
   *   in Python; null = all
   * @param {{keysig?: number, chordRoot?: number, chordFamily?: number, style?: number}|null} conditions
   *   a conditioned model's conditions for this press, as ids (Decoder.setConditions; absent = none),
   *   as PianoGenie.press(..., key=, chord=, style=) in Python; `decoder.conditions` lists those it takes
   */
  press(time, button, temperature = 0.25, keys = null, velocity = undefined, shift = 0, conditions = null) {
    const { numButtons } = this.config;
    if (!(Number.isInteger(button) && button >= 0 && button < numButtons)) {
      throw new RangeError(`button ${button} outside 0..${numButtons - 1}`);
    }
    const mask = this._mask(keys);
    if (conditions || this.decoder.conditions?.length) this.decoder.setConditions(conditions);
    const dt = this._dt(time), bReal = this._bReal(button);
    const logits = this.decoder.step(this.kM1, dt, bReal);
    const key = sampleKey(logits, temperature, this.rng, mask);
    this.velocity = this._velocity(key, dt, bReal, velocity, shift);
    this.kM1 = key;
    this.lastTime = time;
    this.held.set(button, key);
    return key;
  }

  _velocity(key, dt, bReal, given, shift) {
    const head = this.velocityHead;
    const own = given === undefined || given === null;
    const v = own ? (head ? this._modelVelocity(key, dt, bReal) : DEFAULT_VELOCITY) : clampVelocity(given);
    if (head) head.record(v, key);
    return own ? playedVelocity(v, shift) : v;
  }

  // The head's velocity for key k right after the decoder step that chose it (reads the state,
  // changes nothing: only record() moves the head's history on).
  _modelVelocity(key, dt, bReal) {
    return meanVelocity(this.velocityHead.logits(this.decoder.h[this.decoder.numLayers - 1], key, dt, bReal));
  }

  /**
   * The key each button would play if pressed at `time` (argmax among `keys`), one per button,
   * leaving the session exactly as it was (decoder state, previous key and time, random source,
   * velocity history). With a velocity head, `this.aheadVelocities[b]` is then the velocity the
   * model would play button b's key at: what press(time, b, 0, keys, undefined, shift) would set
   * `velocity` to. `conditions`: as press's (absent = none).
   */
  lookAhead(time, keys = null, shift = 0, conditions = null) {
    if (conditions || this.decoder.conditions?.length) this.decoder.setConditions(conditions);
    const mask = this._mask(keys), dt = this._dt(time), n = this.config.numButtons, out = new Array(n);
    const velocities = this.velocityHead ? new Array(n) : null;
    this.decoder.saveState(this.saved);
    for (let b = 0; b < n; b++) {
      const bReal = this._bReal(b);
      out[b] = sampleKey(this.decoder.step(this.kM1, dt, bReal), 0, this.rng, mask);
      if (velocities) velocities[b] = playedVelocity(this._modelVelocity(out[b], dt, bReal), shift);
      this.decoder.restoreState(this.saved);
    }
    this.aheadVelocities = velocities;
    return out;
  }

  // The first note's delta time is the maximum, as in training; a clock going backwards gives 0.
  _dt(time) {
    const max = this.config.deltaTimeMax;
    return this.lastTime === null ? max : Math.min(Math.max(time - this.lastTime, 0), max);
  }

  _bReal(button) {
    const values = this.config.buttonValues; // from the export's cfg.json (model.js)
    return values ? values[button] : (2 * button) / (this.config.numButtons - 1) - 1;
  }

  // keys (an iterable of key indices, or null = all) -> the mask sampleKey takes; rebuilt each
  // press (88 writes: nothing next to the decoder step).
  _mask(keys) {
    if (keys === null || keys === undefined) return null;
    const mask = this.mask;
    mask.fill(0);
    let n = 0;
    for (const k of keys) {
      if (!(Number.isInteger(k) && k >= 0 && k < mask.length)) throw new RangeError(`key ${k} outside 0..${mask.length - 1}`);
      n += mask[k] ? 0 : 1;
      mask[k] = 1;
    }
    if (!n) throw new RangeError('keys: no key allowed');
    return mask;
  }

  /** A button comes up -> the key it was sounding (to stop), or null if it was not down. */
  release(button) {
    const key = this.held.get(button);
    this.held.delete(button);
    return key === undefined ? null : key;
  }
}
