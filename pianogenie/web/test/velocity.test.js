// The JS velocity head against golden velocity logits computed by PyTorch (float64), on both
// kernels, and the session's velocity: the model's, a given one, or the fixed default.

import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';

import { Decoder } from '../src/decoder.js';
import { buildModel } from '../src/model.js';
import { Session } from '../src/session.js';
import { DEFAULT_VELOCITY, meanVelocity, VelocityHead } from '../src/velocity.js';
import { exportRandomModel } from './fixtures.js';
import { loadModelDir, readJson, REPO_DIR } from './helpers.js';

const BINS = 16;

/** Teacher-forced run of test.json: decoder step, velocity logits for the played key, then the
 * played velocity into the history (as the golden case was computed). -> rows of logits, means. */
function runVelocityGolden(decoder, head, golden, numButtons) {
  decoder.reset();
  head.reset();
  const rows = [], means = [];
  golden.input_keys.forEach((kM1, i) => {
    const bReal = (2 * golden.input_buttons[i]) / (numButtons - 1) - 1, dt = golden.input_dts[i];
    decoder.step(kM1, dt, bReal);
    const k = golden.output_keys[i];
    const logits = head.logits(decoder.h[decoder.numLayers - 1], k, dt, bReal);
    rows.push(Array.from(logits));
    means.push(meanVelocity(logits));
    head.record(golden.input_velocities[i], k);
  });
  return { rows, means };
}

for (const simd of [true, false]) describe(`velocity head reproduces test.json (${simd ? 'wasm simd' : 'js'} kernel)`, () => {
  test('golden velocity logits and means of an exported model with a velocity head', async (t) => {
    const dir = exportRandomModel(2, BINS);
    const { weights, config } = await loadModelDir(dir);
    const golden = await readJson(path.join(dir, 'test.json'));
    assert.equal(golden.output_velocity_logits.length, 128);
    assert.equal(golden.output_velocity_logits[0].length, BINS);
    const decoder = new Decoder(weights, { simd }), head = new VelocityHead(weights, config.rnnDim, { simd });
    assert.equal(head.kernel, simd ? 'wasm-simd' : 'js');
    const { rows, means } = runVelocityGolden(decoder, head, golden, config.numButtons);
    let err = 0, spread = 0;
    rows.forEach((r, i) => r.forEach((x, j) => {
      err += Math.abs(x - golden.output_velocity_logits[i][j]);
      spread += Math.abs(golden.output_velocity_logits[i][j] - golden.output_velocity_logits[i][0]);
    }));
    t.diagnostic(`sum |error| = ${err} over 128 x ${BINS} logits`);
    assert.ok(spread > 100, 'the golden logits are far from flat (the check can fail)');
    assert.ok(err < (simd ? 0.005 : 1e-3), `sum |velocity logit error| = ${err}`);
    const off = means.filter((v, i) => Math.abs(v - golden.output_velocities[i]) > 1).length;
    assert.equal(off, 0, `${off} velocities differ from PyTorch's by more than 1`);
    assert.ok(new Set(means).size > 5, 'velocities vary');
  });

  test("the shipped model's golden velocity logits (a real validation performance)", async (t) => {
    const dir = path.join(REPO_DIR, 'pianogenie', 'pretrained', 'tfjs');
    const { weights, config, velocityHead } = await loadModelDir(dir);
    assert.ok(velocityHead, 'the shipped export carries the velocity head');
    const golden = await readJson(path.join(dir, 'test.json'));
    const decoder = new Decoder(weights, { simd }), head = new VelocityHead(weights, config.rnnDim, { simd });
    const { rows, means } = runVelocityGolden(decoder, head, golden, config.numButtons);
    let err = 0;
    rows.forEach((r, i) => r.forEach((x, j) => { err += Math.abs(x - golden.output_velocity_logits[i][j]); }));
    t.diagnostic(`sum |error| = ${err} over 128 x ${rows[0].length} logits`);
    assert.ok(err <= 0.015, `sum |velocity logit error| = ${err}`);
    assert.ok(means.every((v, i) => Math.abs(v - golden.output_velocities[i]) <= 1));
    // a trained head: its velocities follow the performance's
    const mae = means.reduce((a, v, i) => a + Math.abs(v - golden.input_velocities[i]), 0) / means.length;
    t.diagnostic(`MAE against the played velocities: ${mae.toFixed(2)}`);
    assert.ok(mae < 12, `MAE ${mae}`);
  });
});

