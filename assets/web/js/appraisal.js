// The appraisal page (/appraisal): for a period, every unit's score; for one unit its
// sheet section by section, the computed items with the tickets behind them, the
// entered items with their entries (withdrawn ones kept, struck through), a form to
// enter an item, and for a department the townships' yearly evaluations. The year's
// closing (报送) per township sits above.

import {
  api, clear, el, errorText, lang, notify, run, startPage, subtree, t, unit, unitList, unitName, fmtTime,
} from './common.js';
import {
  fmtNumber, fmtPoints, fmtScore, loadSheets, post, periodContains, periodKind, periodName, periodPicker, queryValue,
  scopeOf, setQuery, sheetName, ticketLink, titled, townshipOf,
} from './appraisal-common.js';
import { evaluationCard, gradeWordText } from './appraisal-department.js';

const $ = (id) => document.getElementById(id);
let me;
let scope;
let sheets;
let picker;

function showError(e) {
  $('page-error').textContent = errorText(e);
  $('page-error').hidden = false;
}

// ---- the year's closing (报送)

// The townships whose year (of the period shown) is submitted: their entries are closed.
let closed = new Set();

async function loadYear(year) {
  const box = $('ap-year');
  closed = new Set();
  if (!['appraiser', 'admin'].includes(me.role)) {
    box.hidden = true;
    return;
  }
  const r = await api(`/api/v1/appraisal/submissions?${new URLSearchParams({ year })}`);
  const items = r.items || [];
  for (const x of items) if (isSubmitted(x)) closed.add(x.township);
  const open = (tw) => {
    const s = items.filter((x) => x.township === tw);
    return !s.length || !s.some((x) => isSubmitted(x));
  };
  clear(box).append(el('h2', { text: t('ap.year_title', { year }) }));
  const townships = scope.township ? [scope.township] : unitList().filter((u) => u.kind === 'township').map((u) => u.code);
  const list = el('ul', { class: 'submissions' });
  for (const tw of townships) {
    const s = items.find((x) => x.township === tw && isSubmitted(x));
    const li = el('li', { dataset: { township: tw, state: s ? 'submitted' : 'open' } },
      el('span', { class: 'sub-name', text: unitName(tw) }),
      el('span', { class: `badge ${s ? 'state-verified' : 'state-accepted'}`, text: s ? t('ap.submitted') : t('ap.not_submitted') }),
      s ? el('span', { class: 'muted small', text: ` ${fmtTime(s.submitted_at || s.at)} ${s.actor || ''}` }) : null);
    // A township closes its own year (49号 四(三)); the district reopens it.
    if (!s && tw === scope.township) {
      // Closing is final for the township (only the district reopens it): asked twice.
      const ask = el('button', { type: 'button', class: 'btn small primary', dataset: { submit: tw }, text: t('ap.submit_year', { year }) });
      const confirm = el('span', { class: 'reason-form', hidden: true },
        el('span', { class: 'small warn-text', text: t('ap.submit_confirm', { year }) }),
        el('button', {
          type: 'button', class: 'btn small primary', dataset: { confirm: 'submit' }, text: t('ap.submit_year', { year }),
          onclick: async (ev) => {
            ev.target.disabled = true;
            try {
              await post('/api/v1/appraisal/submissions', { township: tw, year: Number(year) });
              notify(t('ap.submitted_ok', { township: unitName(tw), year }), 'ok');
              await load();
            } catch (e) {
              ev.target.disabled = false;
              notify(errorText(e), 'error');
            }
          },
        }),
        el('button', { type: 'button', class: 'btn small ghost', text: t('act.cancel'), onclick: () => { confirm.hidden = true; ask.hidden = false; } }));
      ask.addEventListener('click', () => { ask.hidden = true; confirm.hidden = false; });
      li.append(ask, confirm);
    }
    if (s && scope.district) {
      li.append(reasonButton(t('ap.reopen'), 'reopen', async (reason) => {
        await post('/api/v1/appraisal/submissions/reopen', { township: tw, year: Number(year), reason });
        notify(t('ap.reopened_ok', { township: unitName(tw), year }), 'ok');
        await load();
      }));
    }
    list.append(li);
  }
  box.append(list);
  if (scope.township && !open(scope.township)) box.append(el('p', { class: 'muted small', text: t('ap.year_closed_hint') }));
  box.hidden = false;
}

