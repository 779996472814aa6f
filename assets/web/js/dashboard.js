// The department dashboard (/dashboard): the unit statistics of the viewer's subtree
// for a chosen period, as tiles, charts and tables; the appraisal with every
// deduction's evidence linked to its tickets; CSV downloads of both.

import uPlot from '/web/vendor/uplot/uPlot.esm.js';
import {
  api, clear, el, errorText, lang, run, startPage, subtree, t, today, unit, unitName,
} from './common.js';
import { ticketLink } from './appraisal-common.js';

const $ = (id) => document.getElementById(id);
let me;
const charts = [];

// Figures are shown as the API answers them: rates to one decimal of a percent and
// hours to one decimal, rounded half up (as the browser test recomputes them).
function pct(r) {
  return r === null || r === undefined ? '—' : `${(Math.round(r * 1000) / 10).toFixed(1)}%`;
}
function hours(h) {
  return h === null || h === undefined ? '—' : `${(Math.round(h * 10) / 10).toFixed(1)}`;
}

function statsQuery(granularity = $('d-granularity').value) {
  return new URLSearchParams({
    unit: $('d-unit').value,
    granularity,
    from: $('d-from').value,
    to: $('d-to').value,
  });
}

function tile(label, value, key) {
  return el('div', { class: 'tile', dataset: { key } }, el('span', { class: 'tile-value', text: value }), el('span', { class: 'tile-label', text: label }));
}

// [field, label key, shown text, value to sort by]
const COLUMNS = [
  ['received', 'dash.col.received', (r) => r.received],
  ['due_to_finish', 'dash.fig.due_to_finish', (r) => r.due_to_finish],
  ['handled', 'dash.col.handled', (r) => r.handled],
  ['signed_on_time_rate', 'dash.col.sign_rate', (r) => pct(r.signed_on_time_rate), (r) => r.signed_on_time_rate],
  ['on_time_rate', 'dash.col.on_time_rate', (r) => pct(r.on_time_rate), (r) => r.on_time_rate],
  ['overdue_open', 'dash.col.overdue', (r) => r.overdue_open],
  ['turnaround_median', 'dash.fig.median', (r) => hours(r.turnaround_hours.median), (r) => r.turnaround_hours.median],
  ['returns', 'dash.col.returns', (r) => r.returns],
  ['supervisions', 'dash.col.supervisions', (r) => r.supervisions],
  ['verification_failures', 'dash.col.rework', (r) => r.verification_failures],
  ['satisfaction_rate', 'dash.col.satisfaction', (r) => pct(r.satisfaction_rate), (r) => r.satisfaction_rate],
];

// A table of API rows, one per row as answered; a subtotal row (it rolls up rows
// beside it) is marked. Click a column's header to sort by it (again: the other way).
function table(node, firstHeader, rows) {
  clear(node);
  const head = el('tr', {}, el('th', { scope: 'col', text: firstHeader }),
    COLUMNS.map(([f, k], i) => el('th', { scope: 'col', class: 'sortable', title: t('dash.fig.sort'), dataset: { field: f, col: String(i) }, text: t(k) })));
  node.append(el('thead', {}, head));
  const body = el('tbody');
  const rowOf = ([label, r, code]) => el('tr', { dataset: { unit: code || '', period: r.period }, class: r.subtotal ? 'subtotal' : null },
    el('th', { scope: 'row' }, label, r.subtotal ? el('span', { class: 'badge subtotal-mark', text: t('dash.fig.subtotal') }) : null),
    COLUMNS.map(([f, , v]) => el('td', { dataset: { field: f }, text: String(v(r)) })));
  const items = rows.map((x) => ({ x, tr: rowOf(x) }));
  body.append(...items.map((i) => i.tr));
  node.append(body);
  let sorted = null;
  head.addEventListener('click', (e) => {
    const th = e.target.closest('th.sortable');
    if (!th) return;
    const i = Number(th.dataset.col);
    const [, , shown, raw] = COLUMNS[i];
    const key = raw || shown;
    const dir = sorted && sorted.i === i ? -sorted.dir : -1;
    sorted = { i, dir };
    // Nothing (—) sorts last either way.
    const cmp = (a, b) => {
      const [va, vb] = [key(a.x[1]), key(b.x[1])];
      if (va === null || va === undefined) return vb === null || vb === undefined ? 0 : 1;
      if (vb === null || vb === undefined) return -1;
      return dir * (va - vb);
    };
    items.sort(cmp);
    body.append(...items.map((it) => it.tr));
    for (const h of head.querySelectorAll('th.sortable')) h.removeAttribute('aria-sort');
    th.setAttribute('aria-sort', dir < 0 ? 'descending' : 'ascending');
  });
}

