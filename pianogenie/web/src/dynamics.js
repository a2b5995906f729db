// @ts-check
// Dynamics you can hear: the Salamander piano at several velocity layers, chosen by velocity.
//
// The base Piano (audio.js) loads the mezzo-forte layer's first set (v10, a sample every 6
// semitones) first, so the first press is as fast as ever; `loadLayers()` (app.js calls it once
// that set is in and a first note has played, so a first visit downloads no more before it plays)
// then fetches, one file at a time at idle (audio.js's atIdle), a soft (v4) and a loud (v15)
// layer's first sets, the rest of the base layer, then the rest of the soft and loud layers
// (relative URLs, served by the site: pianogenie/site.py; its service worker caches each as it
// arrives, for offline play). A sample plays as soon as it is decoded.
//
// A note crossfades the two layers whose nominal velocities bracket its own (of the layers holding
// a sample within 3 semitones of its pitch): both start at the same instant, at equal-power gains
// cos(x pi/2) and sin(x pi/2), x its position between the two nominal velocities, so the timbre
// changes smoothly with velocity instead of jumping at a layer boundary. A velocity at or beyond
// the softest (loudest) layer plays that layer alone. Each layer's gain is also the base curve at
// velocity v * nominal(base) / nominal(layer): a recording played at its own nominal velocity
// sounds as loud as it was recorded, and the fine steps between come from the gain. Before the
// layers arrive (or where they cannot be loaded, e.g. offline and not cached) the note plays the
// base layer with the velocity as gain, as before; a pitch no layer covers plays the synth.

import { atIdle, BASE_LAYER, fetchSample, isFirst, layerSamples, nearestSample, Piano } from './audio.js';

export { BASE_LAYER, layerSamples };

// Salamander's 16 layers cover velocities in steps of 8: layer L is recorded at about 8L - 4.
const nominal = (layer) => 8 * layer - 4;
export const LAYERS = [
  { layer: 4, url: 'vendor/piano-v4/' },
  { layer: 15, url: 'vendor/piano-v15/' },
];

/**
 * The layers a velocity plays, of `readyLayers` (numbers, any order): [{layer, weight}], the two
 * whose nominal velocities bracket it with equal-power weights (cos, sin: squares sum to 1), or
 * one at weight 1 at or beyond the softest or loudest (or when only one is ready); [] for none.
 */
export function layerMix(velocity, readyLayers) {
  const layers = [...readyLayers].sort((a, b) => a - b);
  if (!layers.length) return [];
  const hi = layers.findIndex((l) => nominal(l) > velocity); // the softest layer above the velocity
  if (hi <= 0) return [{ layer: hi === 0 ? layers[0] : layers.at(-1), weight: 1 }];
  const lo = layers[hi - 1], x = (velocity - nominal(lo)) / (nominal(layers[hi]) - nominal(lo));
  if (x === 0) return [{ layer: lo, weight: 1 }]; // at a layer's own velocity: no silent second voice
  return [{ layer: lo, weight: Math.cos((x * Math.PI) / 2) }, { layer: layers[hi], weight: Math.sin((x * Math.PI) / 2) }];
}

/** The velocity the base layer's gain curve sees for a note of `velocity` played from `layer`. */
export const gainVelocity = (velocity, layer) => (velocity * nominal(BASE_LAYER)) / nominal(layer);

/** The gain of a layer's sample in a note: its crossfade weight times the base curve at gainVelocity. */
export const partLevel = (velocity, { layer, weight }) => weight * (gainVelocity(velocity, layer) / 127) ** 1.5;

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

  /** What a note plays: the layers' parts (crossfaded), or [] and the synth's level. */
  parts(pitch, velocity = 80) {
    const samples = (layer) => (layer === BASE_LAYER ? this.samples : this.layers.get(layer));
    const near = new Map(); // layer -> its sample pitch nearest `pitch`, for the layers that have one
    for (const layer of [BASE_LAYER, ...this.layers.keys()]) {
      const p = nearestSample(samples(layer), pitch);
      if (p !== null) near.set(layer, p);
    }
    const parts = layerMix(velocity, near.keys()).map((m) => ({
      buffer: samples(m.layer).get(near.get(m.layer)), shift: pitch - near.get(m.layer), level: partLevel(velocity, m) }));
    return { parts, level: (velocity / 127) ** 1.5 }; // no layer near the pitch: the synth
  }
}
