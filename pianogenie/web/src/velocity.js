// @ts-check
// The velocity head's maths on plain typed arrays: how hard the key just chosen is played. No DOM.
//
// Mirrors pianogenie/velocity.py. The head reads the decoder's top hidden state h (after the step
// that chose the key), the chosen key k, and dense features [s, dt, chord, log(dt + 1e-3), b]
// where s is a history state over the velocities played so far: s' = A s + B u with
// u = [v/127, (v/127)^2, k/88, 1] (A, B exported as vel.state_transition / vel.state_input).
//   z = relu(W_h h + W_k onehot(k) + W_d (dense - mean) / std + b),  logits = W_o z + b_o
// The velocity played is the mean of softmax(logits) over the bin centres jw + (w - 1)/2.
// A model without vel.* weights has no head (the caller plays a fixed velocity).
//
// Where the engine has wasm SIMD the two products run in the decoder's matvec kernel, on an
// instance and memory of the head's own (the decoder's layout stays untouched); else plain JS.

import { MATVEC_WASM } from './matvec_wasm.js';
import { matVecAdd, wasmSimdAvailable } from './decoder.js';

export const DEFAULT_VELOCITY = 80; // what a model without a velocity head plays
const CHORD_DT = 0.01; // seconds: a shorter delta time is a note of the same chord
const NUM_KEYS = 88;

const roundUp = (n, m) => Math.ceil(n / m) * m;

/** Whether exported weights hold a velocity head. */
export function hasVelocityHead(weights) {
  return Boolean(weights['vel.hidden.weight']);
}

/** Names and shapes of the head, given the decoder's rnnDim and the head's own sizes. */
export function velocityWeightSpecs(rnnDim, hidden, bins, numState) {
  const D = numState + 4;
  return {
    'vel.hidden.weight': [hidden, rnnDim + NUM_KEYS + D],
    'vel.hidden.bias': [hidden],
    'vel.output.weight': [bins, hidden],
    'vel.output.bias': [bins],
    'vel.state_transition': [numState, numState],
    'vel.state_input': [numState, 4],
    'vel.feature_mean': [D],
    'vel.feature_std': [D],
  };
}

/** The mean velocity (1..127) of the distribution softmax(logits) over equal-width bins' centres. */
export function meanVelocity(logits) {
  const bins = logits.length, w = 128 / bins;
  let m = -Infinity;
  for (let j = 0; j < bins; j++) if (logits[j] > m) m = logits[j];
  let total = 0, sum = 0;
  for (let j = 0; j < bins; j++) {
    const p = Math.exp(logits[j] - m);
    total += p;
    sum += p * (j * w + (w - 1) / 2);
  }
  return Math.min(Math.max(Math.round(sum / total), 1), 127);
}

export class VelocityHead {
  /**
   * @param {Object<string, {data: Float32Array, shape: number[]}>} weights  with the `vel.*` weights
   * @param {number} rnnDim  the decoder's hidden size
   * @param {{simd?: boolean}} options  simd: the WebAssembly SIMD kernel (default: if available)
   */
  constructor(weights, rnnDim, { simd = wasmSimdAvailable() } = {}) {
    const w1 = weights['vel.hidden.weight'], A = weights['vel.state_transition'];
    if (!w1 || !A) throw new Error('weights hold no velocity head (vel.hidden.weight, vel.state_transition)');
    const hidden = w1.shape[0], S = A.shape[0], bins = weights['vel.output.bias']?.shape[0];
    for (const [name, shape] of Object.entries(velocityWeightSpecs(rnnDim, hidden, bins, S))) {
      const t = weights[name];
      if (!t || t.shape.join(',') !== shape.join(',') || t.data.length !== shape.reduce((a, b) => a * b, 1)) {
        throw new Error(`velocity weight ${name} has shape [${t ? t.shape : 'missing'}], expected [${shape}]`);
      }
    }
    const H = rnnDim, D = S + 4, n = H + D, I = H + NUM_KEYS + D;
    this.rnnDim = H;
    this.hidden = hidden;
    this.bins = bins;
    this.numState = S;
    this.kernel = simd ? 'wasm-simd' : 'js';
    const W1 = w1.data, b1 = weights['vel.hidden.bias'].data;
    const mean = weights['vel.feature_mean'].data, std = weights['vel.feature_std'].data;
    // Fold the standardisation into the weights; the key's columns become a table (one row read per press).
    const K = new Float32Array(hidden * n); // [hidden, H + D] over [h; dense]
    this.bias = new Float64Array(hidden);
    this.keyTable = new Float64Array(NUM_KEYS * hidden); // [88, hidden]
    for (let r = 0; r < hidden; r++) {
      let b = b1[r];
      for (let j = 0; j < H; j++) K[r * n + j] = W1[r * I + j];
      for (let j = 0; j < D; j++) {
        const wd = W1[r * I + H + NUM_KEYS + j] / std[j];
        K[r * n + H + j] = wd;
        b -= wd * mean[j];
      }
      this.bias[r] = b;
      for (let k = 0; k < NUM_KEYS; k++) this.keyTable[k * hidden + r] = W1[r * I + H + k];
    }
    this.A = Float64Array.from(A.data);
    this.B = Float64Array.from(weights['vel.state_input'].data);
    this.s = new Float64Array(S);
    this._sNext = new Float64Array(S);
    const Wo = weights['vel.output.weight'].data, bo = weights['vel.output.bias'].data;
    if (simd) this._initWasm(K, Wo, bo);
    else {
      this.K = K;
      this.Wo = Float32Array.from(Wo);
      /** @type {Float32Array | Float64Array} */
      this.bo = Float64Array.from(bo);
      /** @type {Float32Array | Float64Array} */
      this.x = new Float64Array(n); // [h; dense]
      /** @type {Float32Array | Float64Array} */
      this.z = new Float64Array(hidden);
      /** @type {Float32Array | Float64Array} */
      this.out = new Float64Array(bins);
    }
  }

