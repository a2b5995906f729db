// Do the look-ahead marks tell the truth? At temperature 0 a press plays the argmax, so the mark a
// button shows should be the key its press plays. The decoder hears the time since the last press,
// so a mark computed once, for an assumed delta time (the previous interval), goes wrong when the
// rhythm varies. Asked again each animation frame, a mark is on screen from the next frame on: one
// computed for the time of the frame's callback is a frame old when it shows; the app computes it
// for the time the frame is shown (the callback's timestamp plus one frame), so a press sees the
// mark computed for the latest frame shown before it. A press can still miss when its key changes
// between that frame and the press (within one frame). For three rhythms, steady, +-100 ms and free,
// this counts the presses whose key differs from their button's mark, the three ways, those misses
// that fall within one frame of a change, and how often the pressed button shared its key with
// another button (then both show a mark). No browser: the app's own Session and Player (DOM-free)
// on the shipped model.
//
// usage: node benchmarks/lookahead_truth.mjs [--model DIR] [--presses 79] [--runs 20]

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const WEB = path.join(REPO, 'pianogenie', 'web');
const { loadModelDir } = await import(path.join(WEB, 'test', 'helpers.js'));
const { Session, makeRng } = await import(path.join(WEB, 'src', 'session.js'));
const { Player } = await import(path.join(WEB, 'src', 'player.js'));

const { values: opts } = parseArgs({ options: {
  model: { type: 'string', default: path.join(REPO, 'pianogenie', 'pretrained', 'tfjs') },
  presses: { type: 'string', default: '79' }, runs: { type: 'string', default: '20' } } });
const PRESSES = Number(opts.presses), RUNS = Number(opts.runs), FRAME = 1 / 60;
const { decoder, config, velocityHead } = await loadModelDir(opts.model);

const rhythms = {
  'steady 0.25 s': () => 0.25,
  '0.25 s +-100 ms': (rng) => 0.25 + (rng() * 2 - 1) * 0.1,
  'free (0.06..1.2 s, log-uniform)': (rng) => Math.exp(Math.log(0.06) + rng() * Math.log(1.2 / 0.06)),
};

console.log(`model ${opts.model}: ${RUNS} runs x ${PRESSES} presses per rhythm, temperature 0, marks asked each ${(FRAME * 1000).toFixed(1)} ms frame`);
for (const [name, interval] of Object.entries(rhythms)) {
  let assumedWrong = 0, callbackWrong = 0, shownWrong = 0, withinFrame = 0, shared = 0, total = 0;
  for (let run = 0; run < RUNS; run++) {
    const rng = makeRng(1000 + run);
    let t = 10;
    const session = new Session(decoder, config, { velocityHead, seed: run });
    const player = new Player(session, config, { temperature: () => 0, now: () => t });
    const phase = rng() * FRAME; // where the display's frames fall
    let button = Math.floor(rng() * config.numButtons), last = null, lastInterval = 0.25;
    for (let i = 0; i < PRESSES; i++) {
      const dt = i === 0 ? 0 : interval(rng);
      t += dt;
      button = Math.min(config.numButtons - 1, Math.max(0, button + Math.round((rng() * 2 - 1) * 2)));
      // Before: one look-ahead right after the previous press, for the previous interval.
      const assumed = last === null ? player.lookAhead(t) : player.lookAhead(last + lastInterval);
      // Each frame: the latest frame on screen at the press began at frameT; its marks were computed
      // in the callback a frame before (for that time, or for frameT). A press redraws at once.
      const frameT = Math.floor((t - phase) / FRAME) * FRAME + phase;
      const atCallback = player.lookAhead(Math.max(last ?? -Infinity, frameT - FRAME));
      const shown = player.lookAhead(Math.max(last ?? -Infinity, frameT));
      const frameAgo = player.lookAhead(Math.max(last ?? -Infinity, t - FRAME));
      const atPress = player.lookAhead(t); // what the press will play (checked below)
      if (shown.filter((k) => k === shown[button]).length > 1) shared++;
      const key = player.buttonDown(button, 'k');
      player.buttonUp('k');
      if (key !== atPress[button]) throw new Error('look-ahead at the press time differs from the press');
      if (assumed[button] !== key) assumedWrong++;
      if (atCallback[button] !== key) callbackWrong++;
      if (shown[button] !== key) {
        shownWrong++;
        if (frameAgo[button] !== key) withinFrame++; // the key changed within the frame before the press
      }
      if (last !== null) lastInterval = t - last;
      last = t;
      total++;
    }
  }
  const pct = (n) => `${n} of ${total} (${((100 * n) / total).toFixed(1)} %)`;
  console.log(`${name}\n  assumed interval wrong:            ${pct(assumedWrong)}\n` +
    `  each frame, for its callback time: ${pct(callbackWrong)}\n` +
    `  each frame, for when it is shown:  ${pct(shownWrong)}, of which a change within the frame before the press: ${withinFrame}\n` +
    `  pressed key shared with another button: ${pct(shared)}`);
}
