// @ts-check
// Installable, offline app: registers the site's service worker (sw.js, written by
// `pianogenie build-site` / `pianogenie serve`), which precaches what the first press needs and
// caches the rest of the samples as the page fetches them. Registered only once the app is
// playable (window.pianoGenie.ready, or after READY_WAIT_MS at most), so its precaching never
// competes with the model download before the first press. `controlled()` tells the page when
// the worker serves its requests, so samples fetched after that are kept for offline play.
//
// Updates: the worker serves the app and model network-first (site.py), so a page loaded online
// is the build the server holds now. A page an older worker served from its cache (offline, or a
// build before this one that served everything from its cache) may be stale: whenever a worker
// takes over whose build differs from the page's own (index.html's `pianogenie-build` meta), the
// page shows "a new version: reload" instead of playing the old model silently.

const READY_WAIT_MS = 30000;
const CONTROL_WAIT_MS = 20000;
const POLL_MS = 100;
const supported = typeof navigator !== 'undefined' && 'serviceWorker' in navigator && window.isSecureContext;

/** @returns {Promise<void>} */
function whenPlayable() {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const check = () => {
      const app = /** @type {Window & {pianoGenie?: {ready: boolean, error: string|null}}} */ (window).pianoGenie;
      if ((app && (app.ready || app.error)) || performance.now() - t0 > READY_WAIT_MS) resolve();
      else setTimeout(check, POLL_MS);
    };
    check();
  });
}

const VERSION_WAIT_MS = 2000;

/** The version of the worker controlling the page, or null if it does not answer. */
export function workerVersion(worker = navigator.serviceWorker && navigator.serviceWorker.controller) {
  if (!worker) return Promise.resolve(null);
  return new Promise((resolve) => {
    const channel = new MessageChannel(), timer = setTimeout(() => resolve(null), VERSION_WAIT_MS);
    channel.port1.onmessage = (e) => { clearTimeout(timer); resolve((e.data && e.data.version) || null); };
    worker.postMessage({ type: 'version' }, [channel.port2]);
  });
}

/** The build this page belongs to (site.py writes it into index.html), or null (unbuilt app). */
export function pageBuild(doc = document) {
  const meta = /** @type {HTMLMetaElement|null} */ (doc.querySelector('meta[name="pianogenie-build"]'));
  return (meta && meta.content) || null;
}

/**
 * Whether a page of build `own` must reload for the worker now in control, which answers
 * `controller` (null: it does not say). `firstAnswered`: whether the worker that served the page
 * answered; without `own` (an unbuilt page) that is all there is to go by.
 */
export function staleUnder(own, controller, firstAnswered) {
  return own ? controller !== own : !firstAnswered;
}

function watchUpdates() {
  const first = navigator.serviceWorker.controller, own = pageBuild();
  if (!first && !own) return; // a first visit to an unbuilt page: it came from the network
  const firstAnswered = first ? workerVersion(first).then((v) => v !== null) : Promise.resolve(true);
  navigator.serviceWorker.addEventListener('controllerchange', async () => {
    const now = await workerVersion();
    if (!staleUnder(own, now, await firstAnswered)) return;
    const bar = /** @type {HTMLElement} */ (document.querySelector('#update'));
    if (!bar || !bar.hidden) return;
    bar.hidden = false;
    bar.querySelector('button').addEventListener('click', () => window.location.reload(), { once: true });
  });
}

let registered = Promise.resolve(null);
if (supported) {
  watchUpdates();
  registered = whenPlayable().then(() => navigator.serviceWorker.register('sw.js'))
    .catch((e) => { console.warn('offline play unavailable:', e.message); return null; });
}

/**
 * Resolves once the service worker controls this page; at once where there is none (no support,
 * not a secure context, registration failed), after CONTROL_WAIT_MS at most.
 */
export async function controlled() {
  if (!supported || navigator.serviceWorker.controller || !(await registered)) return;
  if (navigator.serviceWorker.controller) return;
  await /** @type {Promise<void>} */ (new Promise((resolve) => {
    const timer = setTimeout(done, CONTROL_WAIT_MS);
    function done() {
      clearTimeout(timer);
      navigator.serviceWorker.removeEventListener('controllerchange', done);
      resolve();
    }
    navigator.serviceWorker.addEventListener('controllerchange', done);
  }));
}
