// Phones and small screens, in headless Chromium: from 320x568 to 1920x1080, portrait and landscape,
// the 8 buttons stay in one row low -> high, the keyboard is at least 40 px tall with readable keys
// (a following range of >= 3 octaves on narrow screens), nothing overflows or scrolls, and nothing
// moves while playing. Saves test-artifacts/viewport-WxH.png (a chord held) for each size.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { ARTIFACTS, HELP_SEEN, launchChromium, skipBrowser as skip, startServer, waitReady, watchProblems } from './browser_helpers.js';
import { exportRandomModel } from './fixtures.js';

const SIZES = [[320, 568], [568, 320], [375, 667], [667, 375], [390, 844], [844, 390], [412, 915], [915, 412],
  [768, 1024], [1024, 768], [1280, 720], [1920, 1080]];

let server, browser, url;
const problems = [];

before(async () => {
  if (skip) return;
  ({ server, url } = await startServer(exportRandomModel(1)));
  browser = await launchChromium();
});

after(async () => {
  if (browser) await browser.close();
  if (server) server.kill();
});

// In the page: the geometry the checks need.
function measure() {
  const box = (el) => { const r = el.getBoundingClientRect(); return { x: r.x, y: r.y, w: r.width, h: r.height }; };
  const visible = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility === 'visible';
  const keyboard = document.querySelector('#keyboard');
  const kb = box(keyboard);
  const whites = [...document.querySelectorAll('.key.white')].map(box).filter((b) => b.x + b.w / 2 > kb.x && b.x + b.w / 2 < kb.x + kb.w);
  return {
    scroll: [document.documentElement.scrollWidth, document.documentElement.scrollHeight, innerWidth, innerHeight],
    buttons: [...document.querySelectorAll('.genie-button')].map(box),
    keyboard: kb,
    whiteWidth: whites.length ? whites[0].w : 0,
    whitesShown: whites.length,
    controls: [...document.querySelectorAll('#bar button, #bar input, #bar output, #pedal, footer > span')].filter(visible)
      .map((el) => ({ id: el.id || el.textContent.trim().slice(0, 12), ...box(el), clipped: el.scrollWidth > el.clientWidth + 1 && el.tagName === 'OUTPUT' })),
    stable: ['#bar', '#keyboard', '#buttons', '#pedal', 'footer', '.genie-button[data-button="0"]', '.genie-button[data-button="7"]']
      .map((s) => box(document.querySelector(s))),
  };
}

test('every viewport: one row of 8 buttons low -> high, keyboard >= 40 px, readable keys, no scroll, nothing moves', { skip }, async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  const page = await browser.newPage({ viewport: { width: SIZES[0][0], height: SIZES[0][1] }, hasTouch: true, isMobile: false });
  page.setDefaultTimeout(10000);
  watchProblems(page, problems);
  await page.addInitScript(HELP_SEEN);
  await page.goto(url);
  await waitReady(page);
  for (const [width, height] of SIZES) {
    const where = `${width}x${height}`;
    await page.setViewportSize({ width, height });
    await page.waitForTimeout(50); // resize observers
    const m = await page.evaluate(measure);
    const [sw, sh, iw, ih] = m.scroll;
    assert.ok(sw <= iw && sh <= ih, `${where}: the page scrolls (${sw}x${sh} in ${iw}x${ih})`);
    // Buttons: 8, one row, left to right = low to high, big enough to hit.
    assert.equal(m.buttons.length, 8);
    m.buttons.forEach((b, i) => {
      assert.ok(b.x >= 0 && b.y >= 0 && b.x + b.w <= width + 0.5 && b.y + b.h <= height + 0.5, `${where}: button ${i + 1} off screen`);
      assert.ok(b.w >= 28 && b.h >= 44, `${where}: button ${i + 1} is ${b.w.toFixed(0)}x${b.h.toFixed(0)} px`);
      if (i) {
        assert.ok(b.x >= m.buttons[i - 1].x + m.buttons[i - 1].w - 0.5, `${where}: button ${i + 1} not right of button ${i}`);
        assert.ok(Math.abs(b.y - m.buttons[0].y) < 1, `${where}: buttons not in one row`);
      }
    });
    // Keyboard: tall enough, on screen, readable (or following a readable range).
    assert.ok(m.keyboard.h >= 40, `${where}: keyboard ${m.keyboard.h} px tall`);
    assert.ok(m.keyboard.x >= 0 && m.keyboard.x + m.keyboard.w <= width + 0.5);
    assert.ok(m.whiteWidth >= 12, `${where}: white keys ${m.whiteWidth.toFixed(1)} px wide`);
    assert.ok(m.whitesShown >= 21, `${where}: only ${m.whitesShown} white keys shown (< 3 octaves)`);
    for (const c of m.controls) {
      assert.ok(c.x >= -0.5 && c.y >= -0.5 && c.x + c.w <= width + 0.5 && c.y + c.h <= height + 0.5,
        `${where}: ${c.id} sticks out (${JSON.stringify(c)})`);
      assert.ok(!c.clipped, `${where}: ${c.id} cut off`);
    }

    // Play: taps, keys, a chord; let the latency readout update. Nothing may move or resize.
    const cdp = await page.context().newCDPSession(page);
    for (let b = 0; b < 8; b++) {
      const bb = m.buttons[b], p = { x: bb.x + bb.w / 2, y: bb.y + bb.h / 2, id: b };
      await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: [p] });
      await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
    }
    await cdp.detach();
    for (const code of ['Digit8', 'Digit1', 'Digit4']) await page.keyboard.press(code);
    for (const code of ['Digit1', 'Digit4', 'Digit7']) await page.keyboard.down(code);
    await page.waitForTimeout(600);
    const after = await page.evaluate(measure);
    assert.deepEqual(after.stable, m.stable, `${where}: something moved while playing`);
    assert.deepEqual(after.scroll, m.scroll);
    await page.screenshot({ path: path.join(ARTIFACTS, `viewport-${where}.png`) });
    for (const code of ['Digit1', 'Digit4', 'Digit7']) await page.keyboard.up(code);
  }
  await page.close();
  assert.deepEqual(problems, []);
});

