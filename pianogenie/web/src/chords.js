// @ts-check
// Chords and keys for a conditioned genie's harmony control, as ids (pianogenie/harmony.py): key
// signature and chord root 1..12 = C..B (0 = none); chord family 1..8 = major, minor, augmented,
// diminished, seventh, major seventh, minor seventh, half-diminished (0 = none). Mirrors Python's
// labels.parse_chord / parse_key for chord symbols and harmony.family_of for notes held together
// (a Node test compares them). No DOM.

export const PITCH_NAMES = ['C', 'C#', 'D', 'Eb', 'E', 'F', 'F#', 'G', 'Ab', 'A', 'Bb', 'B']; // id = index + 1
export const FAMILIES = ['none', 'major', 'minor', 'augmented', 'diminished', 'seventh', 'major seventh',
  'minor seventh', 'half-diminished'];
export const FAMILY_SUFFIX = ['', '', 'm', 'aug', 'dim', '7', 'maj7', 'm7', 'm7b5']; // symbol suffix per family
export const FAMILY_INTERVALS = { 1: [0, 4, 7], 2: [0, 3, 7], 3: [0, 4, 8], 4: [0, 3, 6],
  5: [0, 4, 7, 10], 6: [0, 4, 7, 11], 7: [0, 3, 7, 10], 8: [0, 3, 6, 10] };
// largest family first (harmony.py _FAMILY_ORDER): a chord's family is the largest it contains
const FAMILY_ORDER = Object.keys(FAMILY_INTERVALS).map(Number)
  .sort((a, b) => FAMILY_INTERVALS[b].length - FAMILY_INTERVALS[a].length || a - b);
// Harte shorthands (harmony.py _SHORTHANDS), semitones above the root
const SHORTHANDS = { maj: [0, 4, 7], min: [0, 3, 7], dim: [0, 3, 6], aug: [0, 4, 8], maj7: [0, 4, 7, 11],
  min7: [0, 3, 7, 10], 7: [0, 4, 7, 10], dim7: [0, 3, 6, 9], hdim7: [0, 3, 6, 10], minmaj7: [0, 3, 7, 11],
  maj6: [0, 4, 7, 9], min6: [0, 3, 7, 9], 9: [0, 4, 7, 10, 2], maj9: [0, 4, 7, 11, 2], min9: [0, 3, 7, 10, 2],
  11: [0, 4, 7, 10, 2, 5], min11: [0, 3, 7, 10, 2, 5], 13: [0, 4, 7, 10, 2, 9], maj13: [0, 4, 7, 11, 2, 9],
  min13: [0, 3, 7, 10, 2, 9], sus2: [0, 2, 7], sus4: [0, 5, 7], 1: [0], 5: [0, 7] };
// chord-symbol suffixes -> shorthands (labels.py _SUFFIXES)
const SUFFIXES = { '': 'maj', M: 'maj', maj: 'maj', m: 'min', min: 'min', '-': 'min', dim: 'dim', o: 'dim',
  aug: 'aug', '+': 'aug', 7: '7', dom7: '7', maj7: 'maj7', M7: 'maj7', 'Δ': 'maj7', m7: 'min7', min7: 'min7',
  '-7': 'min7', m7b5: 'hdim7', 'ø': 'hdim7', hdim7: 'hdim7', dim7: 'dim7', o7: 'dim7', 6: 'maj6', m6: 'min6',
  9: '9', maj9: 'maj9', m9: 'min9', 11: '11', 13: '13', sus2: 'sus2', sus4: 'sus4', sus: 'sus4', 5: '5',
  mmaj7: 'minmaj7' };
const LETTERS = { C: 0, D: 2, E: 4, F: 5, G: 7, A: 9, B: 11 };
const MAX_PROGRESSION = 64; // chords in a typed progression

/** The family of semitones above a root (harmony.family_of): the largest family contained, else 0. */
export function familyOf(intervals) {
  const tones = new Set([...intervals].map((i) => ((i % 12) + 12) % 12));
  for (const f of FAMILY_ORDER) if (FAMILY_INTERVALS[f].every((i) => tones.has(i))) return f;
  return 0;
}

const pitchClass = (letter, acc) => (LETTERS[letter] + [...acc].filter((c) => c === '#').length
  - [...acc].filter((c) => c === 'b').length + 120) % 12;

