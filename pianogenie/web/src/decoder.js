// The Piano Genie decoder's maths on plain typed arrays: one press -> 88 key logits.
//
// No DOM and no TF.js here: weights arrive as {name: {data: Float32Array, shape}} in the PyTorch
// layouts of the exported TF.js weights (`dec.input.weight` [H, 91], `dec.lstm.weight_ih_l0`
// [4H, H], ...). A press is ~200k multiply-adds; as tfjs ops the per-op overhead (tensor
// allocation, kernel dispatch, the sync read-back) costs far more than the arithmetic, so the hot
// path is plain loops over kernels packed once at load.
//
// Maths (PyTorch tutorial): x = [one_hot(k_m1, 89), dt, b_real]; x = W_in x + b_in; a 2-layer LSTM
// (gates i, f, g, o; bias b_ih + b_hh); logits = W_out h_top + b_out.

/** Names and shapes the decoder needs, given the sizes (checked at load, with clear errors). */
export function decoderWeightSpecs(rnnDim, numLayers, numKeys = 88) {
  const H = rnnDim, G = 4 * H;
  const specs = {
    'dec.input.weight': [H, numKeys + 3],
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
  return { rnnDim: w.shape[0], numLayers, numKeys };
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

// out[r] += bias[r] + sum_j W[r, j] x[j] for a row-major W [rows, n]. Four rows at a time: each
// x[j] is loaded once for four multiply-adds, and the four sums stay in registers (~1.4x faster in
// V8 than one row at a time).
function matVecAdd(W, x, n, bias, out, rows) {
  const rows4 = rows - (rows % 4);
  for (let r = 0; r < rows4; r += 4) {
    const o0 = r * n, o1 = o0 + n, o2 = o1 + n, o3 = o2 + n;
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (let j = 0; j < n; j++) {
      const xj = x[j];
      s0 += W[o0 + j] * xj;
      s1 += W[o1 + j] * xj;
      s2 += W[o2 + j] * xj;
      s3 += W[o3 + j] * xj;
    }
    out[r] += bias[r] + s0;
    out[r + 1] += bias[r + 1] + s1;
    out[r + 2] += bias[r + 2] + s2;
    out[r + 3] += bias[r + 3] + s3;
  }
  for (let r = rows4; r < rows; r++) {
    let s = 0;
    for (let j = 0, o = r * n; j < n; j++) s += W[o + j] * x[j];
    out[r] += bias[r] + s;
  }
}

export class Decoder {
  /**
   * @param {Object<string, {data: Float32Array, shape: number[]}>} weights  the `dec.*` weights
   */
  constructor(weights) {
    const { rnnDim, numLayers, numKeys } = inferSizes(weights);
    checkWeights(weights, decoderWeightSpecs(rnnDim, numLayers, numKeys));
    const H = rnnDim, G = 4 * H, I = numKeys + 3;
    this.rnnDim = H;
    this.numLayers = numLayers;
    this.numKeys = numKeys;
    this.sos = numKeys;
    const W = (name) => weights[name].data;

    // Layer 0 sees only x = W_in [onehot, dt, b] + b_in, so fold the input layer into its kernel:
    // inputGates[c] = W_ih0 W_in[:, c] (one column per input unit, contiguous for the press) and
    // bias0 = W_ih0 b_in + b_ih0 + b_hh0. Summed in float64; kernels are stored in float32 like the
    // weights (half the memory traffic), state and sums stay float64.
    const Win = W('dec.input.weight'), bin = W('dec.input.bias'), Wih0 = W('dec.lstm.weight_ih_l0');
    this.inputGates = new Float64Array(I * G); // [I, G] (only 3 columns read per press: float64 is free)
    const bias0 = new Float64Array(G);
    const bih0 = W('dec.lstm.bias_ih_l0'), bhh0 = W('dec.lstm.bias_hh_l0');
    for (let g = 0; g < G; g++) {
      let s = bih0[g] + bhh0[g];
      for (let h = 0; h < H; h++) s += Wih0[g * H + h] * bin[h];
      bias0[g] = s;
      for (let c = 0; c < I; c++) {
        let a = 0;
        for (let h = 0; h < H; h++) a += Wih0[g * H + h] * Win[h * I + c];
        this.inputGates[c * G + g] = a;
      }
    }
    // Per layer: a kernel over [input; h] (layer 0: over h only, its input is folded above).
    this.kernels = [];
    this.biases = [bias0];
    for (let l = 0; l < numLayers; l++) {
      const Whh = W(`dec.lstm.weight_hh_l${l}`);
      if (l === 0) {
        this.kernels.push(Float32Array.from(Whh)); // [G, H]
        continue;
      }
      const Wih = W(`dec.lstm.weight_ih_l${l}`), K = new Float32Array(G * 2 * H); // [G, 2H]
      for (let g = 0; g < G; g++) {
        K.set(Wih.subarray(g * H, (g + 1) * H), g * 2 * H);
        K.set(Whh.subarray(g * H, (g + 1) * H), g * 2 * H + H);
      }
      this.kernels.push(K);
      const b = new Float64Array(G), bih = W(`dec.lstm.bias_ih_l${l}`), bhh = W(`dec.lstm.bias_hh_l${l}`);
      for (let g = 0; g < G; g++) b[g] = bih[g] + bhh[g];
      this.biases.push(b);
    }
    this.outKernel = Float32Array.from(W('dec.output.weight')); // [numKeys, H]
    this.outBias = Float64Array.from(W('dec.output.bias'));

    // State and scratch, allocated once: a press allocates nothing.
    this.h = Array.from({ length: numLayers }, () => new Float64Array(H));
    this.c = Array.from({ length: numLayers }, () => new Float64Array(H));
    this.xh = new Float64Array(2 * H); // [input; h] of the layer being stepped
    this.gates = new Float64Array(G);
    this.logits = new Float64Array(numKeys);
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
    const H = this.rnnDim, G = 4 * H, I = this.numKeys + 3, gates = this.gates, xh = this.xh;
    if (!(kM1 >= 0 && kM1 <= this.sos)) throw new RangeError(`previous key ${kM1} outside 0..${this.sos}`);
    let input = null; // layer l's input (h of layer l-1, new)
    for (let l = 0; l < this.numLayers; l++) {
      const h = this.h[l], c = this.c[l];
      if (l === 0) {
        const ig = this.inputGates, ok = kM1 * G, odt = (I - 2) * G, ob = (I - 1) * G;
        for (let g = 0; g < G; g++) gates[g] = ig[ok + g] + dt * ig[odt + g] + bReal * ig[ob + g];
        matVecAdd(this.kernels[0], h, H, this.biases[0], gates, G);
      } else {
        xh.set(input, 0);
        xh.set(h, H);
        gates.fill(0);
        matVecAdd(this.kernels[l], xh, 2 * H, this.biases[l], gates, G);
      }
      for (let j = 0; j < H; j++) {
        const i = sigmoid(gates[j]), f = sigmoid(gates[H + j]);
        const g = Math.tanh(gates[2 * H + j]), o = sigmoid(gates[3 * H + j]);
        c[j] = f * c[j] + i * g;
        h[j] = o * Math.tanh(c[j]);
      }
      input = h;
    }
    this.logits.fill(0);
    matVecAdd(this.outKernel, input, H, this.outBias, this.logits, this.numKeys);
    return this.logits;
  }
}
