// Node-side helpers for the tests: read an exported model from disk through TF.js's own loader.

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import * as tf from '@tensorflow/tfjs';

import { buildModel, decodeWeights } from '../src/model.js';

export { tf };

export const WEB_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_DIR = path.resolve(WEB_DIR, '..', '..');
export const REFERENCE_TFJS = path.resolve(REPO_DIR, '..', 'shared', 'reference', 'tutorial-2021', 'tfjs');

export async function readJson(file) {
  return JSON.parse(await readFile(file, 'utf8'));
}

/** TF.js's weights loader with file reads in place of fetch: same manifest parsing and decoding. */
export async function loadWeightTensors(dir) {
  const manifest = await readJson(path.join(dir, 'weights_manifest.json'));
  const load = tf.io.weightsLoaderFactory(async (paths) =>
    Promise.all(paths.map(async (p) => {
      const buf = await readFile(p);
      return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
    })));
  return load(manifest, dir + path.sep);
}

/** A TF.js NamedTensorMap -> {name: {data, shape}} (typed arrays); disposes the tensors. */
export function tensorsToArrays(tensors) {
  const out = {};
  for (const [name, t] of Object.entries(tensors)) {
    out[name] = { data: t.dataSync().slice(), shape: t.shape.slice() };
    t.dispose();
  }
  return out;
}

/** The app's weights reader (model.js's decodeWeights) over files in place of fetch. */
export async function readWeights(dir) {
  const manifest = await readJson(path.join(dir, 'weights_manifest.json'));
  const shards = await Promise.all(manifest.map((g) => Promise.all(g.paths.map(async (p) => {
    const buf = await readFile(path.join(dir, p));
    return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  }))));
  return decodeWeights(manifest, shards);
}

/** An exported model dir -> {decoder, config, weights, velocityHead} exactly as the app builds it. */
export async function loadModelDir(dir) {
  const cfg = await readJson(path.join(dir, 'cfg.json'));
  return buildModel(await readWeights(dir), cfg, dir);
}

/** Sum over all steps and keys of |ours - golden|. */
export function sumAbsError(rows, golden) {
  let err = 0;
  for (let i = 0; i < golden.length; i++) {
    for (let k = 0; k < golden[i].length; k++) err += Math.abs(rows[i][k] - golden[i][k]);
  }
  return err;
}
