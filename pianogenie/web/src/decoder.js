// @ts-check
// The Piano Genie decoder's maths on plain typed arrays: one press -> 88 key logits.
//
// No DOM and no TF.js here: weights arrive as {name: {data: Float32Array, shape}} in the PyTorch
// layouts of the exported TF.js weights (`dec.input.weight` [H, 91], `dec.lstm.weight_ih_l0`
// [4H, H], ...). A press is ~200k multiply-adds; as tfjs ops the per-op overhead (tensor
// allocation, kernel dispatch, the sync read-back) costs far more than the arithmetic, so the hot
// path runs on kernels packed once at load: the three matrix-vector products in a 315-byte
// WebAssembly SIMD function (matvec.wat) where the browser has wasm SIMD (all current ones), else
// in plain JS loops. Both paths compute the same maths and are tested against the same goldens.
//
// Maths (PyTorch tutorial): x = [one_hot(k_m1, 89), dt, b_real]; x = W_in x + b_in; a 2-layer LSTM
// (gates i, f, g, o; bias b_ih + b_hh); logits = W_out h_top + b_out.
//
// A conditioned decoder (cfg.json `conditions`, pianogenie.labels) reads one one-hot per condition
// column after the button, id 0 = none included: key signature (13), chord root (13) and family (9),
// style (3). Conditions hold between chord changes, so setConditions() folds their columns into
// the 89 previous-key rows of layer 0 (one 89 x 4H add when they change) and a press costs what
// it did without them.

import { MATVEC_WASM } from './matvec_wasm.js';

// condition name -> its label columns' one-hot widths (none slot included), in decoder input order
export const CONDITIONS = { keysig: [13], chord: [13, 9], style: [3] };
const CONDITION_IDS = { keysig: ['keysig'], chord: ['chordRoot', 'chordFamily'], style: ['style'] };

/** The conditions (in input order) whose one-hots make `width` extra input columns: every subset
 * of keysig (13), chord (22), style (3) has its own width, so the weights alone tell. */
export function conditionsOfWidth(width) {
  const names = Object.keys(CONDITIONS);
  for (let m = 0; m < 1 << names.length; m++) {
    const subset = names.filter((_, i) => m & (1 << i));
    if (subset.reduce((a, n) => a + CONDITIONS[n].reduce((x, y) => x + y, 0), 0) === width) return subset;
  }
  throw new Error(`decoder input has ${width} condition columns: no set of conditions (keysig 13, chord 22, style 3) makes that`);
}

/** Names and shapes the decoder needs, given the sizes (checked at load, with clear errors). */
export function decoderWeightSpecs(rnnDim, numLayers, numKeys = 88, conditionWidth = 0) {
  const H = rnnDim, G = 4 * H;
  const specs = {
    'dec.input.weight': [H, numKeys + 3 + conditionWidth],
    'dec.input.bias': [H],
    'dec.output.weight': [numKeys, H],
    'dec.output.bias': [numKeys],
  };
  for (let l = 0; l < numLayers; l++) {
    specs[`dec.lstm.weight_ih_l${l}`] = [G, H];
    specs[`dec.lstm.weight_hh_l${l}`] = [G, H];
    specs[`dec.lstm.bias_ih_l${l}`] = [G];
    specs[`dec.lstm.bias_hh_l${l}`] = [G];
  }
  return specs;
}

/** Sizes read off the weights themselves, so any exported model (or the tutorial's) just loads. */
export function inferSizes(weights) {
  const w = weights['dec.input.weight'];
  if (!w) throw new Error('weights hold no dec.input.weight: not a Piano Genie decoder');
  let numLayers = 0;
  while (weights[`dec.lstm.weight_ih_l${numLayers}`]) numLayers++;
  const numKeys = weights['dec.output.bias'] ? weights['dec.output.bias'].shape[0] : 88;
  return { rnnDim: w.shape[0], numLayers, numKeys, conditionWidth: w.shape[1] - numKeys - 3 };
}

function checkWeights(weights, specs) {
  for (const [name, shape] of Object.entries(specs)) {
    const w = weights[name];
    if (!w) throw new Error(`decoder weight ${name} is missing`);
    const size = shape.reduce((a, b) => a * b, 1);
    if (w.shape.join(',') !== shape.join(',') || w.data.length !== size) {
      throw new Error(`decoder weight ${name} has shape [${w.shape}], expected [${shape}]`);
    }
  }
}

const sigmoid = (x) => 1 / (1 + Math.exp(-x));

/** Whether this engine runs WebAssembly SIMD (Chrome 91+, Firefox 89+, Safari 16.4+, Node 16.4+). */
export function wasmSimdAvailable() {
  return typeof WebAssembly === 'object' && WebAssembly.validate(MATVEC_WASM);
}

