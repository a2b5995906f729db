// Inputs that play: the computer keyboard (two rows of keys for the buttons, Space for the pedal,
// Enter on a focused button) and pointers (mouse, pen, multi-touch) on the buttons. MIDI input is
// midi_io.js; the on-screen pedal is pedal.js.

const KEY_CODES = [
  ['Digit1', 'KeyA'], ['Digit2', 'KeyS'], ['Digit3', 'KeyD'], ['Digit4', 'KeyF'],
  ['Digit5', 'KeyJ'], ['Digit6', 'KeyK'], ['Digit7', 'KeyL'], ['Digit8', 'Semicolon'],
];

/**
 * @param {import('./player.js').Player} player
 * @param {{numButtons: number, paused: () => boolean}} options  paused: true while a dialog is up
 */
export function bindKeys(player, { numButtons, paused = () => false }) {
  const codeToButton = new Map();
  KEY_CODES.slice(0, numButtons).forEach((codes, b) => codes.forEach((c) => codeToButton.set(c, b)));
  const focusedButton = () => {
    const el = document.activeElement;
    return el && el.classList && el.classList.contains('genie-button') ? Number(el.dataset.button) : null;
  };
  const onKey = (e) => {
    if (paused() || e.ctrlKey || e.metaKey || e.altKey) return;
    const down = e.type === 'keydown';
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
      if (down && !e.repeat) player.buttonDown(codeToButton.get(e.code), `key:${e.code}`);
      else if (!down) player.buttonUp(`key:${e.code}`);
    }
  };
  // Capture phase: before any focused control sees the key.
  window.addEventListener('keydown', onKey, true);
  window.addEventListener('keyup', onKey, true);
  window.addEventListener('blur', () => { // keys released while away would stick
    player.releaseAll();
    player.pedalOff('key:Space');
  });
}

/** Mouse and multi-touch on the buttons: one source per pointer. */
export function bindPointers(player, buttonEls) {
  buttonEls.forEach((el, b) => {
    el.addEventListener('pointerdown', (e) => {
      e.preventDefault();
      try {
        el.setPointerCapture(e.pointerId); // the release arrives here even if the finger slides off
      } catch { /* a pointer that is already gone: nothing to capture */ }
      player.buttonDown(b, `pointer:${e.pointerId}`);
    });
    const up = (e) => player.buttonUp(`pointer:${e.pointerId}`);
    el.addEventListener('pointerup', up);
    el.addEventListener('pointercancel', up);
    el.addEventListener('contextmenu', (e) => e.preventDefault());
  });
}
