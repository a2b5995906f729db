// Dynamics you can hear: the Salamander piano at several velocity layers, chosen by velocity.
//
// The base Piano (audio.js) loads the mezzo-forte layer's first set (v10, a sample every 6
// semitones) first, so the first press is as fast as ever; `loadLayers()` (app.js calls it once
// that set is in and a first note has played, so a first visit downloads no more before it plays)
// then fetches, one file at a time at idle (audio.js's atIdle), a soft (v4) and a loud (v15)
// layer's first sets, the rest of the base layer, then the rest of the soft and loud layers
// (relative URLs, served by the site: pianogenie/site.py; its service worker caches each as it
// arrives, for offline play). A sample plays as soon as it is decoded. A note uses, of the layers
// holding a sample within 3 semitones of its pitch, the one whose nominal velocity is nearest its
// own; its gain is the base curve at the layer's own loudness, scaled by the note's velocity
// relative to the layer's nominal one, so the timbre comes from the recording and the fine steps
// from the gain. Before the layers arrive (or where they cannot be loaded, e.g. offline and not
// cached) the note plays the base layer with the velocity as gain, as before.

import { atIdle, BASE_LAYER, fetchSample, isFirst, layerSamples, nearestSample, Piano } from './audio.js';

export { BASE_LAYER, layerSamples };

// Salamander's 16 layers cover velocities in steps of 8: layer L is recorded at about 8L - 4.
const nominal = (layer) => 8 * layer - 4;
export const LAYERS = [
  { layer: 4, url: 'vendor/piano-v4/' },
  { layer: 15, url: 'vendor/piano-v15/' },
];

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
    this.layers = new Map(layers.map(({ layer }) => [layer, new Map()])); // layer -> Map(midi pitch -> AudioBuffer)
  }

  /** How many samples each layer holds now: {10: n, 4: n, 15: n}. */
  get loaded() {
    return Object.fromEntries([[BASE_LAYER, this.samples.size], ...[...this.layers].map(([l, s]) => [l, s.size])]);
  }

  /**
   * Fetch and decode the rest of the base layer and the extra layers, progressively at idle;
   * resolves to the extra layers that hold samples.
   */
  async loadLayers() {
    const tasks = (first) => this.layerSpecs.flatMap(({ layer, url }) => layerSamples(layer)
      .filter(([p]) => isFirst(p) === first)
      .map(([pitch, file]) => async () => {
        const buffer = await fetchSample(this.ctx, url + encodeURIComponent(file));
        if (buffer) this.layers.get(layer).set(pitch, buffer);
      }));
    await atIdle([...tasks(true), ...this.restTasks(), ...tasks(false)]);
    return [...this.layers].filter(([, s]) => s.size).map(([l]) => l);
  }

  noteOn(pitch, velocity = 80) {
    const ready = [...this.layers].filter(([, s]) => nearestSample(s, pitch) !== null).map(([l]) => l);
    const { layer, gainVelocity } = chooseLayer(velocity, ready);
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
