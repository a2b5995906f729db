// The player (held notes, re-strikes, the sustain pedal), the bounded event log, the running median,
// masked sampling and look-ahead on the real decoder, MIDI CC64 in/out, the file's pedal events,
// and the scale tables against Python's. No browser: these modules have no DOM.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, test } from 'node:test';

import { Recorder, writeMidiFile } from '../src/midi_file.js';
import { MidiIO } from '../src/midi_io.js';
import { EventLog, Player, RunningMedian } from '../src/player.js';
import { allowedKeys, scalePitchClasses, SCALES } from '../src/scales.js';
import { sampleKey, Session } from '../src/session.js';
import { exportRandomModel, pythonExe } from './fixtures.js';
import { loadModelDir, REPO_DIR } from './helpers.js';

const CONFIG = { numButtons: 8, numKeys: 88, lowestPitch: 21, deltaTimeMax: 1.0, sos: 88 };

// A session whose presses decode to keys from a script (so two buttons can share a key).
class ScriptedSession {
  constructor(keys) { this.keys = keys; this.held = new Map(); this.resets = 0; }
  press(time, button) { const k = this.keys.shift(); this.held.set(button, k); return k; }
  release(button) { const k = this.held.get(button); this.held.delete(button); return k === undefined ? null : k; }
  reset() { this.resets++; }
}

function recordingPlayer(keys) {
  let t = 0;
  const player = new Player(new ScriptedSession(keys), CONFIG, { now: () => (t += 0.1) });
  const events = [];
  player.listen({
    noteOn: (e) => events.push(['on', e.key, e.button, e.restrike]),
    noteOff: (e) => events.push(['off', e.key, e.button]),
    soundOff: (e) => events.push(['sound-off', e.key]),
    pedal: (down) => events.push(['pedal', down]),
  });
  return { player, events };
}

describe('player: held notes', () => {
  test('two held buttons on one key: the key stops only when the last of them is released', () => {
    const { player, events } = recordingPlayer([40, 40]);
    player.buttonDown(0, 'key:Digit1');
    player.buttonDown(1, 'key:Digit2');
    player.buttonUp('key:Digit1');
    assert.deepEqual(events, [['on', 40, 0, false], ['on', 40, 1, true]], 'still held by button 2: no note-off');
    player.buttonUp('key:Digit2');
    assert.deepEqual(events.slice(2), [['off', 40, 1], ['sound-off', 40]]);
  });

  test('auto-repeat and a second source on the same button', () => {
    const { player, events } = recordingPlayer([10, 20]);
    assert.equal(player.buttonDown(3, 'a'), 10);
    assert.equal(player.buttonDown(3, 'a'), null); // repeat of a source already down
    player.buttonDown(3, 'b'); // the same button from another input ends its previous note
    player.buttonUp('a'); // superseded: nothing
    player.buttonUp('b');
    assert.deepEqual(events, [['on', 10, 3, false], ['off', 10, 3], ['sound-off', 10], ['on', 20, 3, false],
      ['off', 20, 3], ['sound-off', 20]]);
  });

  test('the pedal keeps released keys sounding until it comes up; any pedal source holds it', () => {
    const { player, events } = recordingPlayer([5, 6, 5]);
    player.pedalOn('key:Space');
    player.pedalOn('midi:cc64');
    player.buttonDown(0, 'p1');
    player.buttonUp('p1'); // key up, sound goes on
    player.buttonDown(1, 'p2');
    player.buttonUp('p2');
    player.buttonDown(2, 'p3'); // key 5 again while sustained: a re-strike
    player.pedalOff('key:Space'); // still held by the MIDI pedal
    assert.deepEqual(events, [['pedal', true], ['on', 5, 0, false], ['off', 5, 0], ['on', 6, 1, false], ['off', 6, 1],
      ['on', 5, 2, true]]);
    player.pedalOff('midi:cc64');
    assert.deepEqual(events.slice(6), [['pedal', false], ['sound-off', 6]], 'key 5 is still held down: it sounds on');
    player.buttonUp('p3');
    assert.deepEqual(events.slice(8), [['off', 5, 2], ['sound-off', 5]]);
  });

  test('reset releases everything, the pedal too, silences the sustained keys and resets the session', () => {
    const { player, events } = recordingPlayer([1, 2]);
    player.pedalOn('s');
    player.buttonDown(0, 'a');
    player.buttonUp('a');
    player.buttonDown(1, 'b');
    player.reset();
    assert.deepEqual(events.slice(4), [['off', 2, 1], ['pedal', false], ['sound-off', 1], ['sound-off', 2]]);
    assert.equal(player.session.resets, 1);
    assert.equal(player.sourceButton.size, 0);
  });

  test('reset lets go of every pedal source: the next note is not sustained', () => {
    const { player, events } = recordingPlayer([1, 2]);
    player.pedalOn('key:Space');
    player.pedalOn('midi:in1:cc64');
    player.buttonDown(0, 'a');
    player.buttonUp('a');
    player.reset();
    assert.equal(player.pedalDown, false);
    assert.deepEqual(events.slice(3), [['pedal', false], ['sound-off', 1]]);
    player.buttonDown(1, 'b');
    player.buttonUp('b');
    assert.deepEqual(events.slice(5), [['on', 2, 1, false], ['off', 2, 1], ['sound-off', 2]]);
  });

  test('releaseSources lets go of one device\'s notes and pedal, and nothing else', () => {
    const { player, events } = recordingPlayer([1, 2, 3]);
    player.pedalOn('midi:in1:cc64');
    player.pedalOn('midi:in2:cc64');
    player.buttonDown(0, 'midi:in1:60');
    player.buttonDown(1, 'midi:in2:62');
    player.buttonDown(2, 'key:Digit3');
    events.length = 0;
    player.releaseSources('midi:in1:');
    assert.deepEqual(events, [['off', 1, 0]], 'its note is up; in2 still holds the pedal, so it sounds on');
    assert.deepEqual([...player.pedalSources], ['midi:in2:cc64']);
    player.releaseSources('midi:in2:');
    assert.deepEqual(events.slice(1), [['off', 2, 1], ['pedal', false], ['sound-off', 1], ['sound-off', 2]]);
    assert.deepEqual([...player.sourceButton.keys()], ['key:Digit3'], 'the computer key is still held');
  });
});

