// Session (press/release/reset, sampling), MIDI input mapping and the MIDI file writer.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { MidiIO, pitchToButton } from '../src/midi_io.js';
import { Recorder, writeMidiFile } from '../src/midi_file.js';
import { makeRng, sampleKey, Session } from '../src/session.js';

// A stand-in decoder that records its inputs and returns fixed logits.
class FakeDecoder {
  constructor(logits) { this.logits = Float64Array.from(logits); this.calls = []; this.resets = 0; }
  step(kM1, dt, bReal) { this.calls.push([kM1, dt, bReal]); return this.logits; }
  reset() { this.resets++; }
}
const CONFIG = { numButtons: 8, deltaTimeMax: 1.0, sos: 88 };
const peaked = (k) => Array.from({ length: 88 }, (_, i) => (i === k ? 5 : 0));

describe('session', () => {
  test('decoder inputs: SOS then the previous key, clipped delta time, button as a real in [-1, 1]', () => {
    const dec = new FakeDecoder(peaked(40));
    const s = new Session(dec, CONFIG, { seed: 1 });
    assert.equal(s.press(10.0, 0, 0), 40);
    assert.equal(s.press(10.25, 7, 0), 40);
    s.press(12.0, 3, 0); // 1.75 s later: clipped to the max
    s.press(11.0, 4, 0); // clock went backwards: clipped to 0
    assert.deepEqual(dec.calls, [[88, 1.0, -1], [40, 0.25, 1], [40, 1.0, 2 * 3 / 7 - 1], [40, 0, 2 * 4 / 7 - 1]]);
  });

  test('release returns the key the button sounds, once', () => {
    const s = new Session(new FakeDecoder(peaked(12)), CONFIG);
    assert.equal(s.release(2), null);
    s.press(0, 2, 0);
    assert.equal(s.release(2), 12);
    assert.equal(s.release(2), null);
  });

  test('reset forgets the performance', () => {
    const dec = new FakeDecoder(peaked(5));
    const s = new Session(dec, CONFIG, { seed: 1 });
    s.press(3, 1, 0);
    s.reset();
    s.press(4, 1, 0);
    assert.equal(dec.resets, 2); // constructor + reset
    assert.deepEqual(dec.calls[1].slice(0, 2), [88, 1.0]);
    assert.equal(s.release(1), 5);
  });

  test('bad buttons are rejected', () => {
    const s = new Session(new FakeDecoder(peaked(0)), CONFIG);
    for (const b of [-1, 8, 1.5, '1']) assert.throws(() => s.press(0, b, 0), RangeError);
  });

  test('seeded sampling: same seed, same keys; other seed, other keys; reset(seed) replays', () => {
    const logits = Array.from({ length: 88 }, (_, i) => Math.sin(i) * 2);
    const keys = (seed) => {
      const s = new Session(new FakeDecoder(logits), CONFIG, { seed });
      return Array.from({ length: 50 }, (_, i) => s.press(i, i % 8, 1.0));
    };
    assert.deepEqual(keys(7), keys(7));
    assert.notDeepEqual(keys(7), keys(8));
    const s = new Session(new FakeDecoder(logits), CONFIG, { seed: 7 });
    const a = Array.from({ length: 10 }, (_, i) => s.press(i, 0, 1.0));
    s.reset(7);
    assert.deepEqual(Array.from({ length: 10 }, (_, i) => s.press(i, 0, 1.0)), a);
  });
});

describe('sampling', () => {
  test('temperature 0 is argmax', () => {
    const logits = Float64Array.from({ length: 88 }, (_, i) => -Math.abs(i - 61));
    assert.equal(sampleKey(logits, 0, () => 0.999), 61);
  });

  test('frequencies follow softmax(logits / temperature)', () => {
    const logits = [0, Math.log(2), Math.log(4), -100];
    const rng = makeRng(42), n = 40000, counts = [0, 0, 0, 0];
    for (let i = 0; i < n; i++) counts[sampleKey(logits, 1, rng)]++;
    [1 / 7, 2 / 7, 4 / 7, 0].forEach((p, k) => assert.ok(Math.abs(counts[k] / n - p) < 0.01, `key ${k}: ${counts[k] / n} vs ${p}`));
    // Lower temperature sharpens: at 0.5 the odds are squared (1 : 4 : 16).
    const c2 = [0, 0, 0, 0];
    for (let i = 0; i < n; i++) c2[sampleKey(logits, 0.5, rng)]++;
    assert.ok(Math.abs(c2[2] / n - 16 / 21) < 0.01);
  });

  test('the generator is uniform on [0, 1)', () => {
    const rng = makeRng(3);
    let sum = 0, min = 1, max = 0;
    for (let i = 0; i < 100000; i++) { const u = rng(); sum += u; min = Math.min(min, u); max = Math.max(max, u); }
    assert.ok(Math.abs(sum / 100000 - 0.5) < 0.005 && min >= 0 && max < 1);
  });
});

