// @ts-check
// The harmony control of a conditioned genie (cfg.json `conditions`): a key signature, the current
// chord and a style, as the ids the decoder's conditions take (chords.js). The chord comes from a
// tap on the palette (root + family), from a chord held on a MIDI controller below its split
// point, or from a looping progression (one chord per bar at a tempo), which the strip shows as it
// advances. Hidden, and `ids()` null, for a genie without conditions. The scale mask is separate
// (scale_picker.js) and still applies on top.

import { barAt, chordName, chordOfPitches, parseKey, parseProgression, PITCH_NAMES, PRESETS } from './chords.js';

/** @param {string} sel  @returns {HTMLElement} */
const $ = (sel) => document.querySelector(sel);
const FAMILY_LABELS = ['maj', 'm', 'aug', 'dim', '7', 'maj7', 'm7', 'ø']; // families 1..8
const STYLE_NAMES = ['none', 'classical', 'pop']; // harmony.py STYLES
/** @type {[string, number][]} */
const SPLITS = [['off', 0], ['below C3', 48], ['below C4', 60], ['below C5', 72]];
const el = (tag, props = {}) => Object.assign(document.createElement(tag), props);

export class HarmonyControl {
  /** @param {{now: () => number, onChange: () => void}} options  now: the player's clock (s) */
  constructor({ now, onChange = () => {} }) {
    this.now = now;
    this.onChange = onChange;
    this.conditions = [];
    this.chord = [0, 0];
    this.loop = null; // {chords, bpm, start} while a progression plays
    this.held = new Set(); // MIDI notes held below the split
    this.root = $('#harmony');
    this.keyEl = /** @type {HTMLSelectElement} */ ($('#harmony-key'));
    this.keyEl.replaceChildren(new Option('no key', 'none'), ...PITCH_NAMES.map((n, i) =>
      new Option(`${n} / ${PITCH_NAMES[(i + 9) % 12]}m`, n)));
    this.styleEl = /** @type {HTMLSelectElement} */ ($('#harmony-style'));
    this.styleEl.replaceChildren(...STYLE_NAMES.map((n) => new Option(n === 'none' ? 'any style' : n, n)));
    this.splitEl = /** @type {HTMLSelectElement} */ ($('#midi-split'));
    this.splitEl.replaceChildren(...SPLITS.map(([n, p]) => new Option(n, String(p))));
    this.splitEl.value = '60';
    this.presetEl = /** @type {HTMLSelectElement} */ ($('#progression-preset'));
    this.presetEl.replaceChildren(...Object.entries(PRESETS).map(([n, p]) => new Option(n, p)), new Option('typed below', ''));
    this.textEl = /** @type {HTMLInputElement} */ ($('#progression'));
    this.tempoEl = /** @type {HTMLInputElement} */ ($('#tempo'));
    this.playEl = $('#progression-play');
    this.nowEl = $('#chord-now');
    this.barsEl = $('#progression-bars');
    this.infoEl = $('#progression-info');
    this.paletteEl = $('#chord-palette');
    $('#chord-roots').replaceChildren(el('button', { type: 'button', textContent: '–', title: 'no chord',
      onclick: () => this.tap([0, 0]) }), ...PITCH_NAMES.map((n, i) => el('button', { type: 'button', textContent: n,
      onclick: () => this.tap([i + 1, this.chord[1] || 1]) })));
    $('#chord-families').replaceChildren(...FAMILY_LABELS.map((n, i) => el('button', { type: 'button', textContent: n,
      title: `chord family: ${n}`, onclick: () => this.tap([this.chord[0] || 1, i + 1]) })));
    this.nowEl.addEventListener('click', () => this.openPalette(this.paletteEl.hidden));
    // A press elsewhere (a button, the keyboard) closes the palette, which lies over the stage.
    document.addEventListener('pointerdown', (e) => { if (!this.root.contains(/** @type {Node} */ (e.target))) this.openPalette(false); });
    this.paletteEl.addEventListener('keydown', (e) => { if (e.key === 'Escape') { this.openPalette(false); this.nowEl.focus(); } });
    this.playEl.addEventListener('click', () => (this.loop ? this.stop() : this.play()));
    this.presetEl.addEventListener('change', () => { if (this.presetEl.value) this.textEl.value = this.presetEl.value; this.restart(); });
    this.textEl.addEventListener('change', () => { this.presetEl.value = ''; this.restart(); });
    this.tempoEl.addEventListener('change', () => this.restart());
    for (const e of [this.keyEl, this.styleEl]) e.addEventListener('change', () => this.onChange());
    this.textEl.value = this.presetEl.value;
    this.show();
  }