describe('player: look-ahead follows the clock', () => {
  test('lookAhead asks the session for now (not an assumed interval) until deltaTimeMax after a press', () => {
    let t = 5;
    const asked = [];
    const session = new ScriptedSession([1, 2]);
    session.lookAhead = (time) => { asked.push(time); return []; };
    const player = new Player(session, CONFIG, { now: () => t });
    assert.equal(player.aheadSettlesAt, -Infinity, 'before any press it never changes');
    player.buttonDown(0, 'a');
    player.buttonUp('a');
    t = 5.3;
    player.buttonDown(1, 'b'); // the interval was 0.3 s
    t = 5.42;
    player.lookAhead();
    t = 6.0;
    player.lookAhead();
    assert.deepEqual(asked, [5.42, 6.0]);
    assert.equal(player.aheadSettlesAt, 5.3 + CONFIG.deltaTimeMax);
  });
});

describe('event log and running median', () => {
  test('the log keeps at most 2 x capacity events, numbered, and since() finds them', () => {
    const log = new EventLog(100);
    for (let i = 0; i < 10000; i++) {
      log.push({ i });
      assert.ok(log.events.length < 200);
    }
    assert.equal(log.total, 10000);
    assert.deepEqual(log.since(9998).map((e) => e.i), [9998, 9999]);
    assert.equal(log.since(10000).length, 0);
    assert.ok(log.since(0).length >= 100 && log.since(0)[0].seq === log.events[0].seq);
  });

  test('running median over the latest values', () => {
    const m = new RunningMedian(5);
    assert.ok(Number.isNaN(m.median()));
    for (const x of [9, 1, 5]) m.add(x);
    assert.equal(m.median(), 5);
    for (const x of [100, 100, 100, 2, 2]) m.add(x); // window: 100 100 100 2 2... oldest dropped
    assert.equal(m.count, 5);
    assert.equal(m.median(), 100);
  });
});

describe('keys: masked sampling and look-ahead', () => {
  test('sampleKey picks only allowed keys, argmax among them at temperature 0', () => {
    const logits = Float64Array.from({ length: 88 }, (_, i) => -Math.abs(i - 40));
    const mask = new Uint8Array(88);
    [10, 50, 52].forEach((k) => { mask[k] = 1; });
    assert.equal(sampleKey(logits, 0, Math.random, mask), 50);
    for (let i = 0; i < 2000; i++) assert.ok(mask[sampleKey(logits, 3, Math.random, mask)]);
  });

  test('Session.press(..., keys) on the real decoder plays only allowed keys; bad keys are errors', async () => {
    const { decoder, config } = await loadModelDir(exportRandomModel(1));
    const s = new Session(decoder, config, { seed: 2 });
    const keys = allowedKeys(scalePitchClasses(2, 'natural minor'), 48, 84);
    for (let i = 0; i < 300; i++) assert.ok(keys.includes(s.press(i * 0.2, i % 8, i % 3 ? 0.8 : 0, keys)));
    assert.throws(() => s.press(100, 0, 0, []), RangeError);
    assert.throws(() => s.press(100, 0, 0, [88]), RangeError);
  });

  test('lookAhead gives what each button plays at temperature 0, and changes nothing', async () => {
    const { decoder, config } = await loadModelDir(exportRandomModel(1));
    const play = (s) => Array.from({ length: 20 }, (_, i) => s.press(i * 0.17, (i * 5) % 8, 0.9));
    const s = new Session(decoder, config, { seed: 4 });
    play(s);
    const keys = allowedKeys([0, 4, 7], 21, 108);
    const ahead = s.lookAhead(20 * 0.17, keys);
    assert.equal(ahead.length, 8);
    const after = play(s); // continues exactly as if lookAhead had not run
    const twin = new Session(decoder, config, { seed: 4 });
    play(twin);
    assert.deepEqual(play(twin), after);
    for (let b = 0; b < 8; b++) {
      const probe = new Session(decoder, config, { seed: 4 });
      play(probe);
      assert.equal(probe.press(20 * 0.17, b, 0, keys), ahead[b]);
    }
  });
});

