// Per-press decode latency in headless Chromium: the app's decoder vs the 2021 tutorial's approach
// (tf ops per press: one-hot/concat inputs, rebuilt LSTM kernels, multiRNNCell, softmax +
// multinomial, dataSync), side by side in one page, on the TF.js cpu and wasm backends; and the
// press including the model's velocity (goal: <= 0.1 ms median) where the model has a velocity head.
// Also: the look-ahead (8 extra decoder steps after a press, budget <= 1 ms median; with a velocity
// head also 8 velocities, one per button, within the same budget), and the
// app's whole press path (player -> piano, keyboard, trails, log) one press per animation frame,
// with the note trails on and off (trails draw in animation frames, so they must not slow a press).
//
// usage: node benchmarks/web_latency.mjs [--model DIR] [--presses 2000]
//   DIR defaults to the shipped model, else the tutorial's tfjs/ folder in ../shared.
// Needs: npm ci --prefix pianogenie/web; Debian's chromium (/usr/bin/chromium or $CHROMIUM).

import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const WEB = path.join(REPO, 'pianogenie', 'web');
const { chromium } = await import(path.join(WEB, 'node_modules', 'playwright-core', 'index.mjs'));

const { values: opts } = parseArgs({
  options: { model: { type: 'string' }, presses: { type: 'string', default: '2000' } },
});
const PRESSES = Number(opts.presses);
const model = opts.model || [path.join(REPO, 'pianogenie', 'pretrained', 'tfjs'),
  path.resolve(REPO, '..', 'shared', 'reference', 'tutorial-2021', 'tfjs')].find((d) => existsSync(path.join(d, 'weights_manifest.json')));
if (!model) throw new Error('no model: pass --model DIR (an exported model folder)');

