// The served app in real headless Chromium: every button by key and by click lights a key and
// plays a note, recording gives a MIDI file, no console errors. Saves test-artifacts/app.png.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { chromium } from 'playwright-core';

import { exportRandomModel, pythonExe } from './fixtures.js';
import { REPO_DIR, WEB_DIR } from './helpers.js';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = path.join(WEB_DIR, 'test-artifacts');
const KEYS = [['Digit1', 'KeyA'], ['Digit2', 'KeyS'], ['Digit3', 'KeyD'], ['Digit4', 'KeyF'],
  ['Digit5', 'KeyJ'], ['Digit6', 'KeyK'], ['Digit7', 'KeyL'], ['Digit8', 'Semicolon']];
const skip = existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM} (apt-get install chromium, or set $CHROMIUM)`;

let server, browser, page, url;
const problems = []; // console errors, page errors, failed requests

before(async () => {
  if (skip) return;
  const model = exportRandomModel(1, 16); // with a velocity head: keyboard and pointer presses play its velocity
  server = spawn(pythonExe(), ['-m', 'pianogenie', 'serve', '--model', model, '--port', '0'],
    { cwd: REPO_DIR, stdio: ['ignore', 'pipe', 'inherit'] });
  url = await new Promise((resolve, reject) => {
    let out = '';
    server.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/http:\/\/127\.0\.0\.1:\d+\//);
      if (m) resolve(m[0]);
    });
    server.on('exit', (code) => reject(new Error(`pianogenie serve exited with ${code}`)));
  });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
      '--no-first-run', '--disable-component-update', '--disable-sync'],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 640 }, acceptDownloads: true, hasTouch: true });
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`); });
  await page.goto(url);
  await page.waitForFunction(() => window.pianoGenie && (window.pianoGenie.ready || window.pianoGenie.error),
    null, { timeout: 60000 });
});

after(async () => {
  if (browser) await browser.close();
  if (server) server.kill();
});

const played = () => page.evaluate(() => window.pianoGenie.played.length);
const newEvents = (from) => page.evaluate((n) => window.pianoGenie.played.slice(n), from);
const litKeys = () => page.evaluate(() => [...document.querySelectorAll('.key.on')].map((k) => Number(k.dataset.key)));

async function checkPress(button, down, up) {
  const n = await played();
  await down();
  const on = await newEvents(n);
  assert.equal(on.length, 1, `button ${button}: expected one note-on, got ${JSON.stringify(on)}`);
  assert.equal(on[0].type, 'on');
  assert.equal(on[0].button, button);
  assert.ok(on[0].key >= 0 && on[0].key < 88 && on[0].pitch === on[0].key + 21);
  assert.deepEqual(await litKeys(), [on[0].key], 'the key played lights up (and only it)');
  assert.ok(await page.locator(`.genie-button[data-button="${button}"].down`).count(), 'button shows as down');
  await up();
  const off = await newEvents(n + 1);
  assert.deepEqual(off.map((e) => [e.type, e.key]), [['off', on[0].key]], 'release ends the note');
  assert.deepEqual(await litKeys(), []);
}

test('the app loads the exported model', { skip }, async () => {
  const state = await page.evaluate(() => ({ error: window.pianoGenie.error, ready: window.pianoGenie.ready,
    keys: document.querySelectorAll('.key').length, buttons: document.querySelectorAll('.genie-button').length }));
  assert.equal(state.error, null);
  assert.deepEqual(state, { error: null, ready: true, keys: 88, buttons: 8 });
});

test('each button by key (both rows) and by click plays and lights a key', { skip }, async () => {
  for (let b = 0; b < 8; b++) {
    for (const code of KEYS[b]) {
      await checkPress(b, () => page.keyboard.down(code), () => page.keyboard.up(code));
    }
    const box = await page.locator(`.genie-button[data-button="${b}"]`).boundingBox();
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await checkPress(b, () => page.mouse.down(), () => page.mouse.up());
  }
  const latency = await page.locator('#latency').textContent();
  assert.match(latency, /^\d+\.\d\d ms/);
  const velocities = (await newEvents(0)).filter((e) => e.type === 'on').map((e) => e.velocity);
  assert.ok(velocities.every((v) => Number.isInteger(v) && v >= 1 && v <= 127), `velocities ${velocities}`);
  assert.ok(new Set(velocities).size > 1, `the model's velocities, not a constant: ${velocities}`);
});