function isSubmitted(x) {
  if (typeof x.submitted === 'boolean') return x.submitted;
  if (x.state) return x.state === 'submitted';
  return !x.reopened;
}

// A button that asks for a reason in a small inline form before acting.
export function reasonButton(label, kind, act) {
  const box = el('span', { class: 'reason-box' });
  const button = el('button', {
    type: 'button', class: 'btn small secondary', dataset: { ask: kind }, text: label,
    onclick: () => {
      button.hidden = true;
      const input = el('input', { type: 'text', name: 'reason', required: true, placeholder: t('ap.reason') });
      const ok = el('button', { type: 'submit', class: 'btn small secondary', dataset: { confirm: kind }, text: label });
      const status = el('span', { class: 'form-status small', role: 'status' });
      const form = el('form', { class: 'reason-form' }, input, ok,
        el('button', {
          type: 'button', class: 'btn small ghost', text: t('act.cancel'),
          onclick: () => { form.remove(); button.hidden = false; },
        }), status);
      form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        ok.disabled = true;
        try {
          await act(input.value.trim());
        } catch (e) {
          status.textContent = errorText(e);
          status.classList.add('error');
          ok.disabled = false;
        }
      });
      box.append(form);
      input.focus();
    },
  });
  box.append(button);
  return box;
}

// ---- the overview: every unit's score

function scoreCell(u) {
  return el('td', { class: 'num score-cell', dataset: { field: 'score' }, text: fmtScore(u.score) });
}

// Each unit's rank within its sheet, as the ranking answers it (district-wide,
// ties sharing a rank), one call per sheet on the page; a sheet whose ranking cannot
// be read shows no ranks.
async function ranksOf(period, units) {
  const kinds = [...new Set(units.map((u) => u.sheet))];
  const ranks = new Map();
  await Promise.all(kinds.map(async (kind) => {
    try {
      const r = await api(`/api/v1/appraisal/ranking?${new URLSearchParams({ period, kind })}`);
      for (const x of r.items || []) ranks.set(x.unit, x.rank);
    } catch (e) {
      console.warn('ranking', kind, e);
    }
  }));
  return ranks;
}

function overview(a, ranks) {
  const withSheet = a.units.filter((u) => u.sheet);
  const without = a.units.filter((u) => !u.sheet);
  const rows = withSheet.map((u) => el('tr', { dataset: { unit: u.unit } },
    el('td', { class: 'num rank', dataset: { field: 'rank' }, text: ranks.has(u.unit) ? String(ranks.get(u.unit)) : '—' }),
    el('th', { scope: 'row' }, el('a', { href: `?${new URLSearchParams({ period: a.period, unit: u.unit })}`, dataset: { open: u.unit }, text: unitName(u.unit, u.unit_name) })),
    el('td', { class: 'sheet-cell', text: sheetName(u.sheet) }),
    scoreCell(u),
    el('td', { class: u.bonus ? 'num' : 'num none', dataset: { field: 'bonus', label: t('ap.col.bonus') }, text: u.bonus ? fmtPoints(u.bonus) : '—' })));
  const card = el('section', { class: 'card' },
    el('h2', { text: t('ap.scores_of', { period: periodName(a.period) }) }),
    el('div', { class: 'table-wrap' }, el('table', { class: 'figures scores', id: 'ap-scores' },
      el('thead', {}, el('tr', {}, ['ap.col.rank', 'ap.col.unit', 'ap.col.sheet', 'ap.col.score', 'ap.col.bonus'].map((k) => el('th', { text: t(k) })))),
      el('tbody', {}, rows))));
  if (!rows.length) card.append(el('p', { class: 'muted', text: t('ap.no_units') }));
  if (without.length) {
    card.append(el('p', { class: 'muted small no-sheet-list' }, t('ap.no_sheet_units'), ' ',
      without.map((u) => unitName(u.unit, u.unit_name)).join(lang() === 'en' ? ', ' : '、')));
  }
  return card;
}

// ---- one unit

