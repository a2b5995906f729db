// The served app in real headless Chromium, driven as a player would: real key, pointer and touch
// events and a fake Web MIDI device. Every button plays and lights a key; held notes stay held; Space
// is the pedal and never a page control; the on-screen pedal and CC64 sustain; scales, look-ahead,
// trails, MIDI out (channel, mute), the latency readout, accessibility; recording with the pedal.
// Saves test-artifacts/app.png (a chord with look-ahead and trails) and settings.png.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { ARTIFACTS, FAKE_MIDI, launchChromium, skipBrowser as skip, startServer, waitReady, watchProblems } from './browser_helpers.js';
import { exportRandomModel } from './fixtures.js';

const KEYS = [['Digit1', 'KeyA'], ['Digit2', 'KeyS'], ['Digit3', 'KeyD'], ['Digit4', 'KeyF'],
  ['Digit5', 'KeyJ'], ['Digit6', 'KeyK'], ['Digit7', 'KeyL'], ['Digit8', 'Semicolon']];
const COLORS = ['#EE2B29', '#ff9800', '#ffff00', '#c6ff00', '#00e5ff', '#2979ff', '#651fff', '#d500f9'];

let server, browser, page;
const problems = []; // console errors, page errors, failed requests

before(async () => {
  if (skip) return;
  let url;
  // with a velocity head: keyboard and pointer presses play its velocity
  ({ server, url } = await startServer(exportRandomModel(1, 16)));
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1280, height: 640 }, acceptDownloads: true, hasTouch: true });
  page.setDefaultTimeout(10000);
  watchProblems(page, problems);
  await page.addInitScript(FAKE_MIDI);
  await page.goto(url);
  await waitReady(page);
});

after(async () => {
  if (browser) await browser.close();
  if (server) server.kill();
});

const total = () => page.evaluate(() => window.pianoGenie.log.total);
const since = (n) => page.evaluate((m) => window.pianoGenie.log.since(m), n);
const ofType = (events, type) => events.filter((e) => e.type === type);
const litKeys = () => page.evaluate(() => [...document.querySelectorAll('.key.on')].map((k) => Number(k.dataset.key)));
const midiSent = () => page.evaluate(() => window.__midiSent.splice(0));
const centre = async (sel) => {
  const box = await page.locator(sel).boundingBox();
  return { x: box.x + box.width / 2, y: box.y + box.height / 2 };
};
async function openSettings(open = true) {
  if ((await page.locator('#settings').isHidden()) === open) await page.locator('#settings-toggle').click();
}

async function checkPress(button, down, up) {
  const n = await total();
  await down();
  const on = await since(n);
  assert.equal(on.length, 1, `button ${button}: expected one note-on, got ${JSON.stringify(on)}`);
  assert.equal(on[0].type, 'on');
  assert.equal(on[0].button, button);
  assert.ok(on[0].key >= 0 && on[0].key < 88 && on[0].pitch === on[0].key + 21);
  assert.deepEqual(await litKeys(), [on[0].key], 'the key played lights up (and only it)');
  assert.ok(await page.locator(`.genie-button[data-button="${button}"].down`).count(), 'button shows as down');
  await up();
  const off = await since(n + 1);
  assert.deepEqual(off.map((e) => [e.type, e.key]), [['off', on[0].key], ['sound-off', on[0].key]], 'release ends the note');
  assert.deepEqual(await litKeys(), []);
}

test('first visit: the explanation shows, keys wait for it; "?" brings it back; seen, it stays away', { skip }, async () => {
  assert.equal(await page.locator('#help').getAttribute('open'), '');
  assert.match(await page.locator('#help').textContent(), /Left buttons play low, right buttons high/);
  const n = await total();
  await page.keyboard.press('Digit1');
  assert.equal(await total(), n, 'no note while the explanation is up');
  await page.locator('#help-close').click();
  assert.equal(await page.locator('#help').getAttribute('open'), null);
  // (samples first: a reload aborts the requests still in flight)
  await page.waitForFunction(() => document.querySelector('#sound').textContent === 'sampled piano');
  await page.reload();
  await waitReady(page);
  assert.equal(await page.locator('#help').getAttribute('open'), null, 'not shown again after it was dismissed');
  await page.locator('#help-open').click();
  assert.equal(await page.locator('#help').getAttribute('open'), '');
  await page.keyboard.press('Escape');
  assert.equal(await page.locator('#help').getAttribute('open'), null);
});

