// @ts-check
// Playing the instrument: input sources hold buttons and the pedal; the session turns presses into
// keys; listeners (the piano, MIDI out, the recorder, the views) hear note and pedal events. No DOM.
//
// What sounds is decided here, once, for every output:
// - A key goes down when a press decodes to it and up when the LAST button sounding it is released
//   (two held buttons can decode to the same key: releasing one must not silence the other). A
//   press onto a key that is already down re-strikes it (`restrike` on the event).
// - The sustain pedal (Space, the on-screen pedal, MIDI CC64; down while any of them is) keeps a
//   released key sounding until the pedal comes up. MIDI out and the recorder get the key-ups and
//   the pedal itself (a synth or a MIDI player sustains on its own); the built-in piano, which has
//   no pedal, gets `soundOff` when a key should actually stop.
//
// Listener methods (all optional): noteOn(e), noteOff(e) (key up), soundOff(e) (sound stops),
// pedal(down, time), buttonState(b, down), reset(); e = {button, key, pitch, velocity, time, restrike}.
//
// Velocity: a source's own (a MIDI controller's) is passed to the session, which plays it and lets
// the model's velocity history hear it; keyboard and pointer presses have none and play the
// session's `velocity` (the model's, velocity.js), shifted by the player's dynamics (expression.js:
// the `dynamics()` level, pp..ff, plus a press's own shift: an accent, where a finger lands).
// `genieDynamics()` true: every press plays the model's velocity, even a controller's.

import { levelShift } from './expression.js';
import { DEFAULT_VELOCITY } from './velocity.js';

export class Player {
  /**
   * @param {import('./session.js').Session} session
   * @param {{lowestPitch: number, numKeys: number, numButtons: number, deltaTimeMax: number}} config
   * @param {{temperature?: () => number, keys?: () => (number[]|null), genieDynamics?: () => boolean,
   *   dynamics?: () => number, conditions?: () => object|null, now?: () => number}} options  temperature,
   *   keys, genieDynamics, dynamics (the level, -3 pp .. 3 ff, 0 the genie's own), conditions (a
   *   conditioned genie's ids, Session.press's): read at each press; now: the clock in seconds
   */
  constructor(session, config, { temperature = () => 0.25, keys = () => null, genieDynamics = () => false,
    dynamics = () => 0, conditions = () => null, now = () => performance.now() / 1000 } = {}) {
    this.session = session;
    this.config = config;
    this.temperature = temperature;
    this.keys = keys;
    this.genieDynamics = genieDynamics;
    this.dynamics = dynamics;
    this.conditions = conditions;
    this.now = now;
    this.listeners = [];
    this.sourceButton = new Map(); // input source (key code, pointer, MIDI note) -> button it holds
    this.holder = new Map(); // button -> the source holding it now
    this.down = new Int32Array(config.numKeys); // key -> how many held buttons are sounding it
    this.sustained = new Set(); // keys up but still sounding under the pedal
    this.pedalSources = new Set();
    this.lastPress = null; // time of the latest press
    this.decodeMs = NaN; // how long the latest press took to decode
  }

  get pedalDown() {
    return this.pedalSources.size > 0;
  }

  listen(listener) {
    this.listeners.push(listener);
    return listener;
  }

  _emit(method, ...args) {
    for (const l of this.listeners) if (typeof l[method] === 'function') l[method](...args);
  }

  /**
   * A source presses a button -> the key played, or null for a repeat of a source already down.
   * `sourceVelocity`: the source's own velocity (1..127), if it has one (MIDI). `shift`: this
   * press's own dynamics (velocity steps: an accent, where on the button it landed), added to the
   * level's; neither moves a source's own velocity.
   */
  buttonDown(button, source, sourceVelocity = undefined, shift = 0) {
    if (this.sourceButton.has(source)) return null; // auto-repeat or a duplicate event
    // The same button pressed again from another input: its previous note ends first.
    if (this.holder.has(button)) this._release(button);
    this.holder.set(button, source);
    this.sourceButton.set(source, button);
    this._emit('buttonState', button, true);

    const time = this.now();
    const t0 = performance.now();
    const given = this.genieDynamics() ? undefined : sourceVelocity;
    const key = this.session.press(time, button, this.temperature(), this.keys(), given,
      levelShift(this.dynamics()) + shift, this.conditions());
    this.decodeMs = performance.now() - t0;
    const sv = this.session.velocity;
    const velocity = Number.isInteger(sv) ? sv : (given ?? DEFAULT_VELOCITY);
    this.lastPress = time;

    const restrike = this.down[key] > 0 || this.sustained.has(key);
    this.down[key]++;
    this.sustained.delete(key);
    this._emit('noteOn', { button, key, pitch: key + this.config.lowestPitch, velocity, time, restrike,
      decodeMs: this.decodeMs });
    return key;
  }

