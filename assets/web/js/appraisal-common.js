// What the three appraisal pages share (/appraisal, /appraisal/ranking,
// /appraisal/bulletins): the period picker (month, quarter or year, kept in the
// address as ?period=), the sheets of the default profile, who may write, number
// formats and ticket links that show the tickets' numbers.

import {
  ApiError, api, el, lang, newKey, t, today, unit,
} from './common.js';

const $ = (id) => document.getElementById(id);

// A command of the appraisal: a fresh Idempotency-Key, retried with the same key on
// a network failure (the service answers a repeat with the first result).
export async function post(path, body) {
  const key = newKey();
  let lastError;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await api(path, { method: 'POST', body, headers: { 'Idempotency-Key': key } });
    } catch (e) {
      if (e instanceof ApiError) throw e;
      lastError = e;
      await new Promise((res) => setTimeout(res, 500 * (attempt + 1)));
    }
  }
  throw lastError;
}

// ---- periods: `YYYY-MM`, `YYYY-Qn` or `YYYY`

export function periodKind(label) {
  if (/^\d{4}$/.test(label)) return 'year';
  if (/^\d{4}-Q[1-4]$/.test(label)) return 'quarter';
  if (/^\d{4}-(0[1-9]|1[0-2])$/.test(label)) return 'month';
  return null;
}

// Whether an entry made for `inner` counts in the sheet of `outer` (a March
// finding counts in 2026-03, 2026-Q1 and 2026).
export function periodContains(outer, inner) {
  if (outer === inner) return true;
  const k = periodKind(outer);
  if (k === 'year') return inner.slice(0, 4) === outer;
  if (k === 'quarter' && periodKind(inner) === 'month') {
    const q = Number(outer.slice(6));
    const m = Number(inner.slice(5, 7));
    return inner.slice(0, 4) === outer.slice(0, 4) && Math.floor((m - 1) / 3) + 1 === q;
  }
  return false;
}

// A period label for people: 2026年3月 / 2026年第1季度 / 2026年度 (or as it is, in English).
export function periodName(label) {
  const k = periodKind(label);
  if (!k) return label || '—';
  const y = label.slice(0, 4);
  if (k === 'year') return t('ap.period.year', { y });
  if (k === 'quarter') return t('ap.period.quarter', { y, q: label.slice(6) });
  return t('ap.period.month', { y, m: Number(label.slice(5, 7)) });
}

function query() {
  return new URLSearchParams(location.search);
}

// Sets (or removes, for '') the given parameters of the address without a reload.
export function setQuery(values) {
  const q = query();
  for (const [k, v] of Object.entries(values)) {
    if (v === '' || v === null || v === undefined) q.delete(k);
    else q.set(k, v);
  }
  const s = q.toString();
  history.replaceState(null, '', `${location.pathname}${s ? `?${s}` : ''}${location.hash}`);
}

export function queryValue(name) {
  return query().get(name) || '';
}

// Fills the period picker (#p-kind, #p-year, #p-part) from ?period= or the current
// month, and calls onChange(label) when the person changes it.
export function periodPicker(onChange) {
  const [y, m] = today().split('-').map(Number);
  const kind = $('p-kind');
  const year = $('p-year');
  const part = $('p-part');
  for (let i = y; i >= y - 3; i--) year.append(el('option', { value: String(i), text: String(i) }));
  const fillParts = (k, chosen) => {
    part.replaceChildren();
    if (k === 'month') {
      for (let i = 1; i <= 12; i++) {
        const v = String(i).padStart(2, '0');
        part.append(el('option', { value: v, text: t('ap.month_n', { n: i }) }));
      }
    } else if (k === 'quarter') {
      for (let i = 1; i <= 4; i++) part.append(el('option', { value: `Q${i}`, text: t('ap.quarter_n', { n: i }) }));
    }
    if (chosen) part.value = chosen;
    $('p-part-field').hidden = k === 'year';
    $('p-part-label').textContent = t(k === 'quarter' ? 'ap.kind.quarter' : 'ap.part');
  };
  const label = () => (kind.value === 'year' ? year.value : `${year.value}-${part.value}`);
  let start = queryValue('period');
  if (!periodKind(start)) start = `${y}-${String(m).padStart(2, '0')}`;
  const k = periodKind(start);
  kind.value = k;
  if (![...year.options].some((o) => o.value === start.slice(0, 4))) {
    year.append(el('option', { value: start.slice(0, 4), text: start.slice(0, 4) }));
  }
  year.value = start.slice(0, 4);
  fillParts(k, k === 'year' ? null : start.slice(5));
  const changed = () => {
    setQuery({ period: label() });
    onChange(label());
  };
  kind.addEventListener('change', () => {
    const was = part.value;
    let next = null;
    if (kind.value === 'quarter' && /^\d\d$/.test(was)) next = `Q${Math.floor((Number(was) - 1) / 3) + 1}`;
    if (kind.value === 'month' && /^Q\d$/.test(was)) next = String((Number(was[1]) - 1) * 3 + 1).padStart(2, '0');
    fillParts(kind.value, next);
    changed();
  });
  year.addEventListener('change', changed);
  part.addEventListener('change', changed);
  return { label };
}

