// The genie picker in headless Chromium, on a site serving both shipped genies: it lists each
// genie's name and training data, switching loads the other model (its presses play that model's
// keys, as the Node session on its files plays them) and resets the performance, the choice
// survives a reload and a stored slug the site does not have falls back to the default. Node:
// genies.js's index checks. Saves test-artifacts/genies-*.png at desktop and phone sizes.

import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { chooseGenie, parseIndex } from '../src/genies.js';
import { Session } from '../src/session.js';
import { ARTIFACTS, HELP_SEEN, launchChromium, skipBrowser as skip, startServer, waitReady, watchProblems } from './browser_helpers.js';
import { loadModelDir, REPO_DIR } from './helpers.js';

const PRETRAINED = path.join(REPO_DIR, 'pianogenie', 'pretrained');
const PRESSES = [[0, 0], [0.2, 3], [0.35, 7], [0.5, 7], [0.9, 2], [1.0, 5], [1.1, 1], [1.6, 4], [1.7, 6], [2.5, 0]];

test('models.json is checked before a path or name is used', () => {
  const ok = { default: 'pop', models: [{ slug: 'classical', name: 'Classical genie', description: 'MAESTRO', path: 'models/classical/' },
    { slug: 'pop', name: 'Pop genie', description: null, path: 'models/pop/' }] };
  const index = parseIndex(ok);
  assert.deepEqual(index.genies.map((g) => g.slug), ['pop', 'classical']); // the default first
  assert.equal(chooseGenie(index, 'classical').slug, 'classical');
  assert.equal(chooseGenie(index, 'jazz').slug, 'pop');
  for (const [bad, message] of [
    [{ ...ok, default: 'jazz' }, /default is not one of its models/],
    [{ ...ok, models: [{ ...ok.models[0], path: '../secret/' }] }, /model 0 is not valid/],
    [{ ...ok, models: [{ ...ok.models[0], path: 'https://evil.example/' }] }, /model 0 is not valid/],
    [{ ...ok, models: [{ ...ok.models[0], name: 'x'.repeat(81) }] }, /model 0 is not valid/],
    [{ ...ok, models: [ok.models[1], ok.models[1]] }, /model 1 is not valid/],
    [{ ...ok, models: [] }, /1 to 16 models/],
    [null, /no models list/]]) {
    assert.throws(() => parseIndex(bad), message);
  }
});

let server, browser, page, url;
const problems = [];

before(async () => {
  if (skip) return;
  ({ server, url } = await startServer(['classical', 'pop']));
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.setDefaultTimeout(15000);
  watchProblems(page, problems);
  await page.addInitScript(HELP_SEEN);
  await page.goto(url);
  await waitReady(page);
});

after(async () => {
  if (browser) await browser.close();
  if (server) server.kill();
});

// The keys of PRESSES at temperature 0 from a fresh session: in the page (its current genie), in Node.
const pageKeys = () => page.evaluate((presses) => {
  const s = window.pianoGenie.session;
  s.reset();
  const keys = presses.map(([t, b]) => s.press(t, b, 0));
  s.reset();
  return keys;
}, PRESSES);
async function nodeKeys(dir) {
  const { decoder, config, velocityHead } = await loadModelDir(dir);
  const s = new Session(decoder, config, { velocityHead });
  return PRESSES.map(([t, b]) => s.press(t, b, 0));
}

test('the picker lists both genies; choosing the pop genie plays its keys and resets the performance', { skip }, async () => {
  const classical = await nodeKeys(path.join(PRETRAINED, 'tfjs'));
  const pop = await nodeKeys(path.join(PRETRAINED, 'pop', 'tfjs'));
  assert.notDeepEqual(pop, classical, 'the two genies play differently');
  assert.equal(await page.evaluate(() => window.pianoGenie.genie), 'classical');
  assert.deepEqual(await pageKeys(), classical);
  assert.equal(await page.locator('#model-info').textContent(), 'Classical genie');

  await page.locator('#settings-toggle').click();
  const options = page.locator('#genie-picker .genie-option');
  assert.equal(await options.count(), 2);
  const shipped = [path.join(PRETRAINED, 'tfjs'), path.join(PRETRAINED, 'pop', 'tfjs')]
    .map((dir) => JSON.parse(readFileSync(path.join(dir, 'cfg.json'), 'utf8')));
  assert.deepEqual(shipped.map((c) => c.name), ['Classical genie', 'Pop genie']);
  assert.deepEqual(await options.allInnerTexts(), shipped.map((c) => `${c.name}\n${c.description}`));
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'genies-1280x800.png') });

  await page.keyboard.press('Digit1'); // a note sounding when the genie changes is ended by the reset
  const before = await page.evaluate(() => window.pianoGenie.log.total);
  await page.locator('#genie-picker input[value="pop"]').check();
  await page.waitForFunction(() => window.pianoGenie.genie === 'pop' && !window.pianoGenie.switching);
  assert.deepEqual(await pageKeys(), pop);
  assert.equal(await page.locator('#model-info').textContent(), 'Pop genie');
  assert.match(await page.locator('#help-model').textContent(), /Pop genie.*POP909/);
  assert.equal(await page.evaluate(() => window.pianoGenie.session.kM1), 88, 'a fresh performance (no previous key)');
  const after = await page.evaluate((n) => window.pianoGenie.log.since(n), before);
  assert.ok(after.length === 0 || after.every((e) => e.type !== 'on'), JSON.stringify(after));
  await page.locator('#settings-toggle').click(); // closed: keys play again, the new genie
  await page.keyboard.press('Digit4');
  const on = (await page.evaluate((n) => window.pianoGenie.log.since(n), before)).filter((e) => e.type === 'on');
  assert.equal(on.length, 1);
});

test('the choice is remembered; a stored genie the site lacks plays the default', { skip }, async () => {
  await page.reload();
  await waitReady(page);
  assert.equal(await page.evaluate(() => window.pianoGenie.genie), 'pop');
  assert.equal(await page.locator('#model-info').textContent(), 'Pop genie');
  await page.evaluate(() => {
    const s = JSON.parse(localStorage.getItem('pianogenie.settings'));
    localStorage.setItem('pianogenie.settings', JSON.stringify({ ...s, values: { ...s.values, genie: 'jazz' } }));
  });
  await page.reload();
  await waitReady(page);
  assert.equal(await page.evaluate(() => window.pianoGenie.genie), 'classical');
});

test('screenshots of the picker at phone sizes', { skip }, async () => {
  for (const [w, h] of [[390, 844], [844, 390], [320, 568]]) {
    await page.setViewportSize({ width: w, height: h });
    if (await page.locator('#settings').isHidden()) await page.locator('#settings-toggle').click();
    await page.locator('#genie-picker').scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(ARTIFACTS, `genies-${w}x${h}.png`) });
  }
});

test('no console errors, page errors or failed requests', { skip }, () => {
  assert.deepEqual(problems, []);
});
