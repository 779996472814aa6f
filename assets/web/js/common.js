// What every page shares: the token or session, the language, calls to the JSON API, the page
// header, and how names, times and deadlines are shown.

const TOKEN_KEY = 'yw.token';
const LANG_KEY = 'yw.lang';

export function getToken() {
  return localStorage.getItem(TOKEN_KEY) || '';
}
export function setToken(token) {
  localStorage.setItem(TOKEN_KEY, token);
}
export function clearToken() {
  localStorage.removeItem(TOKEN_KEY);
}

// A password sign-in's session: the cookie itself is HttpOnly; its CSRF token is in
// the readable yw_csrf cookie, echoed as X-CSRF-Token on every request (the service
// requires it on those that change something).
export function csrfToken() {
  const m = document.cookie.match(/(?:^|;\s*)yw_csrf=([^;]*)/);
  return m ? decodeURIComponent(m[1]) : '';
}
// Signed in: a token kept here, or a session (its CSRF cookie is there).
export function signedIn() {
  return !!(getToken() || csrfToken());
}
// The headers that authenticate a request: the bearer token when there is one,
// else the session's CSRF token beside the cookie.
export function authHeaders() {
  const token = getToken();
  if (token) return { Authorization: `Bearer ${token}` };
  const csrf = csrfToken();
  return csrf ? { 'X-CSRF-Token': csrf } : {};
}
// Signs out: ends the session on the service (its cookie stops working at once),
// forgets a token, and goes to the sign-in page unless told otherwise.
export async function signOut({ go = true } = {}) {
  const csrf = csrfToken();
  if (csrf) {
    try {
      await fetch('/api/v1/session', {
        method: 'DELETE', headers: { 'X-CSRF-Token': csrf }, credentials: 'same-origin', cache: 'no-store',
      });
    } catch (e) {
      // Offline: the cookie is cleared below as far as a page can; the session
      // ends on the service after an hour unused.
    }
    document.cookie = 'yw_csrf=; Max-Age=0; Path=/; Secure; SameSite=Strict';
  }
  clearToken();
  if (go) location.href = '/login';
}

// ---- language: Chinese by default, English on request; one dictionary per language.

export function lang() {
  return localStorage.getItem(LANG_KEY) === 'en' ? 'en' : 'zh';
}
let dict = {};

export async function loadI18n() {
  const r = await fetch(`/web/i18n/${lang()}.json`);
  dict = await r.json();
  document.documentElement.lang = lang() === 'en' ? 'en' : 'zh-CN';
}

// The string of a key, its {name} placeholders filled from vars.
export function t(key, vars) {
  let s = Object.prototype.hasOwnProperty.call(dict, key) ? dict[key] : key;
  if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (vars[k] === undefined || vars[k] === null ? '' : String(vars[k])));
  return s;
}

export function applyI18n(root = document) {
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll('[data-i18n-title]')) el.title = t(el.dataset.i18nTitle);
  const title = document.querySelector('title[data-i18n]');
  if (title) document.title = `${t(title.dataset.i18n)} · ${t('app.name')}`;
}

// ---- the API

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

// A fresh Idempotency-Key: a random UUID (crypto.randomUUID needs a secure context,
// getRandomValues does not, so a plain-HTTP intranet deployment works too).
export function newKey() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export async function api(path, { method = 'GET', body, headers = {}, accept = 'application/json', raw = false } = {}) {
  const h = { Accept: accept, ...authHeaders(), ...headers };
  let payload = body;
  if (body !== undefined && !(body instanceof FormData) && !(body instanceof Blob)) {
    h['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const r = await fetch(path, { method, headers: h, body: payload, cache: 'no-store', credentials: 'same-origin' });
  if (!r.ok) {
    let problem = {};
    try {
      problem = await r.json();
    } catch (e) {
      problem = { detail: r.statusText };
    }
    const err = new ApiError(r.status, problem);
    err.retryAfter = Number(r.headers.get('Retry-After')) || 0;
    throw err;
  }
  if (raw) return r;
  const ct = r.headers.get('content-type') || '';
  return ct.includes('json') ? r.json() : r.text();
}

// A ticket command: a fresh Idempotency-Key and If-Match on the version the person
// saw. A network failure is retried with the same key, which the service answers
// with the first result instead of acting twice.
export async function command(ticket, action, body) {
  const key = newKey();
  let lastError;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await api(`/api/v1/tickets/${ticket.id}/${action}`, {
        method: 'POST',
        body,
        headers: { 'Idempotency-Key': key, 'If-Match': `"${ticket.version}"` },
      });
    } catch (e) {
      if (e instanceof ApiError) throw e;
      lastError = e;
      await new Promise((res) => setTimeout(res, 500 * (attempt + 1)));
    }
  }
  throw lastError;
}

