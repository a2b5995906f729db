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

// Each press's shift as the session saw it, with the genie's own velocity and the one played.
async function spyShifts() {
  await page.evaluate(() => {
    const s = window.pianoGenie.session;
    window.__shifts = [];
    const press = s.press.bind(s), model = s._modelVelocity.bind(s);
    let own = null;
    s._modelVelocity = (...a) => (own = model(...a));
    s.press = (...a) => { own = null; const k = press(...a); window.__shifts.push({ shift: a[5], own, played: s.velocity }); return k; };
  });
}
const shifts = () => page.evaluate(() => window.__shifts.splice(0));
const unspy = () => page.evaluate(() => { const s = window.pianoGenie.session; delete s.press; delete s._modelVelocity; });

test('dynamics: Shift accents a key, Z or / plays it soft, - and = step the level (kept, shown), where a touch lands sets loudness', { skip }, async () => {
  await spyShifts();
  await page.keyboard.press('Digit3');
  await page.keyboard.press('Shift+Digit4');
  for (const soft of ['KeyZ', 'Slash']) { // held with a key, either hand's
    await page.keyboard.down(soft);
    await page.keyboard.press('Digit2');
    await page.keyboard.up(soft);
  }
  await page.keyboard.press('Digit2'); // let go: the genie's own again
  for (let i = 0; i < 5; i++) await page.keyboard.press('Equal'); // three steps reach ff, then it stays
  await page.keyboard.press('Digit5');
  assert.equal(await page.locator('#dynamics').inputValue(), '3');
  assert.equal(await page.locator('#dynamics-level').textContent(), 'ff');
  for (let i = 0; i < 6; i++) await page.keyboard.press('Minus');
  await page.keyboard.press('Digit6');
  assert.equal(await page.locator('#dynamics-level').textContent(), 'pp');
  for (let i = 0; i < 3; i++) await page.keyboard.press('Equal');
  assert.ok(await page.locator('#dynamics-info').isHidden(), 'the genie\'s own: nothing shown');
  const keys = await shifts();
  assert.deepEqual(keys.map((k) => k.shift), [0, 24, -48, -48, 0, 42, -42]);
  // Touch: near the top, the middle, near the bottom of button 2.
  const box = await page.locator('.genie-button[data-button="1"]').boundingBox();
  const cdp = await context.newCDPSession(page);
  for (const f of [0.04, 0.5, 0.96]) {
    const at = { x: box.x + box.width / 2, y: box.y + box.height * f, id: 1 };
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: [at] });
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
  }
  await cdp.detach();
  const touches = await shifts();
  assert.equal(touches.length, 3);
  assert.ok(touches[0].shift > 55 && touches[1].shift === 0 && touches[2].shift < -55, JSON.stringify(touches));
  for (const p of [...keys, ...touches]) {
    assert.equal(p.played, Math.min(127, Math.max(p.shift ? 10 : 1, p.own + p.shift)), `played = the genie's own + the shift: ${JSON.stringify(p)}`);
  }
  // Off in Settings: a touch plays the genie's own wherever it lands.
  await openSettings();
  await page.locator('#touch-dynamics').uncheck();
  await openSettings(false);
  await page.mouse.click(box.x + box.width / 2, box.y + 4);
  assert.deepEqual((await shifts()).map((p) => p.shift), [0]);
  await openSettings();
  await page.locator('#touch-dynamics').check();
  await openSettings(false);
  await unspy();
});

