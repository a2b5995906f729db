// Velocity layers: which recorded layer a velocity plays, and the gain the base curve then sees.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { BASE_LAYER, chooseLayer, layerSamples, LAYERS } from '../src/dynamics.js';

test('a velocity plays the layer recorded nearest it (of those loaded), its gain relative to that layer', () => {
  const ready = LAYERS.map((l) => l.layer); // [4, 15]: recorded at about 28 and 116
  assert.deepEqual(chooseLayer(30, ready), { layer: 4, gainVelocity: 30 * 76 / 28 });
  assert.deepEqual(chooseLayer(80, ready), { layer: BASE_LAYER, gainVelocity: 80 });
  assert.equal(chooseLayer(120, ready).layer, 15);
  assert.ok(chooseLayer(120, ready).gainVelocity < 80, 'the loud recording is loud already');
  assert.equal(chooseLayer(51, ready).layer, 4);
  assert.equal(chooseLayer(53, ready).layer, BASE_LAYER);
  // before the extra layers load, everything plays the base layer with the velocity as gain
  assert.deepEqual(chooseLayer(120, []), { layer: BASE_LAYER, gainVelocity: 120 });
});

test('each layer lists the 30 files its package ships (A, C, D#, F# from A0 to C8)', () => {
  const files = layerSamples(15);
  assert.equal(files.length, 30);
  assert.deepEqual(files[0], [21, 'A0v15.mp3']);
  assert.deepEqual(files.at(-1), [108, 'C8v15.mp3']);
  assert.ok(files.some(([p, f]) => p === 63 && f === 'D#4v15.mp3'));
});
