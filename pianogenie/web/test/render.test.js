// A recording as sound (no audio here): when each note sounds under the pedal, and the WAV bytes.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { encodeWav, soundSpans } from '../src/render.js';

const note = (pitch, start, end, velocity = 80) => ({ pitch, velocity, start, end });
const cc = (time, down) => ({ time, controller: 64, value: down ? 127 : 0 });

test('a note sounds to its key-up, or under the pedal to its next release; a key struck again cuts the last', () => {
  const spans = soundSpans([note(60, 0, 0.5), note(62, 1, 1.2), note(64, 1.5, 1.6), note(62, 1.8, 2.0), note(65, 2.5, 2.6)],
    [cc(0.9, true), cc(1.7, false), cc(1.75, true), cc(2.1, false), cc(2.55, true)], 3);
  assert.deepEqual(spans.map((s) => [s.pitch, s.start, s.stop]), [
    [60, 0, 0.5], // pedal up: its key-up
    [62, 1, 1.7], // held by the pedal to its release
    [64, 1.5, 1.7],
    [62, 1.8, 2.1],
    [65, 2.5, 3], // the pedal still down at the end: the recording's end
  ]);
  const restruck = soundSpans([note(60, 0, 0.2), note(60, 0.5, 0.7)], [cc(0, true)], 2);
  assert.deepEqual(restruck.map((s) => [s.stop, s.release]), [[0.5, 0.05], [2, 0.35]]);
});

test('WAV: a RIFF header that says what follows, 16-bit samples interleaved, clipped', () => {
  const left = Float32Array.from([0, 0.5, -1, 2]), right = Float32Array.from([1, -0.5, 0, -2]);
  const wav = encodeWav([left, right], 44100);
  const view = new DataView(wav.buffer);
  const text = (at, n) => String.fromCharCode(...wav.slice(at, at + n));
  assert.deepEqual([text(0, 4), text(8, 4), text(12, 4), text(36, 4)], ['RIFF', 'WAVE', 'fmt ', 'data']);
  assert.deepEqual([view.getUint32(4, true), view.getUint16(22, true), view.getUint32(24, true), view.getUint32(40, true)],
    [wav.length - 8, 2, 44100, 16]);
  const samples = Array.from({ length: 8 }, (_, i) => view.getInt16(44 + 2 * i, true));
  assert.deepEqual(samples, [0, 32767, 16383, -16384, -32768, 0, 32767, -32768]);
});
