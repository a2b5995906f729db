// @ts-check
// Keys and scales -> the keys (0..87) the decoder may choose. No DOM.
//
// The browser's copy of pianogenie/scales.py: the same scale names and intervals (a test checks
// the two tables agree), so "D minor" means the same keys in `pianogenie decode --scale` and here.

// Semitones above the tonic. "natural minor" is the aeolian mode.
export const SCALES = {
  'major': [0, 2, 4, 5, 7, 9, 11],
  'natural minor': [0, 2, 3, 5, 7, 8, 10],
  'harmonic minor': [0, 2, 3, 5, 7, 8, 11],
  'major pentatonic': [0, 2, 4, 7, 9],
  'minor pentatonic': [0, 3, 5, 7, 10],
  'blues': [0, 3, 5, 6, 7, 10],
  'chromatic': [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
};

export const NOTE_NAMES = ['C', 'C#', 'D', 'D#', 'E', 'F', 'F#', 'G', 'G#', 'A', 'A#', 'B'];

/** MIDI pitch -> "C4", "F#3". */
export const pitchName = (pitch) => `${NOTE_NAMES[pitch % 12]}${Math.floor(pitch / 12) - 1}`;

/** Tonic pitch class 0..11 and a scale name -> its pitch classes. */
export function scalePitchClasses(tonic, name) {
  const steps = SCALES[name];
  if (!steps) throw new RangeError(`unknown scale ${name}`);
  return steps.map((s) => (tonic + s) % 12);
}

/**
 * Key indices whose pitch is in `pitchClasses` (null = any) and in [lowPitch, highPitch].
 * @returns {number[]} sorted; may be empty (the caller says why)
 */
export function allowedKeys(pitchClasses, lowPitch, highPitch, lowestPitch = 21, numKeys = 88) {
  const pcs = pitchClasses === null ? null : new Set(pitchClasses);
  const keys = [];
  for (let k = 0; k < numKeys; k++) {
    const p = k + lowestPitch;
    if (p >= lowPitch && p <= highPitch && (pcs === null || pcs.has(p % 12))) keys.push(k);
  }
  return keys;
}