  /** A source lets go (of whatever button it holds, if any). */
  buttonUp(source) {
    const button = this.sourceButton.get(source);
    if (button === undefined) return;
    this.sourceButton.delete(source);
    if (this.holder.get(button) !== source) return; // superseded by a later press of the same button
    this._release(button);
  }

  _release(button) {
    this.holder.delete(button);
    this._emit('buttonState', button, false);
    const key = this.session.release(button);
    if (key === null) return;
    const e = { button, key, pitch: key + this.config.lowestPitch, time: this.now() };
    if (--this.down[key] > 0) return; // another held button still sounds this key
    this._emit('noteOff', e);
    if (this.pedalDown) this.sustained.add(key);
    else this._emit('soundOff', e);
  }

  pedalOn(source) {
    if (this.pedalSources.has(source)) return;
    this.pedalSources.add(source);
    if (this.pedalSources.size === 1) this._emit('pedal', true, this.now());
  }

  pedalOff(source) {
    if (!this.pedalSources.delete(source) || this.pedalDown) return;
    const time = this.now();
    this._emit('pedal', false, time);
    for (const key of this.sustained) this._emit('soundOff', { key, pitch: key + this.config.lowestPitch, time });
    this.sustained.clear();
  }

  /** Let go of every button (a lost window focus would leave keys stuck). The pedal stays as it is. */
  releaseAll() {
    for (const source of [...this.sourceButton.keys()]) this.buttonUp(source);
  }

  /**
   * Everything the sources named `prefix`... hold is let go: their buttons and their pedal (a MIDI
   * device unplugged mid-note would otherwise leave its note and its pedal down for good).
   * @param {string} prefix  e.g. 'midi:<port id>:'
   */
  releaseSources(prefix) {
    for (const source of [...this.sourceButton.keys()]) if (source.startsWith(prefix)) this.buttonUp(source);
    for (const source of [...this.pedalSources]) if (source.startsWith(prefix)) this.pedalOff(source);
  }

  /** A new performance: every button and every pedal source released, all silent, fresh decoder state. */
  reset(seed = Date.now()) {
    this.releaseAll();
    if (this.pedalDown) {
      this.pedalSources.clear();
      this._emit('pedal', false, this.now());
    }
    for (const key of this.sustained) this._emit('soundOff', { key, pitch: key + this.config.lowestPitch, time: this.now() });
    this.sustained.clear();
    this.session.reset(seed);
    this.lastPress = null;
    this._emit('reset');
  }

  /**
   * The key each button would play if pressed at `time` (default: now; argmax; the session is left
   * unchanged). The decoder hears the time since the last press, so what a button plays changes as
   * time passes: a view shows the truth by asking again (each animation frame) until
   * `aheadSettlesAt`, after which the answer no longer changes.
   */
  lookAhead(time = this.now()) {
    return this.session.lookAhead(time, this.keys(), levelShift(this.dynamics()), this.conditions());
  }

  /** When look-ahead stops changing: the delta time the decoder hears is capped at deltaTimeMax. */
  get aheadSettlesAt() {
    return this.lastPress === null ? -Infinity : this.lastPress + this.config.deltaTimeMax;
  }
}

/** The debug record: the latest `capacity` events, each numbered; memory stays bounded. */
export class EventLog {
  constructor(capacity = 1000) {
    this.capacity = capacity;
    this.events = [];
    this.total = 0; // events ever logged; event.seq runs 0..total-1
  }

  push(event) {
    event.seq = this.total++;
    this.events.push(event);
    // Trim in blocks: amortised O(1) per event, at most 2 x capacity held.
    if (this.events.length >= 2 * this.capacity) this.events.splice(0, this.events.length - this.capacity);
  }

  /** Events numbered `seq` and later (those still held). */
  since(seq) {
    const first = this.events.length ? this.events[0].seq : this.total;
    return this.events.slice(Math.max(0, seq - first));
  }
}

/** Median of the latest `size` values, for a readout that does not jump with every press. */
export class RunningMedian {
  constructor(size = 64) {
    this.values = new Float64Array(size);
    this.n = 0;
  }

  add(x) {
    this.values[this.n++ % this.values.length] = x;
  }

  get count() {
    return Math.min(this.n, this.values.length);
  }

  median() {
    const s = this.values.slice(0, this.count).sort();
    return s.length ? s[Math.floor(s.length / 2)] : NaN;
  }
}