// ---- numbers

export function fmtScore(x) {
  return x === null || x === undefined ? '—' : Number(x).toFixed(2);
}
// Points with their sign: −2.00, +1.50, 0.00.
export function fmtPoints(x) {
  if (x === null || x === undefined) return '—';
  const v = Number(x);
  if (v > 0) return `+${v.toFixed(2)}`;
  if (v < 0) return `−${Math.abs(v).toFixed(2)}`;
  return '0.00';
}
export function fmtNumber(x) {
  if (x === null || x === undefined) return '—';
  return String(Math.round(Number(x) * 100) / 100);
}

// ---- who may write

// The viewer's part in the appraisal: a township appraiser writes for its township,
// a district appraiser or an admin for every township (and records grades).
export function scopeOf(me) {
  const u = unit(me.unit) || {};
  const appraiser = me.role === 'appraiser';
  const district = (appraiser && u.kind === 'district') || me.role === 'admin';
  const township = appraiser && u.kind === 'township' ? me.unit : null;
  return { write: district || !!township, district, township };
}

// The township an agency stands in (its nearest township ancestor), or null.
export function townshipOf(code) {
  let u = unit(code);
  while (u) {
    if (u.kind === 'township') return u.code;
    u = u.parent ? unit(u.parent) : null;
  }
  return null;
}

// ---- the sheets of the default profile

let sheets = null;

function manualOf(it) {
  if (!it.manual) return null;
  const yearOnly = !!it.year_only;
  if (it.points_each !== undefined && it.points_each !== null) return { points_each: Number(it.points_each), yearOnly };
  if (it.min !== undefined && it.min !== null && it.max !== undefined && it.max !== null) {
    return { min: Number(it.min), max: Number(it.max), yearOnly };
  }
  return null;
}

// The default profile's sheets (GET /api/v1/appraisal/profiles), by name:
// {name, title, base, weight, sections: [{name, title, points, source, bonus,
// reference, groups: [{name, title, cap}], items: [{code, title, cap, group,
// manual: null | {points_each, yearOnly} | {min, max, yearOnly}}]}]}.
export async function loadSheets() {
  if (sheets) return sheets;
  const r = await api('/api/v1/appraisal/profiles');
  const profile = (r.items || []).find((p) => p.default) || (r.items || [])[0] || {};
  sheets = new Map();
  for (const s of profile.sheets || []) {
    sheets.set(s.name, {
      name: s.name,
      title: s.title || s.name,
      base: s.base,
      weight: s.weight,
      sections: (s.sections || []).map((sec) => ({
        name: sec.name,
        title: sec.title || sec.name,
        points: sec.points === null ? undefined : sec.points,
        source: sec.source || '',
        bonus: !!sec.bonus,
        reference: !!sec.reference,
        groups: (sec.groups || []).map((g) => ({ name: g.name, title: g.title || g.name, cap: g.cap })),
        items: (sec.items || []).map((it) => ({
          code: it.code,
          title: it.title || it.code,
          cap: it.cap,
          group: it.group || null,
          manual: manualOf(it),
        })),
      })),
    });
  }
  return sheets;
}

export function sheetName(name) {
  return name ? t(`ap.sheet.${name}`) : t('ap.no_sheet');
}

// An item's or section's title: the document's wording; in English its code beside it.
export function titled(code, title) {
  if (lang() !== 'en') return el('span', { text: title || code });
  return el('span', {}, el('code', { text: code }), ' ', el('span', { class: 'muted', lang: 'zh-CN', text: title || '' }));
}

// ---- tickets by their numbers

const numbers = new Map();
const waiting = [];
let running = 0;

function pump() {
  while (running < 4 && waiting.length) {
    const [id, links] = waiting.shift();
    running += 1;
    api(`/api/v1/tickets/${id}`)
      .then((tk) => {
        numbers.set(id, tk.number);
        for (const a of links) a.textContent = tk.number;
      })
      .catch(() => {})
      .finally(() => {
        running -= 1;
        pump();
      });
  }
}

// A link to a ticket, showing its number (looked up once per ticket; the short id
// until it is known).
export function ticketLink(id) {
  const a = el('a', { href: `/tickets/${id}`, class: 'evidence-link', title: id, text: numbers.get(id) || id.slice(0, 8) });
  if (!numbers.has(id)) {
    const w = waiting.find(([x]) => x === id);
    if (w) w[1].push(a);
    else {
      waiting.push([id, [a]]);
      pump();
    }
  }
  return a;
}
