// The grid worker's service worker (issue 22, point 8): the grid page opens without
// signal. Served at /sw.js and registered by js/grid.js with the scope /grid, so it
// controls the grid page alone.
//
// On install it keeps a copy of the page and what the page loads (its JS, CSS,
// dictionaries, icon, manifest) in a cache named after the build (the service fills
// in __YIWANG_BUILD__); a new build brings a new worker, a new cache, and the old
// caches go. Everything is network first: online, the page always gets the newest
// answer (and the copy is refreshed); offline, it gets the copy.
//
// The few API reads the page needs to start (who am I, the units, the categories,
// the list of reports) are kept too, each under a key made of the URL and a hash of
// the token that read it, so a copy is only ever given back to the same token.
// Reports themselves are never touched here: they go through the page's outbox
// (IndexedDB, one Idempotency-Key per report), which sends each once.

const BUILD = '__YIWANG_BUILD__';
const PREFIX = 'yiwang-grid-';
const CACHE = `${PREFIX}${BUILD}`;

const SHELL = [
  '/grid',
  '/web/app.css',
  '/web/icon.svg',
  '/web/manifest.webmanifest',
  '/web/js/common.js',
  '/web/js/actions.js',
  '/web/js/grid.js',
  '/web/i18n/zh.json',
  '/web/i18n/en.json',
];

// The API reads kept for the page's start offline (exact paths; any query).
const API = ['/api/v1/me', '/api/v1/units', '/api/v1/categories', '/api/v1/tickets'];

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    // One by one: a file that fails does not keep the others out.
    await Promise.all(SHELL.map((u) => cache.add(new Request(u, { cache: 'reload' })).catch(() => undefined)));
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith(PREFIX) && name !== CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

async function hex(text) {
  const d = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, '0')).join('').slice(0, 32);
}

// The cache key of an API read: its URL and the hash of its token.
async function apiKey(req) {
  const u = new URL(req.url);
  u.searchParams.set('sw-viewer', await hex(req.headers.get('Authorization') || ''));
  return u.href;
}

async function networkFirst(req, key, ignoreSearch) {
  const cache = await caches.open(CACHE);
  try {
    const r = await fetch(req);
    if (r.ok && r.status === 200) await cache.put(key, r.clone());
    return r;
  } catch (e) {
    const copy = await cache.match(key, { ignoreSearch });
    if (copy) return copy;
    throw e;
  }
}

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  if (req.mode === 'navigate' || url.pathname === '/grid') {
    event.respondWith(networkFirst(req, '/grid', true));
  } else if (url.pathname.startsWith('/web/')) {
    event.respondWith(networkFirst(req, url.pathname, true));
  } else if (API.includes(url.pathname) && req.headers.has('Authorization')) {
    event.respondWith(apiKey(req).then((key) => networkFirst(req, key, false)));
  }
});
