// Velocity layers: which recorded layers a velocity plays (an equal-power crossfade between the two
// that bracket it), and the gain each then gets.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { BASE_LAYER, gainVelocity, layerMix, layerSamples, LAYERS, partLevel } from '../src/dynamics.js';

const ALL = [BASE_LAYER, ...LAYERS.map((l) => l.layer)]; // [10, 4, 15]: recorded at about 76, 28 and 116
const close = (a, b, eps = 1e-12) => Math.abs(a - b) <= eps;
/** layer -> weight (0 for a layer not played) */
const weights = (v, ready = ALL) => {
  const w = Object.fromEntries(ready.map((l) => [l, 0]));
  for (const { layer, weight } of layerMix(v, ready)) w[layer] = weight;
  return w;
};

test('a velocity between two layers plays both, at cos and sin of its position between their velocities', () => {
  const half = Math.SQRT1_2;
  const at52 = layerMix(52, ALL); // halfway between v4 (28) and v10 (76)
  assert.deepEqual(at52.map((m) => m.layer), [4, BASE_LAYER]);
  assert.ok(at52.every((m) => close(m.weight, half)), JSON.stringify(at52));
  const at86 = layerMix(86, ALL); // a quarter of the way from v10 (76) to v15 (116)
  assert.deepEqual(at86.map((m) => m.layer), [BASE_LAYER, 15]);
  assert.ok(close(at86[0].weight, Math.cos(Math.PI / 8)) && close(at86[1].weight, Math.sin(Math.PI / 8)));
  assert.deepEqual(layerMix(52, [15, 4, 10]), at52, 'the order the layers are listed in does not matter');
});

test('the two weights keep the power: their squares sum to 1 at every velocity', () => {
  for (let v = 1; v <= 127; v += 0.25) {
    const mix = layerMix(v, ALL);
    assert.ok(mix.length === 1 || mix.length === 2);
    assert.ok(close(mix.reduce((p, m) => p + m.weight ** 2, 0), 1, 1e-12), `v=${v}: ${JSON.stringify(mix)}`);
    assert.ok(mix.every((m) => m.weight > 0), `v=${v}: no silent voice`);
  }
});

test('each layer\'s weight and gain are continuous in the velocity, across the layer boundaries too', () => {
  const step = 0.01, eps = 1e-9;
  for (let v = 1; v < 127; v += step) {
    const [a, b] = [weights(v), weights(v + step)];
    for (const l of ALL) {
      // |d weight / dv| <= (pi/2) / 40 (the narrower gap, v10 to v15): a step can move it this much at most
      assert.ok(Math.abs(a[l] - b[l]) <= (Math.PI / 2 / 40) * step + eps, `layer ${l} jumps between v=${v} and ${v + step}`);
      const [ga, gb] = [partLevel(v, { layer: l, weight: a[l] }), partLevel(v + step, { layer: l, weight: b[l] })];
      assert.ok(Math.abs(ga - gb) <= 0.01, `layer ${l}'s gain jumps between v=${v} and ${v + step}`);
    }
  }
  // at a boundary itself: that layer alone, as just below and just above it
  for (const v of [28, 76, 116]) {
    const [below, at, above] = [weights(v - 1e-9), weights(v), weights(v + 1e-9)];
    for (const l of ALL) assert.ok(close(below[l], at[l], 1e-6) && close(above[l], at[l], 1e-6), `v=${v} layer ${l}`);
  }
  assert.deepEqual(layerMix(76, ALL), [{ layer: BASE_LAYER, weight: 1 }]);
});

test('at or beyond the softest or the loudest layer, that layer plays alone', () => {
  for (const v of [1, 10, 28]) assert.deepEqual(layerMix(v, ALL), [{ layer: 4, weight: 1 }]);
  for (const v of [116, 120, 127]) assert.deepEqual(layerMix(v, ALL), [{ layer: 15, weight: 1 }]);
  // with only the soft layer in yet: above the base, the base alone
  assert.deepEqual(layerMix(120, [BASE_LAYER, 4]), [{ layer: BASE_LAYER, weight: 1 }]);
});

test('before the extra layers load, the base layer plays alone with the velocity as gain, as before', () => {
  for (const v of [1, 30, 80, 127]) {
    assert.deepEqual(layerMix(v, [BASE_LAYER]), [{ layer: BASE_LAYER, weight: 1 }]);
    assert.equal(partLevel(v, { layer: BASE_LAYER, weight: 1 }), (v / 127) ** 1.5);
  }
  assert.deepEqual(layerMix(80, []), [], 'no layer near the pitch: the synth plays');
});

test('each layer\'s gain is the base curve at the velocity relative to the layer\'s own', () => {
  assert.equal(gainVelocity(30, 4), (30 * 76) / 28);
  assert.equal(gainVelocity(80, BASE_LAYER), 80);
  assert.ok(gainVelocity(120, 15) < 80, 'the loud recording is loud already');
  // a recording at its own velocity gets the gain the base layer has at its own
  assert.equal(partLevel(116, { layer: 15, weight: 1 }), partLevel(76, { layer: BASE_LAYER, weight: 1 }));
});

test('each layer lists the 30 files its package ships (A, C, D#, F# from A0 to C8)', () => {
  const files = layerSamples(15);
  assert.equal(files.length, 30);
  assert.deepEqual(files[0], [21, 'A0v15.mp3']);
  assert.deepEqual(files.at(-1), [108, 'C8v15.mp3']);
  assert.ok(files.some(([p, f]) => p === 63 && f === 'D#4v15.mp3'));
});