  openPalette(open) {
    this.paletteEl.hidden = !open;
    this.nowEl.setAttribute('aria-expanded', String(open));
  }

  /** Follow a genie's conditions (`decoder.conditions`): none hides the control. */
  setModel(conditions) {
    this.conditions = conditions || [];
    this.root.hidden = !this.conditions.length;
    $('#harmony-key-box').hidden = !this.conditions.includes('keysig');
    for (const e of /** @type {NodeListOf<HTMLElement>} */ (document.querySelectorAll('.needs-chord'))) e.hidden = !this.conditions.includes('chord');
    $('#harmony-style-box').hidden = !this.conditions.includes('style');
    if (!this.conditions.includes('chord')) this.stop();
    this.show();
  }

  /** The conditions of a press now (Session.press's), or null for a genie without any. */
  ids() {
    if (!this.conditions.length) return null;
    if (this.loop) this._advance();
    const out = {};
    if (this.conditions.includes('keysig')) out.keysig = parseKey(this.keyEl.value);
    if (this.conditions.includes('chord')) [out.chordRoot, out.chordFamily] = this.chord;
    if (this.conditions.includes('style')) out.style = STYLE_NAMES.indexOf(this.styleEl.value);
    return out;
  }

  /** A tap on the palette: that chord from now on (a playing progression stops). */
  tap(chord) {
    this.stop();
    this.setChord(chord);
  }

  setChord(chord) {
    if (chord[0] === this.chord[0] && chord[1] === this.chord[1]) return;
    this.chord = chord;
    this.show();
    this.onChange();
  }

  /** The controller that held chord keys went away: they are up (the chord they set stays). */
  releaseHeld() {
    this.held.clear();
  }

  /** A MIDI note: true if it lies below the split (it sets the chord then, and plays no button). */
  midiNote(pitch, down) {
    const split = Number(this.splitEl.value);
    if (!this.conditions.includes('chord') || !(pitch < split)) return false;
    if (down) this.held.add(pitch); else this.held.delete(pitch);
    const chord = chordOfPitches([...this.held]);
    if (down && chord[0]) { this.stop(); this.setChord(chord); }
    return true;
  }

  play() {
    let chords;
    try {
      chords = parseProgression(this.textEl.value);
    } catch (e) {
      this.infoEl.textContent = e.message;
      return;
    }
    const bpm = Math.min(240, Math.max(40, Number(this.tempoEl.value) || 100));
    this.tempoEl.value = String(bpm);
    this.infoEl.textContent = '';
    this.loop = { chords, bpm, start: this.now(), bar: -1 };
    this.playEl.setAttribute('aria-pressed', 'true');
    this.playEl.textContent = '■ Stop';
    this._advance();
    const tick = () => { if (this.loop) { this._advance(); this.timer = setTimeout(tick, 40); } };
    this.timer = setTimeout(tick, 40);
  }

  stop() {
    if (!this.loop) return;
    this.loop = null;
    clearTimeout(this.timer);
    this.playEl.setAttribute('aria-pressed', 'false');
    this.playEl.textContent = '▶ Loop';
    this.show();
  }

  restart() { if (this.loop) { this.stop(); this.play(); } else this.show(); }

  _advance() {
    const { chords, bpm, start } = this.loop;
    const bar = barAt(this.now() - start, bpm, chords.length);
    if (bar !== this.loop.bar) {
      this.loop.bar = bar;
      this.setChord(chords[bar]);
      this.show();
    }
  }

  /** The current chord, and the progression with its playing bar marked. */
  show() {
    this.nowEl.textContent = chordName(this.chord);
    let chords = [];
    try { chords = parseProgression(this.textEl.value); } catch { /* shown on play */ }
    const bar = this.loop ? this.loop.bar : -1;
    this.barsEl.replaceChildren(...chords.map((c, i) => el('span', { className: i === bar ? 'bar now' : 'bar',
      textContent: chordName(c) })));
    for (const [i, b] of [...document.querySelectorAll('#chord-roots button')].entries()) b.classList.toggle('on', i === this.chord[0]);
    for (const [i, b] of [...document.querySelectorAll('#chord-families button')].entries()) b.classList.toggle('on', i + 1 === this.chord[1]);
  }
}