function lineChart(node, labels, series, yFmt, range) {
  const width = Math.max(node.clientWidth, 260);
  const opts = {
    width,
    height: 220,
    scales: { x: { time: false }, y: range ? { range } : {} },
    series: [{ label: t('dash.period'), value: (u, i) => (i === null ? '' : labels[i]) },
      ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2, points: { size: 6 }, value: (u, v) => yFmt(v) }))],
    axes: [
      { values: (u, splits) => splits.map((i) => (Number.isInteger(i) ? labels[i] || '' : '')), size: 40 },
      { values: (u, splits) => splits.map(yFmt), size: 56 },
    ],
    legend: { live: false },
  };
  const xs = labels.map((_, i) => i);
  const chart = new uPlot(opts, [xs, ...series.map((s) => s.data)], clear(node));
  charts.push([chart, node]);
}

function bars(node, items, overdue) {
  clear(node);
  if (!items.length) {
    // Only when the total row says so: the bars and the tile never disagree.
    if (!overdue) node.append(el('p', { class: 'muted', text: t('dash.no_overdue') }));
    return;
  }
  const max = Math.max(...items.map((x) => x.value));
  for (const x of items) {
    const fill = el('span', { class: 'bar-fill' });
    fill.style.width = `${Math.max(2, (100 * x.value) / max)}%`;
    node.append(el('div', { class: 'bar', dataset: { unit: x.code } },
      el('span', { class: 'bar-label', text: x.label }),
      el('span', { class: 'bar-track' }, fill),
      el('span', { class: 'bar-value', text: String(x.value) })));
  }
}

