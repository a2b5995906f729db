// Loading an exported model (TF.js weights format + cfg.json) into the decoder. No DOM.
//
// The weights go through TF.js's own loader (`tf.io.loadWeights` over HTTP in the browser,
// `tf.io.weightsLoaderFactory` over files in Node), so what the app runs is exactly what TF.js
// reads from the manifest; they are then copied out to typed arrays once and the tensors freed.

import { Decoder, inferSizes } from './decoder.js';
import { hasVelocityHead, VelocityHead } from './velocity.js';

// Defaults for a cfg.json that lacks them (the 2021 tutorial's holds only training settings).
const LOWEST_PITCH = 21;

/**
 * What the app needs to know about a model, from its cfg.json and its weights.
 * @returns {{numButtons, numKeys, sos, deltaTimeMax, lowestPitch, rnnDim, numLayers}}
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
  };
  if (out.sos !== numKeys) throw new Error(`cfg.json sos=${out.sos}, but this decoder's start token is ${numKeys}`);
  if (!(out.numButtons >= 2)) throw new Error(`cfg.json num_buttons=${out.numButtons} must be >= 2`);
  return out;
}

/** A TF.js NamedTensorMap -> {name: {data: Float32Array, shape}}; disposes the tensors. */
export function tensorsToArrays(tensors) {
  const out = {};
  for (const [name, t] of Object.entries(tensors)) {
    out[name] = { data: Float32Array.from(t.dataSync()), shape: t.shape.slice() };
    t.dispose();
  }
  return out;
}

/**
 * Build the decoder + config (+ the velocity head, or null for a model without vel.* weights)
 * from weights (typed arrays) and the parsed cfg.json. `source` names the model in errors.
 */
export function buildModel(weights, cfg, source = 'model') {
  const config = modelConfig(cfg, weights);
  let velocityHead = null;
  if (hasVelocityHead(weights)) {
    try {
      velocityHead = new VelocityHead(weights, config.rnnDim);
    } catch (e) {
      throw new Error(`${source}: ${e.message}`);
    }
  } else {
    console.info(`${source} has no velocity weights; notes play at velocity 80`);
  }
  return { decoder: new Decoder(weights), config, weights, velocityHead };
}

async function fetchJson(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`GET ${url}: ${r.status} ${r.statusText}`);
  return r.json();
}

/** Browser: load `${baseUrl}cfg.json` and the weights via `tf.io.loadWeights`. */
export async function fetchModel(tf, baseUrl) {
  const [cfg, manifest] = await Promise.all([
    fetchJson(`${baseUrl}cfg.json`), fetchJson(`${baseUrl}weights_manifest.json`)]);
  const weights = tensorsToArrays(await tf.io.loadWeights(manifest, baseUrl));
  return buildModel(weights, cfg, `${baseUrl}weights_manifest.json`);
}
