// The bulletins (/appraisal/bulletins, 通报, 49号 四(一)): a period's answer frozen
// when it was published, with the log position it was computed at; opened, the
// frozen scores and the drift since (units whose score today differs, both figures).

import {
  api, clear, el, errorText, fmtTime, notify, run, startPage, t, unitName,
} from './common.js';
import {
  fmtPoints, fmtScore, periodName, periodPicker, post, queryValue, scopeOf, setQuery, sheetName,
} from './appraisal-common.js';

const $ = (id) => document.getElementById(id);
let me;
let scope;
let picker;

function showError(e) {
  $('page-error').textContent = errorText(e);
  $('page-error').hidden = false;
}

async function publish() {
  const body = { period: picker.label() };
  if (scope.township) body.unit = scope.township;
  return post('/api/v1/appraisal/bulletins', body);
}

async function list() {
  const period = picker.label();
  const r = await api(`/api/v1/appraisal/bulletins?${new URLSearchParams({ period })}`);
  const items = r.items || [];
  const rows = items.map((b) => el('li', { class: 'bulletin', dataset: { id: b.id } },
    el('a', { href: `?${new URLSearchParams({ period, id: b.id })}`, dataset: { open: b.id }, text: t('ap.bulletin_of', { period: periodName(b.period), unit: b.unit ? unitName(b.unit) : t('ap.whole') }) }),
    el('span', { class: 'muted small', text: ` ${fmtTime(b.published_at)} · ${t('ap.position', { n: b.position })}` })));
  clear($('b-list')).append(
    el('h2', { text: t('ap.bulletins_of', { period: periodName(period) }) }),
    rows.length ? el('ul', { class: 'bulletins' }, rows) : el('p', { class: 'muted', text: t('ap.no_bulletins') }));
}

async function open(id) {
  const box = $('b-open');
  if (!id) {
    box.hidden = true;
    return;
  }
  const b = await api(`/api/v1/appraisal/bulletins/${encodeURIComponent(id)}`);
  const units = ((b.answer || {}).units || []).filter((u) => u.sheet !== null);
  const drift = new Map((b.drift || []).map((d) => [d.unit, d]));
  const rows = units.map((u) => {
    const d = drift.get(u.unit);
    return el('tr', { dataset: { unit: u.unit }, class: d ? 'drifted' : null },
      el('th', { scope: 'row', text: unitName(u.unit, u.unit_name) }),
      el('td', { text: sheetName(u.sheet) }),
      el('td', { class: 'num', dataset: { field: 'frozen' }, text: fmtScore(u.score) }),
      el('td', { class: d ? 'num' : 'num muted', dataset: { field: 'now' }, text: d ? fmtScore(d.now) : t('ap.unchanged') }));
  });
  const driftList = (b.drift || []).map((d) => el('li', { dataset: { unit: d.unit } },
    el('b', { text: unitName(d.unit) }), ' ',
    t('ap.drift_line', { frozen: fmtScore(d.frozen), now: fmtScore(d.now), diff: d.frozen !== null && d.now !== null ? fmtPoints(d.now - d.frozen) : '—' })));
  clear(box).append(
    el('h2', { text: t('ap.bulletin_of', { period: periodName(b.period), unit: b.unit ? unitName(b.unit) : t('ap.whole') }) }),
    el('p', { class: 'muted small' }, t('ap.published', { at: fmtTime(b.published_at), actor: b.actor || '' }), ' · ',
      t('ap.position', { n: b.position }), ' · ', el('code', { class: 'hash', title: b.position_hash, text: (b.position_hash || '').slice(0, 16) })),
    el('section', { class: 'drift', id: 'drift' },
      el('h3', { text: t('ap.drift') }),
      driftList.length ? el('ul', {}, driftList) : el('p', { class: 'muted', text: t('ap.no_drift') })),
    el('div', { class: 'table-wrap' }, el('table', { class: 'figures', id: 'frozen' },
      el('thead', {}, el('tr', {}, ['ap.col.unit', 'ap.col.sheet', 'ap.col.frozen', 'ap.col.now'].map((k) => el('th', { text: t(k) })))),
      el('tbody', {}, rows))));
  box.hidden = false;
}

async function load() {
  $('page-error').hidden = true;
  document.body.dataset.loaded = 'false';
  await Promise.all([list(), open(queryValue('id'))]);
  document.body.dataset.loaded = 'true';
}

run(async () => {
  me = await startPage('appraisal');
  scope = scopeOf(me);
  picker = periodPicker(() => {
    setQuery({ id: '' });
    load().catch(showError);
  });
  if (scope.write) {
    $('b-publish-box').hidden = false;
    $('b-publish').addEventListener('click', async (ev) => {
      ev.target.disabled = true;
      try {
        const b = await publish();
        notify(t('ap.published_ok'), 'ok');
        setQuery({ id: b.id });
        await load();
      } catch (e) {
        notify(errorText(e), 'error');
      } finally {
        ev.target.disabled = false;
      }
    });
  }
  $('b-list').addEventListener('click', (ev) => {
    const a = ev.target.closest('a[data-open]');
    if (!a) return;
    ev.preventDefault();
    setQuery({ id: a.dataset.open });
    open(a.dataset.open).then(() => $('b-open').scrollIntoView({ block: 'start' })).catch(showError);
  });
  await load();
});