  // Transposed kernels with rows padded to 16 (matvec's block) in a memory of the head's own.
  _initWasm(K, Wo, bo) {
    const { rnnDim: H, hidden, bins, numState: S } = this, n = H + S + 4;
    const Zp = roundUp(hidden, 16), Rp = roundUp(bins, 16);
    let top = 0;
    const alloc = (len) => { const at = top; top += roundUp(len, 4); return at; };
    const kAt = alloc(n * Zp), oAt = alloc(hidden * Rp), xAt = alloc(n), zAt = alloc(Zp), outAt = alloc(Rp);
    const memory = new WebAssembly.Memory({ initial: Math.ceil((4 * top) / 65536) });
    this._matvec = /** @type {(matrix: number, x: number, n: number, rows: number, out: number) => void} */ (
      new WebAssembly.Instance(new WebAssembly.Module(MATVEC_WASM), { env: { memory } }).exports.matvec);
    const f32 = new Float32Array(memory.buffer);
    for (let r = 0; r < hidden; r++) for (let j = 0; j < n; j++) f32[kAt + j * Zp + r] = K[r * n + j];
    for (let r = 0; r < bins; r++) for (let j = 0; j < hidden; j++) f32[oAt + j * Rp + r] = Wo[r * hidden + j];
    this._ptr = { k: 4 * kAt, o: 4 * oAt, x: 4 * xAt, z: 4 * zAt, out: 4 * outAt };
    this._rows = { Zp, Rp };
    this.x = f32.subarray(xAt, xAt + n);
    this._zPadded = f32.subarray(zAt, zAt + Zp);
    this.z = f32.subarray(zAt, zAt + hidden);
    this.bo = Float32Array.from({ length: Rp }, (_, j) => (j < bins ? bo[j] : 0));
    this._outPadded = f32.subarray(outAt, outAt + Rp);
    this.out = f32.subarray(outAt, outAt + bins);
  }

  /** Forget the velocities played so far. */
  reset() {
    this.s.fill(0);
  }

  /**
   * Velocity logits (bins) for key k (0..87) after the decoder step that chose it: h is the
   * decoder's top hidden state, dt and bReal that step's inputs. The array is reused by the next call.
   */
  logits(h, k, dt, bReal) {
    const { rnnDim: H, hidden, numState: S, x, z } = this;
    x.set(h);
    x.set(this.s, H);
    x[H + S] = dt;
    x[H + S + 1] = dt < CHORD_DT ? 1 : 0;
    x[H + S + 2] = Math.log(dt + 1e-3);
    x[H + S + 3] = bReal;
    const row = k * hidden, table = this.keyTable, bias = this.bias;
    for (let r = 0; r < hidden; r++) z[r] = bias[r] + table[row + r];
    if (this._ptr) {
      const p = this._ptr;
      this._matvec(p.k, p.x, x.length, this._rows.Zp, p.z);
      for (let r = 0; r < hidden; r++) if (z[r] < 0) z[r] = 0;
      this._outPadded.set(this.bo);
      this._matvec(p.o, p.z, hidden, this._rows.Rp, p.out);
    } else {
      matVecAdd(this.K, x, x.length, z, hidden);
      for (let r = 0; r < hidden; r++) if (z[r] < 0) z[r] = 0;
      this.out.set(this.bo);
      matVecAdd(this.Wo, z, hidden, this.out, this.bins);
    }
    return this.out;
  }

  /** The history moves on with the velocity v (1..127) played on key k. */
  record(v, k) {
    const { A, B, s, _sNext: next, numState: S } = this;
    const u0 = v / 127, u1 = u0 * u0, u2 = k / NUM_KEYS;
    for (let i = 0; i < S; i++) {
      let a = B[i * 4] * u0 + B[i * 4 + 1] * u1 + B[i * 4 + 2] * u2 + B[i * 4 + 3];
      for (let j = 0; j < S; j++) a += A[i * S + j] * s[j];
      next[i] = a;
    }
    s.set(next);
  }
}
