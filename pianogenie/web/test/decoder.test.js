// The JS decoder against golden cases computed by PyTorch: our export and the tutorial's weights.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import { Decoder, wasmSimdAvailable } from '../src/decoder.js';
import { Session } from '../src/session.js';
import { TfjsDecoder } from '../src/tfjs_decoder.js';
import { exportCheckpoint, exportRandomModel } from './fixtures.js';
import { loadModelDir, loadWeightTensors, readJson, REFERENCE_TFJS, sumAbsError, tf } from './helpers.js';

const TOLERANCE = 0.015; // sum of |error| over all 128 x 88 logits
const REFERENCE_PT = path.resolve(REFERENCE_TFJS, '..', 'pytorch', 'model.pt');
const noReference = existsSync(REFERENCE_TFJS) ? false : `shared reference absent: ${REFERENCE_TFJS}`;

function runGolden(decoder, golden, numButtons) {
  decoder.reset();
  return golden.input_keys.map((kM1, i) => {
    const bReal = (2 * golden.input_buttons[i]) / (numButtons - 1) - 1;
    return Array.from(decoder.step(kM1, golden.input_dts[i], bReal));
  });
}

async function checkGolden(dir, simd) {
  const { weights, config } = await loadModelDir(dir);
  const decoder = new Decoder(weights, { simd });
  assert.equal(decoder.kernel, simd ? 'wasm-simd' : 'js');
  const golden = await readJson(path.join(dir, 'test.json'));
  assert.equal(golden.input_keys.length, 128);
  assert.equal(golden.output_logits[0].length, 88);
  const err = sumAbsError(runGolden(decoder, golden, config.numButtons), golden.output_logits);
  assert.ok(err <= TOLERANCE, `sum |logit error| = ${err} > ${TOLERANCE}`);
  return { decoder, config, golden, err };
}

// Both kernels: WebAssembly SIMD (what browsers run) and the plain JS fallback.
for (const simd of [true, false]) describe(`decoder reproduces test.json (${simd ? 'wasm simd' : 'js'} kernel)`, () => {
  test('our export of a freshly initialised model', async (t) => {
    const { golden, err } = await checkGolden(exportRandomModel(1), simd);
    assert.match(golden.source, /synthetic/);
    // float64 golden: the JS kernel sums in float64 (~1e-5 expected), the wasm one in float32
    const bound = simd ? 0.005 : 1e-3;
    assert.ok(err < bound, `expected < ${bound}, got ${err}`);
    t.diagnostic(`sum |error| = ${err}`);
  });

  test('our export of the tutorial model', { skip: noReference }, async () => {
    const { decoder, golden } = await checkGolden(exportCheckpoint(REFERENCE_PT), simd);
    // A trained decoder is sharp: the most likely key is mostly the key that was played.
    const rows = runGolden(decoder, golden, 8);
    const hits = rows.filter((r, i) => r.indexOf(Math.max(...r)) === golden.output_keys[i]).length;
    assert.ok(hits > 40, `argmax matched the played key only ${hits}/128 times`);
  });

  test("the tutorial's own tfjs weights and test.json, unchanged", { skip: noReference }, async (t) => {
    t.diagnostic(`sum |error| = ${(await checkGolden(REFERENCE_TFJS, simd)).err}`);
  });
});

test('the app uses the wasm simd kernel where the engine has wasm simd', async () => {
  assert.ok(wasmSimdAvailable(), 'Node 16.4+ runs wasm simd');
  const { decoder } = await loadModelDir(exportRandomModel(1));
  assert.equal(decoder.kernel, 'wasm-simd');
});

describe('decoder (tfjs ops)', () => {
  test('the tutorial-style tfjs-ops decoder agrees (independent check of the maths)', { skip: noReference }, async () => {
    const golden = await readJson(path.join(REFERENCE_TFJS, 'test.json'));
    const tensors = await loadWeightTensors(REFERENCE_TFJS);
    const dec = new TfjsDecoder(tf, tensors);
    const err = sumAbsError(runGolden(dec, golden, 8), golden.output_logits);
    dec.dispose();
    tf.dispose(Object.values(tensors));
    assert.ok(err <= TOLERANCE, `tfjs ops: sum |logit error| = ${err}`);
  });
});

describe('memory', () => {
  let model;
  before(async () => { model = await loadModelDir(existsSync(REFERENCE_TFJS) ? REFERENCE_TFJS : exportRandomModel(1)); });

  test('tf.memory() does not grow over 10,000 presses (and weights tensors are freed at load)', () => {
    const before = tf.memory();
    const session = new Session(model.decoder, model.config, { seed: 3 });
    for (let i = 0; i < 10000; i++) {
      const b = i % 8;
      session.press(i * 0.1, b, 0.25);
      session.release(b);
      if (i % 1000 === 999) session.reset();
    }
    const after = tf.memory();
    assert.equal(after.numTensors, before.numTensors);
    assert.equal(after.numBytes, before.numBytes);
    assert.equal(after.numTensors, 0, 'loading leaked weight tensors');
  });

  test('the tfjs-ops baseline does not leak tensors either', { skip: noReference }, async () => {
    const tensors = await loadWeightTensors(REFERENCE_TFJS);
    const dec = new TfjsDecoder(tf, tensors);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 200; i++) dec.press(i % 89, 0.1, 0.5, 0.25);
    assert.equal(tf.memory().numTensors, before);
    dec.dispose();
    tf.dispose(Object.values(tensors));
  });
});

describe('decoder input checks', () => {
  test('wrong shapes and missing weights are clear errors', async () => {
    const dir = exportRandomModel(1);
    const { weights } = await loadModelDir(dir);
    const { Decoder } = await import('../src/decoder.js');
    const broken = { ...weights, 'dec.output.weight': { data: new Float32Array(10), shape: [2, 5] } };
    assert.throws(() => new Decoder(broken), /dec.output.weight has shape \[2,5\]/);
    const missing = { ...weights };
    delete missing['dec.lstm.bias_hh_l1'];
    assert.throws(() => new Decoder(missing), /dec.lstm.bias_hh_l1 is missing/);
    const d = new Decoder(weights);
    assert.throws(() => d.step(89, 0.1, 0), RangeError);
  });
});