test('the app loads the exported model', { skip }, async () => {
  const state = await page.evaluate(() => ({ error: window.pianoGenie.error, ready: window.pianoGenie.ready,
    keys: document.querySelectorAll('.key').length, buttons: document.querySelectorAll('.genie-button').length }));
  assert.deepEqual(state, { error: null, ready: true, keys: 88, buttons: 8 });
});

test('each button by key (both rows) and by click plays and lights a key', { skip }, async () => {
  const n0 = await total();
  for (let b = 0; b < 8; b++) {
    for (const code of KEYS[b]) {
      await checkPress(b, () => page.keyboard.down(code), () => page.keyboard.up(code));
    }
    const { x, y } = await centre(`.genie-button[data-button="${b}"]`);
    await page.mouse.move(x, y);
    await checkPress(b, () => page.mouse.down(), () => page.mouse.up());
  }
  const velocities = ofType(await since(n0), 'on').map((e) => e.velocity);
  assert.ok(velocities.every((v) => Number.isInteger(v) && v >= 1 && v <= 127), `velocities ${velocities}`);
  assert.ok(new Set(velocities).size > 1, `the model's velocities, not a constant: ${velocities}`);
});

test('the soft and loud velocity layers load after the first press', { skip }, async () => {
  await page.waitForFunction(() => window.pianoGenie.velocityLayers.length === 2, null, { timeout: 60000 });
  assert.deepEqual(await page.evaluate(() => window.pianoGenie.velocityLayers), [4, 15]);
  assert.equal(await page.locator('#sound').textContent(), 'sampled piano, 3 velocity layers');
});

test('a note between two loaded layers starts both at once, at equal-power gains; its note-off stops both', { skip }, async () => {
  await page.waitForFunction(() => window.pianoGenie.samplesLoaded, null, { timeout: 60000 });
  const r = await page.evaluate(async () => {
    const { player, piano } = window.pianoGenie;
    const { layerMix, partLevel } = await import('/src/dynamics.js');
    const proto = AudioBufferSourceNode.prototype, [start, stop] = [proto.start, proto.stop], calls = [];
    const param = AudioParam.prototype, setValueAtTime = param.setValueAtTime, levels = new Map(); // AudioParam -> value set
    param.setValueAtTime = function (value) { levels.set(this, value); return setValueAtTime.apply(this, arguments); };
    proto.start = function (when) { calls.push(['start', this, when]); return start.apply(this, arguments); };
    proto.stop = function (when) { calls.push(['stop', this, when]); return stop.apply(this, arguments); };
    try {
      const pitch = player.buttonDown(3, 'layer-test', 52) + 21; // a controller's velocity 52: between v4 (28) and v10 (76)
      const voice = piano.voices.get(pitch);
      const srcs = voice.parts.map((p) => p.src);
      const ended = Promise.all(srcs.map((s) => new Promise((resolve) => s.addEventListener('ended', resolve))));
      const layerOf = (src) => [[10, piano.samples], [4, piano.layers.get(4)], [15, piano.layers.get(15)]]
        .find(([, m]) => [...m.values()].includes(src.buffer))[0];
      const started = calls.filter((c) => c[0] === 'start');
      const out = {
        layers: srcs.map(layerOf), startedAt: started.map((c) => c[2]), startedSrcs: started.every((c) => srcs.includes(c[1])),
        gains: voice.parts.map((p) => levels.get(p.gain.gain)), expected: layerMix(52, [10, 4, 15]).map((m) => partLevel(52, m)),
      };
      await new Promise((resolve) => setTimeout(resolve, 100));
      player.buttonUp('layer-test');
      const stopped = calls.filter((c) => c[0] === 'stop');
      out.stopped = stopped.length === 2 && srcs.every((s) => stopped.some((c) => c[1] === s));
      out.ended = await Promise.race([ended.then(() => true), new Promise((resolve) => setTimeout(() => resolve(false), 3000))]);
      out.voiceLeft = piano.voices.has(pitch);
      return out;
    } finally {
      Object.assign(proto, { start, stop });
      param.setValueAtTime = setValueAtTime;
    }
  });
  assert.deepEqual(r.layers, [4, 10], 'the two layers around velocity 52 (v4 and v10)');
  assert.ok(r.startedSrcs && r.startedAt.length === 2 && r.startedAt[0] === r.startedAt[1], `both start at one instant: ${r.startedAt}`);
  r.gains.forEach((g, i) => assert.ok(Math.abs(g - r.expected[i]) < 1e-6, `gains ${r.gains} vs ${r.expected}`));
  assert.ok(r.stopped, 'the note-off stops both sources');
  assert.ok(r.ended, 'both sources end');
  assert.equal(r.voiceLeft, false, 'the voice is released once both have ended');
});