test('first press before the piano samples arrive: buttons play at once on the synth, loading shown', { skip }, async () => {
  const page = await browser.newPage({ viewport: { width: 390, height: 844 }, hasTouch: true });
  page.setDefaultTimeout(10000);
  const held = []; // sample requests held back until the test lets them through
  let released = false;
  await page.route('**/vendor/piano/*', (route) => (released ? route.continue() : held.push(route)));
  await page.addInitScript(HELP_SEEN);
  await page.goto(url);
  await waitReady(page);
  assert.match(await page.locator('#sound').textContent(), /^synth \(piano 0\/\d+\)$/, 'loading indicator');
  assert.ok(await page.locator('.genie-button').first().isVisible());
  const n = await page.evaluate(() => window.pianoGenie.log.total);
  await page.locator('.genie-button[data-button="2"]').tap();
  const state = await page.evaluate((m) => ({ on: window.pianoGenie.log.since(m).filter((e) => e.type === 'on').length,
    samples: window.pianoGenie.piano.samples.size }), n);
  assert.deepEqual(state, { on: 1, samples: 0 }, 'played with the synth, no sample loaded yet');
  await page.waitForFunction((k) => k > 0, held.length);
  released = true;
  while (held.length) await held.shift().continue();
  await page.waitForFunction(() => document.querySelector('#sound').textContent !== '' &&
    !document.querySelector('#sound').textContent.startsWith('synth ('));
  assert.equal(await page.locator('#sound').textContent(), 'sampled piano');
  await page.close();
});

test('what is on screen: the title and a whole status line, a usable slider, no key labels on touch, the explanation whole', { skip }, async () => {
  for (const [width, height, touch] of [[1280, 800, false], [390, 844, true], [844, 390, true], [320, 568, true]]) {
    const where = `${width}x${height}${touch ? ' touch' : ''}`;
    const context = await browser.newContext({ viewport: { width, height }, hasTouch: touch, isMobile: touch });
    const page = await context.newPage();
    await page.goto(url); // a first visit: the explanation opens
    await waitReady(page);
    const help = await page.evaluate(() => {
      const d = document.querySelector('#help');
      return { open: d.open, scroll: d.scrollHeight, client: d.clientHeight };
    });
    assert.ok(help.open && help.scroll <= help.client + 1, `${where}: the explanation scrolls (${help.scroll} > ${help.client})`);
    await page.locator('#help-close').click();
    const m = await page.evaluate(() => {
      const status = document.querySelector('#status'), h1 = document.querySelector('h1');
      const shown = (el) => el.getClientRects().length > 0 && getComputedStyle(el).display !== 'none';
      return { title: shown(h1), status: status.textContent, cut: status.scrollWidth > status.clientWidth + 1,
        slider: document.querySelector('#temperature').getBoundingClientRect().width,
        labels: [...document.querySelectorAll('.genie-button .label')].filter(shown).length };
    });
    assert.ok(m.title, `${where}: the title shows`);
    assert.ok(!m.cut, `${where}: the status "${m.status}" is cut`);
    assert.ok(/^Ready: \w/.test(m.status), `${where}: the status says how to play: ${m.status}`);
    assert.ok(m.slider >= (width <= 400 ? 150 : 90), `${where}: temperature slider ${m.slider} px`);
    assert.equal(m.labels, touch ? 0 : 8, `${where}: computer-key labels on the buttons`);
    await context.close();
  }
});
