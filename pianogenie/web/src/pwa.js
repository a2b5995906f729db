// Installable, offline app: registers the site's service worker (sw.js, written by
// `pianogenie build-site` / `pianogenie serve`), which precaches what the first press needs and
// caches the rest of the samples as the page fetches them. Registered only once the app is
// playable (window.pianoGenie.ready, or after READY_WAIT_MS at most), so its precaching never
// competes with the model download before the first press. `controlled()` tells the page when
// the worker serves its requests, so samples fetched after that are kept for offline play.

const READY_WAIT_MS = 30000;
const CONTROL_WAIT_MS = 20000;
const POLL_MS = 100;
const supported = 'serviceWorker' in navigator && window.isSecureContext;

function whenPlayable() {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const check = () => {
      const app = window.pianoGenie;
      if ((app && (app.ready || app.error)) || performance.now() - t0 > READY_WAIT_MS) resolve();
      else setTimeout(check, POLL_MS);
    };
    check();
  });
}

let registered = Promise.resolve(null);
if (supported) {
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
  await new Promise((resolve) => {
    const timer = setTimeout(done, CONTROL_WAIT_MS);
    function done() {
      clearTimeout(timer);
      navigator.serviceWorker.removeEventListener('controllerchange', done);
      resolve();
    }
    navigator.serviceWorker.addEventListener('controllerchange', done);
  });
}