const roundUp = (n, m) => Math.ceil(n / m) * m;

// out[r] += sum_j W[r, j] x[j] for a row-major W [rows, n] (the JS path). Eight rows at a time:
// each x[j] is loaded once for eight multiply-adds, and the eight independent sums stay in
// registers, so V8's scalar code keeps several multiply-adds in flight.
export function matVecAdd(W, x, n, out, rows) {
  const rows8 = rows - (rows % 8);
  for (let r = 0; r < rows8; r += 8) {
    const o0 = r * n, o1 = o0 + n, o2 = o1 + n, o3 = o2 + n, o4 = o3 + n, o5 = o4 + n, o6 = o5 + n, o7 = o6 + n;
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    for (let j = 0; j < n; j++) {
      const xj = x[j];
      s0 += W[o0 + j] * xj;
      s1 += W[o1 + j] * xj;
      s2 += W[o2 + j] * xj;
      s3 += W[o3 + j] * xj;
      s4 += W[o4 + j] * xj;
      s5 += W[o5 + j] * xj;
      s6 += W[o6 + j] * xj;
      s7 += W[o7 + j] * xj;
    }
    out[r] += s0;
    out[r + 1] += s1;
    out[r + 2] += s2;
    out[r + 3] += s3;
    out[r + 4] += s4;
    out[r + 5] += s5;
    out[r + 6] += s6;
    out[r + 7] += s7;
  }
  for (let r = rows8; r < rows; r++) {
    let s = 0;
    for (let j = 0, o = r * n; j < n; j++) s += W[o + j] * x[j];
    out[r] += s;
  }
}

export class Decoder {
  /**
   * @param {Object<string, {data: Float32Array, shape: number[]}>} weights  the `dec.*` weights
   * @param {{simd?: boolean}} options  simd: use the WebAssembly SIMD kernel (default: if available)
   */
  constructor(weights, { simd = wasmSimdAvailable() } = {}) {
    const { rnnDim, numLayers, numKeys, conditionWidth } = inferSizes(weights);
    checkWeights(weights, decoderWeightSpecs(rnnDim, numLayers, numKeys, conditionWidth));
    const H = rnnDim, G = 4 * H, I = numKeys + 3, C = conditionWidth, IC = I + C;
    /** The conditions this decoder takes, in input order ([] = none): see setConditions. */
    this.conditions = conditionWidth ? conditionsOfWidth(conditionWidth) : [];
    this.rnnDim = H;
    this.numLayers = numLayers;
    this.numKeys = numKeys;
    this.sos = numKeys;
    this.kernel = simd ? 'wasm-simd' : 'js';
    const W = (name) => weights[name].data;

    // Layer 0 sees only x = W_in [onehot, dt, b] + b_in, so fold the input layer into it:
    // inputGates[c] = W_ih0 W_in[:, c] (one column per input unit, contiguous for the press), and
    // the 89 key columns also hold all of layer 0's biases, W_ih0 b_in + b_ih0 + b_hh0, since
    // exactly one of them is read per press. Summed in float64 (only 3 columns are read per press,
    // so float64 is free here).
    const Win = W('dec.input.weight'), bin = W('dec.input.bias'), Wih0 = W('dec.lstm.weight_ih_l0');
    const bih0 = W('dec.lstm.bias_ih_l0'), bhh0 = W('dec.lstm.bias_hh_l0');
    const folded = new Float64Array(IC * G); // [I + C, G]
    for (let g = 0; g < G; g++) {
      let bias = bih0[g] + bhh0[g];
      for (let h = 0; h < H; h++) bias += Wih0[g * H + h] * bin[h];
      for (let c = 0; c < IC; c++) {
        let a = c <= numKeys ? bias : 0;
        for (let h = 0; h < H; h++) a += Wih0[g * H + h] * Win[h * IC + c];
        folded[c * G + g] = a;
      }
    }
    this.inputGates = folded.slice(0, I * G); // [I, G]: key rows with the conditions in force added
    this._baseKeyGates = folded.slice(0, (numKeys + 1) * G);
    this._conditionGates = folded.subarray(I * G); // [C, G]
    this._columns = this.conditions.flatMap((n) => CONDITION_IDS[n].map((id, j) => ({ id, size: CONDITIONS[n][j] })));
    this._conditionIds = null;
    this.setConditions(null);
    // Per layer: the kernel over [input; h] as [G, n] rows (layer 0: over h only) and its bias.
    const kernels = [], biases = [];
    for (let l = 0; l < numLayers; l++) {
      const Whh = W(`dec.lstm.weight_hh_l${l}`);
      if (l === 0) {
        kernels.push({ data: Whh, n: H });
        biases.push(null); // in inputGates
        continue;
      }
      const Wih = W(`dec.lstm.weight_ih_l${l}`), K = new Float32Array(G * 2 * H);
      for (let g = 0; g < G; g++) {
        K.set(Wih.subarray(g * H, (g + 1) * H), g * 2 * H);
        K.set(Whh.subarray(g * H, (g + 1) * H), g * 2 * H + H);
      }
      kernels.push({ data: K, n: 2 * H });
      const b = new Float64Array(G), bih = W(`dec.lstm.bias_ih_l${l}`), bhh = W(`dec.lstm.bias_hh_l${l}`);
      for (let g = 0; g < G; g++) b[g] = bih[g] + bhh[g];
      biases.push(b);
    }
    const out = { data: W('dec.output.weight'), n: H }, outBias = W('dec.output.bias');
    this.c = Array.from({ length: numLayers }, () => new Float64Array(H)); // cell states
    if (simd) this._initWasm(kernels, biases, out, outBias);
    else this._initJs(kernels, biases, out, outBias);
  }

