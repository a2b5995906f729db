// Shared by the Chromium tests: `pianogenie serve` on a free port, headless Chromium, a page that
// records its problems (console errors, page errors, failed requests), and a fake Web MIDI device.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

import { chromium } from 'playwright-core';

import { pythonExe } from './fixtures.js';
import { REPO_DIR, WEB_DIR } from './helpers.js';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const ARTIFACTS = path.join(WEB_DIR, 'test-artifacts');
export const skipBrowser = existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM} (apt-get install chromium, or set $CHROMIUM)`;

/** `pianogenie serve --model DIR [--model DIR2 ...] --port 0` -> {server, url}; `model`: one or a list. */
export async function startServer(model) {
  const models = (Array.isArray(model) ? model : [model]).flatMap((m) => ['--model', m]);
  const server = spawn(pythonExe(), ['-m', 'pianogenie', 'serve', ...models, '--port', '0'],
    { cwd: REPO_DIR, stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    server.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/http:\/\/127\.0\.0\.1:\d+\//);
      if (m) resolve(m[0]);
    });
    server.on('exit', (code) => reject(new Error(`pianogenie serve exited with ${code}`)));
  });
  return { server, url };
}

export function launchChromium() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
      '--no-first-run', '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required'],
  });
}

/** Collect what went wrong on a page into `problems`. */
export function watchProblems(page, problems) {
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  // a reload or navigation aborts the samples still loading at idle: the page's own doing, not a failure
  page.on('requestfailed', (r) => {
    if (r.failure()?.errorText !== 'net::ERR_ABORTED') problems.push(`request failed: ${r.url()}`);
  });
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`); });
}

/** Wait for the app to load its model; throws with the app's error if it failed. */
export async function waitReady(page) {
  await page.waitForFunction(() => window.pianoGenie && (window.pianoGenie.ready || window.pianoGenie.error),
    null, { timeout: 60000 });
  const error = await page.evaluate(() => window.pianoGenie.error);
  if (error) throw new Error(`the app failed to load: ${error}`);
}

/** A page script: the first-visit explanation counts as seen (for tests about other things). */
export const HELP_SEEN = () => { localStorage.setItem('pianogenie.helpSeen', '1'); };

/**
 * A page script: a fake Web MIDI device, one input ("Fake Keys": window.__midiIn([status, d1, d2])
 * delivers a message) and one output ("Fake Synth": what it is sent lands in window.__midiSent).
 * window.__midiUnplug(keep) unplugs the input as Chromium does: keep = true leaves the port listed
 * as 'disconnected', false removes it; either way a state change is fired.
 */
export const FAKE_MIDI = () => {
  const sent = [];
  const input = { id: 'fake-in', name: 'Fake Keys', type: 'input', state: 'connected', onmidimessage: null };
  const output = { id: 'fake-out', name: 'Fake Synth', type: 'output', state: 'connected',
    send: (bytes) => sent.push(Array.from(bytes)) };
  const access = { inputs: new Map([[input.id, input]]), outputs: new Map([[output.id, output]]),
    onstatechange: null, sysexEnabled: false };
  window.__midiSent = sent;
  window.__midiIn = (bytes) => input.onmidimessage && input.onmidimessage({ data: Uint8Array.from(bytes) });
  window.__midiUnplug = (keep) => {
    input.state = 'disconnected';
    if (!keep) access.inputs.delete(input.id);
    if (access.onstatechange) access.onstatechange({ port: input });
  };
  window.__midiReplug = () => {
    input.state = 'connected';
    access.inputs.set(input.id, input);
    if (access.onstatechange) access.onstatechange({ port: input });
  };
  navigator.requestMIDIAccess = async () => access;
};
