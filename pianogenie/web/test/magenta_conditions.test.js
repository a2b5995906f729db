// The real @magenta/music 1.23.1 conditioned classes play conditioned models of ours exported with
// `pianogenie export --format magenta`, loaded over HTTP from 127.0.0.1: `keysig,chord` ->
// PianoGenieKeysigChord over thousands of presses, `chord` -> PianoGenieChord and `keysig,style`
// -> PianoGenieKeysig (style played as none) over fewer, and the shipped pop genie. The same keys at temperature 0 as our
// decoder (PyTorch, float64) fed the same 32 ms-rounded delta times and the same condition ids,
// with `next` and `nextFromKeyList`, conditions changing every few presses through the class's
// setters (setKeySignature, setChordRoot, setChordFamily; 0 = None unsets one, resetState unsets
// all), and the same logits. PianoGenieKeysigChordFamily (key + family, no root) is not tested:
// no set of our conditions maps to it (chord always brings root and family together).
//
// Like magenta.test.js, this file loads no @tensorflow/tfjs 4: @magenta/music runs on its own
// nested TF.js 2.x, and TF.js versions in one process share one global kernel registry.

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
const magenta = require('@magenta/music/node/piano_genie');
const magentaTf = createRequire(require.resolve('@magenta/music/node/piano_genie'))('@tensorflow/tfjs');
magentaTf.disableDeprecationWarnings();

const REPO_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

function pythonExe() {
  if (process.env.PIANOGENIE_PYTHON) return process.env.PIANOGENIE_PYTHON;
  const venv = path.join(REPO_DIR, '.venv', 'bin', 'python');
  return existsSync(venv) ? venv : 'python3';
}

// A random conditioned model of the class's size (8 buttons, 2 x 128): decoder weights scaled up
// and biases spread, as tests/test_magenta.py does, so a misplaced row, gate or bias shows; the
// condition columns (after keys, start, delta time, button) drawn large, so conditions matter.
const BUILD = `
import dataclasses, sys, torch
from pianogenie.config import Config
from pianogenie.model import Autoencoder
torch.manual_seed(3)
cfg = Config(conditions=sys.argv[2])
model = Autoencoder(cfg)
with torch.no_grad():
    for name, p in model.dec.named_parameters():
        if "bias" in name:
            p.uniform_(-1.5, 1.5)
        else:
            p.mul_(4)
    model.dec.input.weight[:, 91:].normal_(0, 1.0)
torch.save({"model": model.state_dict(), "cfg": dataclasses.asdict(cfg)}, sys.argv[1])
`;

// Our decoder on the schedule: greedy (argmax, first of equals, over the press's key list in its
// order when it has one), each press's delta time rounded as the class rounds it, its condition
// ids (LABEL_COLUMNS: keysig, chord root, chord family, style; 0 = none) as given, style none. "plain" is the
// same presses with every condition none, on our own keys: to show the conditions reach the keys.
const REFERENCE = `
import copy, json, sys
import numpy as np, torch
from pianogenie.constants import NUM_KEYS, SOS
from pianogenie.magenta import magenta_delta_time
from pianogenie.model import load_model
model, cfg = load_model(sys.argv[1])
dec = copy.deepcopy(model.dec).double()
sessions = json.load(open(sys.argv[2]))
def run(presses, use_conditions):
    h = torch.zeros(cfg.model_rnn_num_layers, 1, cfg.model_rnn_dim, dtype=torch.float64)
    state, prev, rows = (h, torch.zeros_like(h)), SOS, []
    for p in presses:
        dt = float(magenta_delta_time(1e5 if p["dt"] is None else p["dt"], cfg.data_delta_time_max))
        b = 2.0 * p["button"] / (cfg.num_buttons - 1) - 1.0
        c = [p["keysig"], p["root"], p["family"], 0] if use_conditions else [0, 0, 0, 0]
        logits, state = dec.step(torch.tensor([prev]), torch.tensor([dt], dtype=torch.float64),
                                 torch.tensor([b], dtype=torch.float64), state, c=torch.tensor([c]))
        logits = logits[0].numpy()
        allowed = list(p["keys"] if p["keys"] is not None else range(NUM_KEYS))
        key = allowed[int(np.argmax(logits[allowed]))]
        rest = np.sort(logits[allowed])[::-1]
        rows.append({"key": int(key), "logits": logits.tolist(), "margin": float(rest[0] - rest[1])})
        prev = key
    return rows
with torch.no_grad():
    out = {"rows": [run(s, True) for s in sessions], "plain": [[r["key"] for r in run(s, False)] for s in sessions]}
json.dump(out, open(sys.argv[3], "w"))
`;