  // Plain JS: row-major float32 kernels (half the memory traffic of float64), float64 state.
  _initJs(kernels, biases, out, outBias) {
    const H = this.rnnDim;
    this.kernels = kernels.map((k) => Float32Array.from(k.data));
    this.biases = biases;
    this.outKernel = Float32Array.from(out.data); // [numKeys, H]
    this.outBias = Float64Array.from(outBias);
    this.h = Array.from({ length: this.numLayers }, () => new Float64Array(H));
    this.xh = new Float64Array(2 * H); // [input; h] of the layer being stepped
    this.gates = new Float64Array(4 * H);
    this.logits = new Float64Array(this.numKeys);
  }

  // WebAssembly: every kernel transposed into one linear memory with its rows padded to a multiple
  // of 16 (matvec's block), followed by the float32 state. The hidden states h_0..h_{L-1} sit
  // back to back, so layer l's input [h_{l-1}; h_l] is one contiguous slice and nothing is copied.
  _initWasm(kernels, biases, out, outBias) {
    const H = this.rnnDim, G = 4 * H, L = this.numLayers;
    const Gp = roundUp(G, 16), R = roundUp(this.numKeys, 16);
    let top = 0; // float offset of the next region, kept 16-byte aligned
    const alloc = (n) => { const at = top; top += roundUp(n, 4); return at; };
    const kAt = kernels.map((k) => alloc(k.n * Gp)), outAt = alloc(H * R);
    const hAt = alloc(L * H), gatesAt = alloc(Gp), logitsAt = alloc(R);
    const memory = new WebAssembly.Memory({ initial: Math.ceil((4 * top) / 65536) });
    this._matvec = /** @type {(matrix: number, x: number, n: number, rows: number, out: number) => void} */ (
      new WebAssembly.Instance(new WebAssembly.Module(MATVEC_WASM), { env: { memory } }).exports.matvec);
    const f32 = new Float32Array(memory.buffer);
    const transpose = ({ data, n }, rows, at, stride) => {
      for (let r = 0; r < rows; r++) for (let j = 0; j < n; j++) f32[at + j * stride + r] = data[r * n + j];
    };
    kernels.forEach((k, l) => transpose(k, G, kAt[l], Gp));
    transpose(out, this.numKeys, outAt, R);
    this._ptr = { k: kAt.map((a) => 4 * a), out: 4 * outAt, h: 4 * hAt, gates: 4 * gatesAt, logits: 4 * logitsAt };
    this._rows = { G: Gp, R };
    this.h = Array.from({ length: L }, (_, l) => f32.subarray(hAt + l * H, hAt + (l + 1) * H));
    this.gates = f32.subarray(gatesAt, gatesAt + Gp);
    this.biases = biases.map((b) => b && Float32Array.from({ length: Gp }, (_, g) => (g < G ? b[g] : 0)));
    this.outBias = Float32Array.from({ length: R }, (_, k) => (k < this.numKeys ? outBias[k] : 0));
    this._logitsPadded = f32.subarray(logitsAt, logitsAt + R);
    this.logits = f32.subarray(logitsAt, logitsAt + this.numKeys);
  }

