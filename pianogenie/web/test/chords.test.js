// chords.js against Python's parse (pianogenie.labels.parse_chord / parse_key) and family logic
// (pianogenie.harmony.family_of), on symbols, labels and held notes.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';

import { barAt, chordName, chordOfPitches, familyOf, parseChord, parseKey, parseProgression, PRESETS } from '../src/chords.js';
import { pythonExe } from './fixtures.js';
import { REPO_DIR } from './helpers.js';

const SYMBOLS = ['C', 'Am', 'G7', 'Bbmaj7', 'F#m7b5', 'C/E', 'Ebdim', 'Abaug', 'D9', 'Em9', 'Fmaj9', 'Bsus4', 'C5',
  'Gm6', 'A6', 'Dbdim7', 'Cmmaj7', 'E13', 'C:maj', 'A:min7', 'G:7', 'Db:hdim7', 'F#:sus2', 'B:dim7', 'N', 'none',
  'Cb', 'E#m', 'G-7', 'Bø', 'CΔ', 'D+', 'Co7', 'Fsus'];
const KEYS = ['C', 'D', 'Eb', 'F#', 'Bm', 'Am', 'Cm', 'Gb', 'A:min', 'none'];

function python(code, arg) {
  return JSON.parse(execFileSync(pythonExe(), ['-c', code, JSON.stringify(arg)], { cwd: REPO_DIR, encoding: 'utf8' }));
}

test('chord symbols and labels give Python\'s ids', () => {
  const py = python(`import json, sys
from pianogenie.labels import parse_chord
print(json.dumps([list(parse_chord(s)) for s in json.loads(sys.argv[1])]))`, SYMBOLS);
  assert.deepEqual(SYMBOLS.map(parseChord), py);
  for (const bad of ['H7', 'Cfoo', '', 'C:wat', 'x'.repeat(41)]) assert.throws(() => parseChord(bad), RangeError);
});

test('keys give Python\'s key signature ids', () => {
  const py = python(`import json, sys
from pianogenie.labels import parse_key
print(json.dumps([parse_key(s) for s in json.loads(sys.argv[1])]))`, KEYS);
  assert.deepEqual(KEYS.map(parseKey), py);
  assert.throws(() => parseKey('Q'), RangeError);
});

test('held notes: the family of every root is Python\'s family_of; the chord is the largest one', () => {
  // every 3- and 4-note set within an octave from C4, and some spread voicings
  const sets = [];
  for (let a = 1; a < 12; a++) for (let b = a + 1; b < 12; b++) {
    sets.push([60, 60 + a, 60 + b]);
    for (let c = b + 1; c < 12; c += 3) sets.push([60, 60 + a, 60 + b, 60 + c]);
  }
  sets.push([43, 59, 62, 65], [36, 52, 55, 58, 62], [48, 64]);
  const py = python(`import json, sys
from pianogenie.harmony import family_of
print(json.dumps([[family_of({(p - r) % 12 for p in s}) for r in range(12)] for s in json.loads(sys.argv[1])]))`, sets);
  sets.forEach((s, i) => {
    for (let r = 0; r < 12; r++) assert.equal(familyOf(s.map((p) => p - r)), py[i][r], `${s} over root ${r}`);
    const [root, family] = chordOfPitches(s);
    const sizes = py[i].map((f) => (f ? [0, 3, 3, 3, 3, 4, 4, 4, 4][f] : 0));
    if (!root) assert.ok(sizes.every((n) => n === 0), `${s}: some root has a family`);
    else assert.equal(sizes[root - 1], Math.max(...sizes), `${s}: ${chordName([root, family])} is not the largest`);
    if (root) assert.equal(family, py[i][root - 1]);
  });
  assert.deepEqual(chordOfPitches([55, 59, 62, 65]), [8, 5]); // G B D F: G7
  assert.deepEqual(chordOfPitches([57, 60, 64]), [10, 2]); // A C E: Am (not C6 without its C root)
  assert.deepEqual(chordOfPitches([60, 62]), [0, 0]);
});

test('progressions: typed and presets parse; the bar at a tempo', () => {
  assert.deepEqual(parseProgression('C G | Am,F'), [[1, 1], [8, 1], [10, 2], [6, 1]]);
  for (const p of Object.values(PRESETS)) assert.ok(parseProgression(p).length >= 4);
  assert.throws(() => parseProgression(''), /type a progression/);
  assert.throws(() => parseProgression('C '.repeat(65)), /at most 64/);
  assert.throws(() => parseProgression('C Hm'), /"Hm"/);
  assert.equal(barAt(0, 120, 4), 0);
  assert.equal(barAt(1.99, 120, 4), 0); // a bar at 120 bpm is 2 s
  assert.equal(barAt(2, 120, 4), 1);
  assert.equal(barAt(8.5, 120, 4), 0); // loops
  assert.equal(chordName([10, 2]), 'Am');
  assert.equal(chordName([0, 0]), '–');
});