describe('MIDI input', () => {
  test('white keys C4..C5 are buttons 0..7, repeating; black keys take the white key below', () => {
    assert.deepEqual([60, 62, 64, 65, 67, 69, 71, 72].map((p) => pitchToButton(p)), [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.equal(pitchToButton(74), 0);
    assert.equal(pitchToButton(59), 7);
    assert.equal(pitchToButton(61), 0);
    for (let p = 0; p < 128; p++) assert.ok(pitchToButton(p) >= 0 && pitchToButton(p) < 8);
  });

  test('note-on presses a button with its velocity; note-off (or velocity 0) releases it; out goes to the chosen port', () => {
    const log = [];
    const io = new MidiIO({ onButtonDown: (b, v, src) => log.push(['down', b, v, src]), onButtonUp: (src) => log.push(['up', src]) });
    const input = { id: 'in1' };
    io._onMessage(input, [0x90, 64, 100]);
    io._onMessage(input, [0x91, 72, 30]); // any channel
    io._onMessage(input, [0x80, 64, 0]);
    io._onMessage(input, [0x91, 72, 0]);
    io._onMessage(input, [0xb0, 64, 127]); // sustain pedal: not a button (onPedal)
    assert.deepEqual(log, [['down', 2, 100, 'midi:in1:64'], ['down', 7, 30, 'midi:in1:72'], ['up', 'midi:in1:64'], ['up', 'midi:in1:72']]);
    const sent = [];
    io.access = { outputs: new Map([['out1', { send: (bytes) => sent.push(bytes) }]]) };
    io.noteOn(60, 90); // no output chosen yet
    io.outputId = 'out1';
    io.noteOn(60, 90);
    io.noteOff(60);
    assert.deepEqual(sent, [[0x90, 60, 90], [0x80, 60, 0]]);
  });
});

// A minimal SMF reader, to check what the writer wrote.
function readMidi(bytes) {
  const u32 = (i) => ((bytes[i] << 24) | (bytes[i + 1] << 16) | (bytes[i + 2] << 8) | bytes[i + 3]) >>> 0;
  const text = (i, n) => String.fromCharCode(...bytes.slice(i, i + n));
  assert.equal(text(0, 4), 'MThd');
  const ppq = (bytes[12] << 8) | bytes[13];
  assert.equal(text(14, 4), 'MTrk');
  const end = 22 + u32(18);
  assert.equal(end, bytes.length);
  let i = 22, tick = 0, tempo = null;
  const notes = [], events = [];
  while (i < end) {
    let delta = 0;
    for (;;) { const b = bytes[i++]; delta = (delta << 7) | (b & 0x7f); if (!(b & 0x80)) break; }
    tick += delta;
    const status = bytes[i++];
    if (status === 0xff) {
      const type = bytes[i++], len = bytes[i++];
      if (type === 0x51) tempo = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
      events.push(['meta', type]);
      i += len;
    } else if ((status & 0xf0) === 0xc0) {
      events.push(['program', bytes[i++]]);
    } else {
      events.push([status & 0xf0, bytes[i], bytes[i + 1], tick]);
      i += 2;
    }
  }
  const seconds = (t) => (t / ppq) * (tempo / 1e6);
  for (const [s, p, v, t] of events) {
    if (s === 0x90) notes.push({ pitch: p, velocity: v, start: seconds(t), end: null });
    if (s === 0x80) notes.find((n) => n.pitch === p && n.end === null).end = seconds(t);
  }
  return { notes, events };
}

describe('MIDI file', () => {
  test('notes round-trip through the file (times to the tick)', () => {
    const notes = [
      { pitch: 60, velocity: 90, start: 0, end: 0.5 },
      { pitch: 64, velocity: 70, start: 0.25, end: 3.0 },
      { pitch: 60, velocity: 100, start: 0.5, end: 0.75 }, // same key again, right as it ends
      { pitch: 108, velocity: 1, start: 100.123, end: 101 }, // long delta: multi-byte length
    ];
    const { notes: back, events } = readMidi(writeMidiFile(notes));
    assert.deepEqual(events.slice(0, 3).map((e) => e[0]), ['meta', 'meta', 'program']);
    assert.equal(back.length, 4);
    const byStart = [...back].sort((a, b) => a.start - b.start);
    notes.forEach((n, i) => {
      assert.equal(byStart[i].pitch, n.pitch);
      assert.equal(byStart[i].velocity, n.velocity);
      assert.ok(Math.abs(byStart[i].start - n.start) < 1 / 960 && Math.abs(byStart[i].end - n.end) < 1 / 960);
    });
  });

  test('recorder: times from the start, held notes end at stop, re-struck keys end first', () => {
    const r = new Recorder();
    r.noteOn(1, 60, 90); // not recording: ignored
    r.start(10);
    r.noteOn(10.5, 60, 90);
    r.noteOn(11, 60, 80);
    r.noteOn(11.5, 67, 70);
    r.noteOff(12, 67);
    const notes = r.stop(13);
    assert.deepEqual(notes, [
      { pitch: 60, velocity: 90, start: 0.5, end: 1 },
      { pitch: 60, velocity: 80, start: 1, end: 3 },
      { pitch: 67, velocity: 70, start: 1.5, end: 2 },
    ]);
    assert.equal(r.recording, false);
  });
});
