// The ranking (/appraisal/ranking): the units of one kind for a period, best first,
// ties sharing a rank; for a year, each department's grade (一至四等, 44号) with its
// performance coefficient and yellow card. A district appraiser records grades here.

import {
  api, clear, el, errorText, notify, run, startPage, t, unitName,
} from './common.js';
import {
  fmtNumber, fmtScore, periodKind, post, periodName, periodPicker, queryValue, scopeOf, setQuery,
} from './appraisal-common.js';

const $ = (id) => document.getElementById(id);
let me;
let scope;
let picker;

function showError(e) {
  $('page-error').textContent = errorText(e);
  $('page-error').hidden = false;
}

function gradeForm(item, year) {
  const box = el('div', { class: 'grade-box' });
  const open = el('button', {
    type: 'button', class: 'btn small ghost', dataset: { grade: item.unit }, text: t('ap.record_grade'),
    onclick: () => {
      open.hidden = true;
      const grade = el('select', { name: 'grade', required: true },
        [1, 2, 3, 4].map((g) => el('option', { value: g, selected: item.grade === g, text: t(`ap.grade.${g}`) })));
      const note = el('input', { type: 'text', name: 'note', required: true, placeholder: t('ap.note') });
      const status = el('span', { class: 'form-status small', role: 'status' });
      const ok = el('button', { type: 'submit', class: 'btn small primary', text: t('ap.save') });
      const f = el('form', { class: 'reason-form' }, grade, note, ok,
        el('button', { type: 'button', class: 'btn small ghost', text: t('act.cancel'), onclick: () => { f.remove(); open.hidden = false; } }),
        status);
      f.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        ok.disabled = true;
        try {
          await post('/api/v1/appraisal/grades', { unit: item.unit, year: Number(year), grade: Number(grade.value), note: note.value.trim() });
          notify(t('ap.grade_ok', { unit: unitName(item.unit, item.unit_name) }), 'ok');
          await load();
        } catch (e) {
          status.textContent = errorText(e);
          status.classList.add('error');
          ok.disabled = false;
        }
      });
      box.append(f);
      note.focus();
    },
  });
  box.append(open);
  return box;
}

async function load() {
  $('page-error').hidden = true;
  document.body.dataset.loaded = 'false';
  const period = picker.label();
  const kind = $('r-kind').value;
  const r = await api(`/api/v1/appraisal/ranking?${new URLSearchParams({ period, kind })}`);
  const year = periodKind(period) === 'year';
  const grading = year && scope.district && kind === 'department';
  const rows = (r.items || []).map((x) => el('tr', { dataset: { unit: x.unit, rank: x.rank } },
    el('td', { class: 'num rank', text: String(x.rank) }),
    el('th', { scope: 'row', text: unitName(x.unit, x.unit_name) }),
    el('td', { class: 'num score-cell', dataset: { field: 'score' }, text: fmtScore(x.score) }),
    el('td', { dataset: { field: 'grade', label: t('ap.col.grade') }, text: x.grade ? t(`ap.grade.${x.grade}`) : '—' }),
    el('td', { class: 'num', dataset: { field: 'coefficient', label: t('ap.col.coefficient') }, text: x.coefficient ? fmtNumber(x.coefficient) : '—' }),
    el('td', { class: x.yellow_card ? null : 'none', dataset: { field: 'yellow_card' } },
      x.yellow_card ? el('span', { class: 'badge yellow-card', text: t('ap.yellow_card') }) : '—',
      x.yellow_cards_in_a_row && x.yellow_cards_in_a_row > 1 ? el('span', { class: 'badge overdue', text: t('ap.in_a_row', { n: x.yellow_cards_in_a_row }) }) : null),
    grading ? el('td', { class: 'grade-cell' }, gradeForm(x, period)) : null));
  const heads = ['ap.col.rank', 'ap.col.unit', 'ap.col.score', 'ap.col.grade', 'ap.col.coefficient', 'ap.col.yellow_card'];
  const box = clear($('r-body'));
  box.append(
    el('h2', { text: t('ap.ranking_of', { period: periodName(period), kind: t(`ap.sheet.${kind}`) }) }),
    rows.length
      ? el('div', { class: 'table-wrap' }, el('table', { class: 'figures ranking', id: 'ranking' },
        el('thead', {}, el('tr', {}, heads.map((k) => el('th', { text: t(k) })), grading ? el('th', { text: '' }) : null)),
        el('tbody', {}, rows)))
      : el('p', { class: 'muted', text: t('ap.no_ranking') }));
  if (year) box.append(el('p', { class: 'muted small', text: t('ap.grade_hint') }));
  document.body.dataset.loaded = 'true';
}

run(async () => {
  me = await startPage('appraisal');
  scope = scopeOf(me);
  const kind = queryValue('kind');
  if (kind) $('r-kind').value = kind;
  picker = periodPicker(() => load().catch(showError));
  $('r-kind').addEventListener('change', () => {
    setQuery({ kind: $('r-kind').value });
    load().catch(showError);
  });
  await load();
});
