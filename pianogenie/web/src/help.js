// @ts-check
// The explanation: shown on the first visit, dismissable, reachable again from the "?" control.

const SEEN = 'pianogenie.helpSeen';

export class Help {
  constructor(dialog, openButton) {
    this.dialog = dialog;
    openButton.addEventListener('click', () => this.open());
    let seen = false;
    try {
      seen = localStorage.getItem(SEEN) === '1';
      localStorage.setItem(SEEN, '1'); // shown once is seen: the next visit starts playing at once
    } catch { /* storage blocked: it shows on every visit */ }
    if (!seen) this.open();
  }

  get isOpen() {
    return this.dialog.open;
  }

  open() {
    if (this.dialog.open) return;
    this.dialog.showModal();
    this.dialog.scrollTop = 0; // start at the top (the focused Play button sticks to the bottom)
  }
}
