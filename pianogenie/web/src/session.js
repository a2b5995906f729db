// A performance in progress: buttons pressed over time -> keys. No DOM, no audio.
//
// Owns the musical state the decoder is conditioned on (previous key, previous onset time), the
// keys each held button is sounding (so release(button) can end the right note), and a seedable
// random source for sampling keys from the decoder's logits. With a velocity head (velocity.js)
// each press also sets `session.velocity`, the model's velocity for the key it chose.

import { DEFAULT_VELOCITY, meanVelocity } from './velocity.js';

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

/** Sample an index from softmax(logits / temperature); temperature 0 means argmax. */
export function sampleKey(logits, temperature, rng) {
  let best = 0;
  for (let k = 1; k < logits.length; k++) if (logits[k] > logits[best]) best = k;
  if (!(temperature > 0)) return best;
  const m = logits[best];
  let total = 0;
  for (let k = 0; k < logits.length; k++) total += Math.exp((logits[k] - m) / temperature);
  let u = rng() * total;
  for (let k = 0; k < logits.length; k++) {
    u -= Math.exp((logits[k] - m) / temperature);
    if (u < 0) return k;
  }
  return best; // u landed on the rounding slack at the end
}

export class Session {
  /**
   * @param {import('./decoder.js').Decoder} decoder
   * @param {{numButtons: number, deltaTimeMax: number, sos: number}} config
   * @param {{seed?: number, velocityHead?: import('./velocity.js').VelocityHead | null}} options
   */
  constructor(decoder, config, { seed = Date.now(), velocityHead = null } = {}) {
    this.decoder = decoder;
    this.config = config;
    this.seed = seed;
    this.velocityHead = velocityHead;
    this.reset();
  }

  /** Start a new performance: fresh LSTM state, no previous key or time, nothing held. */
  reset(seed = this.seed) {
    this.decoder.reset();
    if (this.velocityHead) this.velocityHead.reset();
    this.velocity = DEFAULT_VELOCITY; // of the last press
    this.rng = makeRng(seed);
    this.kM1 = this.config.sos;
    this.lastTime = null;
    this.held = new Map(); // button -> key it is sounding
  }

  /**
   * A button goes down at `time` (seconds, any monotonic clock) -> the key (0..87) to play;
   * `this.velocity` is then its velocity: the model's, or `velocity` (1..127) when given (e.g. a
   * MIDI controller's), which the model's velocity history records either way. Without a velocity
   * head it is `velocity` or DEFAULT_VELOCITY.
   * @param {number} temperature  0 = always the most likely key; higher = more adventurous
   */
  press(time, button, temperature = 0.25, velocity = undefined) {
    const { numButtons, deltaTimeMax } = this.config;
    if (!(Number.isInteger(button) && button >= 0 && button < numButtons)) {
      throw new RangeError(`button ${button} outside 0..${numButtons - 1}`);
    }
    // The first note's delta time is the maximum, as in training.
    const dt = this.lastTime === null ? deltaTimeMax : Math.min(Math.max(time - this.lastTime, 0), deltaTimeMax);
    const bReal = (2 * button) / (numButtons - 1) - 1;
    const logits = this.decoder.step(this.kM1, dt, bReal);
    const key = sampleKey(logits, temperature, this.rng);
    this.velocity = this._velocity(key, dt, bReal, velocity);
    this.kM1 = key;
    this.lastTime = time;
    this.held.set(button, key);
    return key;
  }

  _velocity(key, dt, bReal, given) {
    const head = this.velocityHead;
    const v = given === undefined || given === null
      ? (head ? meanVelocity(head.logits(this.decoder.h[this.decoder.numLayers - 1], key, dt, bReal)) : DEFAULT_VELOCITY)
      : Math.min(Math.max(Math.round(given), 1), 127);
    if (head) head.record(v, key);
    return v;
  }

  /** A button comes up -> the key it was sounding (to stop), or null if it was not down. */
  release(button) {
    const key = this.held.get(button);
    this.held.delete(button);
    return key === undefined ? null : key;
  }
}