test('multi-touch: two fingers hold two buttons at once, each release ends its own note', { skip }, async () => {
  const [p0, p6] = [await centre('.genie-button[data-button="0"]'), await centre('.genie-button[data-button="6"]')];
  const cdp = await page.context().newCDPSession(page);
  const touch = (type, points) => cdp.send('Input.dispatchTouchEvent', { type, touchPoints: points });
  const n = await total();
  await touch('touchStart', [{ ...p0, id: 1 }]);
  await touch('touchStart', [{ ...p0, id: 1 }, { ...p6, id: 2 }]);
  await page.waitForFunction((m) => window.pianoGenie.log.total >= m + 2, n);
  const on = await since(n);
  assert.deepEqual(on.map((e) => [e.type, e.button]), [['on', 0], ['on', 6]]);
  assert.equal(await page.locator('.genie-button.down').count(), 2);
  await touch('touchEnd', [{ ...p6, id: 2 }]); // lift finger 2; finger 1 stays down
  await page.waitForFunction((m) => window.pianoGenie.log.total >= m + 3, n);
  assert.deepEqual(ofType(await since(n + 2), 'off').map((e) => [e.button, e.key]), [[6, on[1].key]]);
  assert.equal(await page.locator('.genie-button.down').count(), 1);
  await touch('touchEnd', [{ ...p0, id: 1 }]);
  await page.waitForFunction((m) => window.pianoGenie.log.total >= m + 6, n);
  assert.deepEqual(ofType(await since(n + 3), 'off').map((e) => [e.button, e.key]), [[0, on[0].key]]);
  await cdp.detach();
});

test('temperature 0 after reset is deterministic (argmax)', { skip }, async () => {
  await page.locator('#temperature').fill('0');
  const play = async () => {
    await page.locator('#reset').click();
    const n = await total();
    for (const code of ['Digit1', 'Digit5', 'Digit8', 'Digit3', 'Digit3']) await page.keyboard.press(code);
    return ofType(await since(n), 'on').map((e) => e.key);
  };
  const first = await play();
  assert.equal(first.length, 5);
  assert.deepEqual(await play(), first);
  await page.locator('#temperature').fill('0.25');
});

test('MIDI: connect, choose an output and a channel; notes go out there; the built-in piano can be muted', { skip }, async () => {
  await openSettings();
  await page.locator('#midi-connect').click();
  await page.waitForFunction(() => !document.querySelector('#midi-output').hidden);
  assert.match(await page.locator('#midi-info').textContent(), /Fake Keys/);
  assert.ok(await page.locator('#midi-channel').isHidden(), 'no channel to pick before an output is chosen');
  await page.locator('#midi-output').selectOption('fake-out');
  await page.locator('#midi-channel').selectOption('2'); // channel 3
  await midiSent();
  await page.keyboard.press('Digit4');
  const [on] = ofType(await since((await total()) - 3), 'on');
  assert.deepEqual(await midiSent(), [[0x92, on.pitch, on.velocity], [0x82, on.pitch, 0]]);
  // Sounding twice (synth + built-in piano) can be switched off, and on again.
  const voicesAfterPress = async (code) => {
    await page.keyboard.down(code);
    const n = await page.evaluate(() => window.pianoGenie.piano.voices.size);
    await page.keyboard.up(code);
    return n;
  };
  assert.equal(await voicesAfterPress('Digit5'), 1);
  await page.locator('#mute-piano').check();
  assert.equal(await page.evaluate(() => window.pianoGenie.piano.muted), true);
  assert.equal(await voicesAfterPress('Digit5'), 0, 'muted: the built-in piano plays nothing');
  assert.equal((await midiSent()).filter((m) => (m[0] & 0xf0) === 0x90).length, 2, 'MIDI out still plays');
  await page.locator('#mute-piano').uncheck();
  assert.equal(await voicesAfterPress('Digit5'), 1);
  await page.locator('#midi-channel').selectOption('0');
  await openSettings(false);
  await midiSent();
});

