// Test fixtures made by the Python package itself: `pianogenie export` of a model into a temp dir.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { REPO_DIR } from './helpers.js';

/** The Python with `pianogenie` installed: $PIANOGENIE_PYTHON, else the repo's .venv, else python3. */
export function pythonExe() {
  if (process.env.PIANOGENIE_PYTHON) return process.env.PIANOGENIE_PYTHON;
  const venv = path.join(REPO_DIR, '.venv', 'bin', 'python');
  return existsSync(venv) ? venv : 'python3';
}

// A freshly initialised (seeded) model saved as one of our checkpoints, then exported: needs no
// shared data, and its test.json is computed by PyTorch independently of the JS under test.
const EXPORT_RANDOM = `
import dataclasses, sys, torch
from pianogenie.cli import main
from pianogenie.config import Config
from pianogenie.model import Autoencoder
torch.manual_seed(int(sys.argv[3]))
bins = int(sys.argv[4])
cfg = Config(velocity_bins=bins, velocity_hidden=48) if bins else Config()
model = Autoencoder(cfg)
if bins:  # a head whose standardisation and outputs are far from the identity, to test they are applied
    with torch.no_grad():
        model.vel.feature_mean.uniform_(-0.5, 0.5)
        model.vel.feature_std.uniform_(0.5, 2.0)
        model.vel.output.weight.mul_(8)
torch.save({"model": model.state_dict(), "cfg": dataclasses.asdict(cfg)}, sys.argv[1])
sys.exit(main(["export", sys.argv[1], "--out", sys.argv[2]]))
`;

const cache = new Map();

/** Export a seeded random-init model (once per seed per process), with a velocity head of
 * `velocityBins` bins (0: none); -> the export dir. */
export function exportRandomModel(seed = 0, velocityBins = 0) {
  const id = `${seed}/${velocityBins}`;
  if (!cache.has(id)) cache.set(id, exportRandomModelUncached(seed, velocityBins));
  return cache.get(id);
}

function exportRandomModelUncached(seed, velocityBins) {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'pianogenie-export-'));
  const out = path.join(tmp, 'model');
  execFileSync(pythonExe(), ['-c', EXPORT_RANDOM, path.join(tmp, 'ckpt.pt'), out, String(seed), String(velocityBins)],
    { cwd: REPO_DIR, stdio: ['ignore', 'ignore', 'inherit'] });
  return out;
}

/** `pianogenie export CHECKPOINT` into a temp dir; -> the export dir. */
export function exportCheckpoint(checkpoint) {
  const out = path.join(mkdtempSync(path.join(os.tmpdir(), 'pianogenie-export-')), 'model');
  execFileSync(pythonExe(), ['-m', 'pianogenie', 'export', checkpoint, '--out', out],
    { cwd: REPO_DIR, stdio: ['ignore', 'ignore', 'inherit'] });
  return out;
}

// A seeded model conditioned on key signature and chord (condition weights drawn large enough to
// change the keys), exported; plus presses.json: the keys Python's PianoGenie plays at temperature 0
// for a fixed button sequence under changing conditions, the reference for the JS session.
const EXPORT_CONDITIONED = `
import dataclasses, json, sys, torch
import numpy as np
from pianogenie.cli import main
from pianogenie.config import Config
from pianogenie.genie import PianoGenie
from pianogenie.model import Autoencoder
torch.manual_seed(int(sys.argv[3]))
cfg = Config(conditions=sys.argv[4])
model = Autoencoder(cfg)
with torch.no_grad():
    model.dec.input.weight[:, 91:].normal_(0, 1.0)
torch.save({"model": model.state_dict(), "cfg": dataclasses.asdict(cfg)}, sys.argv[1])
code = main(["export", sys.argv[1], "--out", sys.argv[2]])
rng = np.random.default_rng(0)
n = 400
presses = {"times": np.cumsum(rng.choice([0.0, 0.05, 0.2, 0.5, 1.5], n)).round(4).tolist(),
           "buttons": rng.integers(0, 8, n).tolist(),
           "conditions": [[int(rng.integers(0, 13)) if i % 50 < 40 else 0, *(((i // 25) * 5) % 13, (i // 25) % 9), 0]
                          for i in range(n)]}
genie = PianoGenie.load(sys.argv[1], seed=0)
presses["keys"] = [genie.press(t, b, 0.0, key=c[0], chord=(c[1], c[2])) for t, b, c in
                   zip(presses["times"], presses["buttons"], presses["conditions"])]
json.dump(presses, open(sys.argv[2] + "/../presses.json", "w"))
sys.exit(code)
`;

/** Export a seeded random model conditioned on `conditions` (once per process): -> the export dir,
 * with `../presses.json` beside it (Python's keys for a conditioned press sequence). */
export function exportConditionedModel(seed = 0, conditions = 'keysig,chord') {
  const id = `cond/${seed}/${conditions}`;
  if (!cache.has(id)) {
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'pianogenie-export-'));
    const out = path.join(tmp, 'model');
    execFileSync(pythonExe(), ['-c', EXPORT_CONDITIONED, path.join(tmp, 'ckpt.pt'), out, String(seed), conditions],
      { cwd: REPO_DIR, stdio: ['ignore', 'ignore', 'inherit'] });
    cache.set(id, out);
  }
  return cache.get(id);
}
