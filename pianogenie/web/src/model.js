// @ts-check
// Loading an exported model (TF.js weights format + cfg.json) into the decoder. No DOM.
//
// The weights are read straight into typed arrays by `decodeWeights`, the few lines of TF.js's
// weights loader the app needs: the page does without TF.js's 1.1 MB bundle, which only parsed the
// manifest (a test checks `decodeWeights` gives exactly what `tf.io.loadWeights` gives).

import { CONDITIONS, conditionsOfWidth, Decoder, decoderWeightSpecs, inferSizes } from './decoder.js';
import { hasVelocityHead, VelocityHead, velocityWeightSpecs } from './velocity.js';

// Defaults for a cfg.json that lacks them (the 2021 tutorial's holds only training settings).
const LOWEST_PITCH = 21;
// The largest weight magnitude that plays without overflowing float32 maths (trained ones stay
// far below); pianogenie/export_check.py refuses the same exports, where they are written and served.
export const MAX_ABS_WEIGHT = 1e4;
// cfg.json's `name` (the genie picker's label) and `description` (what it was trained on), as export_check.py
export const MAX_NAME_CHARS = 80, MAX_DESCRIPTION_CHARS = 300;

const isInt = (v) => Number.isInteger(v);

/**
 * Refuse an export that cannot play (throws, naming the problem): every weight float32, finite and
 * at most MAX_ABS_WEIGHT in magnitude; exactly the decoder's weights (and the velocity head's);
 * cfg.json's values, where it gives them, valid and agreeing with the weights (a conditioned
 * decoder's input as wide as its `conditions`; `name` and `description` bounded text).
 */
export function checkExport(cfg, weights) {
  if (!cfg || typeof cfg !== 'object' || Array.isArray(cfg)) throw new Error('cfg.json is not a JSON object');
  const { rnnDim, numLayers, numKeys } = inferSizes(weights);
  if (!(rnnDim >= 1 && numLayers >= 1 && numKeys >= 1)) throw new Error(`the decoder has rnn_dim ${rnnDim}, ${numLayers} LSTM layers, ${numKeys} keys`);
  const specs = decoderWeightSpecs(rnnDim, numLayers, numKeys, conditionWidth(cfg, inferSizes(weights).conditionWidth));
  let head = null;
  if (hasVelocityHead(weights)) {
    const w1 = weights['vel.hidden.weight'], b2 = weights['vel.output.bias'], A = weights['vel.state_transition'];
    if (!b2 || !A) throw new Error('the velocity head is incomplete (vel.output.bias, vel.state_transition)');
    head = { hidden: w1.shape[0], bins: b2.shape[0] };
    Object.assign(specs, velocityWeightSpecs(rnnDim, head.hidden, head.bins, A.shape[0]));
  }
  for (const [name, shape] of Object.entries(specs)) {
    const w = weights[name], kind = name.startsWith('vel.') ? 'velocity weight' : 'decoder weight';
    if (!w) throw new Error(`${kind} ${name} is missing`);
    if (w.shape.join(',') !== shape.join(',')) throw new Error(`${kind} ${name} has shape [${w.shape}], expected [${shape}]`);
  }
  const extra = Object.keys(weights).filter((n) => !(n in specs));
  if (extra.length) throw new Error(`the manifest holds weights the app does not use (${extra.slice(0, 3).join(', ')})`);
  for (const [name, w] of Object.entries(weights)) {
    if (!(w.data instanceof Float32Array)) throw new Error(`weight ${name} is not float32; the app reads float32 weights only`);
    for (let i = 0; i < w.data.length; i++) {
      const v = w.data[i];
      if (!Number.isFinite(v)) throw new Error(`weight ${name} holds NaN or Inf values`);
      if (Math.abs(v) > MAX_ABS_WEIGHT) throw new Error(`weight ${name} holds values up to ${Math.abs(v)} in magnitude (at most ${MAX_ABS_WEIGHT})`);
    }
  }
  if (head && !weights['vel.feature_std'].data.every((v) => v > 0)) throw new Error('weight vel.feature_std must be > 0 everywhere');
  const has = (k) => Object.prototype.hasOwnProperty.call(cfg, k);
  if (has('num_buttons') && !(isInt(cfg.num_buttons) && cfg.num_buttons >= 2 && cfg.num_buttons <= numKeys)) throw new Error(`cfg.json num_buttons=${JSON.stringify(cfg.num_buttons)}: the app needs an integer from 2 to ${numKeys}`);
  if (has('sos') && cfg.sos !== numKeys) throw new Error(`cfg.json sos=${JSON.stringify(cfg.sos)}, but this decoder's start token is ${numKeys}`);
  if (has('num_keys') && cfg.num_keys !== numKeys) throw new Error(`cfg.json num_keys=${JSON.stringify(cfg.num_keys)}, but the decoder has ${numKeys} keys`);
  if (has('data_delta_time_max') && !(typeof cfg.data_delta_time_max === 'number' && Number.isFinite(cfg.data_delta_time_max) && cfg.data_delta_time_max > 0)) throw new Error(`cfg.json data_delta_time_max=${JSON.stringify(cfg.data_delta_time_max)} must be a finite number > 0`);
  if (has('lowest_pitch') && !(isInt(cfg.lowest_pitch) && cfg.lowest_pitch >= 0 && cfg.lowest_pitch <= 128 - numKeys)) throw new Error(`cfg.json lowest_pitch=${JSON.stringify(cfg.lowest_pitch)}: its keys must lie in MIDI 0..127`);
  /** @type {Array<[string, number]>} */
  const texts = [['name', MAX_NAME_CHARS], ['description', MAX_DESCRIPTION_CHARS]];
  for (const [k, most] of texts) {
    // eslint-disable-next-line no-control-regex
    if (has(k) && cfg[k] !== null && !(typeof cfg[k] === 'string' && cfg[k].length <= most && !/[\u0000-\u001f\u007f-\u009f]/.test(cfg[k]))) {
      throw new Error(`cfg.json ${k} must be text of at most ${most} printable characters`);
    }
  }
  const sizes = { model_rnn_dim: rnnDim, model_rnn_num_layers: numLayers, ...(head ? { velocity_hidden: head.hidden, velocity_bins: head.bins } : {}) };
  for (const [k, v] of Object.entries(sizes)) {
    if (has(k) && cfg[k] !== v) throw new Error(`cfg.json ${k}=${JSON.stringify(cfg[k])}, but the weights have ${v}`);
  }
}