test('held notes: two buttons on one key; the first release does not silence the second (piano, MIDI out, recording)', { skip }, async () => {
  await openSettings();
  await page.locator('#range-low').selectOption('60');
  await page.locator('#range-high').selectOption('60'); // one key left: every press decodes to C4
  await openSettings(false);
  await page.locator('#record').click();
  await midiSent();
  const n = await total();
  await page.keyboard.down('Digit1');
  await page.keyboard.down('Digit2');
  await page.waitForTimeout(150);
  await page.keyboard.up('Digit1');
  const mid = await since(n);
  assert.deepEqual(mid.map((e) => [e.type, e.button, e.pitch]), [['on', 0, 60], ['on', 1, 60]]);
  assert.equal(mid[1].restrike, true, 'a re-struck held key re-strikes');
  assert.deepEqual(await litKeys(), [39], 'still lit: button 2 holds it');
  assert.equal(await page.evaluate(() => window.pianoGenie.piano.voices.has(60)), true, 'still sounding');
  await page.waitForTimeout(400);
  await page.keyboard.up('Digit2');
  assert.deepEqual((await since(n + 2)).map((e) => [e.type, e.button, e.pitch]), [['off', 1, 60], ['sound-off', undefined, 60]]);
  assert.deepEqual(await midiSent(), [[0x90, 60, mid[0].velocity], [0x80, 60, 0], [0x90, 60, mid[1].velocity], [0x80, 60, 0]],
    'MIDI out: the re-strike releases first; one note-off, at the last release');
  assert.deepEqual(await litKeys(), [], 'both released: the key goes dark');
  await page.locator('#record').click();
  const notes = await page.evaluate(() => window.pianoGenie.recording.notes);
  assert.equal(notes.length, 2);
  assert.ok(notes[1].end - notes[1].start >= 0.5, `the second note lasts until its own release (${JSON.stringify(notes)})`);
  await openSettings();
  await page.locator('#range-low').selectOption('21');
  await page.locator('#range-high').selectOption('108');
  await openSettings(false);
});

test('Space is the pedal and never a page control: it does not stop a recording', { skip }, async () => {
  await page.locator('#record').click(); // focus is on Record now
  assert.equal(await page.locator('#record').getAttribute('aria-pressed'), 'true');
  const n = await total();
  await page.keyboard.press('Digit3');
  await page.keyboard.press('Space');
  await page.keyboard.press('Space');
  assert.equal(await page.locator('#record').getAttribute('aria-pressed'), 'true', 'still recording');
  assert.deepEqual(ofType(await since(n), 'pedal').map((e) => e.down), [true, false, true, false]);
  await page.locator('#record').click();
  assert.equal(await page.locator('#record').getAttribute('aria-pressed'), 'false');
});

test('sustain pedal: Space, the on-screen pedal and MIDI CC64 hold released notes; MIDI out and the recording get CC64', { skip }, async () => {
  await openSettings();
  await page.locator('#midi-output').selectOption('fake-out');
  await openSettings(false);
  await page.locator('#record').click();
  await midiSent();
  const sustain = async (down, up, label) => {
    const n = await total();
    await down();
    await page.keyboard.press('Digit6');
    const held = await since(n);
    assert.deepEqual(held.map((e) => e.type), ['pedal', 'on', 'off'], `${label}: released, but no sound-off`);
    assert.equal(await page.locator('#pedal').getAttribute('aria-pressed'), 'true');
    await up();
    assert.deepEqual((await since(n + 3)).map((e) => [e.type, e.key ?? e.down]), [['pedal', false], ['sound-off', held[1].key]],
      `${label}: pedal up stops it`);
    assert.equal(await page.locator('#pedal').getAttribute('aria-pressed'), 'false');
    return held[1];
  };
  const p1 = await sustain(() => page.keyboard.down('Space'), () => page.keyboard.up('Space'), 'Space');
  const cdp = await page.context().newCDPSession(page);
  const pedalAt = await centre('#pedal');
  const p2 = await sustain(() => cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: [{ ...pedalAt, id: 7 }] }),
    () => cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] }), 'on-screen pedal');
  await cdp.detach();
  const p3 = await sustain(() => page.evaluate(() => window.__midiIn([0xb0, 64, 127])),
    () => page.evaluate(() => window.__midiIn([0xb0, 64, 0])), 'MIDI CC64');
  // A MIDI controller's keys play too, with their velocity.
  const n = await total();
  await page.evaluate(() => { window.__midiIn([0x90, 64, 101]); window.__midiIn([0x80, 64, 0]); });
  const [e] = ofType(await since(n), 'on');
  assert.deepEqual([e.button, e.velocity], [2, 101]);
  const sent = await midiSent();
  const expected = [];
  for (const p of [p1, p2, p3]) expected.push([0xb0, 64, 127], [0x90, p.pitch, p.velocity], [0x80, p.pitch, 0], [0xb0, 64, 0]);
  assert.deepEqual(sent.slice(0, 12), expected, 'MIDI out forwards the pedal around the notes');
  // "Genie dynamics": the controller's velocity is no longer passed to the session, which plays its own.
  await page.evaluate(() => {
    const s = window.pianoGenie.session, press = s.press.bind(s);
    window.__given = [];
    s.press = (...args) => { window.__given.push(args[4] ?? null); return press(...args); };
  });
  await openSettings();
  await page.locator('#genie-dynamics').check();
  await openSettings(false);
  await page.evaluate(() => { window.__midiIn([0x90, 64, 101]); window.__midiIn([0x80, 64, 0]); });
  await page.evaluate(() => { window.__midiIn([0x90, 65, 20]); window.__midiIn([0x80, 65, 0]); });
  await openSettings();
  await page.locator('#genie-dynamics').uncheck();
  await openSettings(false);
  await page.evaluate(() => { window.__midiIn([0x90, 64, 101]); window.__midiIn([0x80, 64, 0]); });
  assert.deepEqual(await page.evaluate(() => window.__given), [null, null, 101]);
  const genie = ofType(await since(n), 'on').slice(1).map((ev) => ev.velocity);
  assert.ok(genie.every((v) => Number.isInteger(v) && v >= 1 && v <= 127) && genie[2] === 101, `velocities ${genie}`);
  await page.evaluate(() => { delete window.pianoGenie.session.press; }); // the prototype's again
  await page.locator('#record').click();
  const bytes = await page.evaluate(() => Array.from(window.pianoGenie.midiFile()));
  const cc = [];
  for (let i = 22; i < bytes.length - 2; i++) if (bytes[i] === 0xb0 && bytes[i + 1] === 64) cc.push(bytes[i + 2]);
  assert.deepEqual(cc, [127, 0, 127, 0, 127, 0], 'the file keeps the pedal');
  await openSettings();
  await page.locator('#midi-output').selectOption('');
  await openSettings(false);
});

