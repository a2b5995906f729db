// @ts-check
// The bar's controls: temperature, reset, the settings panel (Escape closes it wherever focus is;
// kept clear of the 8 buttons where the screen allows), its view toggles (look-ahead, trails),
// dynamics (the player's loudness: a level shifting the genie's velocity, where on a button a
// press lands) and "Genie dynamics" (a MIDI controller's notes play the model's velocity).
// Recording, MIDI, the scale picker and the settings store have their own modules.

/** @param {string} sel  @returns {HTMLElement} */
const $ = (sel) => document.querySelector(sel);

export class Controls {
  /**
   * @param {{reset: () => void, lookAhead: (on: boolean) => void, trails: (on: boolean) => void,
   *   resetSettings: () => void, dynamics: (level: number) => void}} actions
   */
  constructor(actions) {
    this.temperatureEl = /** @type {HTMLInputElement} */ ($('#temperature'));
    const show = () => { $('#temperature-value').textContent = Number(this.temperatureEl.value).toFixed(2); };
    this.temperatureEl.addEventListener('input', show);
    show();
    $('#reset').addEventListener('click', () => actions.reset());

    const toggle = $('#settings-toggle'), panel = $('#settings');
    this.panel = panel;
    const setOpen = (open) => {
      if (!open && panel.contains(document.activeElement)) toggle.focus(); // focus is not lost with the panel
      panel.hidden = !open;
      toggle.setAttribute('aria-expanded', String(open));
      if (open) this.fit();
    };
    toggle.addEventListener('click', () => setOpen(panel.hidden));
    $('#settings-close').addEventListener('click', () => setOpen(false));
    window.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && !panel.hidden && !document.querySelector('dialog[open]')) {
        e.preventDefault();
        setOpen(false);
      }
    }, true);
    window.addEventListener('resize', () => { if (!panel.hidden) this.fit(); });
    $('#settings-reset').addEventListener('click', () => actions.resetSettings());

    this.dynamicsEl = /** @type {HTMLSelectElement} */ ($('#dynamics'));
    this.dynamicsEl.addEventListener('change', () => actions.dynamics(this.dynamics));
    this.touchDynamicsEl = /** @type {HTMLInputElement} */ ($('#touch-dynamics'));

    this.lookAheadEl = /** @type {HTMLInputElement} */ ($('#lookahead'));
    this.trailsEl = /** @type {HTMLInputElement} */ ($('#trails-toggle'));
    this.lookAheadEl.addEventListener('change', () => actions.lookAhead(this.lookAheadEl.checked));
    this.trailsEl.addEventListener('change', () => actions.trails(this.trailsEl.checked));
    this.genieDynamicsEl = /** @type {HTMLInputElement} */ ($('#genie-dynamics')); // read at each press (Player's genieDynamics)
  }

  /**
   * The open panel opens below the bar, and on a wide screen ends above the 8 buttons where that
   * leaves it room enough (it scrolls inside itself then); on a phone it may cover them (a panel
   * that short would be hard to use there), and Escape or ✕ gives them back.
   */
  fit() {
    const buttons = document.querySelector('#buttons'), bar = document.querySelector('#bar');
    this.panel.style.maxHeight = '';
    if (bar) {
      const top = `${Math.ceil(bar.getBoundingClientRect().bottom) + 6}px`;
      this.panel.style.top = top;
      this.panel.style.setProperty('--panel-top', top);
    }
    if (!buttons || innerWidth < 700) return;
    const room = buttons.getBoundingClientRect().top - this.panel.getBoundingClientRect().top - 6;
    if (room >= 220) this.panel.style.maxHeight = `${Math.floor(room)}px`;
  }

  /** The dynamics level: -3 (pp) .. 3 (ff), 0 = the genie's own. */
  get dynamics() {
    return Number(this.dynamicsEl.value);
  }

  /** Step the dynamics level by `by` (keys - and =), within pp..ff. */
  stepDynamics(by) {
    const next = Math.min(3, Math.max(-3, this.dynamics + by));
    if (next === this.dynamics) return;
    this.dynamicsEl.value = String(next);
    this.dynamicsEl.dispatchEvent(new Event('change', { bubbles: true }));
  }

  get touchDynamics() {
    return this.touchDynamicsEl.checked;
  }

  get genieDynamics() {
    return this.genieDynamicsEl.checked;
  }

  get temperature() {
    return Number(this.temperatureEl.value);
  }
}