function formula(u, period) {
  const parts = [];
  const year = periodKind(period) === 'year';
  if (u.kind === 'department' || u.sheet === 'department') {
    parts.push(t('ap.formula.department', { n: (u.evaluations || []).length }));
  } else if (year && u.quarters) {
    const qs = u.quarters.map((q) => (typeof q === 'object' && q !== null ? q.score : q)).filter((x) => x !== null && x !== undefined);
    const mean = qs.length ? qs.reduce((s, x) => s + Number(x), 0) / qs.length : null;
    parts.push(t('ap.formula.year', {
      q: fmtScore(mean), y: fmtScore(u.year_end_score), b: fmtPoints(u.bonus || 0), s: fmtScore(u.score),
    }));
  } else if (u.score !== null && u.score !== undefined) {
    const sum = (u.deductions || []).filter((d) => !isBonusSection(u, d.section)).reduce((s, d) => s + Number(d.points), 0);
    parts.push(t('ap.formula.period', { base: fmtNumber(u.base), d: fmtPoints(sum), s: fmtScore(u.score) }));
    if (u.bonus) parts.push(t('ap.formula.bonus_apart', { b: fmtPoints(u.bonus) }));
  }
  return parts;
}

function isBonusSection(u, name) {
  const sheet = sheets.get(u.sheet);
  const sec = sheet && sheet.sections.find((s) => s.name === name);
  return !!(sec && sec.bonus);
}

function headCard(u, period) {
  const facts = el('dl', { class: 'facts ap-facts' });
  const fact = (k, v, field) => facts.append(el('dt', { text: t(k) }), el('dd', { dataset: { field }, text: v }));
  fact('ap.col.sheet', sheetName(u.sheet), 'sheet');
  if (u.sheet) {
    fact('ap.base', fmtNumber(u.base), 'base');
    if (u.weight !== undefined && u.weight !== null) fact('ap.weight', `${Math.round(u.weight * 100)}%`, 'weight');
    const sheet = sheets.get(u.sheet);
    if (sheet && sheet.sections.some((s) => s.bonus)) fact('ap.col.bonus', fmtPoints(u.bonus || 0), 'bonus');
  }
  if (periodKind(period) === 'year' && u.quarters) {
    const qs = u.quarters.map((q, i) => (typeof q === 'object' && q !== null ? `${q.period || `Q${i + 1}`} ${fmtScore(q.score)}` : `Q${i + 1} ${fmtScore(q)}`));
    fact('ap.quarters', qs.join(' · ') || '—', 'quarters');
    fact('ap.year_end', fmtScore(u.year_end_score), 'year_end_score');
  }
  return el('section', { class: 'card ap-head', id: 'ap-unit-detail', dataset: { unit: u.unit } },
    el('p', { class: 'back' }, el('a', { href: `?${new URLSearchParams({ period })}`, id: 'ap-back', text: t('ap.back') })),
    el('div', { class: 'ap-title' },
      el('h2', { text: unitName(u.unit, u.unit_name) }),
      el('span', { class: 'big-score', id: 'ap-score', text: fmtScore(u.score) })),
    el('p', { class: 'muted small', text: periodName(period) }),
    facts,
    formula(u, period).map((f) => el('p', { class: 'formula small', text: f })));
}

function entryLine(e, u, onChange) {
  const how = e.points !== undefined && e.points !== null ? fmtPoints(e.points) : t('ap.times', { n: e.count });
  const li = el('li', { class: `entry${e.withdrawn ? ' withdrawn' : ''}`, dataset: { entry: e.id } },
    el('span', { class: 'entry-how', text: how }),
    el('span', { class: 'entry-note', text: e.note || '' }),
    el('span', { class: 'muted small' },
      `${periodName(e.period)} · ${e.actor || ''} ${fmtTime(e.at || e.recorded_at)}`),
    (e.tickets || []).length ? el('span', { class: 'evidence' }, e.tickets.map((id) => ticketLink(id))) : null);
  if (e.withdrawn) {
    li.append(el('span', { class: 'small withdrawn-why', text: t('ap.withdrawn_because', { reason: e.withdrawn.reason || '', actor: e.withdrawn.actor || '' }) }));
  } else if (canWrite(u, e.township)) {
    li.append(reasonButton(t('ap.withdraw'), 'withdraw', async (reason) => {
      await post(`/api/v1/appraisal/entries/${e.id}/withdraw`, { reason });
      notify(t('ap.withdrawn_ok'), 'ok');
      await onChange();
    }));
  }
  return li;
}

// Whether the viewer may enter (or withdraw) items of unit `u` (of `township`).
export function canWrite(u, township) {
  if (!scope.write) return false;
  if (scope.district) return true;
  const tw = township || townshipOf(u.unit);
  return tw === scope.township || (u.kind === 'department' && township === undefined);
}