test('scales: D minor, custom notes and a range; every note played is allowed, other keys dimmed', { skip }, async () => {
  await page.locator('#temperature').fill('1'); // adventurous: would leave the scale if it could
  const playSome = async (count) => {
    const n = await total();
    for (let i = 0; i < count; i++) await page.keyboard.press(KEYS[(i * 3) % 8][i % 2]);
    return ofType(await since(n), 'on').map((e) => e.pitch);
  };
  const free = await playSome(40);
  await openSettings();
  await page.locator('#scale-tonic').selectOption('2'); // D
  await page.locator('#scale-type').selectOption('natural minor');
  const dMinor = new Set([2, 4, 5, 7, 9, 10, 0]);
  const inD = Array.from({ length: 88 }, (_, k) => k + 21).filter((p) => dMinor.has(p % 12)).length; // 52
  assert.equal(await page.locator('.key.out').count(), 88 - inD, 'the keys outside D minor are dimmed');
  assert.match(await page.locator('#scale-info').textContent(), new RegExp(`D natural minor.*: ${inD} keys`));
  await openSettings(false);
  const inScale = await playSome(40);
  assert.ok(free.some((p) => !dMinor.has(p % 12)), 'unconstrained, notes leave the scale');
  assert.ok(inScale.every((p) => dMinor.has(p % 12)), `all in D minor: ${inScale}`);

  await openSettings();
  await page.locator('#scale-type').selectOption('custom');
  for (const pc of [2, 5, 9, 11]) await page.locator(`#scale-custom input[value="${pc}"]`).uncheck(); // C E G left
  await page.locator('#range-low').selectOption('48');
  await page.locator('#range-high').selectOption('72');
  await openSettings(false);
  const custom = await playSome(30);
  assert.ok(custom.every((p) => [0, 4, 7].includes(p % 12) && p >= 48 && p <= 72), `C E G in C3..C5: ${custom}`);
  await openSettings();
  await page.locator('#scale-type').selectOption('chromatic');
  await page.locator('#range-low').selectOption('21');
  await page.locator('#range-high').selectOption('108');
  await openSettings(false);
  assert.equal(await page.locator('.key.out').count(), 0);
  await page.locator('#temperature').fill('0.25');
});

