// The grid worker's page (/grid), for a phone: report a problem in the worker's grid
// (category, description, location, photos), or one fixed on the spot (自行处置);
// follow the grid's reports.
//
// Every report goes into an outbox in the browser (IndexedDB, photos included) with
// its Idempotency-Key made there and then, and is sent from the outbox: at once when
// online, else when the network returns (the `online` event, and a retry every 30 s).
// A report whose answer was lost is sent again with the same key and the same bytes,
// which the service answers with the first result: a report is never doubled.
//
// The page opens without signal too: a service worker (/sw.js, scope /grid) keeps a
// copy of it and of what it loads (issue 22, point 8). The worker's own reports
// ("my reports", the tickets this worker sent, remembered per user on the phone)
// show their progress, and a notice comes when one is verified, sent back or closed
// (the live event feed wakes the list; a look every minute besides).

import {
  ApiError, api, authHeaders, categoryList, clear, deadlineBadge, el, errorText, fmtTime, getToken, lang, newKey, notify,
  run, startPage, stateBadge, t, unitName,
} from './common.js';
import { uploadPhoto } from './actions.js';

const $ = (id) => document.getElementById(id);
let me;

// ---- the outbox (IndexedDB)

function openDb() {
  return new Promise((resolve, reject) => {
    const r = indexedDB.open('yiwang', 1);
    r.onupgradeneeded = () => r.result.createObjectStore('outbox', { keyPath: 'key' });
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}
async function store(mode, fn) {
  const db = await openDb();
  return new Promise((resolve, reject) => {
    const tx = db.transaction('outbox', mode);
    const req = fn(tx.objectStore('outbox'));
    tx.oncomplete = () => resolve(req && req.result);
    tx.onerror = () => reject(tx.error);
  });
}
const outboxAll = () => store('readonly', (s) => s.getAll());
const outboxPut = (item) => store('readwrite', (s) => s.put(item));
const outboxDelete = (key) => store('readwrite', (s) => s.delete(key));

// ---- sending

let flushing = false;

// Sends one report: its photos first (each with its own key), then the ticket.
async function send(item) {
  for (const p of item.photos) {
    if (!p.hash) {
      p.hash = await uploadPhoto(p.file, p.key);
      await outboxPut(item);
    }
  }
  if (!item.json) {
    const hashes = item.photos.map((p) => p.hash);
    item.json = JSON.stringify({ ...item.body, ...(hashes.length ? { photos: hashes } : {}) });
    await outboxPut(item);
  }
  const r = await fetch('/api/v1/tickets', {
    method: 'POST',
    headers: {
      ...authHeaders(),
      'Content-Type': 'application/json',
      Accept: 'application/json',
      'Idempotency-Key': item.key,
    },
    body: item.json,
  });
  if (!r.ok) {
    let problem = {};
    try { problem = await r.json(); } catch (e) { problem = { detail: r.statusText }; }
    throw new ApiError(r.status, problem);
  }
  return r.json();
}

// Whether a failure is worth trying again later (no network, a server in trouble)
// rather than a refusal the person must see.
function retryable(e) {
  return !(e instanceof ApiError) || e.status >= 500 || e.status === 408 || e.status === 429 || e.status === 401;
}

async function flush() {
  if (flushing) return;
  flushing = true;
  try {
    for (const item of await outboxAll()) {
      if (item.user !== me.user || item.rejected) continue;
      try {
        const ticket = await send(item);
        await outboxDelete(item.key);
        remember(ticket);
        notify(t('grid.sent', { number: ticket.number }), 'ok');
        $('g-status').textContent = t('grid.sent', { number: ticket.number });
        document.body.dataset.lastSent = ticket.id;
      } catch (e) {
        if (retryable(e)) break;
        item.rejected = errorText(e);
        await outboxPut(item);
      }
    }
  } finally {
    flushing = false;
    await showOutbox();
    await loadMine();
  }
}

async function showOutbox() {
  const items = (await outboxAll()).filter((x) => x.user === me.user);
  const list = clear($('outbox'));
  $('queue-card').hidden = !items.length;
  for (const item of items) {
    const discard = el('button', {
      type: 'button', class: 'btn ghost small', text: t('grid.discard'),
      onclick: async () => { await outboxDelete(item.key); await showOutbox(); },
    });
    list.append(el('li', { class: item.rejected ? 'rejected' : 'waiting', dataset: { key: item.key } },
      el('strong', { text: item.body.title }),
      el('span', { class: 'muted', text: ` · ${fmtTime(item.created)}${item.photos.length ? ` · ${photoCount(item.photos.length)}` : ''}` }),
      el('p', { class: item.rejected ? 'error' : 'muted', text: item.rejected || t('grid.waiting') }),
      item.rejected ? discard : null));
  }
}

// ---- my reports: their progress, and a notice when one moves on

// "1 photo", "2 photos": the language's plural rules pick the key.
function photoCount(n) {
  const one = new Intl.PluralRules(lang() === 'en' ? 'en' : 'zh-CN').select(n) === 'one';
  return t(one ? 'grid.photo_count_one' : 'grid.photo_count', { n });
}

const mineKey = () => `yw.grid.mine.${me.user}`;
const seenKey = () => `yw.grid.seen.${me.user}`;
function readJson(key, fallback) {
  try {
    return JSON.parse(localStorage.getItem(key) || '') || fallback;
  } catch (e) {
    return fallback;
  }
}
function mineIds() {
  return readJson(mineKey(), []);
}
// A report sent from this phone joins "my reports" (the newest 200 are kept).
function remember(ticket) {
  const ids = [ticket.id, ...mineIds().filter((x) => x !== ticket.id)].slice(0, 200);
  localStorage.setItem(mineKey(), JSON.stringify(ids));
  const seen = readJson(seenKey(), {});
  seen[ticket.id] = snapshot(ticket);
  localStorage.setItem(seenKey(), JSON.stringify(seen));
}
const snapshot = (tk) => ({ state: tk.state, returned: tk.returned, reworked: tk.reworked });

// What changed since the last look, as a notice (or null): its kind and key, so
// that it reads in the page's language whenever it is shown.
function change(before, tk) {
  if (!before) return null;
  const notice = (kind, key) => ({ kind, key, number: tk.number });
  if (tk.reworked > (before.reworked || 0)) return notice('error', 'grid.notice_rework');
  if (tk.returned > (before.returned || 0)) return notice('error', 'grid.notice_returned');
  if (tk.state !== before.state && tk.state === 'verified') return notice('ok', 'grid.notice_verified');
  if (tk.state !== before.state && tk.state === 'closed') return notice('ok', 'grid.notice_closed');
  return null;
}
const noticeText = (n) => t(n.key, { number: n.number });

const STEPS = ['accepted', 'assigned', 'signed', 'handled', 'verified', 'closed'];
function step(tk) {
  if (tk.state === 'assigned') return tk.handler ? 'signed' : 'assigned';
  return tk.state;
}

function reportCard(tk, notice) {
  const at = STEPS.indexOf(step(tk));
  const progress = el('ol', { class: 'steps' }, STEPS.map((s, i) => el('li', {
    class: i < at ? 'done' : (i === at ? 'now' : ''), text: t(`step.${s}`), title: t(`step.${s}`),
  })));
  const d = tk.deadlines || {};
  const open = tk.state === 'accepted' || tk.state === 'assigned';
  const deadline = open && tk.unit
    ? (tk.handler ? deadlineBadge('handle', d.handle, d.handle_due_at) : deadlineBadge('sign', d.sign, d.sign_due_at))
    : null;
  return el('li', { class: 'card mini', dataset: { id: tk.id, state: tk.state } },
    el('div', { class: 'ticket-head' }, el('a', { href: `/tickets/${tk.id}`, class: 'number', text: tk.number }), stateBadge(tk),
      tk.self_handled ? el('span', { class: 'badge', text: t('flag.self_handled') }) : null),
    el('a', { href: `/tickets/${tk.id}`, class: 'title-link', text: tk.title }),
    el('p', { class: 'muted report-facts' },
      el('span', { text: fmtTime(tk.created_at) }),
      el('span', { class: 'report-unit', text: ` · ${t('grid.unit')}${tk.unit ? unitName(tk.unit) : t('grid.unit_none')}` })),
    deadline ? el('p', { class: 'report-deadline' }, deadline) : null,
    notice && notice.key ? el('p', { class: `report-notice ${notice.kind}`, role: 'status', text: noticeText(notice) }) : null,
    progress);
}

async function loadMine() {
  let page;
  try {
    page = await api('/api/v1/tickets?limit=50');
  } catch (e) {
    return; // offline: the list stays as it was
  }
  const ids = new Set(mineIds());
  const seen = readJson(seenKey(), {});
  const list = clear($('mine'));
  const items = page.items.filter((x) => ids.has(x.id));
  if (!items.length) list.append(el('li', { class: 'empty', text: t('grid.none') }));
  for (const tk of items) {
    const notice = change(seen[tk.id], tk);
    if (notice) {
      notify(noticeText(notice), notice.kind);
      document.body.dataset.notice = noticeText(notice);
    }
    seen[tk.id] = { ...snapshot(tk), notice: notice || (seen[tk.id] && seen[tk.id].notice) || null };
    list.append(reportCard(tk, seen[tk.id].notice));
  }
  localStorage.setItem(seenKey(), JSON.stringify(seen));
}

// The live feed wakes the list when one of my reports moves; it reconnects by itself.
let live = null;
let wake = null;
function follow() {
  if (live || !window.EventSource) return;
  const q = new URLSearchParams({ from: 'now', access_token: getToken() });
  live = new EventSource(`/api/v1/events/stream?${q}`);
  const mineChanged = (ev) => {
    try {
      if (!mineIds().includes(JSON.parse(ev.data).stream_id)) return;
    } catch (e) {
      return;
    }
    clearTimeout(wake);
    wake = setTimeout(loadMine, 200);
  };
  for (const type of ['TicketAssigned', 'TicketSigned', 'TicketReturned', 'TicketHandled', 'VerificationPassed',
    'VerificationFailed', 'TicketClosed', 'ExtensionDecided', 'TicketSupervised']) {
    live.addEventListener(type, mineChanged);
  }
}

// ---- the service worker: the page, its files and its first API reads kept for offline

async function keepOffline() {
  if (!('serviceWorker' in navigator)) return;
  await navigator.serviceWorker.register('/sw.js', { scope: '/grid' });
  if (!navigator.serviceWorker.controller) {
    await new Promise((resolve) => navigator.serviceWorker.addEventListener('controllerchange', resolve, { once: true }));
  }
  // Read once through the worker, which keeps a copy for the next start offline.
  if (navigator.onLine) {
    await Promise.all(['/api/v1/me', '/api/v1/units', '/api/v1/categories', '/api/v1/tickets?limit=50'].map((p) => api(p)));
  }
  document.body.dataset.offlineReady = 'true';
}

// ---- categories: "choose one" first, groups and names in the page's language

function groupName(c) {
  if (lang() !== 'en') return c.group || '';
  if (c.group_en) return c.group_en;
  const key = `grid.group.${(c.code || '').split('.')[0]}`;
  return t(key) !== key ? t(key) : (c.group || '');
}
function categoryLabel(c) {
  return lang() === 'en' && c.name_en ? c.name_en : c.name;
}

function fillCategories() {
  const sel = $('g-category');
  sel.append(el('option', { value: '', text: t('grid.choose_category'), selected: true }));
  const groups = new Map();
  for (const c of categoryList()) {
    const g = groupName(c);
    if (!groups.has(g)) groups.set(g, []);
    groups.get(g).push(c);
  }
  for (const [group, cats] of groups) {
    sel.append(el('optgroup', { label: group }, cats.map((c) => el('option', { value: c.code, text: categoryLabel(c) }))));
  }
  sel.value = '';
}

// ---- the form

let coords = null;

function locate() {
  if (!navigator.geolocation) {
    $('g-coords').textContent = t('grid.no_location');
    return;
  }
  $('g-coords').textContent = t('grid.locating');
  navigator.geolocation.getCurrentPosition((pos) => {
    coords = { lat: Number(pos.coords.latitude.toFixed(6)), lon: Number(pos.coords.longitude.toFixed(6)) };
    $('g-coords').textContent = `${coords.lat}, ${coords.lon}`;
  }, () => {
    coords = null;
    $('g-coords').textContent = t('grid.no_location');
  }, { enableHighAccuracy: true, timeout: 10000, maximumAge: 60000 });
}

let previews = [];
function showPreviews() {
  for (const u of previews) URL.revokeObjectURL(u);
  previews = [];
  const box = clear($('g-previews'));
  for (const f of $('g-photos').files) {
    const url = URL.createObjectURL(f);
    previews.push(url);
    box.append(el('figure', { class: 'photo' }, el('img', { src: url, alt: f.name })));
  }
}

async function submit(ev) {
  ev.preventDefault();
  const code = $('g-category').value;
  const cat = categoryList().find((c) => c.code === code);
  const description = $('g-description').value.trim();
  const address = $('g-address').value.trim();
  const selfHandled = $('g-self').checked;
  const result = $('g-result').value.trim();
  const refuse = (id, key) => {
    $(id).setAttribute('aria-invalid', 'true');
    $(id).focus();
    $('g-status').textContent = t(key);
    $('g-status').classList.add('error');
  };
  for (const id of ['g-category', 'g-description', 'g-result']) $(id).removeAttribute('aria-invalid');
  $('g-status').classList.remove('error');
  if (!cat) return refuse('g-category', 'grid.category_needed');
  if (!description) return refuse('g-description', 'grid.description_needed');
  if (selfHandled && !result) return refuse('g-result', 'grid.result_needed');
  const title = `${cat.name}${address ? ` · ${address}` : ''}`.slice(0, 200);
  const body = {
    source: 'grid',
    category: code,
    urgency: 'normal',
    title,
    description,
    location: { grid: me.unit, ...(address ? { address } : {}), ...(coords || {}) },
    ...(selfHandled ? { self_handled: { result } } : {}),
  };
  const item = {
    key: newKey(),
    user: me.user,
    created: new Date().toISOString(),
    body,
    photos: [...$('g-photos').files].map((file) => ({ file, key: newKey(), hash: null })),
  };
  await outboxPut(item);
  $('report').reset();
  $('g-category').value = '';
  $('g-result-box').hidden = true;
  showPreviews();
  coords = null;
  $('g-coords').textContent = '';
  $('g-status').textContent = navigator.onLine ? t('grid.sending') : t('grid.queued_offline');
  await showOutbox();
  if (navigator.onLine) await flush();
}

function onlineState() {
  $('offline-banner').hidden = navigator.onLine;
}

run(async () => {
  me = await startPage('grid');
  $('grid-name').textContent = t('grid.in_grid', { grid: unitName(me.unit) });
  fillCategories();
  $('g-locate').addEventListener('click', locate);
  $('g-photos').addEventListener('change', showPreviews);
  $('g-self').addEventListener('change', () => { $('g-result-box').hidden = !$('g-self').checked; });
  $('report').addEventListener('submit', (e) => submit(e).catch((err) => { $('g-status').textContent = errorText(err); }));
  window.addEventListener('online', () => { onlineState(); flush(); follow(); });
  window.addEventListener('offline', onlineState);
  onlineState();
  setInterval(() => { if (navigator.onLine) flush(); }, 30000);
  setInterval(() => { if (navigator.onLine) loadMine(); }, 60000);
  await showOutbox();
  await flush();
  if (navigator.onLine) follow();
  document.body.dataset.loaded = 'true';
  keepOffline().catch((e) => console.warn('offline copy not kept', e));
});
