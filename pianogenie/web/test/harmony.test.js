// The harmony control in headless Chromium, on a site serving the shipped classical genie (no
// conditions: no control) and a random genie conditioned on key signature and chord: the strip
// shows for the conditioned one only; a tapped chord, a chord held on a MIDI controller below its
// split and a looping progression each set the conditions that the next press takes at once (and
// the keys are the Node session's under them); the scale mask still applies on top. Saves
// test-artifacts/harmony-*.png at desktop and phone sizes.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { Session } from '../src/session.js';
import { ARTIFACTS, FAKE_MIDI, HELP_SEEN, launchChromium, skipBrowser as skip, startServer, waitReady, watchProblems } from './browser_helpers.js';
import { exportConditionedModel } from './fixtures.js';
import { loadModelDir } from './helpers.js';

const PRESSES = [[0, 0], [0.2, 3], [0.35, 7], [0.5, 7], [0.9, 2], [1.0, 5], [1.1, 1], [1.6, 4], [1.7, 6], [2.5, 0]];
let server, browser, page, conditioned;
const problems = [];

before(async () => {
  if (skip) return;
  conditioned = exportConditionedModel(3, 'keysig,chord');
  let url;
  ({ server, url } = await startServer(['classical', conditioned]));
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.setDefaultTimeout(15000);
  watchProblems(page, problems);
  await page.addInitScript(HELP_SEEN);
  await page.addInitScript(FAKE_MIDI);
  await page.goto(url);
  await waitReady(page);
});

after(async () => {
  if (browser) await browser.close();
  if (server) server.kill();
});

const ids = () => page.evaluate(() => window.pianoGenie.harmony.ids());
// What the next keyboard press hands the session as its conditions.
const pressConditions = async (code) => {
  await page.evaluate(() => {
    const s = window.pianoGenie.session, press = s.press.bind(s);
    window.__conditions = [];
    s.press = (...a) => { window.__conditions.push(a[6]); return press(...a); };
  });
  await page.keyboard.press(code);
  return page.evaluate(() => window.__conditions);
};

test('no harmony control for a genie without conditions; the conditioned genie shows it', { skip }, async () => {
  assert.equal(await page.evaluate(() => window.pianoGenie.genie), 'classical');
  assert.ok(await page.locator('#harmony').isHidden());
  assert.equal(await ids(), null);
  assert.deepEqual(await pressConditions('Digit2'), [null]);
  await page.locator('#settings-toggle').click();
  await page.locator('#genie-picker input[value="model"]').check();
  await page.waitForFunction(() => window.pianoGenie.genie === 'model' && !window.pianoGenie.switching);
  await page.locator('#settings-toggle').click();
  assert.ok(await page.locator('#harmony').isVisible());
  assert.ok(await page.locator('#harmony-style-box').isHidden(), 'this genie has no style condition');
  assert.deepEqual(await ids(), { keysig: 0, chordRoot: 0, chordFamily: 0 });
});

test('a tapped chord and key are the next press\'s conditions, and its keys are the Node session\'s', { skip }, async () => {
  await page.locator('#chord-now').click(); // opens the palette
  await page.locator('#chord-roots button', { hasText: /^G$/ }).click();
  await page.locator('#chord-families button', { hasText: /^7$/ }).click();
  await page.locator('#harmony-key').selectOption('D');
  assert.equal(await page.locator('#chord-now').textContent(), 'G7');
  const want = { keysig: 3, chordRoot: 8, chordFamily: 5 };
  assert.deepEqual(await ids(), want);
  await page.locator('#chord-now').click(); // the palette closes
  assert.ok(await page.locator('#chord-palette').isHidden());
  await page.evaluate(() => document.activeElement.blur()); // focus off the select: keys play
  assert.deepEqual(await pressConditions('Digit3'), [want]);
  const inPage = await page.evaluate((presses) => {
    const { session: s, harmony } = window.pianoGenie;
    s.reset();
    const keys = presses.map(([t, b]) => s.press(t, b, 0, null, undefined, 0, harmony.ids()));
    s.reset();
    return keys;
  }, PRESSES);
  const { decoder, config, velocityHead } = await loadModelDir(conditioned);
  const node = (c) => { const s = new Session(decoder, config, { velocityHead }); return PRESSES.map(([t, b]) => s.press(t, b, 0, null, undefined, 0, c)); };
  assert.deepEqual(inPage, node(want));
  assert.notDeepEqual(node(want), node(null), 'the conditions change the keys');
});