/** Each look-ahead mark on screen: key, colour, its drawn width as a share of its key's (inside the border), its fill's alpha. */
const aheadMarks = () => page.evaluate(() => [...document.querySelectorAll('.key.next .ahead')].map((mark) => {
  const el = mark.closest('.key'), cs = getComputedStyle(el);
  const inner = (e) => e.getBoundingClientRect().width - parseFloat(cs.borderLeftWidth) - parseFloat(cs.borderRightWidth);
  const fill = getComputedStyle(mark).backgroundColor;
  const alpha = fill.includes('/') ? Number(fill.split('/')[1].replace(')', '')) : (fill.startsWith('rgba') ? Number(fill.split(',')[3].replace(')', '')) : 1);
  return { button: Number(mark.dataset.button), key: Number(el.dataset.key), color: mark.style.getPropertyValue('--next'),
    width: mark.getBoundingClientRect().width / inner(el), alpha, left: mark.getBoundingClientRect().left, keyPx: inner(el) };
}).sort((a, b) => a.button - b.button));
const frames = (n) => page.evaluate((k) => new Promise((resolve) => {
  const step = () => (k-- > 0 ? requestAnimationFrame(step) : resolve());
  step();
}), n);

test('look-ahead: every button marks the key a press now would play, in its colour, sized by its velocity; off clears', { skip }, async () => {
  await openSettings();
  await page.locator('#lookahead').check();
  await openSettings(false);
  const seen = new Set();
  let moved = 0, ahead1 = 0;
  for (const code of ['Digit2', 'Digit7', 'Digit4', 'Digit1', 'Digit8']) {
    await page.keyboard.press(code);
    // The clock held still at three moments after the press: the marks follow it (asked each frame).
    for (const after of [0.05, 0.3, 0.9]) {
      await page.evaluate((dt) => {
        const p = window.pianoGenie.player;
        p.__now = p.__now || p.now;
        p.now = () => p.lastPress + dt;
      }, after);
      await frames(3);
      const marks = await aheadMarks();
      // The session's own look-ahead for the time the marks were drawn for (when their frame shows:
      // about a frame after the clock's now): it changes nothing, so it gives the same keys and velocities.
      const { ahead, velocities, looks, lead } = await page.evaluate(async () => {
        const { trailLook } = await import('/src/trails.js');
        const { player, session, aheadAt } = window.pianoGenie;
        const keys = player.lookAhead(aheadAt), v = session.aheadVelocities;
        return { ahead: keys, velocities: v, looks: v.map((x) => trailLook(x)), lead: aheadAt - player.now() };
      });
      assert.ok(lead <= 0.06, `marks drawn for ${lead} s after now: at most a few frames`);
      if (lead > 0.004) ahead1++;
      assert.equal(velocities.length, 8, 'the model has a velocity head: each mark has a velocity');
      assert.deepEqual(marks.map((m) => [m.button, m.key, m.color]), ahead.map((k, b) => [b, k, COLORS[b]]),
        'one mark per button, on its key, even where two buttons share one');
      for (const m of marks) {
        const share = ahead.filter((k) => k === m.key).length;
        const expected = Math.max((0.76 * looks[m.button].width) / share, 3 / m.keyPx); // CSS min-width: 3px
        assert.ok(Math.abs(m.width - expected) < 0.02, `button ${m.button}: mark ${m.width} of its key, expected ${expected}`);
        assert.ok(Math.abs(m.alpha - looks[m.button].alpha) < 0.01, `button ${m.button}: fill alpha ${m.alpha}`);
      }
      velocities.forEach((v) => seen.add(v));
      const early = await page.evaluate(() => {
        const { player, session } = window.pianoGenie;
        return [player.lookAhead(player.lastPress + 0.05), session.aheadVelocities];
      });
      moved += after > 0.05 && JSON.stringify([ahead, velocities]) !== JSON.stringify(early) ? 1 : 0;
    }
    await page.evaluate(() => { const p = window.pianoGenie.player; p.now = p.__now; });
  }
  assert.ok(seen.size > 1, `the marks' velocities vary: ${[...seen]}`);
  assert.ok(ahead1 > 0, 'the marks are drawn for when their frame shows, not for the callback\'s moment');
  assert.ok(moved > 0, 'what a press plays (key or velocity) changes as time passes (else the check above would hold trivially)');
  // Two buttons on one key: both marks, side by side, lower button left. Soft and loud marks side by
  // side (two white keys): the loud one wider and more solid; without a velocity head, a full mark.
  // (once the app's own marks have settled: they are redrawn each frame until then)
  await page.waitForFunction(() => window.pianoGenie.player.now() > window.pianoGenie.player.aheadSettlesAt + 0.05);
  await frames(2);
  const drawn = async (keys, velocities) => {
    await page.evaluate(([k, v]) => window.pianoGenie.keyboard.showAhead(k, ['#EE2B29', '#2979ff', '#651fff'], v), [keys, velocities]);
    return aheadMarks();
  };
  const shared = await drawn([39, 39, 41], null);
  assert.deepEqual(shared.map((m) => m.key), [39, 39, 41]);
  assert.ok(shared[0].left < shared[1].left && Math.abs(shared[0].width - 0.38) < 0.02, JSON.stringify(shared));
  const [soft, loud] = await drawn([39, 41], [20, 120]);
  assert.ok(loud.width > soft.width * 1.5 && loud.alpha > soft.alpha + 0.3, JSON.stringify({ soft, loud }));
  const plain = await drawn([39, 41], null);
  assert.ok(plain.length === 2 && plain.every((m) => Math.abs(m.width - 0.76) < 0.02 && m.alpha === 1), JSON.stringify(plain));
  await openSettings();
  await page.locator('#lookahead').uncheck();
  await openSettings(false);
  assert.equal(await page.locator('.key.next').count(), 0);
});

