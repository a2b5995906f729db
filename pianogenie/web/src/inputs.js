// @ts-check
// Inputs that play: the computer keyboard (two rows of keys for the buttons, Space for the pedal,
// Enter on a focused button) and pointers (mouse, pen, multi-touch) on the buttons. MIDI input is
// midi_io.js; the on-screen pedal is pedal.js.
//
// Dynamics (expression.js): Shift held with a key accents that note, Z or / held with it plays it
// soft (the accent's mirror, for either hand; neither is a button key); - and = step the dynamics
// level (pp..ff); where a pointer lands on a button (top louder, bottom softer) or a pen's
// pressure shifts its note, where `touchDynamics()` allows. A pointer sliding across the buttons
// (glide) plays each button it enters and lets go of the one it left.
//
// A form control with focus gets its own keys: Space and Enter tick a focused checkbox, open a
// focused select, press a focused Settings button (Enter ticks a checkbox too, which browsers
// leave undone). The bar's buttons keep Space as the pedal (a click leaves focus there, and Space
// must never press Record again mid-performance).

import { ACCENT_SHIFT, positionShift, pressureShift, SOFT_SHIFT } from './expression.js';

const KEY_CODES = [
  ['Digit1', 'KeyA'], ['Digit2', 'KeyS'], ['Digit3', 'KeyD'], ['Digit4', 'KeyF'],
  ['Digit5', 'KeyJ'], ['Digit6', 'KeyK'], ['Digit7', 'KeyL'], ['Digit8', 'Semicolon'],
];
const SOFT_KEYS = new Set(['KeyZ', 'Slash']);

/**
 * @param {import('./player.js').Player} player
 * @param {{numButtons: number, paused: () => boolean, stepDynamics?: (by: number) => void}} options
 *   paused: true while a dialog is up; stepDynamics: - and = (softer, louder)
 */
export function bindKeys(player, { numButtons, paused = () => false, stepDynamics = () => {} }) {
  const codeToButton = new Map();
  KEY_CODES.slice(0, numButtons).forEach((codes, b) => codes.forEach((c) => codeToButton.set(c, b)));
  const softHeld = new Set(); // the soft keys down now
  const focusedButton = () => {
    const el = /** @type {HTMLElement} */ (document.activeElement);
    return el && el.classList && el.classList.contains('genie-button') ? Number(el.dataset.button) : null;
  };
  const formControl = () => {
    const el = /** @type {HTMLInputElement|HTMLSelectElement|HTMLTextAreaElement|HTMLButtonElement} */ (document.activeElement);
    if (!el || !el.tagName || el.classList.contains('genie-button')) return null;
    if (el.tagName === 'SELECT' || el.tagName === 'TEXTAREA' || (el.tagName === 'INPUT' && el.type !== 'range')) return el;
    return el.tagName === 'BUTTON' && el.closest('.panel') ? el : null;
  };
  const onKey = (e) => {
    if (paused() || e.ctrlKey || e.metaKey || e.altKey) return;
    const down = e.type === 'keydown';
    const control = (e.code === 'Space' || e.code === 'Enter' || e.code === 'NumpadEnter') ? formControl() : null;
    if (control) {
      if (down && e.code !== 'Space' && control.type === 'checkbox') {
        e.preventDefault();
        control.click();
      } else if (!down) { // a pedal or button held before focus moved here still comes up
        if (e.code === 'Space') player.pedalOff('key:Space');
        else player.buttonUp(`key:${e.code}`);
      }
      return; // the control's own key (Space ticks a checkbox, opens a select, presses a button)
    }
    if (e.code === 'Space') {
      // The pedal. Never the browser's default, which would click the last clicked control (Record...).
      e.preventDefault();
      e.stopPropagation();
      if (down) player.pedalOn('key:Space');
      else player.pedalOff('key:Space');
    } else if ((e.code === 'Enter' || e.code === 'NumpadEnter') && focusedButton() !== null) {
      e.preventDefault(); // a focused button plays on Enter, and is held while Enter is
      if (down && !e.repeat) player.buttonDown(focusedButton(), `key:${e.code}`);
      else if (!down) player.buttonUp(`key:${e.code}`);
    } else if (codeToButton.has(e.code)) {
      const t = e.target;
      if (t && (t.tagName === 'INPUT' && t.type !== 'range' && t.type !== 'checkbox')) return; // typing, not playing
      e.preventDefault();
      const shift = (e.shiftKey ? ACCENT_SHIFT : 0) + (softHeld.size ? SOFT_SHIFT : 0);
      if (down && !e.repeat) player.buttonDown(codeToButton.get(e.code), `key:${e.code}`, undefined, shift);
      else if (!down) player.buttonUp(`key:${e.code}`);
    } else if (SOFT_KEYS.has(e.code)) {
      const t = e.target;
      if (t && t.tagName === 'INPUT' && t.type !== 'range' && t.type !== 'checkbox') return;
      e.preventDefault();
      if (down) softHeld.add(e.code);
      else softHeld.delete(e.code);
    } else if ((e.code === 'Minus' || e.code === 'Equal' || e.code === 'NumpadSubtract' || e.code === 'NumpadAdd') && down) {
      const t = e.target;
      if (t && t.tagName === 'INPUT' && t.type !== 'range' && t.type !== 'checkbox') return;
      e.preventDefault();
      stepDynamics(e.code === 'Minus' || e.code === 'NumpadSubtract' ? -1 : 1);
    }
  };
  // Capture phase: before any focused control sees the key.
  window.addEventListener('keydown', onKey, true);
  window.addEventListener('keyup', onKey, true);
  window.addEventListener('blur', () => { // keys released while away would stick
    softHeld.clear();
    player.releaseAll();
    player.pedalOff('key:Space');
  });
}

