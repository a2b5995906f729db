// The player's instrument in headless Chromium: what a musician runs into in an hour of playing.
// A MIDI controller unplugged mid-note lets go of its notes and pedal; Reset releases every pedal
// source; settings are kept across reloads (validated on the way back, resettable); keyboard
// players can work Settings; look-ahead marks show what a press now would play, one per button;
// dynamics the player controls (keyboard and touch); glide; audio download and replay.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { FAKE_MIDI, HELP_SEEN, launchChromium, skipBrowser as skip, startServer, waitReady, watchProblems } from './browser_helpers.js';
import { exportRandomModel } from './fixtures.js';

let server, browser, context, page, url;
const problems = [];

before(async () => {
  if (skip) return;
  ({ server, url } = await startServer(exportRandomModel(1, 16)));
  browser = await launchChromium();
  context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true, hasTouch: true });
  page = await context.newPage();
  page.setDefaultTimeout(10000);
  watchProblems(page, problems);
  // Reloads abort the samples still loading: that is not a failure.
  page.on('requestfailed', (r) => {
    if (r.failure()?.errorText === 'net::ERR_ABORTED') problems.splice(problems.indexOf(`request failed: ${r.url()}`), 1);
  });
  await page.addInitScript(FAKE_MIDI);
  await page.addInitScript(HELP_SEEN);
  await page.goto(url);
  await waitReady(page);
});

after(async () => {
  if (browser) await browser.close();
  if (server) server.kill();
});

const total = () => page.evaluate(() => window.pianoGenie.log.total);
const since = (n) => page.evaluate((m) => window.pianoGenie.log.since(m), n);
const litKeys = () => page.evaluate(() => [...document.querySelectorAll('.key.on')].map((k) => Number(k.dataset.key)));
const downButtons = () => page.evaluate(() => [...document.querySelectorAll('.genie-button.down')].map((b) => Number(b.dataset.button)));
async function openSettings(open = true) {
  if ((await page.locator('#settings').isHidden()) === open) await page.locator('#settings-toggle').click();
}

test('a MIDI controller unplugged with a note and the pedal held lets go of both; Reset releases every pedal', { skip }, async () => {
  await openSettings();
  await page.locator('#midi-connect').click();
  await page.waitForFunction(() => document.querySelector('#midi-info').textContent.includes('Fake Keys'));
  await openSettings(false);
  for (const keep of [true, false]) {
    const n = await total();
    await page.evaluate(() => { window.__midiIn([0xb0, 64, 127]); window.__midiIn([0x90, 60, 90]); });
    assert.equal(await page.locator('#pedal').getAttribute('aria-pressed'), 'true');
    assert.equal((await litKeys()).length, 1);
    await page.evaluate((k) => window.__midiUnplug(k), keep);
    const ev = await since(n);
    const on = ev.find((e) => e.type === 'on');
    assert.deepEqual(ev.map((e) => e.type), ['pedal', 'on', 'off', 'pedal', 'sound-off'], `keep=${keep}: ${JSON.stringify(ev)}`);
    assert.equal(ev.at(-1).key, on.key);
    assert.deepEqual([await litKeys(), await downButtons()], [[], []], 'nothing stays lit');
    assert.equal(await page.locator('#pedal').getAttribute('aria-pressed'), 'false');
    assert.doesNotMatch(await page.locator('#midi-info').textContent(), /Fake Keys/, 'the panel no longer names it');
    const m = await total(); // a computer key now is not sustained
    await page.keyboard.press('Digit3');
    assert.deepEqual((await since(m)).map((e) => e.type), ['on', 'off', 'sound-off']);
    await page.evaluate(() => window.__midiReplug());
    await page.waitForFunction(() => document.querySelector('#midi-info').textContent.includes('Fake Keys'));
  }
  // Reset: the pedal held by Space and by the controller both come up.
  await page.keyboard.down('Space');
  await page.evaluate(() => window.__midiIn([0xb0, 64, 127]));
  await page.locator('#reset').click();
  await page.keyboard.up('Space');
  assert.equal(await page.locator('#pedal').getAttribute('aria-pressed'), 'false');
  const m = await total();
  await page.keyboard.press('Digit4');
  assert.deepEqual((await since(m)).map((e) => e.type), ['on', 'off', 'sound-off'], 'after Reset nothing sustains');
});

