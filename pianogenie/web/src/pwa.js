// Installable, offline app: registers the site's service worker (sw.js, written by
// `pianogenie build-site` / `pianogenie serve`), which precaches every file of the build.
// Registered after the page has loaded, so its precaching never competes with the first press.

if ('serviceWorker' in navigator && window.isSecureContext) {
  window.addEventListener('load', () => {
    navigator.serviceWorker.register('sw.js').catch((e) => console.warn('offline play unavailable:', e.message));
  });
}
