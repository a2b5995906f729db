// The real @magenta/music 1.23.1 `PianoGenie` plays the shipped model exported with
// `pianogenie export --format magenta`, loaded over HTTP from 127.0.0.1 as an app would load it:
// the same keys at temperature 0 as our decoder (PyTorch, float64) fed the same 32 ms-rounded
// delta times, over thousands of presses with `next` and `nextFromKeyList`, and the same logits.
//
// This file loads no @tensorflow/tfjs 4 (so not helpers.js or fixtures.js): @magenta/music runs on
// its own nested TF.js 2.x, and TF.js versions in one process share one global kernel registry.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
// 1.23.1's package `main` (es5/index.js) is not in the package: the Node build of the one model.
const { PianoGenie } = require('@magenta/music/node/piano_genie');
// The TF.js that PianoGenie itself runs on: its `addStrict` warns once per press otherwise.
const magentaTf = createRequire(require.resolve('@magenta/music/node/piano_genie'))('@tensorflow/tfjs');
magentaTf.disableDeprecationWarnings();

const REPO_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const MODEL = path.join(REPO_DIR, 'pianogenie', 'pretrained', 'model.pt');
const SESSIONS = 5;
const PRESSES_PER_SESSION = 480;

function pythonExe() {
  if (process.env.PIANOGENIE_PYTHON) return process.env.PIANOGENIE_PYTHON;
  const venv = path.join(REPO_DIR, '.venv', 'bin', 'python');
  return existsSync(venv) ? venv : 'python3';
}

// Our decoder on a schedule of presses: greedy (argmax, first of equals, over the press's key
// list in its order when it has one), each press's delta time rounded as the class rounds it.
// A press without dt is the first of a session: the class's clock then says 1e5 s since reset.
const REFERENCE = `
import copy, json, sys
import numpy as np, torch
from pianogenie.constants import NUM_KEYS, SOS
from pianogenie.magenta import magenta_delta_time
from pianogenie.model import load_model
model, cfg = load_model(sys.argv[1])
dec = copy.deepcopy(model.dec).double()
sessions = json.load(open(sys.argv[2]))
out = []
with torch.no_grad():
    for presses in sessions:
        h = torch.zeros(cfg.model_rnn_num_layers, 1, cfg.model_rnn_dim, dtype=torch.float64)
        state, prev, rows = (h, torch.zeros_like(h)), SOS, []
        for p in presses:
            dt = float(magenta_delta_time(1e5 if p["dt"] is None else p["dt"], cfg.data_delta_time_max))
            b = 2.0 * p["button"] / (cfg.num_buttons - 1) - 1.0
            logits, state = dec.step(torch.tensor([prev]), torch.tensor([dt], dtype=torch.float64),
                                     torch.tensor([b], dtype=torch.float64), state)
            logits = logits[0].numpy()
            allowed = list(p["keys"] if p["keys"] is not None else range(NUM_KEYS))
            key = allowed[int(np.argmax(logits[allowed]))]
            rest = np.sort(logits[allowed])[::-1]
            rows.append({"key": int(key), "logits": logits.tolist(), "margin": float(rest[0] - rest[1])})
            prev = key
        out.append(rows)
json.dump(out, open(sys.argv[3], "w"))
`;

/** A deterministic schedule: buttons in runs and leaps; delta times from chords (0) to long gaps,
 * many on or next to the 16 ms rounding edges and beyond the last bin; every third press drawn
 * from a key list (white keys, a C major pentatonic, a random set). */
function schedule(seed) {
  let s = seed >>> 0;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const white = [...Array(88).keys()].filter((k) => ![1, 4, 6, 9, 11].includes(k % 12));
  const pentatonic = [...Array(88).keys()].filter((k) => [0, 2, 4, 7, 9].includes((k + 9) % 12));
  const sessions = [];
  for (let n = 0; n < SESSIONS; n++) {
    const presses = [];
    let button = Math.floor(rand() * 8);
    for (let i = 0; i < PRESSES_PER_SESSION; i++) {
      button = rand() < 0.2 ? Math.floor(rand() * 8) : Math.min(7, Math.max(0, button + Math.floor(rand() * 3) - 1));
      const r = rand();
      let dt;
      if (i === 0) dt = null;
      else if (r < 0.15) dt = 0;
      else if (r < 0.35) dt = (Math.floor(rand() * 34) + 0.5) * 0.032 + (rand() < 0.5 ? 0 : (rand() - 0.5) * 1e-6); // rounding edges
      else if (r < 0.9) dt = rand() * 0.6;
      else dt = 0.9 + rand() * 2;
      let keys = null;
      if (i % 3 === 2) {
        const pick = Math.floor(rand() * 3);
        keys = pick === 0 ? white : pick === 1 ? pentatonic : [...Array(88).keys()].filter(() => rand() < 0.3);
        if (keys.length < 2) keys = white;
      }
      presses.push({ button, dt, keys });
    }
    sessions.push(presses);
  }
  return sessions;
}

