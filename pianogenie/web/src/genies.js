// @ts-check
// The genies a site offers: its models.json index (written by pianogenie/site.py), checked before
// the app trusts a path or a name from it, and which one plays (the stored choice while the site
// still has it, else the site's default). No DOM.

export const INDEX_URL = 'models.json';
export const MAX_GENIES = 16; // site.py MAX_MODELS
const SLUG = /^[a-z0-9][a-z0-9-]{0,39}$/;
const text = (v, max) => typeof v === 'string' && v.length <= max;

/**
 * models.json -> {default, genies: [{slug, name, description, path}]}, the default first; throws
 * one line naming what is wrong. Each path is `models/<slug>/` exactly (never another folder or site).
 */
export function parseIndex(index) {
  if (!index || typeof index !== 'object' || !Array.isArray(index.models)) throw new Error('models.json: no models list');
  const { models } = index;
  if (!(models.length >= 1 && models.length <= MAX_GENIES)) throw new Error(`models.json: 1 to ${MAX_GENIES} models, got ${models.length}`);
  const seen = new Set();
  const genies = models.map((m, i) => {
    const ok = m && typeof m === 'object' && typeof m.slug === 'string' && SLUG.test(m.slug) && !seen.has(m.slug)
      && m.path === `models/${m.slug}/` && text(m.name, 80) && m.name.trim()
      && (m.description === null || m.description === undefined || text(m.description, 300));
    if (!ok) throw new Error(`models.json: model ${i} is not valid (slug, name up to 80 characters, description up to 300, path models/<slug>/)`);
    seen.add(m.slug);
    return { slug: m.slug, name: m.name.trim(), description: m.description ? m.description.trim() : null, path: m.path };
  });
  if (!seen.has(index.default)) throw new Error('models.json: its default is not one of its models');
  const first = genies.find((g) => g.slug === index.default);
  return { default: index.default, genies: [first, ...genies.filter((g) => g !== first)] };
}

/** The genie that plays: `stored` (a slug) while the index has it, else the index's default. */
export function chooseGenie(index, stored) {
  return index.genies.find((g) => g.slug === stored) || index.genies[0];
}

/** The settings spec for the stored choice (settings.js validate): one of this site's slugs. */
export const genieSpec = (index) => ({ type: 'string', choices: index.genies.map((g) => g.slug) });