function sectionCards(u, entries, period, onChange) {
  const sheet = sheets.get(u.sheet);
  const out = [];
  const byItem = new Map();
  for (const d of u.deductions || []) byItem.set(`${d.section}/${d.rule}`, d);
  // The department's evaluation and its ticket reference have cards of their own.
  const sections = sheet ? sheet.sections.filter((s) => !s.reference && !s.items.every((i) => i.code === 'township_evaluation')) : [];
  const known = new Set();
  for (const sec of sections) {
    const rows = [];
    let total = 0;
    let group = null;
    for (const item of sec.items) {
      if (item.group && item.group !== group) {
        group = item.group;
        const g = sec.groups.find((x) => x.name === group);
        if (g) rows.push(el('li', { class: 'group-head small', dataset: { group: g.name } }, `${g.name} ${g.title}`));
      }
      const d = byItem.get(`${sec.name}/${item.code}`);
      known.add(`${sec.name}/${item.code}`);
      if (d) total += Number(d.points);
      const mine = entries.filter((e) => e.item === item.code && periodContains(period, e.period));
      rows.push(itemRow(item, d, mine, u, onChange));
    }
    out.push(el('section', { class: 'card ap-section', dataset: { section: sec.name } },
      el('div', { class: 'section-head' },
        el('h3', {}, titled(sec.name, sec.title)),
        el('span', { class: 'section-points' },
          sec.bonus || sec.points === undefined ? t('ap.bonus_section') : t('ap.full_points', { n: fmtNumber(sec.points) }),
          ' · ', el('b', { class: signClass(total), dataset: { field: 'section_total' }, text: fmtPoints(total) }))),
      sec.source ? el('p', { class: 'muted small', text: sec.source }) : null,
      el('ul', { class: 'items' }, rows)));
  }
  const extra = (u.deductions || []).filter((d) => !known.has(`${d.section}/${d.rule}`));
  if (extra.length) {
    out.push(el('section', { class: 'card ap-section', dataset: { section: 'other' } },
      el('h3', { text: t('ap.other_items') }),
      el('ul', { class: 'items' }, extra.map((d) => itemRow({ code: d.rule, title: d.title, manual: d.manual ? {} : null }, d, [], u, onChange)))));
  }
  return out;
}

function signClass(x) {
  if (x < 0) return 'points';
  return x > 0 ? 'plus' : 'muted';
}

function itemRow(item, d, entries, u, onChange) {
  const tickets = d ? [...new Set((d.evidence || []).filter((e) => e.ticket).map((e) => e.ticket))] : [];
  const rule = item.manual
    ? (item.manual.points_each !== undefined ? t('ap.each', { p: fmtPoints(item.manual.points_each) }) : t('ap.range', { min: fmtNumber(item.manual.min), max: fmtNumber(item.manual.max) }))
    : t('ap.computed');
  return el('li', { class: `item${d && d.points ? ' hit' : ''}`, dataset: { item: item.code } },
    el('div', { class: 'item-line' },
      el('div', { class: 'item-title' }, titled(item.code, item.title),
        el('span', { class: `badge ${item.manual ? 'manual' : 'computed'}`, text: rule }),
        item.cap ? el('span', { class: 'badge', text: t('ap.cap', { n: fmtNumber(item.cap) }) }) : null,
        d && d.capped ? el('span', { class: 'badge warn', title: t('ap.uncapped', { p: fmtPoints(d.uncapped_points) }), text: t('dash.capped') }) : null),
      el('span', { class: 'item-count muted small', text: d && d.count ? `×${d.count}` : '' }),
      el('span', { class: `item-points ${signClass(d ? d.points : 0)}`, dataset: { field: 'points' }, text: d ? fmtPoints(d.points) : '—' })),
    d && d.rate !== undefined && d.rate !== null ? el('p', { class: 'muted small', text: t('ap.rate', { r: `${(d.rate * 100).toFixed(1)}%` }) }) : null,
    tickets.length ? el('div', { class: 'evidence' }, el('span', { class: 'muted small', text: t('dash.evidence') }), tickets.map((id) => ticketLink(id))) : null,
    entries.length ? el('ul', { class: 'entries' }, entries.map((e) => entryLine(e, u, onChange))) : null);
}