/** The presses of magenta.test.js (buttons in runs and leaps; delta times from chords to long
 * gaps, many on the 16 ms rounding edges; every third press from a key list), with conditions
 * (our ids = the class's enums: pitch classes C=1..B=12, families Maj..Min7b5 = 1..8, 0 = None)
 * changing every few presses: a key signature held for a while, chords changing more often,
 * each sometimes none on its own (a root without a family and the reverse included). Odd
 * sessions begin with no conditions, to check that resetState unsets what the last one set. */
function schedule(seed, SESSIONS, PRESSES_PER_SESSION) {
  let s = seed >>> 0;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const pick = (n) => Math.floor(rand() * n);
  const white = [...Array(88).keys()].filter((k) => ![1, 4, 6, 9, 11].includes(k % 12));
  const pentatonic = [...Array(88).keys()].filter((k) => [0, 2, 4, 7, 9].includes((k + 9) % 12));
  const sessions = [];
  for (let n = 0; n < SESSIONS; n++) {
    const presses = [];
    let button = pick(8);
    let keysig = n % 2 ? 0 : 1 + pick(12);
    let root = n % 2 ? 0 : 1 + pick(12);
    let family = n % 2 ? 0 : 1 + pick(8);
    for (let i = 0; i < PRESSES_PER_SESSION; i++) {
      if (i > 0 && i % 12 === 0) keysig = rand() < 0.2 ? 0 : 1 + pick(12);
      if (i > 0 && i % 3 === 0) {
        const r = rand();
        if (r < 0.15) [root, family] = [0, 0];
        else if (r < 0.22) root = 0;
        else if (r < 0.29) family = 0;
        else [root, family] = [1 + pick(12), 1 + pick(8)];
      }
      button = rand() < 0.2 ? pick(8) : Math.min(7, Math.max(0, button + pick(3) - 1));
      const r = rand();
      let dt;
      if (i === 0) dt = null;
      else if (r < 0.15) dt = 0;
      else if (r < 0.35) dt = (pick(34) + 0.5) * 0.032 + (rand() < 0.5 ? 0 : (rand() - 0.5) * 1e-6);
      else if (r < 0.9) dt = rand() * 0.6;
      else dt = 0.9 + rand() * 2;
      let keys = null;
      if (i % 3 === 2) {
        const p = pick(3);
        keys = p === 0 ? white : p === 1 ? pentatonic : [...Array(88).keys()].filter(() => rand() < 0.3);
        if (keys.length < 2) keys = white;
      }
      presses.push({ button, dt, keys, keysig, root, family });
    }
    sessions.push(presses);
  }
  return sessions;
}

let tmp;
let server;

// Each case: our conditions, the class that plays them, its setters (schedule field -> setter), and
// how many sessions x presses it plays, with at least `unsets` setter calls to None among them. Fields a class has no setter for stay none in the schedule.
const CASES = [
  { conditions: 'keysig,chord', cls: 'PianoGenieKeysigChord', sessions: 5, presses: 450, unsets: 100,
    setters: { keysig: 'setKeySignature', root: 'setChordRoot', family: 'setChordFamily' } },
  { conditions: 'chord', cls: 'PianoGenieChord', sessions: 2, presses: 300, unsets: 20,
    setters: { root: 'setChordRoot', family: 'setChordFamily' } },
  { conditions: 'keysig,style', cls: 'PianoGenieKeysig', sessions: 2, presses: 300, unsets: 4,
    setters: { keysig: 'setKeySignature' } },
  // the shipped pop genie, as a user exports it (its velocity head dropped with a notice)
  { conditions: 'keysig,chord', cls: 'PianoGenieKeysigChord', model: 'pianogenie/pretrained/pop/model.pt',
    sessions: 2, presses: 300, unsets: 20,
    setters: { keysig: 'setKeySignature', root: 'setChordRoot', family: 'setChordFamily' } },
];