test('settings are kept across a reload, validated when read back, and reset; MIDI output chosen again', { skip }, async () => {
  await openSettings();
  await page.locator('#scale-type').selectOption('natural minor');
  await page.locator('#scale-tonic').selectOption('2');
  await page.locator('#range-low').selectOption('48');
  await page.locator('#lookahead').check();
  await page.locator('#trails-toggle').uncheck();
  await page.locator('#dynamics').selectOption('2');
  await page.locator('#midi-output').selectOption('fake-out');
  await page.locator('#midi-channel').selectOption('5');
  await page.locator('#temperature').fill('0.6');
  await page.reload();
  await waitReady(page);
  await page.waitForFunction(() => document.querySelector('#midi-output').value === 'fake-out', null, { timeout: 3000 })
    .catch(async (e) => { throw new Error(`${e.message}: ${await page.evaluate(() => JSON.stringify([localStorage.getItem('pianogenie.settings'), document.querySelector('#midi-info').textContent, document.querySelector('#midi-output').innerHTML]))}`); });
  const state = () => page.evaluate(() => ({
    type: document.querySelector('#scale-type').value, tonic: document.querySelector('#scale-tonic').value,
    low: document.querySelector('#range-low').value, ahead: document.querySelector('#lookahead').checked,
    trails: document.querySelector('#trails-toggle').checked, dynamics: document.querySelector('#dynamics').value,
    out: document.querySelector('#midi-output').value, channel: document.querySelector('#midi-channel').value,
    temperature: document.querySelector('#temperature').value, info: document.querySelector('#scale-info').textContent,
    marks: document.querySelectorAll('.key.next').length, midiChannel: window.pianoGenie.midi.channel,
  }));
  const kept = await state();
  assert.deepEqual({ ...kept, info: undefined, marks: undefined },
    { type: 'natural minor', tonic: '2', low: '48', ahead: true, trails: false, dynamics: '2', out: 'fake-out', channel: '5',
      temperature: '0.6', info: undefined, marks: undefined, midiChannel: 5 });
  assert.match(kept.info, /D natural minor, C3/, 'the scale picker applied what was read back');
  assert.ok(kept.marks > 0, 'look-ahead applied');
  // A stored record from an older or hand-edited version: what does not validate is the default.
  await page.evaluate(() => localStorage.setItem('pianogenie.settings', JSON.stringify({ format: 1, values: {
    temperature: 7, scaleType: 'no-such-scale', rangeLow: '9999', lookAhead: 'yes', trails: true, dynamics: '3',
    midiChannel: '-1', scaleTonic: { x: 1 } } })));
  await page.reload();
  await waitReady(page);
  const edited = await state();
  assert.deepEqual([edited.temperature, edited.type, edited.low, edited.ahead, edited.trails, edited.dynamics, edited.channel, edited.tonic],
    ['0.25', 'chromatic', '21', false, true, '3', '0', '0']);
  await page.evaluate(() => localStorage.setItem('pianogenie.settings', '{not json'));
  await page.reload();
  await waitReady(page);
  // Reset settings: every control back to its default, nothing stored.
  await openSettings();
  await page.locator('#dynamics').selectOption('-3');
  await page.locator('#lookahead').check();
  await page.locator('#settings-reset').click();
  const reset = await state();
  assert.deepEqual([reset.dynamics, reset.ahead, reset.marks, reset.type], ['0', false, 0, 'chromatic']);
  assert.equal(await page.evaluate(() => localStorage.getItem('pianogenie.settings')), null);
  await page.reload();
  await waitReady(page);
});

test('keyboard players: Space and Enter tick a focused checkbox (no pedal); Escape closes Settings from anywhere; the panel clears the buttons', { skip }, async () => {
  await openSettings();
  const box = page.locator('#lookahead');
  await box.focus();
  const was = await box.isChecked();
  const n = await total();
  await page.keyboard.press('Space');
  assert.equal(await box.isChecked(), !was, 'Space ticks it');
  await page.keyboard.press('Enter');
  assert.equal(await box.isChecked(), was, 'Enter unticks it');
  assert.deepEqual(await since(n), [], 'no pedal, no note');
  await page.locator('#scale-type').focus();
  await page.keyboard.press('Escape');
  assert.ok(await page.locator('#settings').isHidden(), 'Escape from a select closes it');
  await openSettings();
  await page.locator('body').click({ position: { x: 600, y: 120 } }); // focus outside the panel
  await page.keyboard.press('Escape');
  assert.ok(await page.locator('#settings').isHidden(), 'Escape from outside closes it');
  await openSettings();
  const panel = await page.locator('#settings').boundingBox(), buttons = await page.locator('#buttons').boundingBox();
  assert.ok(panel.y + panel.height <= buttons.y, `at 1280x800 the panel ends at ${panel.y + panel.height}, the buttons start at ${buttons.y}`);
  await page.keyboard.press('Escape');
});

test('no console errors, page errors or failed requests', { skip }, () => {
  assert.deepEqual(problems, []);
});