// Everything shown comes from two answers of the API: `granularity=total` (one row
// per unit for the range: the tiles, the bars, the table by unit) and the periods
// asked for (the charts and the table by period). Nothing is added up here.
async function loadStats() {
  const unit = $('d-unit').value;
  const query = statsQuery();
  const [whole, periods] = await Promise.all([
    api(`/api/v1/stats/units?${statsQuery('total')}`),
    api(`/api/v1/stats/units?${query}`),
  ]);
  const sum = whole.items.find((r) => r.unit === unit);
  if (!sum) throw new Error(`no total for ${unit}`);
  clear($('tiles')).append(
    tile(t('dash.col.received'), String(sum.received), 'received'),
    tile(t('dash.fig.due_to_finish'), String(sum.due_to_finish), 'due_to_finish'),
    tile(t('dash.col.handled'), String(sum.handled), 'handled'),
    tile(t('dash.col.sign_rate'), pct(sum.signed_on_time_rate), 'signed_on_time_rate'),
    tile(t('dash.col.on_time_rate'), pct(sum.on_time_rate), 'on_time_rate'),
    tile(t('dash.col.overdue'), String(sum.overdue_open), 'overdue_open'),
    tile(t('dash.turnaround_median'), hours(sum.turnaround_hours.median), 'turnaround_median'),
    tile(t('dash.col.satisfaction'), pct(sum.satisfaction_rate), 'satisfaction_rate'),
  );
  for (const [c] of charts.splice(0)) c.destroy();
  const own = periods.items.filter((r) => r.unit === unit);
  const labels = own.map((r) => r.period);
  const asPct = (v) => (v === null || v === undefined ? '—' : `${Math.round(v)}%`);
  lineChart($('chart-rates'), labels, [
    { label: t('dash.col.sign_rate'), color: '#1565c0', data: own.map((r) => (r.signed_on_time_rate === null ? null : r.signed_on_time_rate * 100)) },
    { label: t('dash.col.on_time_rate'), color: '#2e7d32', data: own.map((r) => (r.on_time_rate === null ? null : r.on_time_rate * 100)) },
  ], asPct, [0, 100]);
  const h = (v) => (v === null || v === undefined ? '—' : `${Number(v).toFixed(1)}h`);
  lineChart($('chart-turnaround'), labels, [
    { label: t('dash.turnaround_median'), color: '#6a1b9a', data: own.map((r) => r.turnaround_hours.median) },
    { label: t('dash.turnaround_p90'), color: '#ef6c00', data: own.map((r) => r.turnaround_hours.p90) },
    { label: t('dash.turnaround_mean'), color: '#607d8b', data: own.map((r) => r.turnaround_hours.mean) },
  ], h);
  // Bars: the units' own rows, never a subtotal (it would count its units' tickets
  // again). When only a subtotal row has any, they are its unit's own tickets.
  let overdue = whole.items.filter((r) => !r.subtotal && r.overdue_open > 0);
  if (!overdue.length && sum.overdue_open > 0) overdue = [sum];
  bars($('overdue-bars'), overdue.map((r) => ({ code: r.unit, label: unitName(r.unit, r.unit_name), value: r.overdue_open }))
    .sort((a, b) => b.value - a.value), sum.overdue_open);
  $('by-unit-range').textContent = t('dash.fig.range', { from: $('d-from').value, to: $('d-to').value });
  table($('by-unit'), t('dash.unit'), whole.items.map((r) => [unitName(r.unit, r.unit_name), r, r.unit]));
  table($('by-period'), t('dash.period'), own.map((r) => [r.period, { ...r, subtotal: false }, unit]));
  document.body.dataset.stats = query.toString();
}

// The tickets behind a deduction, by their numbers (entries people made are on the
// appraisal page).
function evidenceLinks(evidence) {
  const ids = [...new Set(evidence.filter((e) => e.ticket).map((e) => e.ticket))];
  return el('span', { class: 'evidence' }, ids.map((id) => ticketLink(id)));
}

async function loadAppraisal() {
  const box = clear($('appraisal'));
  const q = new URLSearchParams({ period: $('a-period').value.trim(), unit: $('d-unit').value });
  if ($('a-profile').value) q.set('profile', $('a-profile').value);
  const a = await api(`/api/v1/appraisal?${q}`);
  // A department's ticket figures are reference only (`reference`): shown, marked, not counted.
  const items = (u) => u.deductions.concat((u.reference || []).map((d) => ({ ...d, reference: true })));
  const score = (u) => (u.score == null ? '—' : u.score.toFixed(2));
  const units = a.units.filter((u) => items(u).length).sort((x, y) => (x.score ?? Infinity) - (y.score ?? Infinity));
  const clean = a.units.filter((u) => !items(u).length);
  const list = el('div', { class: 'appraisal-list' });
  if (!units.length) list.append(el('p', { class: 'muted', text: t('dash.no_deductions_at_all') }));
  for (const u of units) {
    const rows = items(u).map((d) => el('tr', { dataset: { rule: d.rule }, class: d.reference ? 'reference' : null },
      el('td', {}, lang() === 'en' ? el('span', {}, el('code', { text: d.rule }), ' ', el('span', { class: 'muted', lang: 'zh-CN', text: d.title || '' })) : (d.title || d.rule)),
      el('td', { class: 'num', text: String(d.count) }),
      el('td', { class: 'num points', text: d.points.toFixed(2) }, d.capped ? el('span', { class: 'badge', text: t('dash.capped') }) : null,
        d.reference ? el('span', { class: 'badge', text: t('dash.reference') }) : null),
      el('td', {}, evidenceLinks(d.evidence))));
    const details = el('details', { class: 'appraisal-unit', open: items(u).length > 0, dataset: { unit: u.unit } },
      el('summary', {}, el('span', { class: 'score', text: score(u) }), ' ', unitName(u.unit, u.unit_name),
        u.base == null ? null : el('span', { class: 'muted', text: ` · ${t('dash.base')} ${u.base}` }),
        items(u).length ? null : el('span', { class: 'muted', text: ` · ${t('dash.no_deductions')}` })),
      items(u).length
        ? el('div', { class: 'table-wrap' }, el('table', { class: 'figures deductions' },
          el('thead', {}, el('tr', {}, ['dash.rule', 'dash.count', 'dash.points', 'dash.evidence'].map((k) => el('th', { text: t(k) })))),
          el('tbody', {}, rows)))
        : null);
    list.append(details);
  }
  if (clean.length) {
    list.append(el('details', { class: 'appraisal-unit clean' },
      el('summary', {}, t('dash.clean_units', { n: clean.length })),
      el('ul', { class: 'clean-list' }, clean.map((u) => el('li', { dataset: { unit: u.unit } },
        el('span', { class: 'score', text: score(u) }), ' ', unitName(u.unit, u.unit_name))))));
  }
  box.append(el('p', { class: 'muted', text: t('dash.appraisal_of', { period: a.period, profile: a.profile }) }), list,
    el('p', {}, el('a', { href: `/appraisal?${new URLSearchParams({ period: a.period })}`, id: 'to-appraisal', text: t('dash.to_appraisal') })));
}

