// @ts-check
// Recorded notes -> a Standard MIDI File (format 0). No DOM.

const PPQ = 480; // ticks per quarter note
const BPM = 120; // so one second = 2 quarters = 960 ticks

function varLen(n) {
  // MIDI variable-length quantity: 7 bits per byte, high bit set on all but the last.
  const bytes = [n & 0x7f];
  for (n >>>= 7; n > 0; n >>>= 7) bytes.unshift((n & 0x7f) | 0x80);
  return bytes;
}

const u32 = (n) => [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
const ascii = (s) => Array.from(s, (c) => c.charCodeAt(0) & 0x7f);

/**
 * @param {{pitch: number, velocity: number, start: number, end: number}[]} notes  times in seconds
 *   from the start of the recording
 * @param {{name?: string, controls?: {time: number, controller: number, value: number}[]}} options
 *   controls: control changes (the sustain pedal, CC64) at their times
 * @returns {Uint8Array<ArrayBuffer>} the .mid file: one track, 120 bpm, program 0 (acoustic grand piano)
 */
export function writeMidiFile(notes, { name = 'Piano Genie', controls = [] } = {}) {
  const ticksPerSecond = (PPQ * BPM) / 60;
  const tick = (s) => Math.max(0, Math.round(s * ticksPerSecond));
  const events = [];
  for (const n of notes) {
    const pitch = Math.min(127, Math.max(0, Math.round(n.pitch)));
    const velocity = Math.min(127, Math.max(1, Math.round(n.velocity)));
    const on = tick(n.start);
    const off = Math.max(on + 1, tick(n.end)); // a zero-length note would vanish in most players
    events.push({ tick: on, order: 1, bytes: [0x90, pitch, velocity] });
    events.push({ tick: off, order: 0, bytes: [0x80, pitch, 0] });
  }
  for (const c of controls) {
    // A pedal change at a note's tick applies after its note-off and before its note-on.
    events.push({ tick: tick(c.time), order: 0.5, bytes: [0xb0, c.controller & 0x7f, Math.min(127, Math.max(0, c.value))] });
  }
  // At equal ticks, note-offs first, so a repeated key is released before it is struck again.
  events.sort((a, b) => a.tick - b.tick || a.order - b.order);

  const track = [
    0x00, 0xff, 0x03, ...varLen(name.length), ...ascii(name), // track name
    0x00, 0xff, 0x51, 0x03, ...u32(Math.round(60e6 / BPM)).slice(1), // tempo (us per quarter)
    0x00, 0xc0, 0x00, // program change: acoustic grand piano
  ];
  let last = 0;
  for (const e of events) {
    track.push(...varLen(e.tick - last), ...e.bytes);
    last = e.tick;
  }
  track.push(0x00, 0xff, 0x2f, 0x00); // end of track

  const header = [...ascii('MThd'), ...u32(6), 0x00, 0x00, 0x00, 0x01, (PPQ >> 8) & 0xff, PPQ & 0xff];
  return Uint8Array.from([...header, ...ascii('MTrk'), ...u32(track.length), ...track]);
}

/** Collects note-ons/offs of a performance into the notes writeMidiFile takes. */
export class Recorder {
  constructor() {
    this.notes = [];
    this.open = new Map(); // pitch -> the note it is sounding
    this.controls = []; // sustain pedal changes: {time, controller: 64, value}
    this.pedalDown = false;
    this.t0 = null;
  }

  get recording() {
    return this.t0 !== null;
  }

  start(time) {
    this.notes = [];
    this.controls = [];
    this.open.clear();
    this.t0 = time;
    if (this.pedalDown) this.controls.push({ time: 0, controller: 64, value: 127 }); // already down
  }

  /** The sustain pedal goes down or up (kept as CC64 events, so the file sustains as played). */
  pedal(time, down) {
    this.pedalDown = down;
    if (this.recording) this.controls.push({ time: time - this.t0, controller: 64, value: down ? 127 : 0 });
  }

  noteOn(time, pitch, velocity) {
    if (!this.recording) return;
    this.noteOff(time, pitch); // a key struck again ends its previous note
    const note = { pitch, velocity, start: time - this.t0, end: null };
    this.notes.push(note);
    this.open.set(pitch, note);
  }

  noteOff(time, pitch) {
    const note = this.open.get(pitch);
    if (!this.recording || !note) return;
    note.end = time - this.t0;
    this.open.delete(pitch);
  }

  /** Stop: held notes end now. -> the notes recorded. */
  stop(time) {
    for (const pitch of [...this.open.keys()]) this.noteOff(time, pitch);
    if (this.pedalDown) this.controls.push({ time: time - this.t0, controller: 64, value: 0 });
    this.t0 = null;
    return this.notes;
  }
}