/** A pointer event's dynamics on button `el`: a pen's pressure, else where on the button it is. */
export function pointerShift(e, el) {
  if (e.pointerType === 'pen' && e.pressure > 0) return pressureShift(e.pressure);
  const box = el.getBoundingClientRect();
  return box.height > 0 ? positionShift((e.clientY - box.top) / box.height) : 0;
}

/**
 * Mouse, pen and multi-touch on the buttons: one source per pointer. A held pointer gliding onto
 * another button plays it and lets go of the one it left (gaps between buttons change nothing).
 * @param {import('./player.js').Player} player  @param {HTMLElement[]} buttonEls
 * @param {{touchDynamics?: () => boolean}} options  touchDynamics: where a press lands shifts its velocity
 */
export function bindPointers(player, buttonEls, { touchDynamics = () => true } = {}) {
  const holding = new Map(); // pointerId -> the button it holds
  const press = (b, e) => {
    holding.set(e.pointerId, b);
    player.buttonDown(b, `pointer:${e.pointerId}`, undefined, touchDynamics() ? pointerShift(e, buttonEls[b]) : 0);
  };
  buttonEls.forEach((el, b) => {
    el.addEventListener('pointerdown', (e) => {
      e.preventDefault();
      try {
        el.setPointerCapture(e.pointerId); // the release arrives here even if the finger slides off
      } catch { /* a pointer that is already gone: nothing to capture */ }
      press(b, e);
    });
    // Captured: moves arrive here wherever the pointer is; what lies under it decides.
    el.addEventListener('pointermove', (e) => {
      const held = holding.get(e.pointerId);
      if (held === undefined) return;
      const under = document.elementFromPoint(e.clientX, e.clientY);
      const target = /** @type {HTMLElement|null} */ (under && under.closest ? under.closest('.genie-button') : null);
      const to = target ? buttonEls.indexOf(target) : -1;
      if (to < 0 || to === held) return;
      player.buttonUp(`pointer:${e.pointerId}`);
      press(to, e);
    });
    const up = (e) => {
      holding.delete(e.pointerId);
      player.buttonUp(`pointer:${e.pointerId}`);
    };
    el.addEventListener('pointerup', up);
    el.addEventListener('pointercancel', up);
    el.addEventListener('contextmenu', (e) => e.preventDefault());
  });
}
