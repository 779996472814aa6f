// 受理 (issue 22, point 4): a hotline agent takes a call on the desk. The form asks
// for the category (no default: "请选择类别"), urgency, the caller, the address, what
// they report, the point (a click on the map; the grid follows from the boundaries
// when the organisation gives them) and the grid. Before saving it asks
// GET /api/v1/tickets/similar and lists the open tickets of the same category
// nearby or in the same grid: the new ticket is then linked to one (related_to),
// or recorded and closed as its duplicate, or created as new. Creating sends an
// Idempotency-Key kept for the same form, so a retry or a double click never makes
// two tickets.

import {
  ApiError, api, categoryList, categoryName, clear, command, el, errorText, fmtTime, newKey, notify, run,
  startPage, stateBadge, t, unitList, unitName,
} from './common.js';
import { drawTickets, makeMap, mapConfig } from './map.js';

const $ = (id) => document.getElementById(id);

let me = null;
let m = null; // the map (makeMap)
let picked = null; // [lat, lon]
let pickedMarker = null;
let similarLayer = null;
let lastKey = null; // {body, key}: the key of the last create, reused for the same body

// ---- the point and its grid

// Ray casting over a GeoJSON ring of [lon, lat].
function inRing(lon, lat, ring) {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [xi, yi] = ring[i];
    const [xj, yj] = ring[j];
    if ((yi > lat) !== (yj > lat) && lon < ((xj - xi) * (lat - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}
function inPolygon(lon, lat, rings) {
  return rings.length > 0 && inRing(lon, lat, rings[0]) && !rings.slice(1).some((h) => inRing(lon, lat, h));
}
function contains(geometry, lon, lat) {
  if (geometry.type === 'Polygon') return inPolygon(lon, lat, geometry.coordinates);
  if (geometry.type === 'MultiPolygon') return geometry.coordinates.some((p) => inPolygon(lon, lat, p));
  return false;
}

// The grid whose boundary holds the point, if the organisation gives one.
async function gridAt(lat, lon) {
  const cfg = await mapConfig();
  const hit = cfg.boundaries.find((b) => b.kind === 'grid' && contains(b.geometry, lon, lat));
  return hit ? hit.unit : null;
}

async function pick(lat, lon) {
  picked = [Number(lat.toFixed(6)), Number(lon.toFixed(6))];
  $('i-point').textContent = `${picked[0].toFixed(5)}, ${picked[1].toFixed(5)}`;
  $('i-point').classList.remove('muted');
  if (pickedMarker) pickedMarker.remove();
  pickedMarker = m.L.circleMarker(picked, { radius: 9, weight: 3, fillOpacity: 0.9, className: 'yw-pt pt-new' }).addTo(m.map);
  pickedMarker.bindTooltip(t('intake.here'));
  const g = await gridAt(picked[0], picked[1]);
  if (g) $('i-grid').value = g;
}

// ---- the form

function formBody(relatedTo) {
  const address = $('i-address').value.trim();
  const description = $('i-description').value.trim();
  const category = $('i-category').value;
  const firstLine = description.split('\n')[0];
  const title = firstLine.length > 40 ? `${firstLine.slice(0, 40)}…` : firstLine;
  const location = {};
  if (address) location.address = address;
  if (picked) [location.lat, location.lon] = picked;
  if ($('i-grid').value) location.grid = $('i-grid').value;
  const body = {
    source: 'hotline',
    category,
    title: title || categoryName(category),
    description,
    urgency: $('i-urgency').value,
    location,
  };
  const name = $('i-name').value.trim();
  const phone = $('i-phone').value.trim();
  if (name || phone) body.reporter = { ...(name ? { name } : {}), ...(phone ? { phone } : {}) };
  if (relatedTo) body.related_to = relatedTo;
  return body;
}

function problem(text) {
  $('i-status').textContent = text;
  $('i-status').classList.add('bad');
}

function check() {
  $('i-status').classList.remove('bad');
  if (!$('i-category').value) return problem(t('intake.need_category')), false;
  if (!$('i-description').value.trim()) return problem(t('intake.need_description')), false;
  if (!picked && !$('i-grid').value) return problem(t('intake.need_place')), false;
  return true;
}

// ---- similar tickets

function distanceText(s) {
  if (s.distance_m !== null && s.distance_m !== undefined) {
    const d = t('intake.distance', { m: s.distance_m });
    return s.same_grid ? `${d} · ${t('intake.same_grid')}` : d;
  }
  return t('intake.same_grid');
}

function mayClose() {
  return me.role === 'dispatcher' || me.role === 'admin';
}

function similarItem(s) {
  const tk = s.ticket;
  const buttons = [
    el('button', {
      type: 'button', class: 'btn ghost small', 'data-act': 'link', text: t('intake.link'),
      onclick: () => save({ relatedTo: tk }),
    }),
  ];
  if (mayClose()) {
    buttons.push(el('button', {
      type: 'button', class: 'btn secondary small', 'data-act': 'duplicate', text: t('intake.duplicate'),
      onclick: () => save({ relatedTo: tk, duplicateOf: tk }),
    }));
  }
  return el('li', { class: 'card mini similar-item', dataset: { number: tk.number } },
    el('div', { class: 'row' },
      el('a', { href: `/tickets/${tk.id}`, class: 'num', target: '_blank', rel: 'noopener', text: tk.number }),
      stateBadge(tk),
      tk.overdue ? el('span', { class: 'badge overdue', text: t('map.overdue') }) : null,
      el('span', { class: 'muted', text: distanceText(s) })),
    el('div', { class: 'similar-title', text: tk.title }),
    el('div', { class: 'muted small', text: `${(tk.location && tk.location.address) || ''} · ${fmtTime(tk.created_at)}` }),
    el('div', { class: 'row' }, buttons));
}

async function findSimilar(e) {
  e.preventDefault();
  if (!check()) return;
  const q = new URLSearchParams({ category: $('i-category').value });
  if (picked) {
    q.set('lat', String(picked[0]));
    q.set('lon', String(picked[1]));
  }
  if ($('i-grid').value) q.set('grid', $('i-grid').value);
  $('i-check').disabled = true;
  $('i-status').textContent = t('intake.checking');
  try {
    const r = await api(`/api/v1/tickets/similar?${q}`);
    if (similarLayer) similarLayer.remove();
    similarLayer = null;
    if (!r.items.length) {
      $('i-status').textContent = t('intake.none_similar');
      await save({});
      return;
    }
    $('i-status').textContent = '';
    const list = clear($('similar'));
    for (const s of r.items) list.append(similarItem(s));
    $('similar-summary').textContent = t('intake.similar_found', { n: r.items.length });
    $('similar-card').hidden = false;
    similarLayer = drawTickets(m, r.items.map((s) => s.ticket)).layer;
    $('similar-card').scrollIntoView({ block: 'nearest' });
  } finally {
    $('i-check').disabled = false;
  }
}

// Creates the ticket (linked to `relatedTo`), then closes it as a duplicate of
// `duplicateOf` when asked. A network failure is retried with the same key.
async function create(body) {
  const text = JSON.stringify(body);
  if (!lastKey || lastKey.body !== text) lastKey = { body: text, key: newKey() };
  let lastError;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await api('/api/v1/tickets', { method: 'POST', body, headers: { 'Idempotency-Key': lastKey.key } });
    } catch (e) {
      if (e instanceof ApiError) throw e;
      lastError = e;
      await new Promise((res) => setTimeout(res, 500 * (attempt + 1)));
    }
  }
  throw lastError;
}

async function save({ relatedTo, duplicateOf }) {
  if (!check()) return;
  for (const b of document.querySelectorAll('#similar button, #i-create')) b.disabled = true;
  try {
    const created = await create(formBody(relatedTo && relatedTo.id));
    let text = t('intake.created', { number: created.number });
    if (duplicateOf) {
      await command(created, 'close', { code: 'duplicate', duplicate_of: duplicateOf.id });
      text = t('intake.closed_duplicate', { number: created.number, of: duplicateOf.number });
    } else if (relatedTo) {
      text = t('intake.created_related', { number: created.number, of: relatedTo.number });
    }
    lastKey = null;
    $('similar-card').hidden = true;
    $('done-text').textContent = text;
    $('done-open').href = `/tickets/${created.id}`;
    $('done-card').hidden = false;
    $('done-card').dataset.number = created.number;
    $('i-status').textContent = '';
    notify(text, 'ok');
  } catch (e) {
    problem(errorText(e));
    notify(errorText(e), 'error');
  } finally {
    for (const b of document.querySelectorAll('#similar button, #i-create')) b.disabled = false;
  }
}

function reset() {
  $('intake').reset();
  picked = null;
  if (pickedMarker) pickedMarker.remove();
  pickedMarker = null;
  if (similarLayer) similarLayer.remove();
  similarLayer = null;
  $('i-point').textContent = t('intake.point_hint');
  $('i-point').classList.add('muted');
  $('done-card').hidden = true;
  $('similar-card').hidden = true;
  $('i-status').textContent = '';
  lastKey = null;
}

run(async () => {
  me = await startPage('intake');
  const sel = $('i-category');
  const groups = new Map();
  for (const c of categoryList()) {
    if (!groups.has(c.group)) groups.set(c.group, []);
    groups.get(c.group).push(c);
  }
  for (const [group, cats] of groups) {
    sel.append(el('optgroup', { label: group || '' }, cats.map((c) => el('option', { value: c.code, text: categoryName(c.code) }))));
  }
  const grids = unitList().filter((u) => u.kind === 'grid');
  $('i-grid').append(...grids.map((g) => el('option', { value: g.code, text: unitName(g.code) })));
  $('intake').addEventListener('submit', (e) => findSimilar(e).catch((err) => problem(errorText(err))));
  $('i-create').addEventListener('click', () => save({}));
  $('i-back').addEventListener('click', () => { $('similar-card').hidden = true; });
  $('i-next').addEventListener('click', reset);
  // A changed form is another request: a new key.
  $('intake').addEventListener('input', () => { lastKey = null; });
  m = await makeMap($('i-map'));
  m.map.on('click', (e) => pick(e.latlng.lat, e.latlng.lng).catch((err) => problem(errorText(err))));
  document.body.dataset.intakeReady = 'true';
});
