// @ts-check
// The 2021 tutorial's way of decoding a press, with TF.js ops: the latency baseline of
// benchmarks/web_latency.mjs and an independent cross-check of decoder.js in the tests.
//
// On every press, inside tf.tidy: build the input tensors, one-hot + concat them, matMul the
// input layer, rebuild each layer's LSTM kernel (concat [W_ih, W_hh], transpose) and bias
// (b_ih + b_hh), run tf.multiRNNCell over basicLSTMCell-style cells in PyTorch gate order
// (i, f, g, o), matMul the output layer, then softmax + multinomial and a dataSync() read-back.
// The app does not use this: see decoder.js for the fast path.

export class TfjsDecoder {
  /**
   * @param tf  the TF.js module (any backend)
   * @param {Object<string, any>} tensors  `dec.*` weights as tf.Tensors (e.g. from tf.io.loadWeights)
   */
  constructor(tf, tensors) {
    this.tf = tf;
    this.w = tensors;
    this.numLayers = 0;
    while (tensors[`dec.lstm.weight_ih_l${this.numLayers}`]) this.numLayers++;
    this.rnnDim = tensors['dec.input.weight'].shape[0];
    this.numKeys = tensors['dec.output.bias'].shape[0];
    this.c = [];
    this.h = [];
    this.reset();
  }

  reset() {
    const tf = this.tf;
    tf.dispose([...this.c, ...this.h]);
    this.c = Array.from({ length: this.numLayers }, () => tf.keep(tf.zeros([1, this.rnnDim])));
    this.h = Array.from({ length: this.numLayers }, () => tf.keep(tf.zeros([1, this.rnnDim])));
  }

  dispose() {
    this.tf.dispose([...this.c, ...this.h]);
    this.c = [];
    this.h = [];
  }

  // One step in tf ops: -> logits [1, numKeys]; the new state replaces the old (kept) state.
  _forward(kM1, dt, bReal) {
    const tf = this.tf, w = this.w;
    const x = tf.concat([
      tf.oneHot(tf.tensor1d([kM1], 'int32'), this.numKeys + 1).toFloat(),
      tf.tensor2d([[dt]]),
      tf.tensor2d([[bReal]]),
    ], 1); // [1, 91]
    const input = tf.add(tf.matMul(x, w['dec.input.weight'], false, true), w['dec.input.bias']); // [1, H]
    const cells = [];
    for (let l = 0; l < this.numLayers; l++) {
      const kernel = tf.transpose(tf.concat([w[`dec.lstm.weight_ih_l${l}`], w[`dec.lstm.weight_hh_l${l}`]], 1)); // [2H, 4H]
      const bias = tf.add(w[`dec.lstm.bias_ih_l${l}`], w[`dec.lstm.bias_hh_l${l}`]); // [4H]
      cells.push((data, c, h) => {
        const z = tf.add(tf.matMul(tf.concat([data, h], 1), kernel), bias); // [1, 4H]
        const [i, f, g, o] = tf.split(z, 4, 1);
        const newC = tf.add(tf.mul(tf.sigmoid(f), c), tf.mul(tf.sigmoid(i), tf.tanh(g)));
        return [newC, tf.mul(tf.tanh(newC), tf.sigmoid(o))];
      });
    }
    const [c, h] = tf.multiRNNCell(cells, input, this.c, this.h);
    tf.dispose([...this.c, ...this.h]);
    this.c = c.map((t) => tf.keep(t));
    this.h = h.map((t) => tf.keep(t));
    return tf.add(tf.matMul(h[this.numLayers - 1], w['dec.output.weight'], false, true), w['dec.output.bias']);
  }

  /** Logits of one step as a Float32Array (for checking against test.json). */
  step(kM1, dt, bReal) {
    return this.tf.tidy(() => this._forward(kM1, dt, bReal).dataSync());
  }

  /** A whole press as the tutorial did it: step, softmax at `temperature`, sample, read back. */
  press(kM1, dt, bReal, temperature = 0.25) {
    const tf = this.tf;
    return tf.tidy(() => {
      const probs = tf.softmax(tf.div(this._forward(kM1, dt, bReal), temperature));
      return tf.multinomial(probs, 1, undefined, true).dataSync()[0];
    });
  }
}
