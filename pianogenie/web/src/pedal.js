// @ts-check
// The on-screen sustain pedal (for touch: hold it with a thumb while playing), showing the pedal's
// state whichever input holds it (Space, this pedal, a MIDI controller's CC64).

export class PedalView {
  constructor(el, player) {
    this.el = el;
    el.addEventListener('pointerdown', (e) => {
      e.preventDefault();
      try {
        el.setPointerCapture(e.pointerId);
      } catch { /* pointer already gone */ }
      player.pedalOn(`pointer:${e.pointerId}`);
    });
    const up = (e) => player.pedalOff(`pointer:${e.pointerId}`);
    el.addEventListener('pointerup', up);
    el.addEventListener('pointercancel', up);
    el.addEventListener('contextmenu', (e) => e.preventDefault());
    el.addEventListener('click', (e) => e.preventDefault());
  }

  pedal(down) {
    this.el.classList.toggle('down', down);
    this.el.setAttribute('aria-pressed', String(down));
  }
}
