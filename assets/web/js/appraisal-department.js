// A department on the appraisal page: the townships' yearly evaluations (0-30
// points, 49号 三(一)), the form a township appraiser gives its own with, and the
// department's ticket figures as reference (shown, not counted).

import { el, errorText, notify, t, unitList, unitName } from './common.js';
import { fmtNumber, fmtPoints, fmtScore, periodKind, ticketLink, titled } from './appraisal-common.js';

const GRADE_WORDS = ['好', '较好', '一般', '差'];

// An evaluation's level (the API's word, as 49号 writes it) in the reader's language.
export function gradeWordText(word) {
  const i = GRADE_WORDS.indexOf(word);
  return i < 0 ? (word || '—') : t(`ap.word.${i + 1}`);
}

function referenceList(u) {
  const ref = Array.isArray(u.reference) ? u.reference : ((u.reference || {}).deductions || []);
  if (!ref.length) return el('p', { class: 'muted small', text: t('ap.reference_none') });
  return el('ul', { class: 'items reference' }, ref.map((d) => {
    const tickets = [...new Set((d.evidence || []).filter((e) => e.ticket).map((e) => e.ticket))];
    return el('li', { class: 'item', dataset: { item: d.rule } },
      el('div', { class: 'item-line' },
        el('div', { class: 'item-title' }, titled(d.rule, d.title)),
        el('span', { class: 'item-count muted small', text: d.count ? `×${d.count}` : '' }),
        el('span', { class: 'item-points muted', text: fmtPoints(d.points) })),
      tickets.length ? el('div', { class: 'evidence' }, tickets.map((id) => ticketLink(id))) : null);
  }));
}

function form(u, period, ctx) {
  const { scope } = ctx;
  if (!scope.write) return null;
  if (periodKind(period) !== 'year') {
    return el('p', { class: 'muted small', id: 'eval-hint', text: t('ap.eval_year_only') });
  }
  if (ctx.closed) return el('p', { class: 'muted small', id: 'eval-closed', text: t('ap.year_closed_form', { year: period }) });
  // One active evaluation per township and year: a township that gave one withdraws it first.
  const given = new Set((u.evaluations || []).map((v) => v.township));
  const townships = (scope.district ? unitList().filter((x) => x.kind === 'township').map((x) => x.code) : [scope.township])
    .filter((c) => !given.has(c));
  if (!townships.length) return el('p', { class: 'muted small', id: 'eval-given', text: t('ap.eval_given') });
  const township = el('select', { id: 'v-township', name: 'township' },
    townships.map((c) => el('option', { value: c, text: unitName(c) })));
  const points = el('input', { id: 'v-points', name: 'points', type: 'number', min: 0, max: 30, step: '0.01', required: true });
  const word = el('select', { id: 'v-word', name: 'grade_word' },
    el('option', { value: '', text: '—' }), GRADE_WORDS.map((w, i) => el('option', { value: w, text: t(`ap.word.${i + 1}`) })));
  const note = el('textarea', { id: 'v-note', name: 'note', rows: 2, required: true });
  const status = el('p', { class: 'form-status', role: 'status' });
  const submit = el('button', { type: 'submit', class: 'btn primary', id: 'v-submit', text: t('ap.eval_give') });
  const f = el('form', { class: 'stack eval-form', id: 'eval-form' },
    el('h3', { text: t('ap.eval_form', { year: period }) }),
    scope.district ? el('label', { class: 'field' }, el('span', { text: t('ap.township') }), township) : null,
    el('div', { class: 'row two' },
      el('label', { class: 'field' }, el('span', { text: t('ap.points_range', { min: 0, max: 30 }) }), points),
      el('label', { class: 'field' }, el('span', { text: t('ap.grade_word') }), word)),
    el('label', { class: 'field' }, el('span', { text: t('ap.note') }), note),
    el('div', { class: 'row' }, submit), status);
  f.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = { unit: u.unit, period, item: 'township_evaluation', points: Number(points.value), note: note.value.trim() };
    if (word.value) body.grade_word = word.value;
    if (scope.district) body.township = township.value;
    submit.disabled = true;
    status.textContent = t('act.sending');
    status.classList.remove('error');
    try {
      await ctx.post('/api/v1/appraisal/entries', body);
      notify(t('ap.entered_ok'), 'ok');
      await ctx.reload();
    } catch (e) {
      status.textContent = errorText(e);
      status.classList.add('error');
      submit.disabled = false;
    }
  });
  return f;
}

export function evaluationCard(u, period, entries, ctx) {
  const evals = u.evaluations || [];
  const writable = (tw) => ctx.scope.district || tw === ctx.scope.township;
  const rows = evals.map((v) => el('tr', { dataset: { township: v.township, entry: v.entry } },
    el('th', { scope: 'row', text: unitName(v.township, v.township_name) }),
    el('td', { class: 'num', dataset: { field: 'points' }, text: fmtNumber(v.points) }),
    el('td', { class: 'left', text: v.grade_word ? gradeWordText(v.grade_word) : '—' }),
    el('td', { class: 'note-cell', text: v.note || '' }),
    el('td', { class: 'left' }, ctx.scope.write && writable(v.township)
      ? ctx.reasonButton(t('ap.withdraw'), 'withdraw', async (reason) => {
        await ctx.post(`/api/v1/appraisal/entries/${v.entry}/withdraw`, { reason });
        notify(t('ap.withdrawn_ok'), 'ok');
        await ctx.reload();
      })
      : null)));
  // Withdrawn evaluations stay in sight, struck through.
  const mine = entries.filter((e) => e.item === 'township_evaluation' && e.period === period && e.withdrawn);
  const card = el('section', { class: 'card ap-section', id: 'evaluations', dataset: { section: 'township_evaluation' } },
    el('div', { class: 'section-head' },
      el('h3', { text: t('ap.evaluations') }),
      el('span', { class: 'section-points' }, t('ap.full_points', { n: 30 }), ' · ',
        el('b', { text: t('ap.mean', { s: fmtScore(u.score) }) }))),
    el('p', { class: 'muted small', text: t('ap.eval_source') }));
  if (rows.length) {
    card.append(el('div', { class: 'table-wrap' }, el('table', { class: 'figures evals' },
      el('thead', {}, el('tr', {}, ['ap.township', 'ap.points', 'ap.grade_word', 'ap.note'].map((k) => el('th', { text: t(k) })), el('th'))),
      el('tbody', {}, rows))));
  } else {
    card.append(el('p', { class: 'muted', text: periodKind(period) === 'year' ? t('ap.no_evaluations') : t('ap.eval_year_only') }));
  }
  if (mine.length) card.append(el('ul', { class: 'entries' }, mine.map((e) => ctx.entryLine(e, u, ctx.reload))));
  const f = form(u, period, ctx);
  if (f) card.append(f);
  const ref = el('details', { class: 'reference-box', id: 'reference' },
    el('summary', { text: t('ap.reference') }),
    el('p', { class: 'muted small', text: t('ap.reference_hint') }),
    referenceList(u));
  card.append(ref);
  return card;
}
