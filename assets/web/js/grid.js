// The grid worker's page (/grid), for a phone: report a problem in the worker's grid
// (category, description, location, photos), or one fixed on the spot (自行处置);
// follow the grid's reports.
//
// Every report goes into an outbox in the browser (IndexedDB, photos included) with
// its Idempotency-Key made there and then, and is sent from the outbox: at once when
// online, else when the network returns (the `online` event, and a retry every 30 s).
// A report whose answer was lost is sent again with the same key and the same bytes,
// which the service answers with the first result: a report is never doubled.

import {
  ApiError, api, authHeaders, categoryList, categoryName, clear, el, errorText, fmtTime, newKey, notify, run, startPage,
  stateBadge, t, unitName,
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
      el('span', { class: 'muted', text: ` · ${fmtTime(item.created)} · ${t('grid.photo_count', { n: item.photos.length })}` }),
      el('p', { class: item.rejected ? 'error' : 'muted', text: item.rejected || t('grid.waiting') }),
      item.rejected ? discard : null));
  }
}

// ---- the grid's reports

const STEPS = ['accepted', 'assigned', 'signed', 'handled', 'verified', 'closed'];
function step(tk) {
  if (tk.state === 'assigned') return tk.handler ? 'signed' : 'assigned';
  return tk.state;
}

async function loadMine() {
  let page;
  try {
    page = await api('/api/v1/tickets?limit=50');
  } catch (e) {
    return; // offline: the list stays as it was
  }
  const list = clear($('mine'));
  const items = page.items.filter((x) => x.source === 'grid');
  if (!items.length) list.append(el('li', { class: 'empty', text: t('grid.none') }));
  for (const tk of items) {
    const at = STEPS.indexOf(step(tk));
    const progress = el('ol', { class: 'steps' }, STEPS.map((s, i) => el('li', {
      class: i < at ? 'done' : (i === at ? 'now' : ''), text: t(`step.${s}`),
    })));
    list.append(el('li', { class: 'card mini', dataset: { id: tk.id } },
      el('div', { class: 'ticket-head' }, el('a', { href: `/tickets/${tk.id}`, class: 'number', text: tk.number }), stateBadge(tk),
        tk.self_handled ? el('span', { class: 'badge', text: t('flag.self_handled') }) : null),
      el('a', { href: `/tickets/${tk.id}`, class: 'title-link', text: tk.title }),
      tk.description ? el('p', { class: 'desc clamp', text: tk.description }) : null,
      el('p', { class: 'muted', text: `${fmtTime(tk.created_at)}${tk.unit ? ` · ${unitName(tk.unit)}` : ''}` }),
      progress));
  }
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
  if (selfHandled && !result) {
    $('g-status').textContent = t('grid.result_needed');
    return;
  }
  const title = `${cat ? cat.name : code}${address ? ` · ${address}` : ''}`.slice(0, 200);
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
  const sel = $('g-category');
  const groups = new Map();
  for (const c of categoryList()) {
    if (!groups.has(c.group)) groups.set(c.group, []);
    groups.get(c.group).push(c);
  }
  for (const [group, cats] of groups) {
    sel.append(el('optgroup', { label: group || '' }, cats.map((c) => el('option', { value: c.code, text: categoryName(c.code) }))));
  }
  $('g-locate').addEventListener('click', locate);
  $('g-photos').addEventListener('change', showPreviews);
  $('g-self').addEventListener('change', () => { $('g-result-box').hidden = !$('g-self').checked; });
  $('report').addEventListener('submit', (e) => submit(e).catch((err) => { $('g-status').textContent = errorText(err); }));
  window.addEventListener('online', () => { onlineState(); flush(); });
  window.addEventListener('offline', onlineState);
  onlineState();
  setInterval(() => { if (navigator.onLine) flush(); }, 30000);
  await showOutbox();
  await flush();
  document.body.dataset.loaded = 'true';
});
