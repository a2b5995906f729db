// The browser's own loader (src/model.js: decodeWeights + buildModel, what fetchModel runs) against
// the hostile exports of tests/hostile_exports.py: it refuses and accepts exactly the set that
// pianogenie/export_check.py (export, serve, build-site) refuses and accepts.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { pythonExe } from './fixtures.js';
import { loadModelDir, REPO_DIR } from './helpers.js';

// writes the cases, then records Python's own verdict on each beside the expected one
const MAKE = `
import json, sys
sys.path.insert(0, "tests")
from hostile_exports import make_all
from pianogenie.export_check import check_export
from pianogenie.util import UserError
from pathlib import Path
root = Path(sys.argv[1])
index = make_all(root)
for case in index:
    try:
        check_export(root / case["name"])
        case["python"] = "ok"
    except UserError as e:
        case["python"] = "refuse"
        case["why"] = str(e)
(root / "index.json").write_text(json.dumps(index))
`;

const root = mkdtempSync(path.join(os.tmpdir(), 'pianogenie-hostile-'));
execFileSync(pythonExe(), ['-c', MAKE, root], { cwd: REPO_DIR, stdio: ['ignore', 'ignore', 'inherit'] });
const cases = JSON.parse(readFileSync(path.join(root, 'index.json'), 'utf8'));

test('the hostile set has both verdicts, and Python gives each its expected one', () => {
  assert.ok(cases.filter((c) => c.expect === 'ok').length >= 3 && cases.filter((c) => c.expect === 'refuse').length >= 20);
  for (const c of cases) assert.equal(c.python, c.expect, `${c.name}: ${c.why || ''}`);
});

for (const c of cases.filter((x) => x.browser)) {
  test(`model.js ${c.expect === 'ok' ? 'loads' : 'refuses'} ${c.name}`, async () => {
    const dir = path.join(root, c.name);
    if (c.expect === 'ok') {
      const model = await loadModelDir(dir);
      assert.ok(model.decoder && model.config.numButtons >= 2);
    } else {
      await assert.rejects(loadModelDir(dir), Error);
    }
  });
}