test('the soft and loud velocity layers load after the first press is possible', { skip }, async () => {
  await page.waitForFunction(() => window.pianoGenie.velocityLayers.length === 2, null, { timeout: 60000 });
  assert.deepEqual(await page.evaluate(() => window.pianoGenie.velocityLayers), [4, 15]);
});

test('multi-touch: two fingers hold two buttons at once, each release ends its own note', { skip }, async () => {
  const centre = async (b) => {
    const box = await page.locator(`.genie-button[data-button="${b}"]`).boundingBox();
    return { x: box.x + box.width / 2, y: box.y + box.height / 2 };
  };
  const [p0, p6] = [await centre(0), await centre(6)];
  const cdp = await page.context().newCDPSession(page);
  const touch = (type, points) => cdp.send('Input.dispatchTouchEvent', { type, touchPoints: points });
  const n = await played();
  await touch('touchStart', [{ ...p0, id: 1 }]);
  await touch('touchStart', [{ ...p0, id: 1 }, { ...p6, id: 2 }]);
  await page.waitForFunction((m) => window.pianoGenie.played.length >= m + 2, n);
  const on = await newEvents(n);
  assert.deepEqual(on.map((e) => [e.type, e.button]), [['on', 0], ['on', 6]]);
  assert.equal(await page.locator('.genie-button.down').count(), 2);
  await touch('touchEnd', [{ ...p6, id: 2 }]); // lift finger 2; finger 1 stays down
  await page.waitForFunction((m) => window.pianoGenie.played.length >= m + 3, n);
  assert.deepEqual((await newEvents(n + 2)).map((e) => [e.type, e.button, e.key]), [['off', 6, on[1].key]]);
  assert.equal(await page.locator('.genie-button.down').count(), 1);
  await touch('touchEnd', [{ ...p0, id: 1 }]);
  await page.waitForFunction((m) => window.pianoGenie.played.length >= m + 4, n);
  assert.deepEqual((await newEvents(n + 3)).map((e) => [e.type, e.button, e.key]), [['off', 0, on[0].key]]);
  await cdp.detach();
});

test('temperature 0 after reset is deterministic (argmax)', { skip }, async () => {
  await page.locator('#temperature').fill('0');
  const play = async () => {
    await page.locator('#reset').click();
    const n = await played();
    for (const code of ['Digit1', 'Digit5', 'Digit8', 'Digit3', 'Digit3']) await page.keyboard.press(code);
    return (await newEvents(n)).filter((e) => e.type === 'on').map((e) => e.key);
  };
  const first = await play();
  assert.equal(first.length, 5);
  assert.deepEqual(await play(), first);
  await page.locator('#temperature').fill('0.25');
});

test('record, then download a MIDI file; screenshot', { skip }, async () => {
  await page.locator('#record').click();
  for (const code of ['Digit2', 'Digit4', 'Digit6']) await page.keyboard.press(code);
  // Hold a chord for the screenshot: three buttons down, their keys lit.
  for (const code of ['Digit1', 'Digit5', 'Digit8']) await page.keyboard.down(code);
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'app.png') });
  for (const code of ['Digit1', 'Digit5', 'Digit8']) await page.keyboard.up(code);
  await page.locator('#record').click();
  assert.equal(await page.locator('#record-info').textContent(), '6 notes recorded');

  const bytes = await page.evaluate(() => Array.from(window.pianoGenie.midiFile()));
  assert.equal(String.fromCharCode(...bytes.slice(0, 4)), 'MThd');
  const noteOns = bytes.filter((x, i) => x === 0x90 && i > 22).length;
  assert.ok(noteOns >= 6, `expected 6 note-ons in the file, found ${noteOns}`);
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#download').click()]);
  assert.match(download.suggestedFilename(), /^pianogenie-.*\.mid$/);
});

test('no console errors, page errors or failed requests', { skip }, () => {
  assert.deepEqual(problems, []);
});