test('a chord held below the MIDI split sets the chord and plays no button', { skip }, async () => {
  await page.locator('#settings-toggle').click();
  await page.locator('#midi-connect').click();
  await page.locator('#settings-toggle').click();
  await page.waitForFunction(() => window.pianoGenie.midi.access);
  const n = await page.evaluate(() => window.pianoGenie.log.total);
  await page.evaluate(() => { for (const p of [45, 48, 52]) window.__midiIn([0x90, p, 90]); }); // A2 C3 E3: Am
  assert.equal(await page.locator('#chord-now').textContent(), 'Am');
  assert.deepEqual(await ids(), { keysig: 3, chordRoot: 10, chordFamily: 2 });
  await page.evaluate(() => { for (const p of [45, 48, 52]) window.__midiIn([0x80, p, 0]); });
  assert.equal(await page.evaluate((m) => window.pianoGenie.log.since(m).length, n), 0, 'no notes from the chord keys');
  await page.evaluate(() => window.__midiIn([0x90, 62, 90])); // D4, above the split: a button
  const on = await page.evaluate((m) => window.pianoGenie.log.since(m).filter((e) => e.type === 'on'), n);
  assert.equal(on.length, 1);
  await page.evaluate(() => window.__midiIn([0x80, 62, 0]));
  // Unplugged with chord keys held: they are let go, so the next chord held is not mixed with them.
  await page.evaluate(() => { for (const p of [45, 48]) window.__midiIn([0x90, p, 90]); });
  await page.evaluate(() => window.__midiUnplug(false));
  await page.evaluate(() => window.__midiReplug());
  await page.waitForFunction(() => document.querySelector('#midi-info').textContent.includes('Fake Keys'));
  await page.evaluate(() => { for (const p of [52, 55, 59]) window.__midiIn([0x90, p, 90]); }); // E3 G3 B3: Em
  assert.equal(await page.locator('#chord-now').textContent(), 'Em');
  await page.evaluate(() => { for (const p of [52, 55, 59]) window.__midiIn([0x80, p, 0]); });
});

test('a progression loops one chord per bar at the tempo, shown as it advances; a press takes the bar it falls in', { skip }, async () => {
  await page.locator('#chord-now').click(); // the palette holds the typed progression
  await page.locator('#progression').fill('C G Am F');
  await page.locator('#progression').dispatchEvent('change');
  await page.locator('#tempo').fill('240'); // a bar a second
  await page.locator('#tempo').dispatchEvent('change');
  await page.locator('#progression-play').click();
  assert.equal(await page.locator('#progression-bars .bar.now').textContent(), 'C');
  assert.equal(await page.locator('#chord-now').textContent(), 'C');
  await page.waitForFunction(() => document.querySelector('#progression-bars .bar.now')?.textContent === 'G', null, { timeout: 3000 });
  assert.deepEqual(await ids(), { keysig: 3, chordRoot: 8, chordFamily: 1 });
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'harmony-palette-1280x800.png') });
  // the press computes its bar itself: never a stale chord between two timer ticks
  const atPress = await page.evaluate(() => {
    const h = window.pianoGenie.harmony;
    h.loop.start -= 1; // one bar later, before any tick
    return h.ids();
  });
  assert.deepEqual(atPress, { keysig: 3, chordRoot: 10, chordFamily: 2 });
  await page.locator('#chord-roots button', { hasText: /^F$/ }).click(); // a tap stops the loop
  assert.equal(await page.locator('#progression-play').getAttribute('aria-pressed'), 'false');
  assert.equal((await ids()).chordRoot, 6);
  await page.locator('#chord-now').click();
  await page.locator('#progression-play').click();
  await page.screenshot({ path: path.join(ARTIFACTS, 'harmony-1280x800.png') });
});

test('the scale mask still applies under the conditions', { skip }, async () => {
  await page.locator('#settings-toggle').click();
  await page.locator('#scale-tonic').selectOption('2'); // D
  await page.locator('#scale-type').selectOption('major');
  await page.locator('#settings-toggle').click();
  const n = await page.evaluate(() => window.pianoGenie.log.total);
  for (const code of ['Digit1', 'Digit4', 'Digit6', 'Digit8', 'Digit2', 'Digit7']) await page.keyboard.press(code);
  const on = (await page.evaluate((m) => window.pianoGenie.log.since(m), n)).filter((e) => e.type === 'on');
  assert.equal(on.length, 6);
  for (const e of on) assert.ok([2, 4, 6, 7, 9, 11, 1].includes(e.pitch % 12), `pitch ${e.pitch} outside D major`);
});

test('screenshots of the harmony control at phone sizes', { skip }, async () => {
  for (const [w, h] of [[390, 844], [844, 390], [320, 568]]) {
    await page.setViewportSize({ width: w, height: h });
    await page.waitForTimeout(100);
    await page.screenshot({ path: path.join(ARTIFACTS, `harmony-${w}x${h}.png`) });
    await page.locator('#chord-now').click();
    await page.screenshot({ path: path.join(ARTIFACTS, `harmony-palette-${w}x${h}.png`) });
    await page.locator('#chord-now').click();
  }
});

test('no console errors, page errors or failed requests', { skip }, () => {
  assert.deepEqual(problems, []);
});
