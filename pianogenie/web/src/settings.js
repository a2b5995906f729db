// @ts-check
// The player's settings, kept across visits: one store (localStorage, one JSON record) with a
// default for every value and validation of what is read back, and the binding of form controls
// to it. A stored value from an older version, a hand edit or another tab must never break the
// page: whatever does not validate is the default again.
//
// The store itself (`SettingsStore`, `validate`) has no DOM. `bindControls` ties form controls to
// it: each control's own state when bound is its default, and what it accepts is read off the
// control (a checkbox: a boolean; a range: a number within its min..max, on its step; a select:
// one of its options, checked when applied, as some are filled in later, e.g. MIDI ports).

export const STORAGE_KEY = 'pianogenie.settings';
const FORMAT = 1;
const MAX_CHARS = 20000; // a stored record longer than this is not ours: ignored
const MAX_STRING = 200;

/**
 * @typedef {{type: 'bool'} | {type: 'number', min: number, max: number, step?: number}
 *   | {type: 'string', choices?: string[]}} Spec
 */

/**
 * `value` if it fits `spec`, else undefined. Numbers are snapped to the step (from min) and must lie
 * within min..max; strings are bounded and, with `choices`, one of them.
 * @param {unknown} value  @param {Spec} spec  @returns {boolean|number|string|undefined}
 */
export function validate(value, spec) {
  if (spec.type === 'bool') return typeof value === 'boolean' ? value : undefined;
  if (spec.type === 'number') {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < spec.min || value > spec.max) return undefined;
    if (!spec.step) return value;
    const snapped = spec.min + Math.round((value - spec.min) / spec.step) * spec.step;
    return Number(Math.min(spec.max, snapped).toFixed(6));
  }
  if (spec.type === 'string') {
    if (typeof value !== 'string' || value.length > MAX_STRING) return undefined;
    return !spec.choices || spec.choices.includes(value) ? value : undefined;
  }
  return undefined;
}

/** Settings in a Storage (localStorage), or in memory where storage is blocked. */
export class SettingsStore {
  /** @param {Storage|null} storage */
  constructor(storage) {
    this.storage = storage;
    this.values = SettingsStore.parse(this._read());
  }

  /** A stored record -> its values ({} for anything that is not a record of ours). */
  static parse(text) {
    if (typeof text !== 'string' || text.length > MAX_CHARS) return {};
    try {
      const record = JSON.parse(text);
      if (!record || typeof record !== 'object' || Array.isArray(record) || record.format !== FORMAT) return {};
      const values = record.values;
      return values && typeof values === 'object' && !Array.isArray(values) ? { ...values } : {};
    } catch {
      return {};
    }
  }

  _read() {
    try {
      return this.storage ? this.storage.getItem(STORAGE_KEY) : null;
    } catch {
      return null; // storage blocked
    }
  }

  _write() {
    try {
      if (this.storage) this.storage.setItem(STORAGE_KEY, JSON.stringify({ format: FORMAT, values: this.values }));
    } catch { /* storage blocked or full: the settings last this visit */ }
  }

  /** The stored value of `key` if it fits `spec`, else `fallback`. */
  get(key, spec, fallback) {
    const v = validate(this.values[key], spec);
    return v === undefined ? fallback : v;
  }

  set(key, value) {
    this.values[key] = value;
    this._write();
  }

  /** Forget every setting. */
  clear() {
    this.values = {};
    try {
      if (this.storage) this.storage.removeItem(STORAGE_KEY);
    } catch { /* blocked */ }
  }
}

// --- form controls (DOM) --------------------------------------------------------------------

/** @param {HTMLInputElement|HTMLSelectElement} el  @returns {Spec} */
function specOf(el) {
  if (el.type === 'checkbox') return { type: 'bool' };
  if (el.type === 'range' || el.type === 'number') {
    return { type: 'number', min: Number(el.min), max: Number(el.max), step: Number(el.step) || undefined };
  }
  if (el.tagName === 'SELECT') return { type: 'string', choices: [.../** @type {HTMLSelectElement} */ (el).options].map((o) => o.value) };
  return { type: 'string' };
}

const read = (el) => (el.type === 'checkbox' ? el.checked : el.type === 'range' || el.type === 'number' ? Number(el.value) : el.value);

let writing = false; // while `write` sets a control: its events are not new settings

function write(el, value) {
  if (el.type === 'checkbox') el.checked = value;
  else el.value = String(value);
  // The modules that own the control hear the change as if the player had made it.
  writing = true;
  try {
    el.dispatchEvent(new Event('input', { bubbles: true }));
    el.dispatchEvent(new Event('change', { bubbles: true }));
  } finally {
    writing = false;
  }
}

/**
 * Bind form controls to the store: each is set to its stored value (when valid), and each change
 * is stored. -> {reset()}: every control back to its default, the store cleared.
 * @param {SettingsStore} store
 * @param {Object<string, HTMLInputElement|HTMLSelectElement>} controls  setting name -> control
 */
export function bindControls(store, controls) {
  const defaults = Object.fromEntries(Object.entries(controls).map(([key, el]) => [key, read(el)]));
  for (const [key, el] of Object.entries(controls)) {
    const save = () => { if (!writing) store.set(key, read(el)); };
    el.addEventListener('change', save);
    el.addEventListener('input', save);
  }
  const apply = () => {
    for (const [key, el] of Object.entries(controls)) {
      const value = store.get(key, specOf(el), defaults[key]);
      if (value !== read(el)) write(el, value);
    }
  };
  apply();
  return {
    apply,
    reset() {
      store.clear();
      for (const [key, el] of Object.entries(controls)) if (read(el) !== defaults[key]) write(el, defaults[key]);
    },
  };
}