test('trails: notes rise on the canvas, the DOM does not grow, the toggle hides them', { skip }, async () => {
  const nodes = () => page.evaluate(() => document.getElementsByTagName('*').length);
  const painted = () => page.evaluate(() => {
    const c = document.querySelector('#trails');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) n += d[i] > 0;
    return n;
  });
  const before = await nodes();
  await page.keyboard.down('Digit5');
  await page.waitForTimeout(300);
  assert.ok((await painted()) > 50, 'a held note draws a trail');
  await page.keyboard.up('Digit5');
  for (let i = 0; i < 150; i++) await page.keyboard.press(KEYS[i % 8][0]);
  assert.equal(await nodes(), before, 'no DOM growth');
  await page.evaluate(() => { for (let i = 0; i < 1200; i++) { window.pianoGenie.player.buttonDown(i % 8, 'bulk'); window.pianoGenie.player.buttonUp('bulk'); } });
  const log = await page.evaluate(() => ({ held: window.pianoGenie.log.events.length, total: window.pianoGenie.log.total }));
  assert.ok(log.held <= 2000 && log.total > 3600, `the debug record is bounded: ${JSON.stringify(log)}`);
  await openSettings();
  await page.locator('#trails-toggle').uncheck();
  await openSettings(false);
  await page.keyboard.down('Digit5');
  await page.waitForTimeout(200);
  assert.equal(await painted(), 0, 'trails off: nothing drawn');
  await page.keyboard.up('Digit5');
  await openSettings();
  await page.locator('#trails-toggle').check();
  await openSettings(false);
});