/** A chord symbol (`G7`, `Am`, `Bbmaj7`, `F#m7b5`, `C/E`), a Harte label (`C:maj`, `A:min7`, `N`) or
 * `none` -> [root id, family id]; a RangeError naming the text otherwise (labels.parse_chord). */
export function parseChord(text) {
  if (typeof text !== 'string' || !text.trim() || text.length > 40) throw new RangeError(`chord must be a label like G7, Am or C:maj, got ${JSON.stringify(text)}`);
  const s = text.trim();
  if (s.toLowerCase() === 'none' || s === 'N' || s === 'X') return [0, 0];
  let root, quality;
  if (s.includes(':')) {
    const m = /^([A-G])([#b]*):([^/(]*)(\/.*)?$/.exec(s);
    if (!m || !(m[3] in SHORTHANDS)) throw new RangeError(`chord ${JSON.stringify(text)}: not a label like C:maj or A:min7`);
    [root, quality] = [pitchClass(m[1], m[2]), m[3]];
  } else {
    const m = /^([A-G])([#b]?)([^/]*)(\/[A-G][#b]?)?$/.exec(s);
    if (!m || !Object.prototype.hasOwnProperty.call(SUFFIXES, m[3])) {
      throw new RangeError(`chord ${JSON.stringify(text)}: expected a symbol like C, Am, G7, Bbmaj7, F#m7b5`);
    }
    [root, quality] = [pitchClass(m[1], m[2]), SUFFIXES[m[3]]];
  }
  return [root + 1, familyOf(SHORTHANDS[quality])];
}

/** A key (`D`, `Eb`, `Bm`: its relative major's signature) or `none` -> key signature id. */
export function parseKey(text) {
  const m = typeof text === 'string' && /^([A-G])([#b]?)(m|min|:min|:maj)?$/.exec(text.trim());
  if (text === 'none') return 0;
  if (!m) throw new RangeError(`key must be like D, Eb or Bm, got ${JSON.stringify(text)}`);
  const pc = pitchClass(m[1], m[2]);
  return ((m[3] === 'm' || m[3] === 'min' || m[3] === ':min') ? (pc + 3) % 12 : pc) + 1;
}

/** [root, family] -> its symbol (`Am`, `G7`; `–` for none). @param {number[]} chord  @returns {string} */
export function chordName([root, family]) {
  if (!root) return '–';
  return PITCH_NAMES[root - 1] + FAMILY_SUFFIX[family];
}

/** A progression typed as symbols (`C G Am F`, bars split by spaces, `|` or commas) -> chords. */
export function parseProgression(text) {
  const tokens = String(text).split(/[\s|,]+/).filter(Boolean);
  if (!tokens.length) throw new RangeError('type a progression, e.g. C G Am F');
  if (tokens.length > MAX_PROGRESSION) throw new RangeError(`a progression holds at most ${MAX_PROGRESSION} chords`);
  return tokens.map(parseChord);
}

/**
 * The chord of MIDI notes held together (a controller's keys below its split): the root whose
 * intervals hold the largest family (harmony.family_of), the lowest note's pitch class first among
 * equals, else the others from C up -> [root, family]; [0, 0] when no root gives a family.
 */
export function chordOfPitches(pitches) {
  const pcs = [...new Set(pitches.map((p) => p % 12))];
  if (!pcs.length) return [0, 0];
  const bass = Math.min(...pitches) % 12;
  let best = [0, 0], size = 0;
  for (const r of [bass, ...pcs.filter((pc) => pc !== bass).sort((a, b) => a - b)]) {
    const f = familyOf(pcs.map((pc) => pc - r));
    if (f && FAMILY_INTERVALS[f].length > size) { best = [r + 1, f]; size = FAMILY_INTERVALS[f].length; }
  }
  return best;
}

// A few progressions to loop (one chord per bar)
export const PRESETS = {
  'pop (I V vi IV)': 'C G Am F',
  'doo-wop (I vi IV V)': 'C Am F G',
  'jazz (ii V I)': 'Dm7 G7 Cmaj7 Cmaj7',
  'blues (12 bars)': 'C7 F7 C7 C7 F7 F7 C7 C7 G7 F7 C7 G7',
  'canon (Pachelbel)': 'D A Bm F#m G D G A',
};

/** Which chord of a `bars`-long loop plays `seconds` after it started at `bpm` (4 beats a bar). */
export function barAt(seconds, bpm, bars) {
  return Math.floor(Math.max(0, seconds) * bpm / 240) % bars;
}