// A problem (RFC 9457, with its stable `code`) in the reader's language: the
// dictionary's `problem.<code>`, else `problem.<first part of the code>`, else the
// server's own `detail` (English), so a code added on the server still reads.
export function problemText(problem, status) {
  const p = problem || {};
  const has = (k) => Object.prototype.hasOwnProperty.call(dict, k);
  const code = typeof p.code === 'string' ? p.code : '';
  const keys = code ? [`problem.${code}`, `problem.${code.split('.')[0]}`] : [];
  const key = keys.find(has);
  const field = p.field ? ` (${p.field})` : '';
  if (key) return `${t(key)}${field}`;
  return `${p.detail || p.title || `HTTP ${status || p.status || ''}`}${field}`;
}

// The text to show for a failed call.
export function errorText(e) {
  if (e instanceof ApiError) {
    if (e.status === 412) return t('err.changed');
    if (e.status === 401) return t('err.signin');
    return problemText(e.problem, e.status);
  }
  return t('err.network');
}

// ---- the organisation and the catalogue, loaded once per page

let units = new Map();
let categories = new Map();

export async function loadOrg() {
  const [u, c] = await Promise.all([api('/api/v1/units'), api('/api/v1/categories')]);
  units = new Map(u.items.map((x) => [x.code, x]));
  categories = new Map(c.items.map((x) => [x.code, x]));
}
export function unitList() {
  return [...units.values()];
}
export function unit(code) {
  return units.get(code);
}
// A unit's name in the reader's language (its `name_en` in English when the
// organisation file gives one); `fallback` (a name an answer carried) for a unit
// not in the organisation loaded.
export function unitName(code, fallback) {
  if (!code) return '—';
  const u = units.get(code);
  if (!u) return fallback || code;
  return lang() === 'en' && u.name_en ? u.name_en : u.name;
}
export function isCentre(code) {
  const u = units.get(code);
  return !!(u && Array.isArray(u.dispatch_targets));
}
export function categoryList() {
  return [...categories.values()];
}
export function categoryName(code) {
  const c = categories.get(code);
  if (!c) return code;
  return lang() === 'en' && c.name_en ? c.name_en : c.name;
}
// The name of a category's group in the reader's language.
export function categoryGroupName(c) {
  if (!c || !c.group) return '';
  return lang() === 'en' && c.group_en ? c.group_en : c.group;
}
// The unit subtree of `root`, in organisation order.
export function subtree(root) {
  const out = [];
  const walk = (code) => {
    out.push(code);
    for (const u of units.values()) if (u.parent === code) walk(u.code);
  };
  if (units.has(root)) walk(root);
  return out;
}

// The centre that acts on the ticket now (it dispatches on a hop that reached it).
export function holder(ticket) {
  if (ticket.state === 'assigned' && ticket.unit && isCentre(ticket.unit)) return ticket.unit;
  return ticket.centre;
}
export function atCentre(ticket) {
  return ticket.state === 'assigned' && !!ticket.unit && isCentre(ticket.unit);
}

// ---- times: shown in Asia/Shanghai, the service's business time zone

function parts(iso) {
  const f = new Intl.DateTimeFormat('en-GB', {
    timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
  });
  const o = {};
  for (const p of f.formatToParts(new Date(iso))) o[p.type] = p.value;
  return o;
}
export function fmtTime(iso) {
  if (!iso) return '—';
  const p = parts(iso);
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}`;
}
// A deadline at 24:00 of a working day reads as that day's 24:00, not the next 00:00.
export function fmtDeadline(iso) {
  if (!iso) return '—';
  const p = parts(iso);
  if (p.hour === '00' && p.minute === '00') {
    const q = parts(new Date(Date.parse(iso) - 60000).toISOString());
    return `${q.year}-${q.month}-${q.day} 24:00`;
  }
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}`;
}
// 'YYYY-MM-DD' of today in Asia/Shanghai.
export function today() {
  const p = parts(new Date().toISOString());
  return `${p.year}-${p.month}-${p.day}`;
}

