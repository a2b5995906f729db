// The bar's controls: temperature, reset, the settings panel, its two view toggles (look-ahead,
// trails) and "Genie dynamics" (a MIDI controller's notes play the model's velocity). Recording, MIDI and the scale picker have their own modules.

const $ = (sel) => document.querySelector(sel);

export class Controls {
  /**
   * @param {{reset: () => void, lookAhead: (on: boolean) => void, trails: (on: boolean) => void}} actions
   */
  constructor(actions) {
    this.temperatureEl = $('#temperature');
    const show = () => { $('#temperature-value').textContent = Number(this.temperatureEl.value).toFixed(2); };
    this.temperatureEl.addEventListener('input', show);
    show();
    $('#reset').addEventListener('click', () => actions.reset());

    const toggle = $('#settings-toggle'), panel = $('#settings');
    const setOpen = (open) => {
      panel.hidden = !open;
      toggle.setAttribute('aria-expanded', String(open));
    };
    toggle.addEventListener('click', () => setOpen(panel.hidden));
    $('#settings-close').addEventListener('click', () => setOpen(false));
    panel.addEventListener('keydown', (e) => { if (e.key === 'Escape') setOpen(false); });

    this.lookAheadEl = $('#lookahead');
    this.trailsEl = $('#trails-toggle');
    this.lookAheadEl.addEventListener('change', () => actions.lookAhead(this.lookAheadEl.checked));
    this.trailsEl.addEventListener('change', () => actions.trails(this.trailsEl.checked));
    this.genieDynamicsEl = $('#genie-dynamics'); // read at each press (Player's genieDynamics)
  }

  get genieDynamics() {
    return this.genieDynamicsEl.checked;
  }

  get temperature() {
    return Number(this.temperatureEl.value);
  }
}