const python = process.env.PIANOGENIE_PYTHON || [path.join(REPO, '.venv', 'bin', 'python')].find(existsSync) || 'python3';
const server = spawn(python, ['-m', 'pianogenie', 'serve', '--model', model, '--port', '0'], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
const url = await new Promise((resolve, reject) => {
  let out = '';
  server.stdout.on('data', (d) => { out += d; const m = out.match(/http:\/\/127\.0\.0\.1:\d+\//); if (m) resolve(m[0]); });
  server.on('exit', (code) => reject(new Error(`pianogenie serve exited (${code})`)));
});

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
    '--no-first-run', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage({ serviceWorkers: 'block' }); // page.route must see every request
  // TF.js and its wasm backend are only for this comparison (the app does without TF.js): served
  // here, not by `pianogenie serve`.
  const dists = {
    'bench-wasm': path.join(WEB, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist'),
    'bench-tfjs': path.join(WEB, 'node_modules', '@tensorflow', 'tfjs', 'dist'),
  };
  await page.route(/\/bench-(wasm|tfjs)\/[^/]+$/, (route) => {
    const url = new URL(route.request().url());
    const name = path.basename(url.pathname);
    const file = path.join(dists[url.pathname.split('/')[1]], name);
    if (!/^[\w.-]+\.(js|wasm)$/.test(name) || !existsSync(file)) return route.fulfill({ status: 404 });
    route.fulfill({ body: readFileSync(file), contentType: name.endsWith('.wasm') ? 'application/wasm' : 'text/javascript',
      headers: { 'Cross-Origin-Resource-Policy': 'same-origin' } });
  });
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await page.goto(url);
  await page.waitForFunction(() => window.pianoGenie && (window.pianoGenie.ready || window.pianoGenie.error), null, { timeout: 60000 });
  const err = await page.evaluate(() => window.pianoGenie.error);
  if (err) throw new Error(`app failed to load: ${err}`);
  await page.addScriptTag({ url: '/bench-tfjs/tf.es2017.min.js' });
  await page.addScriptTag({ url: '/bench-wasm/tf-backend-wasm.es2017.min.js' });

  /* global tf -- the page loads TF.js as a global script */
  const results = await page.evaluate(async (presses) => {
    const MODEL = '/' + (await (await fetch('/models.json')).json()).models[0].path; // the site's default genie
    const { TfjsDecoder } = await import('/src/tfjs_decoder.js');
    const { Session } = await import('/src/session.js');
    const { decoder, config } = { decoder: window.pianoGenie.session.decoder, config: window.pianoGenie.config };
    const stats = (ts) => {
      const s = Float64Array.from(ts).sort();
      return { median: s[Math.floor(s.length / 2)], p95: s[Math.floor(s.length * 0.95)], p99: s[Math.floor(s.length * 0.99)], mean: s.reduce((a, b) => a + b, 0) / s.length };
    };
    // The same button sequence for everyone; times advance ~0.15 s a press.
    let seed = 1;
    const rand = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
    const buttons = Array.from({ length: presses }, () => Math.floor(rand() * config.numButtons));
    const timeOne = (f) => { const t0 = performance.now(); f(); return performance.now() - t0; };

    const out = {};
    const session = new Session(decoder, config, { seed: 1 });
    for (let i = 0; i < 100; i++) session.press(i * 0.15, buttons[i], 0.25); // warm-up, as the app does
    session.reset();
    out.app = stats(buttons.map((b, i) => timeOne(() => session.press(i * 0.15, b, 0.25))));
    out.kernel = window.pianoGenie.kernel;
    if (decoder.conditions && decoder.conditions.length) {
      // A conditioned model: every press carries its conditions, the chord changing every 8 presses
      // (1.2 s here; a chord loop at 120 bpm changes every 2 s), key signature fixed.
      const chords = [[1, 1], [8, 5], [10, 2], [6, 1]];
      const cond = (i) => ({ keysig: 1, chordRoot: chords[(i >> 3) % 4][0], chordFamily: chords[(i >> 3) % 4][1] });
      session.reset();
      out['app-conditioned'] = stats(buttons.map((b, i) => timeOne(() => session.press(i * 0.15, b, 0.25, null, undefined, 0, cond(i)))));
      out.conditions = decoder.conditions;
    }
    // The app's plain-JS fallback (browsers without wasm simd), on the same weights.
    const { fetchModel } = await import('/src/model.js');
    const { Decoder } = await import('/src/decoder.js');
    const jsSession = new Session(new Decoder((await fetchModel(MODEL)).weights, { simd: false }), config, { seed: 1 });
    for (let i = 0; i < 100; i++) jsSession.press(i * 0.15, buttons[i], 0.25);
    jsSession.reset();
    out['app-js-fallback'] = stats(buttons.map((b, i) => timeOne(() => jsSession.press(i * 0.15, b, 0.25))));
    // The press including the velocity of the key it chose (the model's velocity head), both kernels.
    const { VelocityHead } = await import('/src/velocity.js');
    const loaded = await fetchModel(MODEL);
    if (loaded.velocityHead) {
      for (const [name, simd] of [['app+velocity', true], ['app+velocity-js-fallback', false]]) {
        const s = new Session(new Decoder(loaded.weights, { simd }), config,
          { seed: 1, velocityHead: new VelocityHead(loaded.weights, config.rnnDim, { simd }) });
        let v = 0;
        for (let i = 0; i < 100; i++) { s.press(i * 0.15, buttons[i], 0.25); v += s.velocity; }
        s.reset();
        out[name] = stats(buttons.map((b, i) => timeOne(() => { s.press(i * 0.15, b, 0.25); v += s.velocity; })));
        out[`${name}-mean-velocity`] = v / (presses + 100);
        if (!simd) continue;
        // The look-ahead with each button's velocity (the marks' size), after each press of the same run.
        s.reset();
        out['lookahead+velocity'] = stats(buttons.map((b, i) => {
          s.press(i * 0.15, b, 0.25);
          return timeOne(() => s.lookAhead((i + 1) * 0.15));
        }));
      }
    }

    const manifest = await (await fetch(MODEL + 'weights_manifest.json')).json();
    tf.wasm.setWasmPaths('/bench-wasm/');
    // (the tutorial's approach reads an unconditioned decoder's inputs only)
    for (const backend of decoder.conditions && decoder.conditions.length ? [] : ['cpu', 'wasm']) {
      if (!(await tf.setBackend(backend))) { out[`tutorial-${backend}`] = null; continue; }
      const tensors = await tf.io.loadWeights(manifest, MODEL);
      const dec = new TfjsDecoder(tf, tensors);
      let kM1 = config.sos, last = null;
      const press = (i) => {
        const t = i * 0.15, dt = last === null ? config.deltaTimeMax : Math.min(t - last, config.deltaTimeMax);
        kM1 = dec.press(kM1, dt, (2 * buttons[i]) / (config.numButtons - 1) - 1, 0.25);
        last = t;
      };
      for (let i = 0; i < 50; i++) press(i); // warm-up (kernel compilation)
      dec.reset(); kM1 = config.sos; last = null;
      out[`tutorial-${backend}`] = stats(buttons.map((_, i) => timeOne(() => press(i))));
      dec.dispose();
      tf.dispose(Object.values(tensors));
    }
    // Look-ahead: after each press, every button's argmax from the current state (state restored).
    session.reset();
    out.lookahead = stats(buttons.map((b, i) => {
      session.press(i * 0.15, b, 0.25);
      return timeOne(() => session.lookAhead((i + 1) * 0.15));
    }));
    out.crossOriginIsolated = crossOriginIsolated;
    return out;
  }, PRESSES);

  // The app's own press path, one press per frame, trails on then off (then on again: drift check).
  await page.evaluate(() => document.querySelector('#help').close());
  const pressPath = (trailsOn, n) => page.evaluate(async ([on, count]) => {
    const { player, trails } = window.pianoGenie;
    trails.setEnabled(on);
    const ts = [];
    for (let i = 0; i < count; i++) {
      await new Promise(requestAnimationFrame);
      const t0 = performance.now();
      player.buttonDown(i % 8, 'bench');
      ts.push(performance.now() - t0);
      if (i % 3 === 2) player.buttonUp('bench'); // some notes held across frames: trails growing
      else await new Promise(requestAnimationFrame).then(() => player.buttonUp('bench'));
    }
    player.buttonUp('bench');
    const s = Float64Array.from(ts).sort();
    return { median: s[Math.floor(s.length / 2)], p95: s[Math.floor(s.length * 0.95)], p99: s[Math.floor(s.length * 0.99)],
      mean: s.reduce((a, b) => a + b, 0) / s.length, frames: trails.frames };
  }, [trailsOn, n]);
  const framePresses = Math.min(300, PRESSES);
  results['press-path-trails-on'] = await pressPath(true, framePresses);
  results['press-path-trails-off'] = await pressPath(false, framePresses);
  results['press-path-trails-on-2'] = await pressPath(true, framePresses);

  const fmt = (x) => (x === undefined || x === null ? '   n/a' : x.toFixed(3).padStart(6));
  console.log(`per-press decode latency, headless Chromium ${browser.version()}, ${PRESSES} presses, model ${model}`);
  console.log(`(performance.now() resolution: ${results.crossOriginIsolated ? '5 us, cross-origin isolated' : 'coarse'})`);
  console.log(`load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} on ${os.cpus().length} cores (p99 on a busy machine mostly measures preemption)`);
  console.log(`app kernel: ${results.kernel}`);
  if (results.conditions) {
    const c = results['app-conditioned'];
    console.log(`conditioned on ${results.conditions.join(', ')}: press with conditions (chord change every 8 presses) ` +
      `median ${c.median.toFixed(3)} ms, ${(c.median / results.app.median).toFixed(2)}x the press without (goal <= 0.1 ms): ` +
      `${c.median <= 0.1 ? 'met' : 'NOT met'}`);
  }
  console.log('approach                      median ms   p95 ms   p99 ms   mean ms');
  for (const name of ['app', ...(results.conditions ? ['app-conditioned'] : []), 'app-js-fallback', 'app+velocity', 'app+velocity-js-fallback', 'tutorial-cpu', 'tutorial-wasm',
    'lookahead', 'lookahead+velocity', 'press-path-trails-on', 'press-path-trails-off', 'press-path-trails-on-2']) {
    const r = results[name];
    console.log(`${name.padEnd(28)} ${fmt(r && r.median)}    ${fmt(r && r.p95)}   ${fmt(r && r.p99)}   ${fmt(r && r.mean)}`);
  }
  for (const name of ['tutorial-cpu', 'tutorial-wasm']) {
    const r = results[name];
    if (r) console.log(`speed-up vs ${name}: ${(r.median / results.app.median).toFixed(1)}x at the median, ${(r.p99 / results.app.p99).toFixed(1)}x at p99`);
  }
  const ok = results.app.median <= 0.3 && results.app.p99 <= 1.0;
  console.log(`goal median <= 0.3 ms and p99 <= 1 ms: ${ok ? 'met' : 'NOT met'}`);
  const vel = results['app+velocity'];
  if (vel) {
    console.log(`press incl. velocity (goal median <= 0.1 ms): ${vel.median.toFixed(3)} ms, ` +
      `${(vel.median / results.app.median).toFixed(2)}x the press alone: ${vel.median <= 0.1 ? 'met' : 'NOT met'} ` +
      `(mean velocity played ${results['app+velocity-mean-velocity'].toFixed(1)})`);
  } else console.log('the model has no velocity head: press incl. velocity not measured');
  const la = results.lookahead;
  console.log(`look-ahead (8 decoder steps + state save/restore): ${(la.median / results.app.median).toFixed(1)}x one press; ` +
    `goal median <= 1 ms: ${la.median <= 1 ? 'met' : 'NOT met'}`);
  const lv = results['lookahead+velocity'];
  if (lv) {
    console.log(`look-ahead incl. 8 velocities: ${lv.median.toFixed(3)} ms, ${(lv.median / la.median).toFixed(2)}x the look-ahead alone; ` +
      `goal median <= 1 ms: ${lv.median <= 1 ? 'met' : 'NOT met'}`);
  }
  const on = (results['press-path-trails-on'].median + results['press-path-trails-on-2'].median) / 2;
  console.log(`press path with trails on / off, median: ${(on / results['press-path-trails-off'].median).toFixed(2)} ` +
    `(trails drew ${results['press-path-trails-on-2'].frames} frames in all; goal: no slower, ratio ~1 within noise)`);
} finally {
  await browser.close();
  server.kill();
}