// ---- small DOM helpers (text only: nothing from the API is ever parsed as HTML)

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}
export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

// A short-lived message at the top of the page.
export function notify(text, kind = 'info') {
  const box = document.getElementById('toast');
  if (!box) return;
  const m = el('div', { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : 'status', text });
  box.append(m);
  setTimeout(() => m.remove(), kind === 'error' ? 8000 : 4000);
}

// ---- labels

export function stateBadge(ticket) {
  const b = el('span', { class: `badge state-${ticket.state}`, text: t(`state.${ticket.state}`) });
  if (ticket.state === 'accepted' && ticket.returned > 0) b.textContent = t('state.returned');
  return b;
}
export function deadlineBadge(kind, status, due) {
  if (!due) return null;
  const label = t(kind === 'sign' ? 'deadline.sign' : 'deadline.handle');
  return el('span', { class: `deadline dl-${status || 'none'}`, title: t(`deadline.${status || 'running'}`) },
    `${label} ${fmtDeadline(due)}`, status ? ` · ${t(`deadline.${status}`)}` : '');
}

// ---- the page frame

const NAV = {
  dispatcher: ['desk', 'dashboard', 'appraisal'],
  handler: ['desk', 'dashboard', 'appraisal'],
  admin: ['desk', 'dashboard', 'appraisal', 'grid'],
  analyst: ['dashboard', 'appraisal'],
  appraiser: ['appraisal'],
  hotline_agent: ['desk'],
  grid_worker: ['grid'],
};
// 受理 (js/intake.js): beside the desk for those who take calls.
for (const r of ['hotline_agent', 'dispatcher', 'admin']) NAV[r].splice(1, 0, 'intake');

export function homeFor(role) {
  return `/${(NAV[role] || ['desk'])[0]}`;
}

function header(me, current) {
  const bar = document.getElementById('topbar');
  if (!bar) return;
  clear(bar);
  const nav = el('nav', { class: 'nav' });
  for (const p of NAV[me.role] || []) {
    const label = p === 'desk' && me.role === 'handler' ? t('desk.title_handler')
      : p === 'desk' && me.role === 'hotline_agent' ? t('desk.title_hotline') : t(`nav.${p}`);
    nav.append(el('a', { href: `/${p}`, class: p === current ? 'current' : null, text: label }));
  }
  const other = lang() === 'en' ? 'zh' : 'en';
  const langBtn = el('button', {
    type: 'button', class: 'link', id: 'lang-switch', lang: other === 'en' ? 'en' : 'zh-CN',
    text: t('lang.switch'),
    onclick: () => {
      localStorage.setItem(LANG_KEY, other);
      location.reload();
    },
  });
  const out = el('button', {
    type: 'button', class: 'link', id: 'sign-out', text: t('signin.out'),
    onclick: () => signOut(),
  });
  bar.append(
    el('a', { href: homeFor(me.role), class: 'brand' }, el('img', { src: '/web/icon.svg', alt: '' }), t('app.name')),
    nav,
    el('div', { class: 'who', id: 'who' },
      el('span', { class: 'user', text: me.user }),
      el('span', { class: 'role', text: `${t(`role.${me.role}`)} · ${unitName(me.unit, me.unit_name)}` })),
    el('div', { class: 'tools' }, langBtn, out),
  );
}

// Starts a signed-in page: the dictionary, the viewer, the organisation and the
// header. Without a token (or with one the service no longer knows) it goes to
// the sign-in page.
export async function startPage(current, { org = true } = {}) {
  await loadI18n();
  applyI18n();
  if (!signedIn()) {
    location.replace('/login');
    return new Promise(() => {});
  }
  let me;
  try {
    me = await api('/api/v1/me');
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      await signOut({ go: false });
      location.replace('/login');
      return new Promise(() => {});
    }
    throw e;
  }
  if (org) await loadOrg();
  header(me, current);
  document.body.classList.add('ready');
  return me;
}

// A page's main work, with any failure shown to the person.
export function run(main) {
  main().catch((e) => {
    console.error(e);
    const box = document.getElementById('page-error');
    if (box) {
      box.textContent = errorText(e);
      box.hidden = false;
    }
  });
}