// The condition columns the decoder reads: cfg.json's `conditions` list where it gives one (each of
// CONDITIONS at most once, in that order; export_check.py refuses the same), else whatever set
// makes the input's extra width (the shape check then names a mismatch).
function conditionWidth(cfg, width) {
  const names = Object.keys(CONDITIONS);
  let list;
  if (Object.prototype.hasOwnProperty.call(cfg, 'conditions')) {
    list = cfg.conditions;
    const ok = Array.isArray(list) && list.every((c) => names.includes(c)) && list.join() === names.filter((n) => list.includes(n)).join();
    if (!ok) throw new Error(`cfg.json conditions=${JSON.stringify(list).slice(0, 100)}: a list of ${names.join(', ')} (each at most once, in that order)`);
  } else {
    try { list = conditionsOfWidth(width); } catch { list = []; }
  }
  return list.reduce((a, n) => a + CONDITIONS[n].reduce((x, y) => x + y, 0), 0);
}

const text = (v, max) => (typeof v === 'string' && v.trim() ? v.trim().slice(0, max) : null);

/**
 * What the app needs to know about a model, from its cfg.json and its weights. `name` and
 * `description` (what it was trained on) are read where the export wrote them (`name` or
 * `model_name`; `description`, `model_description` or `trained_on`), else null.
 * @returns {{numButtons, numKeys, sos, deltaTimeMax, lowestPitch, rnnDim, numLayers, buttonValues?: number[],
 *   name: string|null, description: string|null}}
 */
export function modelConfig(cfg, weights) {
  const { rnnDim, numLayers, numKeys } = inferSizes(weights);
  const num = (v, d) => (typeof v === 'number' && Number.isFinite(v) ? v : d);
  const out = {
    numButtons: num(cfg.num_buttons, 8),
    numKeys,
    sos: num(cfg.sos, numKeys),
    deltaTimeMax: num(cfg.data_delta_time_max, 1.0),
    lowestPitch: num(cfg.lowest_pitch, LOWEST_PITCH),
    rnnDim,
    numLayers,
    name: text(cfg.name, 80) ?? text(cfg.model_name, 80),
    description: text(cfg.description, 300) ?? text(cfg.model_description, 300) ?? text(cfg.trained_on, 300),
  };
  if (out.sos !== numKeys) throw new Error(`cfg.json sos=${out.sos}, but this decoder's start token is ${numKeys}`);
  if (!(out.numButtons >= 2)) throw new Error(`cfg.json num_buttons=${out.numButtons} must be >= 2`);
  // each button's value for the decoder, as export writes it (pianogenie/inputs.py); an older
  // export has none, and session.js falls back to the bin centres
  const values = cfg.button_values;
  if (Array.isArray(values) && values.length === out.numButtons && values.every((v) => Number.isFinite(v))) {
    out.buttonValues = values;
  }
  return out;
}

