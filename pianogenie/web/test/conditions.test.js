// A conditioned decoder (key signature and chord) in JS against PyTorch's float64 logits and
// Python's PianoGenie keys, both kernels; a decoder without conditions refuses them.

import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';

import { conditionsOfWidth, Decoder } from '../src/decoder.js';
import { Session } from '../src/session.js';
import { exportConditionedModel, exportRandomModel } from './fixtures.js';
import { loadModelDir, readJson, sumAbsError } from './helpers.js';

const ids = ([keysig, chordRoot, chordFamily, style]) => ({ keysig, chordRoot, chordFamily, style });

test('the conditions are read off the input width', () => {
  assert.deepEqual(conditionsOfWidth(13), ['keysig']);
  assert.deepEqual(conditionsOfWidth(35), ['keysig', 'chord']);
  assert.deepEqual(conditionsOfWidth(38), ['keysig', 'chord', 'style']);
  assert.throws(() => conditionsOfWidth(7), /no set of conditions/);
});

for (const simd of [true, false]) describe(`conditioned decoder (${simd ? 'wasm simd' : 'js'} kernel)`, () => {
  test('logits equal PyTorch float64 under changing conditions', async () => {
    const dir = exportConditionedModel(0);
    const { weights, config } = await loadModelDir(dir);
    const cfg = await readJson(path.join(dir, 'cfg.json'));
    assert.deepEqual(cfg.conditions, ['keysig', 'chord']);
    const decoder = new Decoder(weights, { simd });
    assert.deepEqual(decoder.conditions, ['keysig', 'chord']);
    const golden = await readJson(path.join(dir, 'test.json'));
    assert.equal(golden.input_conditions.length, 128);
    decoder.reset();
    const rows = golden.input_keys.map((kM1, i) => {
      decoder.setConditions(ids(golden.input_conditions[i]));
      return Array.from(decoder.step(kM1, golden.input_dts[i], (2 * golden.input_buttons[i]) / (config.numButtons - 1) - 1));
    });
    const err = sumAbsError(rows, golden.output_logits);
    assert.ok(err <= 0.015, `sum |logit error| = ${err}`);
    // and the conditions matter: the same steps without them give other logits
    decoder.reset();
    const none = golden.input_keys.map((kM1, i) => {
      decoder.setConditions(null);
      return Array.from(decoder.step(kM1, golden.input_dts[i], (2 * golden.input_buttons[i]) / 7 - 1));
    });
    assert.ok(sumAbsError(none, golden.output_logits) > 1);
  });

  test("session presses play Python's keys", async () => {
    const dir = exportConditionedModel(0);
    const { weights, config } = await loadModelDir(dir);
    const presses = await readJson(path.join(dir, '..', 'presses.json'));
    const session = new Session(new Decoder(weights, { simd }), config, { seed: 1 });
    const keys = presses.times.map((t, i) => session.press(t, presses.buttons[i], 0, null, undefined, 0, ids(presses.conditions[i])));
    const same = keys.filter((k, i) => k === presses.keys[i]).length;
    assert.ok(same >= presses.keys.length - 2, `${same} of ${presses.keys.length} keys as Python's`); // float32 ties
    assert.ok(new Set(presses.conditions.map((c) => c.join())).size > 10);
  });
});

test('a decoder without conditions refuses them in one line, and plays unchanged without', async () => {
  const { weights, config } = await loadModelDir(exportRandomModel(1));
  const decoder = new Decoder(weights);
  assert.deepEqual(decoder.conditions, []);
  const session = new Session(decoder, config, { seed: 1 });
  assert.throws(() => session.press(0, 0, 0, null, undefined, 0, { chordRoot: 3 }), /takes no conditions; it cannot follow chordRoot/);
  assert.doesNotThrow(() => session.press(0, 0, 0, null, undefined, 0, { chordRoot: 0 }));
  const cond = new Decoder((await loadModelDir(exportConditionedModel(0))).weights);
  assert.throws(() => cond.setConditions({ style: 1 }), /takes keysig, chord; it cannot follow style/);
  assert.throws(() => cond.setConditions({ keysig: 13 }), /keysig 13 outside 0..12/);
});