describe('session velocity', () => {
  test("the model's velocity, a given velocity (recorded in the history), and reset", async () => {
    const model = await loadModelDir(exportRandomModel(2, BINS));
    assert.ok(model.velocityHead, 'the export carries vel.* weights');
    const a = new Session(model.decoder, model.config, { seed: 1, velocityHead: model.velocityHead });
    const b = new Session(new Decoder(model.weights), model.config,
      { seed: 1, velocityHead: new VelocityHead(model.weights, model.config.rnnDim) });
    const played = [];
    for (let i = 0; i < 20; i++) {
      const key = a.press(0.1 * i, i % 8, 0.5);
      assert.equal(b.press(0.1 * i, i % 8, 0.5), key);
      assert.ok(Number.isInteger(a.velocity) && a.velocity >= 1 && a.velocity <= 127);
      assert.equal(b.velocity, a.velocity);
      played.push(a.velocity);
    }
    // A given velocity is played and heard by the history: what follows differs from the model's own.
    a.press(2.0, 3, 0, null, 127);
    b.press(2.0, 3, 0);
    assert.equal(a.velocity, 127);
    assert.notEqual(b.velocity, 127);
    const after = [a.press(2.1, 4, 0), b.press(2.1, 4, 0)];
    assert.equal(after[0], after[1], 'the key path does not depend on velocities');
    // an allowed-keys mask and a given velocity together (the caller may restrict both at once);
    // lookAhead leaves the velocity history alone
    const allowed = [40, 43, 47];
    const ahead = a.lookAhead(2.3, allowed);
    assert.equal(a.press(2.3, 5, 0, allowed, 33), ahead[5]);
    assert.equal(a.velocity, 33);
    b.press(2.3, 5, 0, allowed, 33);
    assert.equal(b.press(2.5, 1, 0, allowed), a.press(2.5, 1, 0, allowed));
    assert.equal(a.velocity, b.velocity, 'a look-ahead changes no velocity state');
    a.reset(1);
    assert.equal(a.velocity, DEFAULT_VELOCITY);
    assert.equal(a.press(0, 0, 0.5), b.reset(1) ?? b.press(0, 0, 0.5));
    assert.equal(a.velocity, b.velocity);
  });

  test('look-ahead velocities: each button\'s is what pressing it at that moment would play', async () => {
    for (const dir of [exportRandomModel(2, BINS), path.join(REPO_DIR, 'pianogenie', 'pretrained', 'tfjs')]) {
      const model = await loadModelDir(dir);
      const session = () => new Session(new Decoder(model.weights), model.config,
        { seed: 7, velocityHead: new VelocityHead(model.weights, model.config.rnnDim) });
      const history = (s) => { for (let i = 0; i < 12; i++) s.press(0.13 * i, (i * 3) % 8, 0.5, null, i === 5 ? 120 : undefined); };
      for (const keys of [null, [39, 41, 43, 44, 46, 48, 50, 51]]) {
        const a = session();
        history(a);
        const ahead = a.lookAhead(1.7, keys), velocities = a.aheadVelocities;
        assert.equal(velocities.length, 8);
        for (let b = 0; b < 8; b++) {
          const probe = session(); // the same state, then a real press of button b
          history(probe);
          assert.equal(probe.press(1.7, b, 0, keys), ahead[b]);
          assert.equal(probe.velocity, velocities[b], `${dir} button ${b} (keys ${keys})`);
        }
        assert.ok(new Set(velocities).size > 1, `velocities differ between buttons: ${velocities}`);
        // and the look-ahead changed nothing: the next press plays as if it had not run
        const c = session();
        history(c);
        assert.equal(a.press(1.7, 4, 0.5, keys), c.press(1.7, 4, 0.5, keys));
        assert.equal(a.velocity, c.velocity);
      }
    }
  });

  test('an export without velocity weights plays the default velocity (or the given one)', async () => {
    const model = await loadModelDir(exportRandomModel(1));
    assert.equal(model.velocityHead, null);
    const s = new Session(model.decoder, model.config, { seed: 1, velocityHead: model.velocityHead });
    s.press(0, 3);
    assert.equal(s.velocity, DEFAULT_VELOCITY);
    s.press(0.2, 4, 0.25, null, 100);
    assert.equal(s.velocity, 100);
    assert.equal(s.lookAhead(0.4).length, 8);
    assert.equal(s.aheadVelocities, null, 'no velocity head: the look-ahead has no velocities');
  });

  test('a velocity head whose shapes do not fit is refused, naming the model', async () => {
    const dir = exportRandomModel(2, BINS);
    const { weights } = await loadModelDir(dir);
    const cfg = await readJson(path.join(dir, 'cfg.json'));
    const bad = { ...weights, 'vel.output.bias': { data: new Float32Array(BINS + 1), shape: [BINS + 1] } };
    assert.throws(() => buildModel(bad, cfg, 'some/model'), /some\/model: velocity weight vel.output.weight has shape/);
  });
});

test('meanVelocity: the mean over the bin centres', () => {
  const bins = new Float64Array(32).fill(-Infinity);
  bins[20] = 0; // all mass in bin 20: velocities 80..83, centre 81.5
  assert.equal(meanVelocity(bins), 82);
  assert.equal(meanVelocity(new Float64Array(32)), 64); // uniform: 63.5
  bins[0] = Math.log(3); // 3/4 on bin 0 (centre 1.5): 0.75 * 1.5 + 0.25 * 81.5 = 21.5
  assert.equal(meanVelocity(bins), 22);
});