/**
 * A short fingerprint of the weights, so two models that share a name and a size can still be
 * told apart on screen: FNV-1a (32 bits) over every weight's name, length and every 7th 32-bit
 * word, in name order (a different model differs in nearly every word; reading all 1.3 MB would
 * cost ~20 ms before the first press).
 * @param {Object<string, {data: Float32Array|Int32Array}>} weights  @returns {string} 8 hex digits
 */
export function modelFingerprint(weights) {
  let h = 0x811c9dc5;
  const mix = (x) => { h = Math.imul(h ^ (x >>> 0), 0x01000193); };
  for (const name of Object.keys(weights).sort()) {
    for (let i = 0; i < name.length; i++) mix(name.charCodeAt(i));
    const { data } = weights[name];
    const words = new Uint32Array(data.buffer, data.byteOffset, data.length);
    mix(words.length);
    for (let i = 0; i < words.length; i += 7) mix(words[i]);
  }
  return (h >>> 0).toString(16).padStart(8, '0');
}

const DTYPES = { float32: Float32Array, int32: Int32Array };

/**
 * The weights of a TF.js weights manifest, decoded from its shards as `tf.io.loadWeights` does
 * (each group's shards concatenated, its weights laid out one after another, in manifest order).
 * @param manifest  the parsed weights_manifest.json: [{paths, weights: [{name, shape, dtype}]}]
 * @param {ArrayBuffer[][]} shards  per group, the bytes of each of its paths
 * @returns {Object<string, {data: Float32Array|Int32Array, shape: number[]}>}
 */
export function decodeWeights(manifest, shards) {
  const out = {};
  manifest.forEach((group, g) => {
    const bytes = concat(shards[g]);
    let offset = 0;
    for (const w of group.weights) {
      const Type = DTYPES[w.dtype];
      if (!Type || w.quantization) throw new Error(`weights_manifest.json: ${w.name}: unsupported dtype ${w.dtype}${w.quantization ? ' (quantized)' : ''}`);
      const n = w.shape.reduce((a, d) => a * d, 1);
      const end = offset + n * Type.BYTES_PER_ELEMENT;
      if (end > bytes.byteLength) throw new Error(`weights: ${group.paths.join(', ')} end at byte ${bytes.byteLength}, but ${w.name} needs bytes up to ${end} (truncated?)`);
      out[w.name] = { data: new Type(bytes.buffer.slice(bytes.byteOffset + offset, bytes.byteOffset + end)), shape: w.shape.slice() };
      offset = end;
    }
    if (offset !== bytes.byteLength) throw new Error(`weights: ${group.paths.join(', ')} hold ${bytes.byteLength} bytes, the manifest describes ${offset}`);
  });
  return out;
}

function concat(buffers) {
  const out = new Uint8Array(buffers.reduce((a, b) => a + b.byteLength, 0));
  let at = 0;
  for (const b of buffers) { out.set(new Uint8Array(b), at); at += b.byteLength; }
  return out;
}

/**
 * Build the decoder + config (+ the velocity head, or null for a model without vel.* weights)
 * from weights (typed arrays) and the parsed cfg.json. `source` names the model in errors.
 */
export function buildModel(weights, cfg, source = 'model') {
  try {
    checkExport(cfg, weights);
  } catch (e) {
    throw new Error(`${source}: ${e.message}`, { cause: e });
  }
  const config = modelConfig(cfg, weights);
  let velocityHead = null;
  if (hasVelocityHead(weights)) {
    try {
      velocityHead = new VelocityHead(weights, config.rnnDim);
    } catch (e) {
      throw new Error(`${source}: ${e.message}`, { cause: e });
    }
  } else {
    console.info(`${source} has no velocity weights; notes play at velocity 80`);
  }
  return { decoder: new Decoder(weights), config, weights, velocityHead };
}

async function fetchOk(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`GET ${url}: ${r.status} ${r.statusText}`);
  return r;
}

/** Browser: load `${baseUrl}cfg.json`, the weights manifest and its shards (a relative baseUrl is
 * resolved against the page, so the site works under any sub-path). */
export async function fetchModel(baseUrl) {
  const [cfg, manifest] = await Promise.all(['cfg.json', 'weights_manifest.json'].map(async (f) => (await fetchOk(baseUrl + f)).json()));
  const shards = await Promise.all(manifest.map((group) =>
    Promise.all(group.paths.map(async (p) => (await fetchOk(baseUrl + p)).arrayBuffer()))));
  return buildModel(decodeWeights(manifest, shards), cfg, `${baseUrl}weights_manifest.json`);
}
