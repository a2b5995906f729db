// The static site of `pianogenie build-site`, hosted as anyone would: Python's plain http.server on
// 127.0.0.1 under a sub-path. In headless Chromium: keys and clicks play, every request succeeds and
// stays on the site; the manifest parses and names existing icons; the service worker precaches
// what the first press needs and caches the samples fetched after it; offline, a reload still
// plays, with every sample, or with the nearest cached one where one is missing; a new build into
// the same folder plays on the next load (offline too, once its worker is in), fetches no unchanged
// sample and replaces the old app cache; a page of another build than the worker in control says
// to reload; /apps/genie (no slash) redirects. Saves test-artifacts/site-offline.png.

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, test } from 'node:test';

import { chromium } from 'playwright-core';

import { exportRandomModel, pythonExe } from './fixtures.js';
import { REPO_DIR, WEB_DIR } from './helpers.js';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM} (apt-get install chromium, or set $CHROMIUM)`;
const SUB_PATH = '/apps/genie/';
// Every wait is bounded, so a test that cannot finish fails naming what it waited on.
const TEST_MS = 180000;
const SETTLE_MS = 20000;
const WAIT_MS = 30000;
const opts = { skip, timeout: TEST_MS };

let server, browser, context, page, origin, siteUrl, out;
const inFlight = new Map(); // requests begun and not yet finished or failed -> when they began
let offline = false; // while the context is offline
const requests = []; // every request of the page and its service worker
const problems = []; // console errors, page errors, failed requests, HTTP errors; each with its test
let current = ''; // the test running
beforeEach((t) => { current = t.name; });
const problem = (text) => problems.push(`${text} (in "${current}")`);

// `force`: replace files the test itself edited (build-site refuses edited files without it)
function buildSite(seed, force = false) {
  execFileSync(pythonExe(), ['-m', 'pianogenie', 'build-site', out, '--model', exportRandomModel(seed), ...(force ? ['--force'] : [])],
    { cwd: REPO_DIR, stdio: ['ignore', 'ignore', 'inherit'], timeout: 120000 });
}

before(async () => {
  if (skip) return;
  const www = mkdtempSync(path.join(os.tmpdir(), 'pianogenie-www-'));
  out = path.join(www, ...SUB_PATH.split('/').filter(Boolean));
  buildSite(1);
  server = spawn(pythonExe(), ['-u', '-m', 'http.server', '0', '--bind', '127.0.0.1', '--directory', www],
    { stdio: ['ignore', 'pipe', 'ignore'] });
  origin = await new Promise((resolve, reject) => {
    let text = '';
    server.stdout.on('data', (d) => {
      text += d;
      const m = text.match(/port (\d+)/);
      if (m) resolve(`http://127.0.0.1:${m[1]}`);
    });
    server.on('exit', (code) => reject(new Error(`http.server exited with ${code}`)));
    setTimeout(() => reject(new Error('http.server named no port within 20 s')), 20000);
  });
  siteUrl = origin + SUB_PATH;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
      '--no-first-run', '--disable-component-update', '--disable-sync'],
  });
  context = await browser.newContext({ viewport: { width: 1280, height: 640 }, serviceWorkers: 'allow' });
  context.on('request', (r) => { requests.push(r.url()); inFlight.set(r, Date.now()); });
  context.on('requestfinished', (r) => inFlight.delete(r));
  context.on('requestfailed', (r) => {
    inFlight.delete(r);
    // Offline, the worker tries the network first for the app and model (then serves its cache).
    if (offline && r.failure()?.errorText === 'net::ERR_INTERNET_DISCONNECTED') return;
    problem(`request failed: ${r.url()} ${r.failure()?.errorText}`);
  });
  context.on('response', (r) => { if (r.status() >= 400) problem(`HTTP ${r.status()}: ${r.url()}`); });
  page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') problem(`console: ${m.text()}`); });
  page.on('pageerror', (e) => problem(`page error: ${e.message}`));
}, { timeout: TEST_MS });

after(async () => {
  if (browser) await browser.close();
  if (server) server.kill();
});

const ready = () => page.waitForFunction(() => window.pianoGenie && (window.pianoGenie.ready || window.pianoGenie.error),
  null, { timeout: 60000 });

