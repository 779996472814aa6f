// The desk's table view (issue 22, point 5): one row per ticket, sortable by any
// column (in the page, over the tickets loaded), with the SLA, a box to pick the
// ticket for bulk dispatch, and the actions of the row the keyboard or a click is on
// shown under the table.

import { categoryName, clear, el, fmtTime, stateBadge, t, unitName } from './common.js';
import { slaInfo } from './desk-sla.js';

const SORT_KEY = 'yw.desk.table_sort';

// The columns: their key, label and the value they sort by.
const COLUMNS = [
  { key: 'number', label: 'desk.col.number', value: (tk) => tk.number },
  { key: 'title', label: 'desk.col.title', value: (tk) => tk.title },
  { key: 'category', label: 'desk.col.category', value: (tk) => categoryName(tk.category) },
  { key: 'state', label: 'desk.col.state', value: (tk) => tk.state },
  { key: 'unit', label: 'desk.col.unit', value: (tk) => (tk.unit ? unitName(tk.unit) : '') },
  { key: 'sla', label: 'desk.col.sla', value: (tk) => { const s = slaInfo(tk); return s ? s.ms : Infinity; } },
  { key: 'created', label: 'desk.col.created', value: (tk) => tk.created_at },
];

function sortState() {
  try {
    const s = JSON.parse(localStorage.getItem(SORT_KEY) || 'null');
    if (s && COLUMNS.some((c) => c.key === s.key)) return s;
  } catch (e) {
    // A damaged entry falls back to the service's order.
  }
  return { key: null, dir: 1 };
}

function compare(a, b) {
  if (a === b) return 0;
  if (typeof a === 'number' && typeof b === 'number') return a < b ? -1 : 1;
  return String(a).localeCompare(String(b), 'zh-CN');
}

// Renders the rows of `list` into `box`. `opts`: me, selected, current, canPick,
// onToggle(id, on), onCurrent(id), actionsFor(ticket, box).
export function renderTable(box, list, opts) {
  const sort = sortState();
  let rows = list;
  if (sort.key) {
    const col = COLUMNS.find((c) => c.key === sort.key);
    rows = [...list].sort((x, y) => sort.dir * compare(col.value(x), col.value(y)));
  }
  const head = el('tr', {}, el('th', { class: 'pick-col' }, el('span', { class: 'sr-only', text: t('desk.col.pick') })),
    COLUMNS.map((c) => {
      const on = sort.key === c.key;
      return el('th', { 'aria-sort': on ? (sort.dir > 0 ? 'ascending' : 'descending') : 'none' },
        el('button', {
          type: 'button', class: 'sort', dataset: { sort: c.key },
          text: `${t(c.label)}${on ? (sort.dir > 0 ? ' ▲' : ' ▼') : ''}`,
          onclick: () => {
            const dir = on ? -sort.dir : 1;
            localStorage.setItem(SORT_KEY, JSON.stringify({ key: c.key, dir }));
            box.dispatchEvent(new CustomEvent('resort', { bubbles: true }));
          },
        }));
    }));
  const body = el('tbody');
  for (const tk of rows) {
    const s = slaInfo(tk);
    const pickBox = opts.canPick(tk) ? el('input', {
      type: 'checkbox', class: 'pick', 'aria-label': t('desk.pick', { number: tk.number }), checked: opts.selected.has(tk.id),
      onchange: (e) => opts.onToggle(tk.id, e.target.checked),
    }) : null;
    body.append(el('tr', {
      class: opts.current === tk.id ? 'current' : null, dataset: { id: tk.id, number: tk.number, state: tk.state },
      onclick: (e) => { if (!e.target.closest('a, input, button')) opts.onCurrent(tk.id, true); },
    },
    el('td', { class: 'pick-col' }, pickBox),
    el('td', {}, el('a', { href: `/tickets/${tk.id}`, class: 'number', text: tk.number })),
    el('td', { class: 'title-cell', text: tk.title }),
    el('td', { text: categoryName(tk.category) }),
    el('td', {}, stateBadge(tk)),
    el('td', { text: tk.unit ? unitName(tk.unit) : '—' }),
    el('td', {}, s ? el('span', { class: `sla sla-${s.level}`, dataset: { sla: s.level }, text: s.text }) : '—'),
    el('td', { text: fmtTime(tk.created_at) })));
  }
  if (!rows.length) body.append(el('tr', {}, el('td', { colspan: COLUMNS.length + 1, class: 'empty', text: t('desk.empty') })));
  box.append(el('div', { class: 'table-wrap' },
    el('table', { class: 'figures desk-table' }, el('thead', {}, head), body)));
  const cur = rows.find((x) => x.id === opts.current);
  if (cur) {
    const detail = el('div', { class: 'card table-detail', id: 'table-detail', dataset: { id: cur.id } },
      el('p', {}, el('a', { href: `/tickets/${cur.id}`, class: 'number', text: cur.number }), ` ${cur.title}`));
    const actions = el('div', { class: 'actions' });
    opts.actionsFor(cur, actions);
    detail.append(actions);
    box.append(detail);
  }
}