// The form to enter an item of the unit's sheet (its manual items but the
// department evaluation, which has its own).
function entryForm(u, period, onChange) {
  const sheet = sheets.get(u.sheet);
  if (!sheet || !canWrite(u)) return null;
  if (closed.has(townshipOf(u.unit))) {
    return el('p', { class: 'card muted', id: 'entry-closed', text: t('ap.year_closed_form', { year: period.slice(0, 4) }) });
  }
  const year = periodKind(period) === 'year';
  const groups = sheet.sections
    .map((s) => [s, s.items.filter((i) => i.manual && i.code !== 'township_evaluation' && (year || !i.manual.yearOnly))])
    .filter(([, is]) => is.length);
  if (!groups.length) return null;
  const items = new Map(groups.flatMap(([, is]) => is.map((i) => [i.code, i])));
  const select = el('select', { id: 'e-item', name: 'item', required: true },
    groups.map(([s, is]) => el('optgroup', { label: s.title }, is.map((i) => el('option', { value: i.code, text: i.title })))));
  const count = el('input', { id: 'e-count', name: 'count', type: 'number', min: 1, step: 1, value: 1, required: true });
  const points = el('input', { id: 'e-points', name: 'points', type: 'number', step: '0.01' });
  const countField = el('label', { class: 'field' }, el('span', { text: t('ap.count') }), count);
  const pointsLabel = el('span', { text: t('ap.points') });
  const pointsField = el('label', { class: 'field' }, pointsLabel, points);
  const hint = el('p', { class: 'muted small', id: 'e-hint' });
  const sync = () => {
    const it = items.get(select.value);
    const free = it && it.manual && it.manual.points_each === undefined;
    countField.hidden = free;
    count.required = !free;
    pointsField.hidden = !free;
    points.required = free;
    if (free) {
      points.min = it.manual.min;
      points.max = it.manual.max;
      pointsLabel.textContent = t('ap.points_range', { min: fmtNumber(it.manual.min), max: fmtNumber(it.manual.max) });
    }
    hint.textContent = it ? `${it.title}${free ? '' : ` · ${t('ap.each', { p: fmtPoints(it.manual.points_each) })}`}` : '';
  };
  select.addEventListener('change', sync);
  const note = el('textarea', { id: 'e-note', name: 'note', rows: 2, required: true });
  const tickets = el('input', { id: 'e-tickets', name: 'tickets', type: 'text', placeholder: t('ap.tickets_hint') });
  const status = el('p', { class: 'form-status', role: 'status' });
  const submit = el('button', { type: 'submit', class: 'btn primary', id: 'e-submit', text: t('ap.enter') });
  const form = el('form', { class: 'card stack entry-form', id: 'entry-form' },
    el('h3', { text: t('ap.enter_title', { period: periodName(period) }) }),
    el('label', { class: 'field' }, el('span', { text: t('ap.item') }), select), hint,
    el('div', { class: 'row two' }, countField, pointsField),
    el('label', { class: 'field' }, el('span', { text: t('ap.note') }), note),
    el('label', { class: 'field' }, el('span', { text: t('ap.tickets') }), tickets),
    el('div', { class: 'row' }, submit), status);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const it = items.get(select.value);
    const free = it.manual.points_each === undefined;
    const body = { unit: u.unit, period, item: it.code, note: note.value.trim() };
    if (free) body.points = Number(points.value);
    else body.count = Number(count.value);
    const ids = tickets.value.split(/[\s,，、]+/).map((s) => s.trim()).filter(Boolean);
    if (ids.length) body.tickets = ids;
    submit.disabled = true;
    status.textContent = t('act.sending');
    status.classList.remove('error');
    try {
      await post('/api/v1/appraisal/entries', body);
      notify(t('ap.entered_ok'), 'ok');
      await onChange();
    } catch (e) {
      status.textContent = errorText(e);
      status.classList.add('error');
      submit.disabled = false;
    }
  });
  sync();
  return form;
}