/**
 * Poll `fn(arg)` in the page until it is truthy; -> its value. Unlike page.waitForFunction, which
 * takes the Promise an async function returns for a truthy answer, this awaits it.
 */
async function waitUntil(what, fn, arg, timeout = WAIT_MS) {
  const t0 = Date.now();
  for (;;) {
    const value = await page.evaluate(fn, arg).catch(() => null); // a navigation in between: ask again
    if (value) return value;
    if (Date.now() - t0 > timeout) assert.fail(`not within ${timeout / 1000} s: ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function goOffline(on) {
  // Going offline: no request is cut off by the switch; back online: the last offline failures arrived.
  await settle();
  offline = on;
  await context.setOffline(on);
}

/**
 * Wait until no request has been in flight for 300 ms: a reload then aborts nothing (samples).
 * A request that neither finishes nor fails within SETTLE_MS fails the test, naming it.
 */
async function settle() {
  const t0 = Date.now();
  for (let quiet = 0; quiet < 6;) {
    await new Promise((r) => setTimeout(r, 50));
    quiet = inFlight.size === 0 ? quiet + 1 : 0;
    if (Date.now() - t0 > SETTLE_MS) {
      const open = [...inFlight].map(([r, t]) => `${r.serviceWorker() ? 'worker ' : ''}${r.url()} (${Date.now() - t} ms)`);
      assert.fail(`requests still in flight after ${SETTLE_MS / 1000} s: ${open.join(', ')}`);
    }
  }
}

/**
 * Wait until the page has its base samples (fetched one at a time at idle: a pause between two
 * can look settled) and nothing is in flight: a navigation then aborts nothing.
 */
async function quiet() {
  await waitUntil('the base samples loaded', () => !document.body.classList.contains('loading-samples'));
  await settle();
}

/** Press each button by key and by click: each gives one note-on. */
async function playsEveryButton() {
  assert.equal(await page.evaluate(() => window.pianoGenie.error), null);
  for (let b = 0; b < 8; b++) {
    for (const press of [() => page.keyboard.press(`Digit${b + 1}`),
      () => page.locator(`.genie-button[data-button="${b}"]`).click()]) {
      const n = await page.evaluate(() => window.pianoGenie.played.length);
      await press();
      const on = (await page.evaluate((m) => window.pianoGenie.played.slice(m), n)).filter((e) => e.type === 'on');
      assert.equal(on.length, 1, `button ${b}: one note-on`);
      assert.equal(on[0].button, b);
    }
  }
}

/** The model's fingerprint, once the page has computed it (at idle, after ready). */
const fingerprint = () => waitUntil('the model\'s fingerprint', () => window.pianoGenie.model && window.pianoGenie.model.fingerprint);

/** Whether the worker controlling the page is active and answers `version` (run in the page). */
async function workerAnswers(version) {
  const worker = navigator.serviceWorker.controller;
  if (!worker || worker.state !== 'activated') return false;
  const channel = new MessageChannel();
  const answer = new Promise((resolve) => {
    channel.port1.onmessage = (e) => resolve(e.data && e.data.version);
    setTimeout(() => resolve(null), 500);
  });
  worker.postMessage({ type: 'version' }, [channel.port2]);
  return (await answer) === version;
}

/** The service worker's cache names and how many files the current one holds. */
const cacheState = () => page.evaluate(async () => {
  const names = (await caches.keys()).filter((n) => n.startsWith('pianogenie-'));
  const counts = await Promise.all(names.map(async (n) => (await (await caches.open(n)).keys()).length));
  return { names, counts };
});

function siteFiles() {
  return JSON.parse(readFileSync(path.join(out, 'pianogenie-site.json'), 'utf8'));
}

test('the built site plays under a sub-path of a plain static server', opts, async () => {
  await page.goto(siteUrl);
  await ready();
  // A first visit opens the explanation; play keys wait until the player closes it.
  assert.equal(await page.locator('#help').getAttribute('open'), '');
  await page.locator('#help-close').click();
  await playsEveryButton();
});

test('the manifest parses, is installable-shaped and names existing icons', opts, async () => {
  const href = await page.evaluate(() => document.querySelector('link[rel=manifest]').href);
  assert.equal(href, `${siteUrl}manifest.webmanifest`);
  const manifest = await page.evaluate(async (u) => (await fetch(u)).json(), href);
  assert.equal(manifest.display, 'standalone');
  assert.ok(manifest.name && manifest.short_name && /^#[0-9a-f]{6}$/i.test(manifest.theme_color));
  assert.equal(new URL(manifest.start_url, href).href, siteUrl);
  const sizes = manifest.icons.map((i) => i.sizes);
  assert.ok(sizes.includes('192x192') && sizes.includes('512x512'), sizes.join());
  for (const icon of manifest.icons) {
    const info = await page.evaluate(async (u) => {
      const r = await fetch(u);
      const bmp = await createImageBitmap(await r.blob());
      return { ok: r.ok, type: r.headers.get('content-type'), w: bmp.width, h: bmp.height };
    }, new URL(icon.src, href).href);
    assert.ok(info.ok, icon.src);
    assert.equal(`${info.w}x${info.h}`, icon.sizes, `${icon.src} is the size it claims`);
  }
});

const samplesLoaded = () => page.waitForFunction(() => window.pianoGenie.samplesLoaded, null, { timeout: 60000 });
const loaded = () => page.evaluate(() => window.pianoGenie.piano.loaded);
const ALL = { 4: 30, 10: 30, 15: 30 };

test('the service worker precaches the first press\'s files, then caches each sample fetched after a note', opts, async () => {
  await page.evaluate(() => navigator.serviceWorker.ready);
  const marker = siteFiles();
  assert.equal(marker.precache.filter((f) => f.startsWith('vendor/')).length, 15);
  // Played (the first test): the rest of the base layer and the soft and loud layers came in at idle.
  await samplesLoaded();
  assert.deepEqual(await loaded(), ALL);
  assert.deepEqual(await page.evaluate(() => window.pianoGenie.velocityLayers), [4, 15]);
  const everything = marker.files.filter((f) => f !== 'sw.js' && f !== 'pianogenie-site.json');
  assert.ok(everything.length > marker.precache.length + 70);
  const samples = everything.filter((f) => f.startsWith('vendor/')).length;
  const state = await cacheState();
  assert.deepEqual([...state.names].sort(), [`pianogenie-${marker.version}`, 'pianogenie-samples']);
  assert.equal(state.counts[state.names.indexOf('pianogenie-samples')], samples, 'every sample, in the samples\' cache');
  assert.equal(state.counts[state.names.indexOf(`pianogenie-${marker.version}`)], everything.length - samples, 'the app and model');
});

/** Offline, reload: the app plays every button and loads what the cache holds (`expected`); then `more()`. */
async function offlineReload(expected, more) {
  await settle();
  await goOffline(true);
  try {
    await page.reload();
    await ready();
    await playsEveryButton();
    await samplesLoaded();
    assert.deepEqual(await loaded(), expected);
    await more();
  } finally {
    await goOffline(false);
  }
}

test('offline after one visit: a reload plays, with every sample from the cache', opts, async () => {
  await offlineReload(ALL, async () => {
    const sample = await page.evaluate(async () => {
      const r = await fetch('vendor/piano/D%234v10.mp3'); // not precached: cached when first fetched
      return { ok: r.ok, bytes: (await r.arrayBuffer()).byteLength };
    });
    assert.deepEqual(sample, { ok: true, bytes: readFileSync(path.join(out, 'vendor', 'piano', 'D#4v10.mp3')).length });
    mkdirSync(path.join(WEB_DIR, 'test-artifacts'), { recursive: true });
    await page.screenshot({ path: path.join(WEB_DIR, 'test-artifacts', 'site-offline.png') });
  });
});

test('offline with samples missing from the cache: no request for them, their keys use the nearest sample', opts, async () => {
  // As if the player went offline before these arrived: D#4 of the base layer, all of v15 but its first set.
  const removed = await page.evaluate(async () => {
    const cache = await caches.open('pianogenie-samples'); // keyed by URL and content hash
    const gone = (await cache.keys()).map((r) => r.url).filter((u) => /\/piano\/D%234v10\.mp3\?|\/piano-v15\/(A|D%23)\dv15\.mp3\?/.test(u));
    await Promise.all(gone.map((u) => cache.delete(u)));
    return gone.length;
  });
  assert.equal(removed, 1 + 15);
  const before = requests.length;
  await offlineReload({ 4: 30, 10: 29, 15: 15 }, async () => {
    assert.deepEqual(await page.evaluate(() => window.pianoGenie.velocityLayers), [4, 15]);
    assert.ok(!requests.slice(before).some((u) => /D%234v10|(A|D%23)\dv15/.test(u)), 'a sample missing offline is not asked for');
    // D#4 (63) plays the base layer's C4 or F#4 (60, 66), pitch-shifted; a loud note there v15's alone,
    // one between the two both (a crossfade: dynamics.js).
    const played = await page.evaluate(() => {
      const piano = window.pianoGenie.piano, pitch = 63;
      const buffers = (layer) => new Set(layer === 10 ? piano.samples.values() : piano.layers.get(layer).values());
      const at = (velocity) => {
        piano.noteOn(pitch, velocity);
        const { parts } = piano.voices.get(pitch);
        piano.noteOff(pitch, 0.01);
        return parts.map(({ src }) => ({ layer: [10, 4, 15].find((l) => buffers(l).has(src.buffer)), rate: src.playbackRate.value.toFixed(3) }));
      };
      return [at(76), at(125), at(96)];
    });
    const shifted = [(2 ** (3 / 12)).toFixed(3), (2 ** (-3 / 12)).toFixed(3)];
    assert.deepEqual(played.map((parts) => parts.map((p) => p.layer)), [[10], [15], [10, 15]], JSON.stringify(played));
    assert.ok(played.flat().every((p) => shifted.includes(p.rate)), JSON.stringify(played));
  });
});

test('a rebuild with another model plays on the next load; unchanged samples are not fetched again; the old cache goes', opts, async () => {
  const oldVersion = siteFiles().version;
  const oldModel = await fingerprint();
  await settle();
  const cachedBefore = await page.evaluate(async () => (await (await caches.open('pianogenie-samples')).keys())
    .map((r) => r.url.replace(/\?.*/, '')));
  assert.ok(cachedBefore.length >= 70, `${cachedBefore.length} samples cached before the rebuild`);
  buildSite(2);
  const { version } = siteFiles();
  assert.notEqual(version, oldVersion);
  const fetchedBySW = [];
  const watch = (r) => { if (r.serviceWorker() && /\/vendor\//.test(r.url())) fetchedBySW.push(r.url()); };
  context.on('request', watch);
  try {
    await page.reload(); // one reload: the new model, at once
    await ready();
    const newModel = await fingerprint();
    assert.notEqual(newModel, oldModel, 'the first load after the rebuild plays the new model');
    assert.ok(await page.locator('#update').isHidden(), 'nothing stale to reload');
    // The new build's worker installs, takes over the page, and deletes the old build's cache.
    await waitUntil(`the worker of build ${version} controls the page`, workerAnswers, version);
    await waitUntil('only the new build\'s cache and the samples\' are left', async (name) => {
      const names = (await caches.keys()).filter((n) => n.startsWith('pianogenie-'));
      return names.length === 2 && names.includes(name) && names.includes('pianogenie-samples');
    }, `pianogenie-${version}`);
    await playsEveryButton();
    await samplesLoaded();
    await settle();
    // Only those the test above took out of the cache are fetched: none changed.
    assert.deepEqual(fetchedBySW.filter((u) => cachedBefore.includes(u)), [], 'no cached sample fetched again');
    assert.ok(fetchedBySW.length <= 90 - cachedBefore.length, fetchedBySW.join());
    // Offline, the new build's worker serves the new build from its cache.
    await goOffline(true);
    await page.reload();
    await ready();
    afterRebuild = { offline: await fingerprint(), expected: newModel };
    await playsEveryButton();
    await samplesLoaded(); // the layers a note starts loading: one at a time, at idle
  } finally {
    context.off('request', watch);
    await goOffline(false);
  }
});

let afterRebuild = null;
test('offline right after a rebuild, the new build\'s model plays', opts, () => {
  assert.ok(afterRebuild, 'the rebuild test ran');
  assert.equal(afterRebuild.offline, afterRebuild.expected);
});

// Offline, the page is the build its worker cached. A rebuild published meanwhile installs once
// the player is back online: its worker takes over a page of the previous build, which says so.
test('a page served offline from the previous build\'s cache says "a new version: reload" when the next build\'s worker takes over', opts, async () => {
  const before = siteFiles().version;
  await quiet();
  await goOffline(true);
  try {
    await page.reload();
    await ready();
    assert.equal(await page.evaluate(() => document.querySelector('meta[name="pianogenie-build"]').content), before);
    buildSite(3);
  } finally {
    await goOffline(false);
  }
  const { version } = siteFiles();
  await page.evaluate(async () => (await navigator.serviceWorker.getRegistration()).update());
  await page.locator('#update').waitFor({ state: 'visible', timeout: WAIT_MS });
  await waitUntil(`the worker of build ${version} controls the page`, workerAnswers, version);
  await quiet();
  await Promise.all([page.waitForNavigation(), page.locator('#update-reload').click()]);
  await ready();
  assert.equal(await page.evaluate(() => document.querySelector('meta[name="pianogenie-build"]').content), version);
  assert.ok(await page.locator('#update').isHidden(), 'the page of the build in control: nothing to reload');
  await quiet();
});

// A worker of an older build (cache-first for everything, and silent when asked its version) served
// this page from its cache: when the new build's worker takes over, the page says to reload.
const LEGACY_SW = `
const CACHE = 'pianogenie-legacy';
self.addEventListener('install', (e) => e.waitUntil(caches.open(CACHE).then((c) => c.addAll(['./', 'index.html'])).then(() => self.skipWaiting())));
self.addEventListener('activate', (e) => e.waitUntil(self.clients.claim()));
self.addEventListener('fetch', (e) => e.respondWith(caches.open(CACHE).then(async (c) => {
  const hit = await c.match(e.request, { ignoreSearch: true }) || (e.request.mode === 'navigate' ? await c.match('index.html') : undefined);
  if (hit) return hit;
  const r = await fetch(e.request);
  if (r.ok && r.status === 200) await c.put(e.request, r.clone());
  return r;
})));
`;

test('a page an older worker served from its cache says "a new version: reload" when the new worker takes over', opts, async () => {
  writeFileSync(path.join(out, 'sw.js'), LEGACY_SW);
  await page.evaluate(async () => { for (const r of await navigator.serviceWorker.getRegistrations()) await r.update(); });
  // Taken over (a navigation while a worker takes over can stall for good under automation).
  await waitUntil('the legacy worker (silent when asked its version) controls the page', workerAnswers, null);
  await waitUntil('the legacy worker\'s cache', async () => (await caches.keys()).includes('pianogenie-legacy'));
  await quiet();
  await page.reload();
  await ready();
  await quiet();
  buildSite(1, true); // the new build's worker again, over the legacy sw.js written above
  await page.reload(); // served by the legacy worker, from its cache; the browser finds the new sw.js
  await ready();
  await page.locator('#update').waitFor({ state: 'visible', timeout: WAIT_MS });
  assert.match(await page.locator('#update').textContent(), /new version/);
  await waitUntil('the new build\'s worker controls the page', workerAnswers, siteFiles().version);
  await quiet();
  await Promise.all([page.waitForNavigation(), page.locator('#update-reload').click()]);
  await ready();
  assert.ok(await page.locator('#update').isHidden());
  await waitUntil('the legacy cache deleted', async () => !(await caches.keys()).includes('pianogenie-legacy'));
});

// Offline, /apps/genie lies outside the worker's scope (/apps/genie/: a worker's scope cannot reach
// above its own folder without a header a static host does not send): online it redirects.
test('without its trailing slash (/apps/genie) the site redirects to itself and plays', opts, async () => {
  const bare = siteUrl.replace(/\/$/, '');
  await quiet(); // no sample load of the previous page still in flight when it navigates away
  await page.goto(bare);
  assert.equal(page.url(), siteUrl);
  await ready();
  await playsEveryButton();
  await settle();
});

test('no failed request, no request off the site, no console errors', opts, () => {
  assert.deepEqual(problems, []);
  const off = requests.filter((u) => !u.startsWith(siteUrl) && u !== siteUrl.replace(/\/$/, ''));
  assert.deepEqual(off, [], 'every request stays under the sub-path of 127.0.0.1');
  assert.ok(requests.some((u) => u.endsWith('/model/weights_manifest.json')));
  assert.ok(!requests.some((u) => /tf(\.es2017)?(\.min)?\.js$/.test(u)), 'the page loads no TF.js bundle');
  assert.ok(readdirSync(out).includes('LICENSES.txt'));
});