describe('MIDI: pedal and channel', () => {
  test('CC64 from a controller is the pedal; out goes on the chosen channel, pedal included', () => {
    const log = [];
    const io = new MidiIO({ onButtonDown: () => {}, onButtonUp: () => {}, onPedal: (down, src) => log.push([down, src]) });
    io._onMessage({ id: 'in1' }, [0xb3, 64, 127]);
    io._onMessage({ id: 'in1' }, [0xb3, 64, 10]);
    io._onMessage({ id: 'in1' }, [0xb0, 1, 127]); // mod wheel: ignored
    assert.deepEqual(log, [[true, 'midi:in1:cc64'], [false, 'midi:in1:cc64']]);
    const sent = [];
    io.access = { outputs: new Map([['o', { send: (b) => sent.push(b) }]]) };
    io.outputId = 'o';
    io.channel = 2;
    io.noteOn(60, 90);
    io.pedal(true);
    io.noteOff(60);
    io.pedal(false);
    assert.deepEqual(sent, [[0x92, 60, 90], [0xb2, 64, 127], [0x82, 60, 0], [0xb2, 64, 0]]);
  });

  test('an input unplugged (removed, or kept as disconnected) is reported gone once and not named', async () => {
    const gone = [], input = (id) => ({ id, name: id, state: 'connected', onmidimessage: null });
    const a = input('a'), b = input('b');
    const access = { inputs: new Map([['a', a], ['b', b]]), outputs: new Map(), onstatechange: null };
    const saved = Object.getOwnPropertyDescriptor(globalThis, 'navigator');
    Object.defineProperty(globalThis, 'navigator', { value: { requestMIDIAccess: async () => access }, configurable: true });
    try {
      const io = new MidiIO({ onButtonDown: () => {}, onButtonUp: () => {}, onInputGone: (id) => gone.push(id) });
      await io.connect();
      assert.deepEqual(io.inputs.map((i) => i.name), ['a', 'b']);
      a.state = 'disconnected'; // Chromium keeps the port, marked disconnected
      access.onstatechange({ port: a });
      access.onstatechange({ port: a });
      access.inputs.delete('b'); // or drops it
      access.onstatechange({ port: b });
      assert.deepEqual(gone, ['a', 'b']);
      assert.deepEqual(io.inputs, []);
      assert.equal(a.onmidimessage, null, 'a disconnected port plays nothing');
    } finally {
      if (saved) Object.defineProperty(globalThis, 'navigator', saved);
    }
  });

  test('the recording keeps the pedal: CC64 events in the file, in order with the notes', () => {
    const r = new Recorder();
    r.pedal(0.5, true); // before recording: remembered as the pedal's state
    r.start(1);
    r.noteOn(1.5, 60, 90);
    r.noteOff(2, 60);
    r.pedal(2.5, false);
    r.pedal(3, true);
    const notes = r.stop(4);
    assert.deepEqual(r.controls.map((c) => [c.time, c.value]), [[0, 127], [1.5, 0], [2, 127], [3, 0]]);
    const bytes = Array.from(writeMidiFile(notes, { controls: r.controls }));
    const cc = [];
    for (let i = 22; i < bytes.length - 2; i++) if (bytes[i] === 0xb0 && bytes[i + 1] === 64) cc.push(bytes[i + 2]);
    assert.deepEqual(cc, [127, 0, 127, 0]);
  });
});

test("the browser's scales are Python's (pianogenie/scales.py)", () => {
  const py = JSON.parse(execFileSync(pythonExe(), ['-c',
    'import json; from pianogenie.scales import SCALES; print(json.dumps(SCALES))'], { cwd: REPO_DIR }).toString());
  assert.deepEqual(SCALES, py);
  assert.deepEqual(allowedKeys(scalePitchClasses(0, 'major'), 60, 72).map((k) => k + 21), [60, 62, 64, 65, 67, 69, 71, 72]);
});
