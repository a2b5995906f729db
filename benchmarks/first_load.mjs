// Weight and first press: what a first visit downloads and how soon the first press plays, in
// headless Chromium with its network throttling, on the site `pianogenie build-site` writes, hosted
// by Python's plain http.server on 127.0.0.1. Two builds side by side, same run, same server:
//   app       the site as built: its service worker precaches what the first press needs (the app,
//             the model, the base layer's samples every 6 semitones) and caches the rest of the
//             samples as the page fetches them, at idle after the first note
//   all       the same site with the service worker precaching every file, as before (the baseline)
// Two kinds of visit, each in a fresh browser context (nothing cached):
//   press     load, press a button as soon as the app is ready: seconds to the first note-on, and
//             the bytes in by then (unthrottled and at 1.5 Mbit/s)
//   idle      load without playing until the network is quiet (the service worker installed and
//             controlling the page): the first load; then play one note and wait until every
//             sample is in and the network is quiet again (unthrottled; bytes do not depend on it)
//
// usage: node benchmarks/first_load.mjs [--model DIR] [--runs 3]
// Needs: npm ci --prefix pianogenie/web; Debian's chromium (/usr/bin/chromium or $CHROMIUM).
// Goals: first load <= 6 MB; first playable press <= 1.5 s unthrottled, <= 8 s at 1.5 Mbit/s.

import { execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const WEB = path.join(REPO, 'pianogenie', 'web');
const { chromium } = await import(path.join(WEB, 'node_modules', 'playwright-core', 'index.mjs'));
const { values: opts } = parseArgs({ options: { model: { type: 'string' }, runs: { type: 'string', default: '3' } } });
const python = process.env.PIANOGENIE_PYTHON || [path.join(REPO, '.venv', 'bin', 'python')].find(existsSync) || 'python3';

// Two builds under one document root: www/app/ and www/all/ (its sw.js precaching every file).
const www = mkdtempSync(path.join(os.tmpdir(), 'pianogenie-first-load-'));
execFileSync(python, ['-m', 'pianogenie', 'build-site', path.join(www, 'app'), ...(opts.model ? ['--model', opts.model] : [])],
  { cwd: REPO, stdio: ['ignore', 'ignore', 'inherit'] });
cpSync(path.join(www, 'app'), path.join(www, 'all'), { recursive: true });
const swFile = path.join(www, 'all', 'sw.js');
const sw = readFileSync(swFile, 'utf8');
// (its worker precaches every sample: FIRST, the samples it precaches, becomes all of SAMPLES)
const samples = Object.keys(JSON.parse(sw.match(/const SAMPLES = (\{[^}]*\});/)[1]));
writeFileSync(swFile, sw.replace(/const FIRST = \[[^\]]*\];/, `const FIRST = ${JSON.stringify(samples)};`));

const server = spawn(python, ['-u', '-m', 'http.server', '0', '--bind', '127.0.0.1', '--directory', www], { stdio: ['ignore', 'pipe', 'ignore'] });
const origin = await new Promise((resolve, reject) => {
  let text = '';
  server.stdout.on('data', (d) => { text += d; const m = text.match(/port (\d+)/); if (m) resolve(`http://127.0.0.1:${m[1]}`); });
  server.on('exit', (code) => reject(new Error(`http.server exited (${code})`)));
});

