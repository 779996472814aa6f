// Bulk dispatch on the desk (issue 22, point 5): the tickets picked in the list go
// to one unit, each by its own assign command with its own Idempotency-Key (and its
// own If-Match), one after the other; each ticket's result is listed, so a partial
// failure says which tickets went and which did not, and why.

import { clear, command, el, errorText, holder, notify, t, unit, unitName } from './common.js';

let results = []; // [{ number, ok, text }] of the last run
let chosen = ''; // the unit chosen, kept while live updates redraw the bar

// The units a centre can dispatch every picked ticket to.
function targets(me, picked) {
  const centres = new Set(picked.map((tk) => (me.role === 'admin' ? holder(tk) : me.unit)));
  let out = null;
  for (const c of centres) {
    const list = (unit(c) || {}).dispatch_targets || [];
    out = out === null ? list : out.filter((x) => list.includes(x));
  }
  return out || [];
}

// Renders the bar into `box`. `opts`: me, selected (Set of ids), tickets (Map),
// onDone(updated tickets), onClear().
export function renderBulk(box, opts) {
  clear(box);
  const picked = [...opts.selected].map((id) => opts.tickets.get(id)).filter(Boolean);
  if (results.length) {
    const failed = results.filter((r) => !r.ok).length;
    box.append(el('div', { class: `bulk-results card${failed ? ' partial' : ''}`, role: 'status' },
      el('p', { class: 'bulk-summary', text: t('desk.bulk.summary', { ok: results.length - failed, failed }) }),
      el('ul', { class: 'bulk-list' }, results.map((r) => el('li', {
        class: r.ok ? 'ok' : 'failed', dataset: { number: r.number, ok: String(r.ok) },
      }, el('strong', { text: r.number }), ` ${r.text}`))),
      el('button', { type: 'button', class: 'btn ghost small', text: t('desk.bulk.dismiss'), onclick: () => { results = []; renderBulk(box, opts); } })));
  }
  box.hidden = !picked.length && !results.length;
  if (!picked.length) return;
  const choices = targets(opts.me, picked);
  const select = el('select', { name: 'unit', id: 'bulk-unit', required: true },
    el('option', { value: '', text: t('desk.bulk.choose') }),
    choices.map((code) => el('option', { value: code, text: unitName(code), selected: code === chosen })));
  select.addEventListener('change', () => { chosen = select.value; });
  const go = el('button', { type: 'submit', class: 'btn primary', id: 'bulk-go', text: t('desk.bulk.go', { n: picked.length }) });
  const form = el('form', { class: 'bulk-bar card', id: 'bulk-form' },
    el('span', { class: 'bulk-count', text: t('desk.bulk.picked', { n: picked.length }) }),
    el('label', { class: 'field inline' }, el('span', { text: t('act.field.unit') }), select),
    go,
    el('button', { type: 'button', class: 'btn ghost', text: t('desk.bulk.clear'), onclick: opts.onClear }));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    if (!select.value) {
      select.focus();
      return;
    }
    go.disabled = true;
    const to = select.value;
    const updated = [];
    results = [];
    for (const tk of picked) {
      go.textContent = t('desk.bulk.sending', { n: results.length + 1, total: picked.length });
      try {
        // One command per ticket, each with its own key (command() makes it).
        const done = await command(tk, 'assign', { unit: to });
        updated.push(done);
        results.push({ number: tk.number, ok: true, text: t('desk.bulk.ok', { unit: unitName(to) }) });
      } catch (e) {
        results.push({ number: tk.number, ok: false, text: errorText(e) });
      }
    }
    const failed = results.filter((r) => !r.ok).length;
    notify(t('desk.bulk.summary', { ok: results.length - failed, failed }), failed ? 'error' : 'ok');
    opts.onDone(updated);
  });
  box.append(form);
}
