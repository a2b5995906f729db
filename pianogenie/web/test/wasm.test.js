// The WebAssembly SIMD kernel: built from its source, and right on its own (the decoder tests
// check it inside the model against PyTorch goldens).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { MATVEC_WASM } from '../src/matvec_wasm.js';
import { compileWat } from '../tools/build_wasm.mjs';

test('matvec_wasm.js holds exactly what matvec.wat compiles to (run `npm run build:wasm`)', async () => {
  assert.deepEqual(MATVEC_WASM, await compileWat());
});

test('matvec: out += K x against a plain loop, for 16-row blocks and any input length', () => {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const { matvec } = new WebAssembly.Instance(new WebAssembly.Module(MATVEC_WASM), { env: { memory } }).exports;
  const f32 = new Float32Array(memory.buffer);
  let seed = 7;
  const rand = () => ((seed = (seed * 16807) % 2147483647) / 2147483647) - 0.5;
  for (const [rows, n] of [[16, 1], [32, 3], [48, 37], [512, 8], [96, 0]]) {
    const k = 64, x = k + n * rows, out = x + n + 3; // x and out deliberately not 16-byte aligned
    for (let i = k; i < out + rows; i++) f32[i] = rand();
    const want = Array.from({ length: rows }, (_, r) => {
      let s = f32[out + r];
      for (let j = 0; j < n; j++) s += f32[k + j * rows + r] * f32[x + j];
      return s;
    });
    matvec(4 * k, 4 * x, n, rows, 4 * out);
    for (let r = 0; r < rows; r++) {
      assert.ok(Math.abs(f32[out + r] - want[r]) < 1e-5, `rows ${rows}, n ${n}: row ${r} ${f32[out + r]} != ${want[r]}`);
    }
  }
});
