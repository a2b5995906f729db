// @ts-check
// The MIDI settings: connect, the output port and channel, and muting the built-in piano while a
// synth plays the notes (otherwise every note sounds twice).

/** @param {string} sel  @returns {HTMLElement} */
const $ = (sel) => document.querySelector(sel);

export class MidiPanel {
  /**
   * @param {import('./midi_io.js').MidiIO} midi  @param {{muted: boolean, allNotesOff: () => void}} piano
   * @param {{output: string, connected: boolean}} prefs  kept in the settings: the output the player
   *   chose last, chosen again once it is there (ports appear only after MIDI access is granted),
   *   and whether the player connected MIDI (then it connects again on the next visit)
   */
  constructor(midi, piano, prefs = { output: '', connected: false }) {
    this.midi = midi;
    this.piano = piano;
    this.prefs = prefs;
    this.connect = $('#midi-connect');
    this.output = /** @type {HTMLSelectElement} */ ($('#midi-output'));
    this.channel = /** @type {HTMLSelectElement} */ ($('#midi-channel'));
    this.mute = /** @type {HTMLInputElement} */ ($('#mute-piano'));
    this.info = $('#midi-info');
    this.channel.replaceChildren(...Array.from({ length: 16 }, (_, c) => new Option(`channel ${c + 1}`, String(c))));
    this.output.addEventListener('change', () => {
      midi.allNotesOff();
      midi.outputId = this.output.value;
      prefs.output = this.output.value;
      this.render();
    });
    this.channel.addEventListener('change', () => {
      midi.allNotesOff();
      midi.channel = Number(this.channel.value);
    });
    this.mute.addEventListener('change', () => this.applyMute());
    if (!midi.supported) {
      this.connect.hidden = true;
      this.info.textContent = 'Web MIDI is not supported by this browser';
    } else {
      const connect = () => midi.connect().then(() => { prefs.connected = true; }).catch((e) => {
        this.info.textContent = `MIDI unavailable: ${e.message}`;
      });
      this.connect.addEventListener('click', connect);
      if (prefs.connected) connect();
      else midi.connectIfGranted();
    }
    this.render();
  }

  // The piano is muted only while the box is ticked and an output is chosen.
  applyMute() {
    this.piano.muted = this.mute.checked && Boolean(this.midi.outputId);
    if (this.piano.muted) this.piano.allNotesOff();
  }

  render() {
    const midi = this.midi, connected = Boolean(midi.access);
    this.connect.hidden = connected || !midi.supported;
    this.output.hidden = !connected;
    if (connected && !midi.outputId && this.prefs.output && midi.outputs.some((o) => o.id === this.prefs.output)) {
      midi.outputId = this.prefs.output;
    }
    if (connected) {
      const inputs = midi.inputs.map((i) => i.name).join(', ');
      this.info.textContent = inputs ? `in: ${inputs}` : 'no MIDI input connected';
      this.output.replaceChildren(new Option('MIDI out: none', ''),
        ...midi.outputs.map((o) => new Option(`MIDI out: ${o.name}`, o.id, false, o.id === midi.outputId)));
    }
    const out = connected && Boolean(midi.outputId);
    this.channel.hidden = !out;
    this.mute.parentElement.hidden = !out;
    this.applyMute();
  }

  // Player listener: MIDI out hears key-downs (a re-struck key is released first, so a synth
  // that stacks voices never keeps one hanging), key-ups and the pedal.
  noteOn(e) {
    if (e.restrike) this.midi.noteOff(e.pitch);
    this.midi.noteOn(e.pitch, e.velocity);
  }

  noteOff(e) { this.midi.noteOff(e.pitch); }

  pedal(down) { this.midi.pedal(down); }

  reset() { this.midi.allNotesOff(); }
}