before(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'pianogenie-magenta-cond-'));
  // /<case index>/<file>: each case's export folder
  server = http.createServer(async (req, res) => {
    const parts = new URL(req.url, 'http://x').pathname.split('/');
    const dir = /^[0-9]$/.test(parts[1]) ? path.join(tmp, `model${parts[1]}`) : null;
    try {
      if (!dir) throw new Error('not found');
      const name = path.basename(parts.at(-1));
      const body = await readFile(path.join(dir, name));
      // no keep-alive: a socket idle through the previous case's presses may be closed under the next fetch
      res.writeHead(200, { 'content-type': name.endsWith('.json') ? 'application/json' : 'application/octet-stream',
        connection: 'close' });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
});

after(() => {
  server?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

for (const [index, cs] of CASES.entries()) {
  const what = cs.model ? `the shipped ${cs.model}` : `a ${cs.conditions} export`;
  test(`@magenta/music ${cs.cls} plays ${what} with our keys and logits under changing conditions`,
    async () => {
      const ckpt = cs.model ? path.join(REPO_DIR, cs.model) : path.join(tmp, `cond${index}.pt`);
      const out = path.join(tmp, `model${index}`);
      if (!cs.model) {
        execFileSync(pythonExe(), ['-c', BUILD, ckpt, cs.conditions],
          { cwd: REPO_DIR, stdio: ['ignore', 'ignore', 'inherit'] });
      }
      const exportLog = execFileSync(pythonExe(), ['-m', 'pianogenie', 'export', ckpt, '--format', 'magenta',
        '--out', out], { cwd: REPO_DIR, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
      assert.match(exportLog, new RegExp(`mm\\.${cs.cls}\\(`));
      assert.equal(/style condition is dropped/.test(exportLog), cs.conditions.includes('style'));
      const url = `http://127.0.0.1:${server.address().port}/${index}`;

      const sessions = schedule(11 + index, cs.sessions, cs.presses);
      for (const p of sessions.flat()) for (const f of ['keysig', 'root', 'family']) if (!(f in cs.setters)) p[f] = 0;
      const scheduleFile = path.join(tmp, `schedule${index}.json`);
      const referenceFile = path.join(tmp, `reference${index}.json`);
      writeFileSync(scheduleFile, JSON.stringify(sessions));
      execFileSync(pythonExe(), ['-c', REFERENCE, ckpt, scheduleFile, referenceFile],
        { cwd: REPO_DIR, stdio: ['ignore', 'ignore', 'inherit'] });
      const { rows: reference, plain } = JSON.parse(readFileSync(referenceFile, 'utf8'));

      const genie = new magenta[cs.cls](url);
      await genie.initialize();
      let setterCalls = 0;
      let unsets = 0;
      let counting = true; // the setter calls of one pass (the second repeats them)
      let current;
      const reset = () => {
        genie.resetState(); // also sets every condition to None
        current = { keysig: 0, root: 0, family: 0 };
      };
      const press = (p, sample) => {
        for (const [name, setter] of Object.entries(cs.setters)) {
          if (p[name] !== current[name]) {
            genie[setter](p[name]);
            current[name] = p[name];
            if (counting) {
              setterCalls++;
              if (p[name] === 0) unsets++;
            }
          }
        }
        if (p.dt !== null) genie.overrideDeltaTime(p.dt);
        return sample();
      };
      // The public API at temperature 0: what an app calls.
      const keys = [];
      for (const presses of sessions) {
        reset();
        keys.push(presses.map((p) => press(p, () => (p.keys === null
          ? genie.next(p.button, 0)
          : genie.nextFromKeyList(p.button, p.keys, 0)))));
      }
      // Again through the class's own sampling hook, to read its logits on the same path.
      const logits = [];
      counting = false;
      for (const [n, presses] of sessions.entries()) {
        reset();
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
      let differsFromPlain = 0;
      for (const [n, rows] of reference.entries()) {
        for (const [i, ref] of rows.entries()) {
          const p = sessions[n][i];
          assert.equal(keys[n][i], ref.key, `session ${n} press ${i} (keysig ${p.keysig}, root ${p.root}, family `
            + `${p.family}): magenta key ${keys[n][i]}, ours ${ref.key} (our top-2 margin ${ref.margin})`);
          for (let k = 0; k < 88; k++) maxDiff = Math.max(maxDiff, Math.abs(logits[n][i][k] - ref.logits[k]));
          minMargin = Math.min(minMargin, ref.margin);
          compared++;
          if (p.keys !== null) fromList++;
          if (plain[n][i] !== ref.key) differsFromPlain++;
        }
      }
      const distinct = new Set(keys.flat()).size;
      const conditioned = sessions.flat().filter((p) => p.keysig || p.root || p.family).length;
      console.log(`# magenta ${cs.cls} (${cs.conditions}): ${compared} presses (${fromList} with nextFromKeyList, `
        + `${conditioned} with a condition set; ${setterCalls} setter calls, ${unsets} of them to None) identical `
        + `keys (${distinct} distinct); max |logit diff| ${maxDiff.toExponential(2)}; smallest top-2 margin ${minMargin.toExponential(2)}; `
        + `${differsFromPlain} keys differ from the same presses without conditions`);
      assert.ok(compared >= cs.sessions * cs.presses);
      if (index === 0) assert.ok(compared >= 2000);
      assert.ok(maxDiff < 1e-4, `max logit difference ${maxDiff}`);
      assert.ok(distinct > 10, `${distinct} distinct keys`); // the schedule exercises the model
      // The conditions reach the keys, so a wrong condition row or a setter that did nothing would show.
      assert.ok(differsFromPlain > compared / 10, `${differsFromPlain} keys differ without conditions`);
      assert.ok(unsets >= cs.unsets, `${unsets} setter calls to None`);
    });
}
