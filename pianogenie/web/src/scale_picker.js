// @ts-check
// The key & scale picker: a tonic and a scale (chromatic = off), or any set of pitch classes, and a
// pitch range -> the keys the decoder may play (null = all).

import { allowedKeys, NOTE_NAMES, pitchName, SCALES } from './scales.js';

/** @param {string} sel  @returns {HTMLElement} */
const $ = (sel) => document.querySelector(sel);

export class ScalePicker {
  /**
   * @param {{lowestPitch: number, numKeys: number}} config  the model's keys
   * @param {(keys: number[]|null, text: string) => void} onChange
   */
  constructor({ lowestPitch, numKeys }, onChange) {
    this.lowestPitch = lowestPitch;
    this.numKeys = numKeys;
    this.onChange = onChange;
    this.tonic = /** @type {HTMLSelectElement} */ ($('#scale-tonic'));
    this.type = /** @type {HTMLSelectElement} */ ($('#scale-type'));
    this.low = /** @type {HTMLSelectElement} */ ($('#range-low'));
    this.high = /** @type {HTMLSelectElement} */ ($('#range-high'));
    this.custom = $('#scale-custom');
    this.info = $('#scale-info');
    this.tonic.replaceChildren(...NOTE_NAMES.map((n, pc) => new Option(n, String(pc))));
    this.type.replaceChildren(new Option('chromatic (all keys)', 'chromatic'),
      ...Object.keys(SCALES).filter((n) => n !== 'chromatic').map((n) => new Option(n, n)),
      new Option('custom: pick notes', 'custom'));
    const pitches = Array.from({ length: numKeys }, (_, k) => k + lowestPitch);
    this.low.replaceChildren(...pitches.map((p) => new Option(pitchName(p), String(p))));
    this.high.replaceChildren(...pitches.map((p) => new Option(pitchName(p), String(p))));
    this.low.value = String(lowestPitch);
    this.high.value = String(lowestPitch + numKeys - 1);
    this.pcBoxes = NOTE_NAMES.map((n, pc) => {
      const label = document.createElement('label');
      const box = document.createElement('input');
      box.type = 'checkbox';
      box.value = String(pc);
      box.checked = [0, 2, 4, 5, 7, 9, 11].includes(pc);
      label.append(box, n);
      this.custom.appendChild(label);
      box.addEventListener('change', () => this.update());
      return box;
    });
    for (const el of [this.tonic, this.type, this.low, this.high]) el.addEventListener('change', () => this.update());
    this.keys = null;
    this.update();
  }

  /** Pitch classes chosen (null = all). */
  pitchClasses() {
    const type = this.type.value;
    if (type === 'chromatic') return null;
    if (type === 'custom') return this.pcBoxes.filter((b) => b.checked).map((b) => Number(b.value));
    const tonic = Number(this.tonic.value);
    return SCALES[type].map((s) => (tonic + s) % 12);
  }

  update() {
    const type = this.type.value;
    this.custom.hidden = type !== 'custom';
    let lo = Number(this.low.value), hi = Number(this.high.value);
    if (lo > hi) [lo, hi] = [hi, lo];
    const pcs = this.pitchClasses();
    const full = pcs === null && lo === this.lowestPitch && hi === this.lowestPitch + this.numKeys - 1;
    const keys = full ? null : allowedKeys(pcs, lo, hi, this.lowestPitch, this.numKeys);
    if (keys !== null && keys.length === 0) {
      this.info.textContent = 'no key left: pick more notes or a wider range (playing all keys)';
      this.keys = null;
    } else {
      const name = pcs === null ? 'all keys' : type === 'custom' ? `${pcs.length} notes` : `${NOTE_NAMES[Number(this.tonic.value)]} ${type}`;
      this.info.textContent = keys === null ? 'all 88 keys' : `${name}, ${pitchName(lo)}–${pitchName(hi)}: ${keys.length} keys`;
      this.keys = keys;
    }
    this.onChange(this.keys, this.info.textContent);
  }
}
