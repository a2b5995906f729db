// The player's dynamics (no DOM): the shifts, and how the session and the player apply them.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ACCENT_SHIFT, levelShift, MIN_VELOCITY, playedVelocity, POSITION_SHIFT, positionShift, pressureShift,
  SOFT_SHIFT } from '../src/expression.js';
import { Player } from '../src/player.js';
import { Session } from '../src/session.js';
import { exportRandomModel } from './fixtures.js';
import { loadModelDir } from './helpers.js';

test('shifts: levels pp..ff, a dead middle fifth, top louder, bottom softer, bounded', () => {
  assert.deepEqual([-3, -2, -1, 0, 1, 2, 3].map(levelShift), [-42, -28, -14, 0, 14, 28, 42]);
  for (const bad of [4, -4, 0.5, NaN, '2']) assert.equal(levelShift(bad), 0);
  assert.equal(positionShift(0), POSITION_SHIFT);
  assert.equal(positionShift(1), -POSITION_SHIFT);
  for (const y of [0.4, 0.45, 0.5, 0.55, 0.6]) assert.equal(positionShift(y), 0, `y ${y}`);
  for (let y = 0; y < 1; y += 0.05) assert.ok(positionShift(y) >= positionShift(y + 0.05), 'higher on the button is never softer');
  assert.equal(positionShift(-3), POSITION_SHIFT);
  assert.equal(positionShift(NaN), 0);
  assert.equal(pressureShift(1), POSITION_SHIFT);
  assert.equal(pressureShift(0.5), 0);
  assert.ok(ACCENT_SHIFT > 0);
});

test('a shifted note plays within MIN_VELOCITY..127; the genie\'s own velocity plays as it is', () => {
  assert.equal(playedVelocity(67, 0), 67);
  assert.equal(playedVelocity(5, 0), 5, 'unshifted: the genie\'s own, even below the floor');
  assert.equal(playedVelocity(67, SOFT_SHIFT), 67 + SOFT_SHIFT);
  assert.equal(playedVelocity(40, -42 + SOFT_SHIFT), MIN_VELOCITY, 'pp and soft: the floor, still heard');
  assert.equal(playedVelocity(5, 2), MIN_VELOCITY);
  assert.equal(playedVelocity(120, 42 + ACCENT_SHIFT), 127);
  assert.ok(SOFT_SHIFT <= -ACCENT_SHIFT && MIN_VELOCITY >= 8 && MIN_VELOCITY <= 12);
});

test('a shift moves the velocity played, within MIN_VELOCITY..127, not the history: the next press is as without it', async () => {
  const { decoder, config, velocityHead } = await loadModelDir(exportRandomModel(3, 16));
  const run = (shifts) => {
    const s = new Session(decoder, config, { velocityHead, seed: 5 });
    return shifts.map((shift, i) => { s.press(0.2 * i, i % 8, 0, null, undefined, shift); return s.velocity; });
  };
  const plain = run([0, 0, 0, 0]), shifted = run([30, 0, -200, 0]);
  assert.equal(shifted[0], Math.min(127, plain[0] + 30));
  assert.equal(shifted[1], plain[1], 'the history heard the genie\'s own velocity');
  assert.equal(shifted[2], MIN_VELOCITY);
  assert.equal(shifted[3], plain[3]);
  // A given velocity (a MIDI controller's) is not shifted.
  const s = new Session(decoder, config, { velocityHead, seed: 5 });
  s.press(0, 0, 0, null, 90, 40);
  assert.equal(s.velocity, 90);
});

test('the player adds the level to a press\'s own shift; look-ahead velocities carry the level', async () => {
  const { decoder, config, velocityHead } = await loadModelDir(exportRandomModel(3, 16));
  let level = 0, t = 0;
  const played = [];
  const make = () => {
    const p = new Player(new Session(decoder, config, { velocityHead, seed: 9 }), config, { now: () => t, temperature: () => 0, dynamics: () => level });
    p.listen({ noteOn: (e) => played.push(e.velocity) });
    return p;
  };
  const a = make();
  const own = a.lookAhead(0) && a.session.aheadVelocities[2];
  a.buttonDown(2, 'x');
  level = 2;
  const b = make();
  assert.equal(b.lookAhead(0) && b.session.aheadVelocities[2], Math.min(127, own + levelShift(2)));
  b.buttonDown(2, 'x', undefined, ACCENT_SHIFT);
  assert.deepEqual(played, [own, Math.min(127, own + levelShift(2) + ACCENT_SHIFT)]);
});
