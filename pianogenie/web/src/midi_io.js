// @ts-check
// Web MIDI: any connected controller plays the 8 buttons; the notes chosen go to a MIDI output.
//
// Input mapping, by pitch order: consecutive white keys are consecutive buttons, C4 D4 E4 F4 G4 A4
// B4 C5 = buttons 1..8, repeating up and down the keyboard (D5 = button 1 again, B3 = button 8), so
// any 8 adjacent white keys of any controller reach every button. A black key plays the button of
// the white key below it. The sustain pedal (CC64, any channel) comes in as a pedal; out, notes
// and the pedal go on the chosen channel.

const WHITE_STEPS = [0, 0, 1, 1, 2, 3, 3, 4, 4, 5, 5, 6]; // pitch class -> white key (black: the one below)

/** MIDI pitch -> button 0..numButtons-1. */
export function pitchToButton(pitch, numButtons = 8) {
  const white = Math.floor(pitch / 12) * 7 + WHITE_STEPS[pitch % 12];
  const c4 = 5 * 7; // white-key index of C4 (pitch 60)
  return (((white - c4) % numButtons) + numButtons) % numButtons;
}

export class MidiIO {
  /**
   * @param {{onButtonDown: (button, velocity, source) => void, onButtonUp: (source) => void,
   *          onPedal?: (down, source) => void, onChange?: () => void, onInputGone?: (id: string) => void,
   *          onNote?: (pitch: number, down: boolean) => boolean, numButtons?: number}} handlers
   *   onInputGone: an input was unplugged (removed, or kept as 'disconnected'): whatever it held
   *   must be let go; its sources are `midi:<id>:...`. onNote: each note first, true where it is
   *   not a button
   */
  constructor({ onButtonDown, onButtonUp, onPedal = () => {}, onChange = () => {}, onInputGone = () => {}, onNote = () => false,
    numButtons = 8 }) {
    this.onButtonDown = onButtonDown;
    this.onNote = onNote; // (pitch, down) -> true where a note is not a button
    this.onInputGone = onInputGone;
    this.live = new Set(); // ids of the inputs connected at the latest state change
    this.onButtonUp = onButtonUp;
    this.onPedal = onPedal;
    this.onChange = onChange;
    this.numButtons = numButtons;
    this.access = null;
    this.outputId = ''; // '' = no MIDI output
    this.channel = 0; // output channel 0..15 (shown as 1..16)
  }

  get supported() {
    return typeof navigator !== 'undefined' && 'requestMIDIAccess' in navigator;
  }

  /** Ask for MIDI access (the browser may prompt) and listen to every input, now and later. */
  async connect() {
    this.access = await navigator.requestMIDIAccess();
    const listen = () => {
      const live = new Set(this.inputs.map((i) => i.id));
      for (const input of this.access.inputs.values()) {
        input.onmidimessage = live.has(input.id) ? (e) => this._onMessage(input, e.data) : null;
      }
      for (const id of this.live) if (!live.has(id)) this.onInputGone(id);
      this.live = live;
      if (this.outputId && !this.outputs.some((o) => o.id === this.outputId)) this.outputId = '';
      this.onChange();
    };
    this.access.onstatechange = listen;
    listen();
  }

  /** Connect now only if the user already granted MIDI (no prompt on page load). */
  async connectIfGranted() {
    if (!this.supported || !navigator.permissions) return false;
    try {
      const status = await navigator.permissions.query({ name: 'midi' });
      if (status.state !== 'granted') return false;
      await this.connect();
      return true;
    } catch {
      return false;
    }
  }

  /** The inputs connected now (a port unplugged may stay listed, as 'disconnected'). */
  get inputs() {
    return this.access ? [...this.access.inputs.values()].filter((i) => i.state !== 'disconnected') : [];
  }

  get outputs() {
    return this.access ? [...this.access.outputs.values()].filter((o) => o.state !== 'disconnected') : [];
  }

  /** Where input `id`'s notes and pedal come from, as the player names them. */
  static sourcePrefix(id) {
    return `midi:${id}:`;
  }

  _onMessage(input, data) {
    const status = data[0] & 0xf0;
    const source = MidiIO.sourcePrefix(input.id) + data[1];
    const on = status === 0x90 && data[2] > 0, off = status === 0x80 || (status === 0x90 && data[2] === 0);
    if ((on || off) && this.onNote(data[1], on)) return; // taken (the harmony control's chord keys)
    if (status === 0x90 && data[2] > 0) this.onButtonDown(pitchToButton(data[1], this.numButtons), data[2], source);
    else if (status === 0x80 || (status === 0x90 && data[2] === 0)) this.onButtonUp(source);
    else if (status === 0xb0 && data[1] === 64) this.onPedal(data[2] >= 64, MidiIO.sourcePrefix(input.id) + 'cc64');
  }

  _send(bytes) {
    const out = this.outputId && this.access && this.access.outputs.get(this.outputId);
    if (out) out.send(bytes);
  }

  noteOn(pitch, velocity) {
    this._send([0x90 | this.channel, pitch, velocity]);
  }

  noteOff(pitch) {
    this._send([0x80 | this.channel, pitch, 0]);
  }

  /** Sustain pedal (CC64) down or up. */
  pedal(down) {
    this._send([0xb0 | this.channel, 64, down ? 127 : 0]);
  }

  allNotesOff() {
    this._send([0xb0 | this.channel, 64, 0]); // pedal up, then All Notes Off
    this._send([0xb0 | this.channel, 123, 0]);
  }
}
