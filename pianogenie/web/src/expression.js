// @ts-check
// The player's dynamics: how loud a press plays, on top of the genie's own velocity. No DOM.
//
// The velocity head plays the model's phrasing, but from the keyboard or a touch screen its
// velocities span only about 50..81 (median 67): nobody could play softly or accent a note. So
// the player shifts it, with what the device has:
// - a dynamics level, pp .. ff (Settings, or the - and = keys while playing), a fixed shift of
//   every press: LEVEL_SHIFT[level + 3] velocity steps;
// - an accent: Shift held with a key adds ACCENT_SHIFT to that one note; its mirror, a soft note:
//   Z or / held with a key adds SOFT_SHIFT (both held: they add);
// - a pointer's place on the button (touch, mouse): the top edge adds up to POSITION_SHIFT, the
//   bottom edge takes as much away, the middle fifth plays the level as it is; a pen's pressure,
//   where reported, does the same from light to firm.
// Shifts add in velocity steps; a shifted note plays within MIN_VELOCITY..127 (playedVelocity), so
// the softest is still heard (velocity 1 is close to silent). The model's own choice stays the
// default: level 0, no accent, a press in the middle of a button, and it is played as it is. The
// sizes are picked so that pp plays <= 30 and ff with an accent >= 110 on most notes, a soft note
// <= 30 on most at the genie's own level, and so do the bottom and top tenths of a button
// (benchmarks/dynamics_span.mjs measures it).

export const LEVELS = ['pp', 'p', 'mp', 'genie', 'mf', 'f', 'ff'];
export const LEVEL_SHIFT = [-42, -28, -14, 0, 14, 28, 42];
export const ACCENT_SHIFT = 24;
export const SOFT_SHIFT = -48;
export const MIN_VELOCITY = 10;
export const POSITION_SHIFT = 64;
const DEAD_ZONE = 0.1; // half the middle band, as a fraction of the button's height

/** The velocity a note of the genie's own velocity `v` plays at under `shift` (0: `v` itself). */
export function playedVelocity(v, shift) {
  const low = shift ? MIN_VELOCITY : 1;
  return Math.min(Math.max(Math.round(v + shift), low), 127);
}

/** The shift of a dynamics level, -3 (pp) .. 3 (ff); anything else is 0. */
export function levelShift(level) {
  return Number.isInteger(level) && level >= -3 && level <= 3 ? LEVEL_SHIFT[level + 3] : 0;
}

/**
 * The shift of a press at `y`, its height on the button from the top (0) to the bottom (1): up to
 * +POSITION_SHIFT at the top edge, -POSITION_SHIFT at the bottom, 0 in the middle fifth.
 */
export function positionShift(y) {
  if (!Number.isFinite(y)) return 0;
  const d = 0.5 - Math.min(Math.max(y, 0), 1); // +0.5 top .. -0.5 bottom
  const beyond = Math.max(0, Math.abs(d) - DEAD_ZONE) / (0.5 - DEAD_ZONE);
  return Math.round(Math.sign(d) * beyond * POSITION_SHIFT) || 0; // never -0
}

/** A pen's pressure (0..1, 0.5 where the device reports none) -> a shift, as positionShift. */
export function pressureShift(pressure) {
  return Number.isFinite(pressure) ? positionShift(1 - pressure) : 0;
}
