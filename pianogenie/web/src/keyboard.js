// @ts-check
// The 88-key keyboard view: keys light in the colour of the button playing them, look-ahead marks
// (sized and filled by the velocity the model would play, as the trails are), keys outside the
// chosen scale dimmed. On a narrow screen it shows a readable window (at least
// three octaves) that follows the notes played, as the 2018 demo did.

import { pitchName } from './scales.js';
import { trailLook } from './trails.js';

const isBlack = (p) => [1, 3, 6, 8, 10].includes(p % 12);
const MIN_WHITE_PX = 14; // narrower white keys are unreadable and untappable-looking: follow instead
const MIN_WHITES = 21; // three octaves

export class KeyboardView {
  constructor(el, { lowestPitch, numKeys }) {
    this.el = el;
    this.lowestPitch = lowestPitch;
    this.inner = document.createElement('div');
    this.inner.className = 'keys';
    el.appendChild(this.inner);
    const pitches = Array.from({ length: numKeys }, (_, k) => lowestPitch + k);
    this.numWhite = pitches.filter((p) => !isBlack(p)).length;
    this.whiteIndex = new Int32Array(numKeys); // key -> white keys to its left
    this.left = new Float64Array(numKeys); // key -> left edge, fraction of the whole keyboard
    this.width = new Float64Array(numKeys);
    const ww = 1 / this.numWhite;
    let white = 0;
    this.keyEls = pitches.map((pitch, k) => {
      const black = isBlack(pitch);
      const key = document.createElement('div');
      key.className = black ? 'key black' : 'key white';
      key.dataset.key = String(k);
      this.whiteIndex[k] = white;
      this.left[k] = black ? white * ww - ww * 0.3 : white * ww;
      this.width[k] = black ? ww * 0.6 : ww;
      key.style.left = `${this.left[k] * 100}%`;
      key.style.width = `${this.width[k] * 100}%`;
      if (!black) {
        if (pitch % 12 === 0) key.dataset.label = pitchName(pitch);
        white++;
      }
      const marks = document.createElement('span'); // where this key's look-ahead marks go
      marks.className = 'aheads';
      key.appendChild(marks);
      return key;
    });
    // Black keys after white ones, so they are drawn on top.
    this.keyEls.filter((k) => k.classList.contains('white')).forEach((k) => this.inner.appendChild(k));
    this.keyEls.filter((k) => k.classList.contains('black')).forEach((k) => this.inner.appendChild(k));
    this.marks = []; // one look-ahead mark per button, made once (no DOM growth), moved to its key
    this.shown = ''; // what the marks show now (keys and velocities), to skip a redraw that changes nothing
    this.visible = this.numWhite; // white keys shown
    this.offset = 0; // first white key shown
    this.centre = this.whiteIndex[Math.max(0, 60 - lowestPitch)] + 0.5; // middle C, until notes are played
    this.px = 0; // keyboard width in CSS px
    new ResizeObserver(() => this.layout()).observe(el);
    this.layout();
  }

  /** Recompute the visible window for the current width (keeps the window's centre). */
  layout() {
    this.px = this.el.clientWidth;
    if (!this.px) return;
    this.visible = Math.min(this.numWhite, Math.max(MIN_WHITES, Math.floor(this.px / MIN_WHITE_PX)));
    this.el.classList.toggle('following', this.visible < this.numWhite);
    this.inner.style.width = `${(this.numWhite / this.visible) * 100}%`;
    this._scrollTo(this.centre - this.visible / 2);
  }

  _scrollTo(offset) {
    this.offset = Math.round(Math.min(Math.max(offset, 0), this.numWhite - this.visible));
    this.centre = this.offset + this.visible / 2;
    this.inner.style.transform = `translateX(${(-this.offset / this.numWhite) * 100}%)`;
  }

  /** Bring a key into view (with a margin) on a narrow screen. */
  follow(key) {
    if (this.visible >= this.numWhite) return;
    const w = this.whiteIndex[key];
    if (w < this.offset + 2 || w > this.offset + this.visible - 3) this._scrollTo(w - this.visible / 2);
  }

  /** Left edge and width of a key in CSS px from the keyboard's left edge (for trails). */
  keyX(key) {
    const scale = this.px * (this.numWhite / this.visible);
    return { x: this.left[key] * scale - (this.offset / this.numWhite) * scale, w: this.width[key] * scale };
  }

  /** A key goes down (lit in the colour of the button that struck it last) or up. */
  light(key, color, on) {
    const el = this.keyEls[key];
    if (on) {
      el.style.setProperty('--color', color);
      this.follow(key);
    }
    el.classList.toggle('on', on);
  }

  clearLights() {
    for (const el of this.keyEls) el.classList.remove('on');
  }

  /**
   * Mark the key each button would play next, one mark per button in its colour; [] clears. Two
   * buttons going to one key share it side by side, lower button left. `velocities` (one per
   * button, or null: the model has no velocity head) make a louder note's mark wider and more
   * solid, as its trail would be. Cheap when nothing changed (it is called every animation frame
   * while the look-ahead can still change).
   */
  showAhead(keys, colors, velocities = null) {
    const shown = `${keys}|${velocities || ''}`;
    if (shown === this.shown) return;
    this.shown = shown;
    for (const el of this.keyEls) if (el.classList.contains('next')) el.classList.remove('next');
    while (this.marks.length < keys.length) {
      const mark = document.createElement('i');
      mark.className = 'ahead';
      mark.dataset.button = String(this.marks.length);
      this.marks.push(mark);
    }
    const count = new Map();
    for (const k of keys) count.set(k, (count.get(k) || 0) + 1);
    this.marks.forEach((mark, b) => {
      if (b >= keys.length) { mark.remove(); return; }
      const el = this.keyEls[keys[b]], box = el.firstElementChild;
      mark.style.setProperty('--next', colors[b]);
      const { width, alpha } = velocities ? trailLook(velocities[b]) : { width: 1, alpha: 1 };
      mark.style.setProperty('--ahead-w', (width / count.get(keys[b])).toFixed(3));
      mark.style.setProperty('--ahead-a', alpha.toFixed(3));
      box.appendChild(mark); // in button order: lower buttons to the left
      el.classList.add('next');
    });
  }

  /** Dim the keys outside `keys` (null: none dimmed). */
  setAllowed(keys) {
    const allowed = keys === null ? null : new Set(keys);
    this.keyEls.forEach((el, k) => el.classList.toggle('out', allowed !== null && !allowed.has(k)));
  }
}
