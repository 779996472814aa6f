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

function pct(r) {
  return r === null || r === undefined ? '—' : `${(r * 100).toFixed(1)}%`;
}
function hours(h) {
  return h === null || h === undefined ? '—' : `${Number(h).toFixed(1)}`;
}
function ratio(a, b) {
  return b ? a / b : null;
}

function statsQuery() {
  return new URLSearchParams({
    unit: $('d-unit').value,
    granularity: $('d-granularity').value,
    from: $('d-from').value,
    to: $('d-to').value,
  });
}

// Sums a unit's rows over the range; rates from the summed counts.
function total(rows) {
  const s = {
    received: 0, due_to_sign: 0, signed_on_time: 0, due_to_finish: 0, handled: 0, handled_on_time: 0,
    returns: 0, extensions_approved: 0, verification_failures: 0, supervisions: 0, repeated_supervisions: 0,
    feedback: 0, satisfied: 0, basically_satisfied: 0, one_time: 0,
  };
  for (const r of rows) for (const k of Object.keys(s)) s[k] += r[k] || 0;
  const last = rows[rows.length - 1] || {};
  return {
    ...s,
    signed_on_time_rate: ratio(s.signed_on_time, s.due_to_sign),
    on_time_rate: ratio(s.handled_on_time, s.due_to_finish),
    satisfaction_rate: ratio(s.satisfied + s.basically_satisfied, s.feedback),
    one_time_rate: ratio(s.one_time, s.handled),
    overdue_open: last.overdue_open || 0,
    turnaround: last.turnaround_hours || {},
  };
}

function tile(label, value, key) {
  return el('div', { class: 'tile', dataset: { key } }, el('span', { class: 'tile-value', text: value }), el('span', { class: 'tile-label', text: label }));
}

const COLUMNS = [
  ['received', 'dash.col.received', (r) => r.received],
  ['signed_on_time_rate', 'dash.col.sign_rate', (r) => pct(r.signed_on_time_rate)],
  ['handled', 'dash.col.handled', (r) => r.handled],
  ['on_time_rate', 'dash.col.on_time_rate', (r) => pct(r.on_time_rate)],
  ['overdue_open', 'dash.col.overdue', (r) => r.overdue_open],
  ['returns', 'dash.col.returns', (r) => r.returns],
  ['supervisions', 'dash.col.supervisions', (r) => r.supervisions],
  ['verification_failures', 'dash.col.rework', (r) => r.verification_failures],
  ['satisfaction_rate', 'dash.col.satisfaction', (r) => pct(r.satisfaction_rate)],
];

function table(node, firstHeader, rows) {
  clear(node);
  node.append(el('thead', {}, el('tr', {}, el('th', { text: firstHeader }), COLUMNS.map(([, k]) => el('th', { text: t(k) })))));
  const body = el('tbody');
  for (const [label, r, code] of rows) {
    body.append(el('tr', { dataset: { unit: code || '' } }, el('th', { scope: 'row', text: label }),
      COLUMNS.map(([f, , v]) => el('td', { dataset: { field: f }, text: String(v(r)) }))));
  }
  node.append(body);
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

function bars(node, items) {
  clear(node);
  if (!items.length) {
    node.append(el('p', { class: 'muted', text: t('dash.no_overdue') }));
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

async function loadStats() {
  const unit = $('d-unit').value;
  const data = await api(`/api/v1/stats/units?${statsQuery()}`);
  const byUnit = new Map();
  for (const r of data.items) {
    if (!byUnit.has(r.unit)) byUnit.set(r.unit, []);
    byUnit.get(r.unit).push(r);
  }
  const own = byUnit.get(unit) || [];
  const sum = total(own);
  clear($('tiles')).append(
    tile(t('dash.col.received'), String(sum.received), 'received'),
    tile(t('dash.col.sign_rate'), pct(sum.signed_on_time_rate), 'signed_on_time_rate'),
    tile(t('dash.col.on_time_rate'), pct(sum.on_time_rate), 'on_time_rate'),
    tile(t('dash.col.overdue'), String(sum.overdue_open), 'overdue_open'),
    tile(t('dash.turnaround_median'), hours(sum.turnaround.median), 'turnaround_median'),
    tile(t('dash.col.satisfaction'), pct(sum.satisfaction_rate), 'satisfaction_rate'),
  );
  for (const [c] of charts.splice(0)) c.destroy();
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
  const others = [...byUnit.entries()].filter(([code]) => code !== unit);
  const overdue = others.map(([code, rows]) => ({ code, label: unitName(code), value: total(rows).overdue_open }))
    .filter((x) => x.value > 0).sort((a, b) => b.value - a.value);
  bars($('overdue-bars'), overdue);
  table($('by-unit'), t('dash.unit'), [[unitName(unit), sum, unit], ...others.map(([code, rows]) => [unitName(code), total(rows), code])]);
  table($('by-period'), t('dash.period'), own.map((r) => [r.period, r, unit]));
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