let tmp;
let server;
let url;
let exportLog;

before(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'pianogenie-magenta-'));
  const out = path.join(tmp, 'model');
  exportLog = execFileSync(pythonExe(), ['-m', 'pianogenie', 'export', MODEL, '--format', 'magenta', '--out', out],
    { cwd: REPO_DIR, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  server = http.createServer(async (req, res) => {
    const name = path.basename(new URL(req.url, 'http://x').pathname);
    try {
      const body = await readFile(path.join(out, name));
      res.writeHead(200, { 'content-type': name.endsWith('.json') ? 'application/json' : 'application/octet-stream' });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${server.address().port}/model`;
});

after(() => {
  server?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test('export --format magenta says the velocity head is dropped and which class plays it', () => {
  assert.match(exportLog, /note: the velocity head is dropped/);
  assert.match(exportLog, /mm\.PianoGenie\(/);
});

test('@magenta/music PianoGenie plays the export with our keys and logits', async () => {
  const sessions = schedule(7);
  const scheduleFile = path.join(tmp, 'schedule.json');
  const referenceFile = path.join(tmp, 'reference.json');
  writeFileSync(scheduleFile, JSON.stringify(sessions));
  execFileSync(pythonExe(), ['-c', REFERENCE, MODEL, scheduleFile, referenceFile],
    { cwd: REPO_DIR, stdio: ['ignore', 'ignore', 'inherit'] });
  const reference = JSON.parse(readFileSync(referenceFile, 'utf8'));

  const genie = new PianoGenie(url);
  await genie.initialize();
  const keys = [];
  const press = (p, sample) => {
    if (p.dt !== null) genie.overrideDeltaTime(p.dt);
    return sample();
  };
  // The public API at temperature 0: what an app calls.
  for (const presses of sessions) {
    genie.resetState();
    keys.push(presses.map((p) => press(p, () => (p.keys === null
      ? genie.next(p.button, 0)
      : genie.nextFromKeyList(p.button, p.keys, 0)))));
  }
  // Again through the class's own sampling hook, to read its logits on the same path.
  const logits = [];
  for (const [n, presses] of sessions.entries()) {
    genie.resetState();
    logits.push(presses.map((p, i) => {
      let row;
      press(p, () => genie.nextWithCustomSamplingFunction(p.button, (l) => {
        row = l.dataSync().slice();
        return { dataSync: () => [keys[n][i]] };
      }));
      return row;
    }));
  }
  genie.dispose();
  assert.match(magentaTf.version_core, /^2\./); // its own TF.js, not the app's 4.x

  let compared = 0;
  let fromList = 0;
  let maxDiff = 0;
  let minMargin = Infinity;
  for (const [n, rows] of reference.entries()) {
    for (const [i, ref] of rows.entries()) {
      assert.equal(keys[n][i], ref.key, `session ${n} press ${i}: magenta key ${keys[n][i]}, ours ${ref.key} `
        + `(our top-2 margin ${ref.margin})`);
      for (let k = 0; k < 88; k++) maxDiff = Math.max(maxDiff, Math.abs(logits[n][i][k] - ref.logits[k]));
      minMargin = Math.min(minMargin, ref.margin);
      compared++;
      if (sessions[n][i].keys !== null) fromList++;
    }
  }
  console.log(`# magenta: ${compared} presses (${fromList} with nextFromKeyList) identical keys; max |logit diff| `
    + `${maxDiff.toExponential(2)}; smallest top-2 margin ${minMargin.toExponential(2)}`);
  assert.ok(compared >= 2000);
  assert.ok(maxDiff < 1e-4, `max logit difference ${maxDiff}`);
  // The keys vary: the schedule exercises the model rather than one repeated note.
  assert.ok(new Set(keys.flat()).size > 20);
});
