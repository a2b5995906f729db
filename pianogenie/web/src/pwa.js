// Installable, offline app: registers the site's service worker (sw.js, written by
// `pianogenie build-site` / `pianogenie serve`), which precaches every file of the build.
// Registered only once the app is playable (window.pianoGenie.ready, or after READY_WAIT_MS at
// most), so its ~7 MB of precaching never competes with the model download before the first press.

const READY_WAIT_MS = 30000;
const POLL_MS = 100;

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

if ('serviceWorker' in navigator && window.isSecureContext) {
  whenPlayable().then(() => navigator.serviceWorker.register('sw.js'))
    .catch((e) => console.warn('offline play unavailable:', e.message));
}