async function showUnit(code, period) {
  const q = new URLSearchParams({ period, unit: code });
  const [a, entries] = await Promise.all([
    api(`/api/v1/appraisal?${q}`),
    api(`/api/v1/appraisal/entries?${new URLSearchParams({ unit: code })}`).then((r) => r.items || []).catch(() => []),
  ]);
  const u = a.units.find((x) => x.unit === code) || a.units[0];
  const body = clear($('ap-body'));
  if (!u) {
    body.append(el('p', { class: 'card muted', text: t('ap.no_units') }));
    return;
  }
  const reload = () => showUnit(code, period).catch(showError);
  body.append(headCard(u, period));
  if (!u.sheet) {
    body.append(el('p', { class: 'card muted', text: t('ap.no_sheet_hint') }));
    return;
  }
  if (u.kind === 'department' || u.sheet === 'department') {
    const shut = !!scope.township && closed.has(scope.township);
    body.append(evaluationCard(u, period, entries, { me, scope, post, reasonButton, reload, entryLine, closed: shut }));
  }
  const form = entryForm(u, period, reload);
  if (form) body.append(form);
  body.append(...sectionCards(u, entries, period, reload));
}

// A township appraiser's year: its evaluation of each district department (三(一)),
// given or still to give, each a link to the department.
async function evaluationsToGive(period) {
  const q = new URLSearchParams({ township: scope.township, period });
  const r = await api(`/api/v1/appraisal/entries?${q}`);
  const given = new Map((r.items || [])
    .filter((e) => e.item === 'township_evaluation' && !e.withdrawn && e.period === period)
    .map((e) => [e.unit, e]));
  const departments = unitList().filter((u) => u.kind === 'department');
  const rows = departments.map((u) => {
    const e = given.get(u.code);
    return el('tr', { dataset: { unit: u.code } },
      el('th', { scope: 'row' }, el('a', { href: `?${new URLSearchParams({ period, unit: u.code })}`, dataset: { open: u.code }, text: u.name })),
      el('td', { class: 'num', dataset: { field: 'points' }, text: e ? fmtNumber(e.points) : '' }),
      el('td', { class: 'left' }, e ? gradeWordText(e.grade_word) : el('span', { class: 'badge warn', text: t('ap.not_given') })));
  });
  return el('section', { class: 'card', id: 'to-evaluate' },
    el('h2', { text: t('ap.our_evaluations', { year: period, n: given.size, total: departments.length }) }),
    el('div', { class: 'table-wrap' }, el('table', { class: 'figures evals' },
      el('thead', {}, el('tr', {}, ['ap.col.unit', 'ap.points', 'ap.grade_word'].map((k) => el('th', { text: t(k) })))),
      el('tbody', {}, rows))));
}

async function showAll(period) {
  const a = await api(`/api/v1/appraisal?${new URLSearchParams({ period })}`);
  const ranks = await ranksOf(period, a.units.filter((u) => u.sheet));
  const body = clear($('ap-body'));
  body.append(overview(a, ranks));
  if (scope.township && periodKind(period) === 'year') body.append(await evaluationsToGive(period));
}

async function load() {
  $('page-error').hidden = true;
  const period = picker.label();
  const code = $('ap-unit').value;
  document.body.dataset.loaded = 'false';
  await loadYear(period.slice(0, 4));
  await (code ? showUnit(code, period) : showAll(period));
  document.body.dataset.loaded = 'true';
}

run(async () => {
  me = await startPage('appraisal');
  scope = scopeOf(me);
  sheets = await loadSheets();
  const select = $('ap-unit');
  const seen = new Set();
  const add = (code) => {
    const u = unit(code);
    if (!u || seen.has(code) || !['department', 'agency'].includes(u.kind)) return;
    seen.add(code);
    select.append(el('option', { value: code, text: unitName(code) }));
  };
  for (const code of subtree(me.unit)) add(code);
  if (me.role === 'appraiser') for (const u of unitList()) if (u.kind === 'department') add(u.code);
  const chosen = queryValue('unit');
  if (chosen && !seen.has(chosen) && unit(chosen)) {
    seen.add(chosen);
    select.append(el('option', { value: chosen, text: unitName(chosen) }));
  }
  select.value = chosen;
  picker = periodPicker(() => load().catch(showError));
  select.addEventListener('change', () => {
    setQuery({ unit: select.value });
    load().catch(showError);
  });
  // The overview's unit links open the unit here, without a reload.
  $('ap-body').addEventListener('click', (ev) => {
    const a = ev.target.closest('a[data-open], a#ap-back');
    if (!a) return;
    ev.preventDefault();
    const code = a.dataset.open || '';
    select.value = code;
    setQuery({ unit: code });
    load().catch(showError);
  });
  await load();
});