const PROFILES = {
  unthrottled: null,
  '1.5 Mbit/s': { offline: false, latency: 40, downloadThroughput: 1.5e6 / 8, uploadThroughput: 0.75e6 / 8 },
};
const kindOf = (u) => (/\.mp3$/.test(u) ? 'samples' : /\/model\//.test(u) ? 'model' : 'app');

/** A fresh context on `site`: counts the bytes the page and its service worker take off the network. */
async function open(browser, site, profile) {
  const context = await browser.newContext({ serviceWorkers: 'allow' }); // a first visit, nothing cached
  // the first-visit explanation (help.js) would hold the keys: a returning player's setting, as the tests do
  await context.addInitScript(() => { localStorage.setItem('pianogenie.helpSeen', '1'); });
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  if (profile) await cdp.send('Network.emulateNetworkConditions', profile);
  const v = { page, context, bytes: 0, byKind: { app: 0, model: 0, samples: 0 }, inFlight: 0 };
  const urls = new Map();
  cdp.on('Network.responseReceived', (e) => { if (!e.response.fromServiceWorker) urls.set(e.requestId, e.response.url); });
  cdp.on('Network.loadingFinished', (e) => { // a response the worker answered came off no network: not counted
    if (!urls.has(e.requestId)) return;
    v.bytes += e.encodedDataLength;
    v.byKind[kindOf(urls.get(e.requestId))] += e.encodedDataLength;
  });
  context.on('request', () => v.inFlight++);
  context.on('requestfailed', () => v.inFlight--);
  context.on('requestfinished', async (r) => {
    v.inFlight--;
    if (!r.serviceWorker()) return;
    const s = await r.sizes();
    v.bytes += s.responseBodySize + s.responseHeadersSize;
    v.byKind[kindOf(r.url())] += s.responseBodySize + s.responseHeadersSize;
  });
  v.t0 = Date.now();
  await page.goto(`${origin}/${site}/`, { waitUntil: 'commit' });
  await page.waitForFunction(() => window.pianoGenie && (window.pianoGenie.ready || window.pianoGenie.error), null, { timeout: 120000, polling: 10 });
  const error = await page.evaluate(() => window.pianoGenie.error);
  if (error) throw new Error(`${site}: ${error}`);
  return v;
}

/** Until no request (page or worker) has been in flight for a second. */
async function quiet(v) {
  for (let still = 0; still < 10;) {
    await v.page.waitForTimeout(100);
    still = v.inFlight === 0 ? still + 1 : 0;
  }
}

async function pressVisit(browser, site, profile) {
  const v = await open(browser, site, profile);
  await v.page.keyboard.press('Digit1');
  await v.page.waitForFunction(() => window.pianoGenie.played.some((e) => e.type === 'on'), null, { polling: 10 });
  const r = { firstPress: (Date.now() - v.t0) / 1000, bytes: v.bytes };
  await v.context.close();
  return r;
}

async function idleVisit(browser, site) {
  const v = await open(browser, site, null);
  await v.page.evaluate(() => navigator.serviceWorker.ready);
  await v.page.waitForFunction(() => navigator.serviceWorker.controller, null, { timeout: 60000 });
  await quiet(v);
  const before = { bytes: v.bytes, ...v.byKind };
  await v.page.keyboard.press('Digit1');
  await v.page.waitForFunction(() => window.pianoGenie.samplesLoaded, null, { timeout: 180000 });
  await quiet(v);
  const after = { bytes: v.bytes, ...v.byKind, loaded: await v.page.evaluate(() => window.pianoGenie.piano.loaded) };
  await v.context.close();
  return { before, after };
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
    '--no-first-run', '--disable-component-update', '--disable-sync'],
});
const MB = (b) => (b / 1e6).toFixed(2);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const runs = Number(opts.runs);
const repeat = async (f) => { const out = []; for (let i = 0; i < runs; i++) out.push(await f()); return out; };
try {
  console.log(`first visit, headless Chromium ${browser.version()}, ${runs} runs each (median), load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const res = {};
  console.log('bytes (unthrottled)   MB before any play (app/model/samples)   MB after playing and idling   samples in');
  for (const site of ['app', 'all']) {
    const rs = await repeat(() => idleVisit(browser, site));
    const pick = (f) => median(rs.map(f));
    const mid = rs.find((r) => r.before.bytes === pick((r) => r.before.bytes));
    res[site] = { before: pick((r) => r.before.bytes), after: pick((r) => r.after.bytes) };
    const b = mid.before;
    console.log(`  ${site.padEnd(19)} ${MB(res[site].before).padStart(6)} (${MB(b.app)}/${MB(b.model)}/${MB(b.samples)})${' '.repeat(18)}` +
      `${MB(res[site].after).padStart(6)}                     ${JSON.stringify(mid.after.loaded)}`);
  }
  console.log('first press           s (unthrottled)   MB by then   s (1.5 Mbit/s)   MB by then');
  for (const site of ['app', 'all']) {
    const row = {};
    for (const [pname, profile] of Object.entries(PROFILES)) {
      const rs = await repeat(() => pressVisit(browser, site, profile));
      row[pname] = { firstPress: median(rs.map((r) => r.firstPress)), bytes: median(rs.map((r) => r.bytes)) };
    }
    res[site].press = row;
    const a = row.unthrottled, t = row['1.5 Mbit/s'];
    console.log(`  ${site.padEnd(19)} ${a.firstPress.toFixed(2).padStart(8)}          ${MB(a.bytes).padStart(6)}   ${t.firstPress.toFixed(2).padStart(8)}         ${MB(t.bytes).padStart(6)}`);
  }
  const app = res.app;
  console.log(`first load: app ${MB(app.before)} MB vs all precached ${MB(res.all.before)} MB -> ${(res.all.before / app.before).toFixed(2)}x less; ` +
    `after playing and idling ${MB(app.after)} MB vs ${MB(res.all.after)} MB`);
  console.log(`goals: first load <= 6 MB: ${app.before <= 6e6 ? 'met' : 'NOT met'} (${MB(app.before)} MB incl. the service worker's precache); ` +
    `first press <= 1.5 s unthrottled: ${app.press.unthrottled.firstPress <= 1.5 ? 'met' : 'NOT met'}; ` +
    `<= 8 s at 1.5 Mbit/s: ${app.press['1.5 Mbit/s'].firstPress <= 8 ? 'met' : 'NOT met'}`);
} finally {
  await browser.close();
  server.kill();
}