// A CSV download: the same endpoint with Accept: text/csv, saved from a blob.
async function download(path, name) {
  const r = await api(path, { accept: 'text/csv', raw: true });
  const url = URL.createObjectURL(await r.blob());
  const a = el('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

function showError(e) {
  $('page-error').textContent = errorText(e);
  $('page-error').hidden = false;
}

function currentQuarter() {
  const [y, m] = today().split('-').map(Number);
  return `${y}-Q${Math.floor((m - 1) / 3) + 1}`;
}

run(async () => {
  me = await startPage('dashboard');
  const unitSel = $('d-unit');
  for (const code of subtree(me.unit)) {
    if ((unit(code) || {}).kind !== 'grid') unitSel.append(el('option', { value: code, text: unitName(code) }));
  }
  unitSel.value = me.unit;
  $('d-granularity').value = 'month';
  const to = today();
  const [y, m] = to.split('-').map(Number);
  const back = new Date(Date.UTC(y, m - 1 - 5, 1));
  $('d-from').value = back.toISOString().slice(0, 10);
  $('d-to').value = to;
  $('a-period').value = currentQuarter();
  const profiles = await api('/api/v1/appraisal/profiles');
  for (const p of profiles.items) $('a-profile').append(el('option', { value: p.name, selected: p.default, lang: 'zh-CN', text: p.title || p.name }));
  $('period').addEventListener('submit', (e) => {
    e.preventDefault();
    $('page-error').hidden = true;
    loadStats().then(loadAppraisal).catch(showError);
  });
  $('appraisal-form').addEventListener('submit', (e) => {
    e.preventDefault();
    $('page-error').hidden = true;
    loadAppraisal().catch(showError);
  });
  $('csv-stats').addEventListener('click', () => download(`/api/v1/stats/units?${statsQuery()}`, 'unit-stats.csv').catch(showError));
  $('csv-appraisal').addEventListener('click', () => {
    const q = new URLSearchParams({ period: $('a-period').value.trim(), unit: $('d-unit').value, profile: $('a-profile').value });
    download(`/api/v1/appraisal?${q}`, `appraisal-${q.get('period')}.csv`).catch(showError);
  });
  let resize;
  window.addEventListener('resize', () => {
    clearTimeout(resize);
    resize = setTimeout(() => {
      for (const [c, node] of charts) c.setSize({ width: Math.max(node.clientWidth, 260), height: 220 });
    }, 150);
  });
  await loadStats();
  await loadAppraisal();
  document.body.dataset.loaded = 'true';
});
