// Velocity spans a player reaches from the keyboard and from touch (expression.js): the genie's
// own, each dynamics level, the accent key (Shift) and its mirror (Z or /: soft), and where on a
// button a finger lands, at fast, medium and slow rhythms, with the app's own Session and Player
// (no DOM) on the shipped model.
// Prints min / median / max and the share of notes <= 30 and >= 110 for each way of playing.
//
// usage: node benchmarks/dynamics_span.mjs [--model DIR] [--presses 120] [--runs 10]

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const WEB = path.join(REPO, 'pianogenie', 'web');
const { loadModelDir } = await import(path.join(WEB, 'test', 'helpers.js'));
const { Session, makeRng } = await import(path.join(WEB, 'src', 'session.js'));
const { Player } = await import(path.join(WEB, 'src', 'player.js'));
const { ACCENT_SHIFT, LEVELS, positionShift, SOFT_SHIFT } = await import(path.join(WEB, 'src', 'expression.js'));

const { values: opts } = parseArgs({ options: {
  model: { type: 'string', default: path.join(REPO, 'pianogenie', 'pretrained', 'tfjs') },
  presses: { type: 'string', default: '120' }, runs: { type: 'string', default: '10' } } });
const PRESSES = Number(opts.presses), RUNS = Number(opts.runs);
const { decoder, config, velocityHead } = await loadModelDir(opts.model);
if (!velocityHead) throw new Error(`${opts.model} has no velocity head`);

const ways = [
  ['keyboard or touch, the genie\'s own', 0, 0],
  ...[-3, -2, -1, 1, 2, 3].map((l) => [`keyboard, level ${LEVELS[l + 3]}`, l, 0]),
  ['keyboard, ff + Shift (accent)', 3, ACCENT_SHIFT],
  ['keyboard, Shift (accent)', 0, ACCENT_SHIFT],
  ['keyboard, Z or / (soft)', 0, SOFT_SHIFT],
  ['keyboard, p + Z or / (soft)', -2, SOFT_SHIFT],
  ['keyboard, pp + Z or / (soft)', -3, SOFT_SHIFT],
  ['touch, top tenth of a button', 0, positionShift(0.05)],
  ['touch, bottom tenth of a button', 0, positionShift(0.95)],
  ['touch, middle fifth of a button', 0, positionShift(0.45)],
];
const rhythms = { fast: 0.12, medium: 0.3, slow: 0.8 };

console.log(`model ${opts.model}; ${RUNS} runs x ${PRESSES} presses per rhythm (fast 0.12 s, medium 0.3 s, slow 0.8 s, +-30 %), temperature 0.25`);
for (const [name, level, shift] of ways) {
  const v = [];
  for (const interval of Object.values(rhythms)) {
    for (let run = 0; run < RUNS; run++) {
      const rng = makeRng(run + 1);
      let t = 1, b = 3;
      const session = new Session(decoder, config, { velocityHead, seed: run + 1 });
      const player = new Player(session, config, { now: () => t, dynamics: () => level });
      player.listen({ noteOn: (e) => v.push(e.velocity) });
      for (let i = 0; i < PRESSES; i++) {
        t += interval * (0.7 + 0.6 * rng());
        b = Math.min(7, Math.max(0, b + Math.round((rng() * 2 - 1) * 2)));
        player.buttonDown(b, 's', undefined, shift);
        player.buttonUp('s');
      }
    }
  }
  v.sort((a, c) => a - c);
  const share = (f) => `${((100 * v.filter(f).length) / v.length).toFixed(0)} %`;
  console.log(`${name.padEnd(38)} ${String(v[0]).padStart(3)} / ${String(v[v.length >> 1]).padStart(3)} / ${String(v.at(-1)).padStart(3)}` +
    `   <= 30: ${share((x) => x <= 30).padStart(5)}   >= 110: ${share((x) => x >= 110).padStart(5)}`);
}
