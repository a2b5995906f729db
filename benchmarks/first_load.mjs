// Weight and first press: what a first visit downloads and how soon the first press plays, in
// headless Chromium with its network throttling, on the site `pianogenie build-site` writes, hosted
// by Python's plain http.server on 127.0.0.1. Two pages side by side, same run, same server:
//   app       the site as built (model.js reads the weights manifest itself: no TF.js)
//   +tfjs     the same site with TF.js's bundle loaded by the page first, as before (the baseline)
//
// usage: node benchmarks/first_load.mjs [--model DIR] [--runs 3]
// Needs: npm ci --prefix pianogenie/web; Debian's chromium (/usr/bin/chromium or $CHROMIUM).
// Goals (issue 11): first load <= 6 MB; first playable press <= 1.5 s unthrottled, <= 8 s at 1.5 Mbit/s.

import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const WEB = path.join(REPO, 'pianogenie', 'web');
const { chromium } = await import(path.join(WEB, 'node_modules', 'playwright-core', 'index.mjs'));
const { values: opts } = parseArgs({ options: { model: { type: 'string' }, runs: { type: 'string', default: '3' } } });
const python = process.env.PIANOGENIE_PYTHON || [path.join(REPO, '.venv', 'bin', 'python')].find(existsSync) || 'python3';

// Two builds under one document root: www/app/ and www/tfjs/ (+ the TF.js bundle, loaded first).
const www = mkdtempSync(path.join(os.tmpdir(), 'pianogenie-first-load-'));
for (const name of ['app', 'tfjs']) {
  execFileSync(python, ['-m', 'pianogenie', 'build-site', path.join(www, name), ...(opts.model ? ['--model', opts.model] : [])],
    { cwd: REPO, stdio: ['ignore', 'ignore', 'inherit'] });
}
mkdirSync(path.join(www, 'tfjs', 'vendor', 'tfjs'));
copyFileSync(path.join(WEB, 'node_modules', '@tensorflow', 'tfjs', 'dist', 'tf.es2017.min.js'), path.join(www, 'tfjs', 'vendor', 'tfjs', 'tf.es2017.min.js'));
const indexFile = path.join(www, 'tfjs', 'index.html');
writeFileSync(indexFile, readFileSync(indexFile, 'utf8').replace('<script type="module" src="src/app.js">',
  '<script src="vendor/tfjs/tf.es2017.min.js"></script>\n  <script type="module" src="src/app.js">'));

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

async function visit(browser, site, profile) {
  const context = await browser.newContext({ serviceWorkers: 'allow' }); // a fresh context: a first visit, nothing cached
  // the first-visit explanation (help.js) would hold the keys: a returning player's setting, as the tests do
  await context.addInitScript(() => { localStorage.setItem('pianogenie.helpSeen', '1'); });
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  if (profile) await cdp.send('Network.emulateNetworkConditions', profile);
  let pageBytes = 0, swBytes = 0;
  const bytesByKind = {};
  const urls = new Map();
  cdp.on('Network.responseReceived', (e) => urls.set(e.requestId, e.response.url));
  cdp.on('Network.loadingFinished', (e) => {
    pageBytes += e.encodedDataLength;
    const u = urls.get(e.requestId) || '';
    const kind = /\.mp3$/.test(u) ? 'samples' : /\/model\//.test(u) ? 'model' : /tf\.es2017/.test(u) ? 'tfjs' : 'app';
    bytesByKind[kind] = (bytesByKind[kind] || 0) + e.encodedDataLength;
  });
  context.on('requestfinished', async (r) => {
    if (r.serviceWorker()) { const s = await r.sizes(); swBytes += s.responseBodySize + s.responseHeadersSize; }
  });
  const t0 = Date.now();
  await page.goto(`${origin}/${site}/`, { waitUntil: 'commit' });
  await page.waitForFunction(() => window.pianoGenie && (window.pianoGenie.ready || window.pianoGenie.error), null, { timeout: 120000, polling: 10 });
  await page.keyboard.press('Digit1');
  await page.waitForFunction(() => window.pianoGenie.played.some((e) => e.type === 'on'), null, { polling: 10 });
  const firstPress = (Date.now() - t0) / 1000;
  const bytesAtPress = pageBytes;
  const error = await page.evaluate(() => window.pianoGenie.error);
  await page.waitForLoadState('networkidle', { timeout: 180000 }).catch(() => {});
  await page.evaluate(() => navigator.serviceWorker && navigator.serviceWorker.ready).catch(() => {});
  await page.waitForTimeout(500);
  const total = (Date.now() - t0) / 1000;
  await context.close();
  return { firstPress, bytesAtPress, pageBytes, swBytes, bytesByKind, total, error };
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
    '--no-first-run', '--disable-component-update', '--disable-sync'],
});
const MB = (b) => (b / 1e6).toFixed(2);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
try {
  console.log(`first visit, headless Chromium ${browser.version()}, ${opts.runs} runs each (median), load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  console.log('profile       page    first press s   MB before press   MB page total (app/model/samples/tfjs)   MB service worker');
  const results = {};
  for (const [pname, profile] of Object.entries(PROFILES)) {
    for (const site of ['app', 'tfjs']) {
      const runs = [];
      for (let i = 0; i < Number(opts.runs); i++) runs.push(await visit(browser, site, profile));
      if (runs.some((r) => r.error)) throw new Error(`${site}: ${runs.find((r) => r.error).error}`);
      const r = runs[Math.floor(runs.length / 2)];
      const res = { firstPress: median(runs.map((x) => x.firstPress)), bytesAtPress: median(runs.map((x) => x.bytesAtPress)),
        pageBytes: median(runs.map((x) => x.pageBytes)), swBytes: median(runs.map((x) => x.swBytes)), kinds: r.bytesByKind };
      results[`${pname}/${site}`] = res;
      const k = res.kinds;
      console.log(`${pname.padEnd(13)} ${(site === 'app' ? 'app' : '+tfjs').padEnd(7)} ${res.firstPress.toFixed(2).padStart(8)}        ${MB(res.bytesAtPress).padStart(8)}          ${MB(res.pageBytes).padStart(6)} (${MB(k.app || 0)}/${MB(k.model || 0)}/${MB(k.samples || 0)}/${MB(k.tfjs || 0)})            ${MB(res.swBytes)}`);
    }
  }
  const a = results['unthrottled/app'], s = results['1.5 Mbit/s/app'], st = results['1.5 Mbit/s/tfjs'];
  console.log(`first press at 1.5 Mbit/s: app ${s.firstPress.toFixed(2)} s vs +tfjs ${st.firstPress.toFixed(2)} s -> ${(st.firstPress / s.firstPress).toFixed(2)}x sooner without TF.js`);
  console.log(`goals: first press <= 1.5 s unthrottled: ${a.firstPress <= 1.5 ? 'met' : 'NOT met'}; <= 8 s at 1.5 Mbit/s: ${s.firstPress <= 8 ? 'met' : 'NOT met'}; ` +
    `first load <= 6 MB: ${a.pageBytes + a.swBytes <= 6e6 ? 'met' : 'NOT met'} (${MB(a.pageBytes + a.swBytes)} MB incl. the service worker's precache)`);
} finally {
  await browser.close();
  server.kill();
}
