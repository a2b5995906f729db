// model.js's weights reader (what the page runs, without TF.js) against real TF.js: the same names,
// shapes and bits for our export, the shipped model and the tutorial's; clear errors on bad shards.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { decodeWeights, modelConfig } from '../src/model.js';
import { Session } from '../src/session.js';
import { exportRandomModel } from './fixtures.js';
import { loadWeightTensors, readWeights, REFERENCE_TFJS, REPO_DIR, tensorsToArrays } from './helpers.js';

const SHIPPED = path.join(REPO_DIR, 'pianogenie', 'pretrained', 'tfjs');

async function assertSameAsTfjs(dir) {
  const ours = await readWeights(dir);
  const theirs = tensorsToArrays(await loadWeightTensors(dir)); // real TF.js: tf.io.weightsLoaderFactory
  assert.deepEqual(Object.keys(ours).sort(), Object.keys(theirs).sort());
  assert.ok(Object.keys(ours).includes('dec.input.weight'));
  for (const [name, w] of Object.entries(theirs)) {
    assert.deepEqual(ours[name].shape, w.shape, name);
    assert.equal(ours[name].data.constructor, w.data.constructor, name);
    assert.deepEqual(new Uint8Array(ours[name].data.buffer), new Uint8Array(w.data.buffer), `${name}: bits differ`);
  }
}

test('decodeWeights reads our export exactly as TF.js does', async () => {
  await assertSameAsTfjs(exportRandomModel(1));
});

test('decodeWeights reads the shipped model exactly as TF.js does', { skip: !existsSync(SHIPPED) && `${SHIPPED} absent` }, async () => {
  await assertSameAsTfjs(SHIPPED);
});

test('decodeWeights reads the tutorial\'s export exactly as TF.js does', { skip: !existsSync(REFERENCE_TFJS) && `shared reference absent: ${REFERENCE_TFJS}` }, async () => {
  await assertSameAsTfjs(REFERENCE_TFJS);
});

test('decodeWeights: several shards and groups, int32 weights, and clear errors', () => {
  const manifest = [
    { paths: ['a1.bin', 'a2.bin'], weights: [{ name: 'x', shape: [2, 3], dtype: 'float32' }, { name: 'n', shape: [2], dtype: 'int32' }] },
    { paths: ['b.bin'], weights: [{ name: 'y', shape: [], dtype: 'float32' }] },
  ];
  const x = Float32Array.from([1, 2, 3, 4, 5, 6.5]), n = Int32Array.from([-7, 9]), y = Float32Array.from([0.25]);
  const all = new Uint8Array([...new Uint8Array(x.buffer), ...new Uint8Array(n.buffer)]);
  const shards = [[all.slice(0, 10).buffer, all.slice(10).buffer], [y.buffer.slice(0)]]; // split mid-value
  const w = decodeWeights(manifest, shards);
  assert.deepEqual([...w.x.data], [...x]);
  assert.deepEqual(w.x.shape, [2, 3]);
  assert.deepEqual([...w.n.data], [-7, 9]);
  assert.ok(w.n.data instanceof Int32Array);
  assert.deepEqual([...w.y.data], [0.25]);
  assert.throws(() => decodeWeights(manifest, [[all.slice(0, 30).buffer], shards[1]]), /truncated/);
  assert.throws(() => decodeWeights(manifest, [[all.buffer, new ArrayBuffer(4)], shards[1]]), /hold 36 bytes, the manifest describes 32/);
  const f16 = [{ paths: ['c.bin'], weights: [{ name: 'z', shape: [1], dtype: 'float16' }] }];
  assert.throws(() => decodeWeights(f16, [[new ArrayBuffer(2)]]), /unsupported dtype float16/);
});

test('modelConfig takes the button values the export wrote, and an older export falls back to the bin centres', () => {
  const weights = { 'dec.input.weight': { shape: [4, 91] }, 'dec.output.bias': { shape: [88] } };
  const values = [-1, -0.5, 0.25, 1]; // not the bin centres: the app must use what cfg.json says
  const ours = modelConfig({ num_buttons: 4, button_values: values }, weights);
  assert.deepEqual(ours.buttonValues, values);
  const old = modelConfig({ num_buttons: 4 }, weights);
  assert.equal(old.buttonValues, undefined);
  assert.equal(modelConfig({ num_buttons: 4, button_values: [0, 1] }, weights).buttonValues, undefined); // wrong length
  const decoder = { reset() {}, numKeys: 88 };
  assert.deepEqual([0, 1, 2, 3].map((b) => new Session(decoder, ours)._bReal(b)), values);
  const centres = [0, 1, 2, 3].map((b) => new Session(decoder, old)._bReal(b));
  [-1, -1 / 3, 1 / 3, 1].forEach((c, b) => assert.ok(Math.abs(centres[b] - c) < 1e-12, `button ${b}`));
});