test('trails: a louder note draws a wider, brighter trail', { skip }, async () => {
  const looks = await page.evaluate(async () => {
    const { Trails } = await import('./src/trails.js');
    const looks = [];
    for (const velocity of [20, 120]) {
      const canvas = document.createElement('canvas');
      canvas.style.cssText = 'position: fixed; left: 0; top: 0; width: 40px; height: 40px';
      document.body.appendChild(canvas);
      const trails = new Trails(canvas, { keyX: () => ({ x: 0, w: 40 }) }); // one 40 px key
      trails.noteOn(0, '#ffffff', velocity);
      trails.draw(performance.now() + 200);
      const { width, height, data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
      const row = (height - 1) * width * 4; // the bottom row: the held note's trail meets the key there
      let columns = 0, alpha = 0;
      for (let x = 0; x < width; x++) {
        const a = data[row + 4 * x + 3];
        columns += a > 0;
        alpha = Math.max(alpha, a);
      }
      cancelAnimationFrame(trails.frame);
      canvas.remove();
      looks.push({ velocity, columns, alpha });
    }
    return looks;
  });
  const [soft, loud] = looks;
  assert.ok(soft.columns > 0 && loud.columns > soft.columns, JSON.stringify(looks));
  assert.ok(loud.alpha > soft.alpha, JSON.stringify(looks));
});

test('latency readout: press -> sound (decode + audio output path) as a steady median', { skip }, async () => {
  const texts = [];
  for (let i = 0; i < 12; i++) {
    await page.keyboard.press(KEYS[i % 8][0]);
    texts.push(await page.locator('#latency').textContent());
  }
  await page.waitForTimeout(600);
  const { median, audioMs, decode } = await page.evaluate(() => ({ median: window.pianoGenie.latency.median(),
    audioMs: window.pianoGenie.piano.outputLatency * 1000, decode: window.pianoGenie.player.decodeMs }));
  assert.equal(await page.locator('#latency').textContent(), `${median.toFixed(1)} ms`);
  assert.ok(median >= audioMs && median < audioMs + 20, `median ${median} = decode (~${decode} ms) + audio path ${audioMs} ms`);
  assert.ok(new Set(texts).size <= 3, `the readout changes at most twice a second, not with every press: ${texts}`);
});

test('accessibility: Enter plays a focused button; labels say which button; the keyboard is described; text contrast >= 4.5', { skip }, async () => {
  const labels = await page.locator('.genie-button').evaluateAll((els) => els.map((e) => e.getAttribute('aria-label')));
  assert.match(labels[0], /^button 1, lowest/);
  assert.match(labels[7], /^button 8, highest/);
  assert.equal(new Set(labels).size, 8);
  await page.locator('.genie-button[data-button="3"]').focus();
  const n = await total();
  await page.keyboard.down('Enter');
  assert.deepEqual((await since(n)).map((e) => [e.type, e.button]), [['on', 3]]);
  await page.keyboard.up('Enter');
  assert.deepEqual(ofType(await since(n), 'off').map((e) => e.button), [3]);
  const desc = await page.evaluate(() => {
    const kb = document.querySelector('#keyboard');
    return [kb.getAttribute('role'), kb.getAttribute('aria-label'), document.getElementById(kb.getAttribute('aria-describedby')).textContent];
  });
  assert.equal(desc[0], 'img');
  assert.match(desc[1], /88 keys/);
  assert.match(desc[2], /lights up in the colour of the button/);
  await openSettings(); // its texts are checked too
  const low = await page.evaluate(contrastFailures);
  await openSettings(false);
  await page.locator('#help-open').click(); // and the explanation's
  low.push(...await page.evaluate(contrastFailures));
  await page.keyboard.press('Escape');
  assert.deepEqual(low, [], 'every visible text meets WCAG AA (4.5:1) against what is behind it');
});

// In the page: visible texts whose contrast with their (composited) background is under 4.5:1.
function contrastFailures() {
  const parse = (c) => { const m = c.match(/[\d.]+/g).map(Number); return { r: m[0], g: m[1], b: m[2], a: m.length > 3 ? m[3] : 1 }; };
  const over = (top, bottom) => ({ r: top.r * top.a + bottom.r * (1 - top.a), g: top.g * top.a + bottom.g * (1 - top.a),
    b: top.b * top.a + bottom.b * (1 - top.a), a: 1 });
  const lum = (c) => [c.r, c.g, c.b].map((v) => v / 255).map((v) => (v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4))
    .reduce((s, v, i) => s + v * [0.2126, 0.7152, 0.0722][i], 0);
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const bg = parse(getComputedStyle(e).backgroundColor);
      if (bg.a > 0) layers.push(bg);
      if (bg.a >= 1) break;
    }
    return layers.reverse().reduce((acc, layer) => over(layer, acc), { r: 0, g: 0, b: 0, a: 1 });
  };
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    const text = [...el.childNodes].filter((n) => n.nodeType === 3).map((n) => n.textContent.trim()).join('');
    if (!text || el.closest('[hidden], .sr-only, :disabled') || !el.getClientRects().length) continue;
    const style = getComputedStyle(el);
    if (style.visibility !== 'visible' || style.display === 'none') continue;
    const bg = background(el);
    const fg = over(parse(style.color), bg);
    const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    const ratio = (a + 0.05) / (b + 0.05);
    if (ratio < 4.5) out.push(`${el.tagName}#${el.id}.${el.className} "${text.slice(0, 20)}": ${ratio.toFixed(2)}`);
  }
  return out;
}

test('record, then download a MIDI file; screenshots', { skip }, async () => {
  await page.locator('#record').click();
  for (const code of ['Digit2', 'Digit4', 'Digit6']) await page.keyboard.press(code);
  await openSettings();
  await page.locator('#lookahead').check();
  await openSettings(false);
  // Hold a chord for the screenshot: three buttons down, their keys lit, trails rising.
  for (const code of ['Digit1', 'Digit5', 'Digit8']) {
    await page.keyboard.down(code);
    await page.waitForTimeout(120);
  }
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
  await openSettings();
  await page.screenshot({ path: path.join(ARTIFACTS, 'settings.png') });
  await page.locator('#lookahead').uncheck();
  await openSettings(false);
});

test('no console errors, page errors or failed requests', { skip }, () => {
  assert.deepEqual(problems, []);
});