  /**
   * The conditions of the presses from now on: {keysig, chordRoot, chordFamily, style} ids as in
   * pianogenie.harmony (0 = none; key signature and chord root 1..12 = C..B, chord family 1..8 =
   * major, minor, augmented, diminished, seventh, major seventh, minor seventh, half-diminished;
   * style 1 classical, 2 pop); an absent id (or null for all) is none. A nonzero id of a condition
   * this decoder does not take is a RangeError. Cheap when nothing changed.
   */
  setConditions(ids) {
    const cols = this._columns;
    if (ids) {
      for (const name of ['keysig', 'chordRoot', 'chordFamily', 'style']) {
        const v = ids[name];
        if (v && !cols.some((c) => c.id === name)) {
          throw new RangeError(`this model takes ${this.conditions.length ? this.conditions.join(', ') : 'no conditions'}; it cannot follow ${name}`);
        }
      }
    }
    const want = cols.map(({ id, size }) => {
      const v = ids && ids[id] !== undefined && ids[id] !== null ? ids[id] : 0;
      if (!(Number.isInteger(v) && v >= 0 && v < size)) throw new RangeError(`${id} ${v} outside 0..${size - 1}`);
      return v;
    });
    const have = this._conditionIds;
    if (have && want.every((v, j) => v === have[j])) return;
    const G = 4 * this.rnnDim, rows = this.inputGates, base = this._baseKeyGates, cg = this._conditionGates;
    const bias = new Float64Array(G);
    let offset = 0;
    cols.forEach(({ size }, j) => {
      const at = (offset + want[j]) * G;
      for (let g = 0; g < G; g++) bias[g] += cg[at + g];
      offset += size;
    });
    for (let k = 0; k < base.length; k += G) for (let g = 0; g < G; g++) rows[k + g] = base[k + g] + bias[g];
    this._conditionIds = want;
  }

  /** Room for a copy of the LSTM state (h, c of every layer): see saveState / restoreState. */
  newState() {
    const H = this.rnnDim, L = this.numLayers;
    return { h: Array.from({ length: L }, () => new Float64Array(H)), c: Array.from({ length: L }, () => new Float64Array(H)) };
  }

  /** Copy the LSTM state into `into` (from newState()): step ahead, then restoreState to come back. */
  saveState(into) {
    for (let l = 0; l < this.numLayers; l++) {
      into.h[l].set(this.h[l]);
      into.c[l].set(this.c[l]);
    }
    return into;
  }

  restoreState(from) {
    for (let l = 0; l < this.numLayers; l++) {
      this.h[l].set(from.h[l]);
      this.c[l].set(from.c[l]);
    }
  }

  /** Forget the performance so far (LSTM state back to zeros). */
  reset() {
    for (let l = 0; l < this.numLayers; l++) {
      this.h[l].fill(0);
      this.c[l].fill(0);
    }
  }

  /**
   * One note: previous key (0..87, or sos for the first), onset delta time (already clipped),
   * button as a real value in [-1, 1] -> logits over the 88 keys. The returned array is reused
   * by the next call: copy it to keep it.
   */
  step(kM1, dt, bReal) {
    if (!(kM1 >= 0 && kM1 <= this.sos)) throw new RangeError(`previous key ${kM1} outside 0..${this.sos}`);
    const H = this.rnnDim, G = 4 * H, I = this.numKeys + 3, gates = this.gates, wasm = this._ptr;
    for (let l = 0; l < this.numLayers; l++) {
      // gates = bias (+ layer 0's folded input), then += kernel [h_{l-1}; h_l] (layer 0: h_0)
      if (l === 0) {
        const ig = this.inputGates, ok = kM1 * G, odt = (I - 2) * G, ob = (I - 1) * G;
        for (let g = 0; g < G; g++) gates[g] = ig[ok + g] + dt * ig[odt + g] + bReal * ig[ob + g];
      } else {
        gates.set(this.biases[l]);
      }
      const n = l === 0 ? H : 2 * H;
      if (wasm) {
        this._matvec(wasm.k[l], wasm.h + 4 * Math.max(l - 1, 0) * H, n, this._rows.G, wasm.gates);
      } else if (l === 0) {
        matVecAdd(this.kernels[0], this.h[0], n, gates, G);
      } else {
        this.xh.set(this.h[l - 1], 0);
        this.xh.set(this.h[l], H);
        matVecAdd(this.kernels[l], this.xh, n, gates, G);
      }
      const h = this.h[l], c = this.c[l];
      for (let j = 0; j < H; j++) {
        const i = sigmoid(gates[j]), f = sigmoid(gates[H + j]);
        const g = Math.tanh(gates[2 * H + j]), o = sigmoid(gates[3 * H + j]);
        c[j] = f * c[j] + i * g;
        h[j] = o * Math.tanh(c[j]);
      }
    }
    const top = this.numLayers - 1;
    if (wasm) {
      this._logitsPadded.set(this.outBias);
      this._matvec(wasm.out, wasm.h + 4 * top * H, H, this._rows.R, wasm.logits);
    } else {
      this.logits.set(this.outBias);
      matVecAdd(this.outKernel, this.h[top], H, this.logits, this.numKeys);
    }
    return this.logits;
  }
}
