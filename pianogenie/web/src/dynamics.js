// Dynamics you can hear: the Salamander piano at several velocity layers, chosen by velocity.
//
// The base Piano (audio.js) loads the mezzo-forte layer (v10) first, so the first press is as fast
// as ever; `loadLayers()` (app.js calls it once the base layer is in and a first note has played,
// so a first visit downloads no more before it plays) then fetches a soft (v4) and a loud (v15)
// layer in the background (relative URLs, served by the site: pianogenie/site.py), and a
// layer plays once all its samples are decoded. A note uses the layer whose nominal velocity is
// nearest its own; its gain is the base curve at the layer's own loudness, scaled by the note's
// velocity relative to the layer's nominal one, so the timbre comes from the recording and the
// fine steps from the gain. Before the layers arrive (or if they cannot be loaded) every note
// plays the base layer with the velocity as gain, as before.

import { Piano } from './audio.js';

// Salamander's 16 layers cover velocities in steps of 8: layer L is recorded at about 8L - 4.
const nominal = (layer) => 8 * layer - 4;
export const BASE_LAYER = 10;
export const LAYERS = [
  { layer: 4, url: 'vendor/piano-v4/' },
  { layer: 15, url: 'vendor/piano-v15/' },
];
const SAMPLE_NAMES = ['C', 'D#', 'F#', 'A']; // the packages ship A, C, D#, F# of each octave

/** [midi pitch, file name] of one layer's samples. */
export function layerSamples(layer) {
  const out = [];
  for (let p = 21; p <= 108; p++) {
    if ((p % 12) % 3 === 0) out.push([p, `${SAMPLE_NAMES[(p % 12) / 3]}${Math.floor(p / 12) - 1}v${layer}.mp3`]);
  }
  return out;
}

/**
 * The layer (of those ready, always including the base) for a velocity, and the velocity the base
 * gain curve should see: v * nominal(base) / nominal(layer).
 */
export function chooseLayer(velocity, readyLayers) {
  let best = BASE_LAYER;
  for (const layer of readyLayers) {
    if (Math.abs(nominal(layer) - velocity) < Math.abs(nominal(best) - velocity)) best = layer;
  }
  return { layer: best, gainVelocity: Math.min(127, (velocity * nominal(BASE_LAYER)) / nominal(best)) };
}

export class LayeredPiano extends Piano {
  constructor(sampleBaseUrl, layers = LAYERS) {
    super(sampleBaseUrl);
    this.layerSpecs = layers;
    this.layers = new Map(); // layer -> Map(midi pitch -> AudioBuffer), once complete
  }

  /** Fetch and decode the extra layers, one after the other; resolves to the layers ready. */
  async loadLayers() {
    for (const { layer, url } of this.layerSpecs) {
      const samples = new Map();
      try {
        await Promise.all(layerSamples(layer).map(async ([pitch, file]) => {
          const r = await fetch(url + encodeURIComponent(file));
          if (!r.ok) throw new Error(`${file}: ${r.status}`);
          samples.set(pitch, await this.ctx.decodeAudioData(await r.arrayBuffer()));
        }));
        this.layers.set(layer, samples);
      } catch (e) {
        console.warn(`piano: velocity layer v${layer} not loaded (${e.message}); its notes use the v${BASE_LAYER} samples`);
      }
    }
    return [...this.layers.keys()];
  }

  noteOn(pitch, velocity = 80) {
    const { layer, gainVelocity } = chooseLayer(velocity, this.layers.keys());
    if (layer === BASE_LAYER) return super.noteOn(pitch, velocity);
    // The base class plays from this.samples: lend it the layer's for this one note.
    const base = this.samples;
    this.samples = this.layers.get(layer);
    try {
      return super.noteOn(pitch, gainVelocity);
    } finally {
      this.samples = base;
    }
  }
}