test('glide: a held mouse or finger sliding across the buttons plays each button entered and lets go of the one left', { skip }, async () => {
  const centre = async (b) => {
    const box = await page.locator(`.genie-button[data-button="${b}"]`).boundingBox();
    return { x: box.x + box.width / 2, y: box.y + box.height / 2 };
  };
  const a = await centre(1), d = await centre(4);
  let n = await total();
  await page.mouse.move(a.x, a.y);
  await page.mouse.down();
  await page.mouse.move(d.x, d.y, { steps: 24 });
  assert.deepEqual(await downButtons(), [4]);
  await page.mouse.up();
  const ev = (await since(n)).filter((e) => e.type === 'on' || e.type === 'off').map((e) => `${e.type}${e.button}`);
  assert.deepEqual(ev, ['on1', 'off1', 'on2', 'off2', 'on3', 'off3', 'on4', 'off4']);
  // Two fingers, one gliding right, one held: the held one stays.
  const cdp = await context.newCDPSession(page);
  const f7 = await centre(7), f6 = await centre(6);
  n = await total();
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: [{ ...a, id: 1 }, { ...f7, id: 2 }] });
  for (let i = 1; i <= 12; i++) {
    const x = a.x + ((f6.x - a.x) * i) / 12;
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchMove', touchPoints: [{ x, y: a.y, id: 1 }, { ...f7, id: 2 }] });
  }
  assert.deepEqual(await downButtons(), [6, 7]);
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
  await cdp.detach();
  const ons = (await since(n)).filter((e) => e.type === 'on').map((e) => e.button);
  assert.deepEqual(ons.sort(), [1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual(await downButtons(), []);
});

test('download audio: the recording rendered offline to WAV, as long as the recording (+ its tail), louder at each onset; replay', { skip }, async (t) => {
  await page.keyboard.press('Digit1'); // a first note: the rest of the samples and the layers load then
  await page.waitForFunction(() => window.pianoGenie.samplesLoaded, null, { timeout: 60000 });
  await page.locator('#record').click();
  await page.waitForTimeout(300);
  for (const [code, hold] of [['Digit2', 250], ['Digit5', 150], ['Digit7', 300], ['Digit3', 200]]) {
    await page.keyboard.down(code);
    await page.waitForTimeout(hold);
    await page.keyboard.up(code);
    await page.waitForTimeout(250);
  }
  await page.keyboard.down('Space'); // the pedal holds the last note past its key-up
  await page.keyboard.press('Digit6');
  await page.waitForTimeout(300);
  await page.keyboard.up('Space');
  await page.locator('#record').click();
  const result = await page.evaluate(async () => {
    const { TAIL_S } = await import('/src/render.js');
    const rec = window.pianoGenie.recording;
    const wav = await rec.wavFile();
    const view = new DataView(wav.buffer), rate = view.getUint32(24, true), channels = view.getUint16(22, true);
    const frames = view.getUint32(40, true) / (2 * channels);
    const rms = (t0, t1) => {
      let sum = 0, n = 0;
      for (let i = Math.max(0, Math.round(t0 * rate)); i < Math.min(frames, Math.round(t1 * rate)); i++, n++) {
        const x = view.getInt16(44 + 2 * channels * i, true) / 32768;
        sum += x * x;
      }
      return Math.sqrt(sum / Math.max(1, n));
    };
    const onsets = rec.notes.map((n) => n.start);
    return { rate, frames, expected: Math.ceil((rec.duration + TAIL_S) * rate), onsets, duration: rec.duration,
      levels: onsets.map((t) => [rms(t - 0.04, t - 0.002), rms(t + 0.002, t + 0.12)]), end: rms(rec.duration + TAIL_S - 0.1, rec.duration + TAIL_S) };
  });
  t.diagnostic(`${result.frames} frames at ${result.rate} Hz for ${result.duration.toFixed(3)} s; rms before -> after each onset: ${
    result.levels.map(([b, a]) => `${b.toFixed(4)}->${a.toFixed(4)}`).join(', ')}`);
  assert.equal(result.frames, result.expected, `${result.frames} frames for ${result.duration} s + the tail`);
  assert.equal(result.onsets.length, 5);
  for (const [i, [before, after]] of result.levels.entries()) {
    assert.ok(after > before * 1.5 && after > 0.005, `onset ${i} at ${result.onsets[i].toFixed(3)} s: rms ${before.toFixed(4)} -> ${after.toFixed(4)}`);
  }
  // The download, and replay (a source on the live context, stopped by a second click).
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#download-audio').click()]);
  assert.match(download.suggestedFilename(), /^pianogenie-.*\.wav$/);
  await page.locator('#replay').click();
  await page.waitForFunction(() => document.querySelector('#replay').getAttribute('aria-pressed') === 'true');
  await page.locator('#replay').click();
  assert.equal(await page.locator('#replay').getAttribute('aria-pressed'), 'false');
});

test('no console errors, page errors or failed requests', { skip }, () => {
  assert.deepEqual(problems, []);
});
