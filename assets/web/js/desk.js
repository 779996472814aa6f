// The dispatch desk (/desk): the queue of the viewer's area with filters, the
// suggested unit and the actions of the viewer's role. New and changed tickets come
// in live over SSE.

import {
  api, atCentre, categoryList, categoryName, clear, deadlineBadge, el, errorText, fmtTime, getToken, holder,
  run, startPage, stateBadge, subtree, t, unit, unitName,
} from './common.js';
import { renderActions } from './actions.js';

const EVENT_TYPES = [
  'TicketAccepted', 'TicketAssigned', 'TicketSigned', 'TicketReturned', 'ExtensionRequested', 'ExtensionDecided',
  'TicketSupervised', 'TicketHandled', 'VerificationPassed', 'VerificationFailed', 'CitizenFeedbackRecorded',
  'TicketCommented', 'TicketClosed', 'SlaWarning', 'SlaBreached',
];

let me;
let tickets = new Map(); // id -> ticket, in list order
let fresh = new Set(); // ids that arrived live since the page opened
let nextCursor = null;

const $ = (id) => document.getElementById(id);

function filters() {
  return {
    state: $('f-state').value,
    category: $('f-category').value,
    unit: $('f-unit').value,
    overdue: $('f-overdue').checked,
    text: $('f-text').value.trim().toLowerCase(),
  };
}

// Whether the ticket belongs in the list the filters describe (the server filters
// state, unit and overdue; category and text are filtered here).
function matches(tk, f) {
  if (f.state === 'todo') {
    const mine = (tk.state === 'accepted' && holder(tk) === me.unit) || (atCentre(tk) && tk.unit === me.unit);
    if (!mine && me.role !== 'admin') return false;
    if (me.role === 'admin' && !(tk.state === 'accepted' || atCentre(tk))) return false;
  } else if (f.state && tk.state !== f.state) return false;
  if (f.unit && tk.unit !== f.unit) return false;
  if (f.overdue && !tk.overdue) return false;
  if (f.category && tk.category !== f.category) return false;
  if (f.text) {
    const hay = `${tk.number} ${tk.title} ${tk.description}`.toLowerCase();
    if (!hay.includes(f.text)) return false;
  }
  return true;
}

async function fetchQueue(cursor) {
  const f = filters();
  const q = new URLSearchParams({ limit: '100' });
  if (cursor) q.set('cursor', cursor);
  if (f.overdue) q.set('overdue', 'true');
  else if (f.state === 'todo') q.set('state', 'accepted');
  else if (f.state) q.set('state', f.state);
  if (f.unit) q.set('unit', f.unit);
  const page = await api(`/api/v1/tickets?${q}`);
  let items = page.items;
  // Hops that reached the viewer's own centre wait for it to dispatch them on.
  if (f.state === 'todo' && !f.overdue && !cursor && me.centre) {
    const hops = await api(`/api/v1/tickets?state=assigned&unit=${encodeURIComponent(me.unit)}&limit=100`);
    items = items.concat(hops.items);
  }
  return { items, next: page.next_cursor };
}

async function reload() {
  $('page-error').hidden = true;
  try {
    const { items, next } = await fetchQueue(null);
    tickets = new Map(items.map((x) => [x.id, x]));
    nextCursor = next;
    render();
  } catch (e) {
    $('page-error').textContent = errorText(e);
    $('page-error').hidden = false;
  }
}

async function loadMore() {
  if (!nextCursor) return;
  const { items, next } = await fetchQueue(nextCursor);
  for (const x of items) tickets.set(x.id, x);
  nextCursor = next;
  render();
}

function row(tk) {
  const actions = el('div', { class: 'actions' });
  renderActions(actions, tk, me, (updated) => upsert(updated, false));
  const urgent = tk.urgency !== 'normal' ? el('span', { class: `badge urgency-${tk.urgency}`, text: t(`urgency.${tk.urgency}`) }) : null;
  const sugg = tk.suggested_unit && tk.state === 'accepted'
    ? el('p', { class: 'suggested' }, el('span', { class: 'label', text: t('desk.suggested') }), unitName(tk.suggested_unit))
    : null;
  const back = tk.return_reason && tk.state === 'accepted'
    ? el('p', { class: 'meta returned' }, el('span', { class: 'label', text: t('desk.return_reason') }), tk.return_reason)
    : null;
  const withUnit = tk.unit
    ? el('p', { class: 'meta' }, el('span', { class: 'label', text: t('ticket.unit') }), unitName(tk.unit),
      tk.handler ? ` · ${t('ticket.handler')} ${tk.handler}` : '')
    : null;
  const flags = [];
  if (tk.overdue) flags.push(el('span', { class: 'badge overdue', text: t('flag.overdue') }));
  if (tk.returned) flags.push(el('span', { class: 'badge', text: t('flag.returned', { n: tk.returned }) }));
  if (tk.supervised) flags.push(el('span', { class: 'badge', text: t('flag.supervised', { n: tk.supervised }) }));
  if (tk.pending_extension_days) flags.push(el('span', { class: 'badge warn', text: t('flag.extension_pending', { n: tk.pending_extension_days }) }));
  if (fresh.has(tk.id)) flags.push(el('span', { class: 'badge new', text: t('desk.new') }));
  return el('li', { class: `ticket card${fresh.has(tk.id) ? ' fresh' : ''}`, dataset: { id: tk.id, number: tk.number, state: tk.state } },
    el('div', { class: 'ticket-head' },
      el('a', { href: `/tickets/${tk.id}`, class: 'number', text: tk.number }),
      stateBadge(tk), urgent, flags),
    el('h2', { class: 'ticket-title' }, el('a', { href: `/tickets/${tk.id}`, text: tk.title })),
    el('p', { class: 'meta' }, `${categoryName(tk.category)} · ${t(`source.${tk.source}`)} · ${fmtTime(tk.created_at)}`,
      tk.location && tk.location.address ? ` · ${tk.location.address}` : ''),
    tk.description ? el('p', { class: 'desc', text: tk.description }) : null,
    sugg, back, withUnit,
    el('div', { class: 'deadlines' },
      deadlineBadge('sign', tk.deadlines.sign, tk.deadlines.sign_due_at),
      deadlineBadge('handle', tk.deadlines.handle, tk.deadlines.handle_due_at)),
    actions);
}

function render() {
  const f = filters();
  const list = $('queue');
  clear(list);
  const shown = [...tickets.values()].filter((x) => matches(x, f));
  shown.sort((a, b) => (fresh.has(b.id) - fresh.has(a.id)) || b.created_at.localeCompare(a.created_at));
  for (const tk of shown) list.append(row(tk));
  $('count').textContent = t('desk.count', { n: shown.length });
  if (!shown.length) list.append(el('li', { class: 'empty', text: t('desk.empty') }));
  $('more').hidden = !nextCursor;
}

// Puts the ticket's current form in the list, or takes it out if it no longer
// belongs there.
function upsert(tk, live) {
  if (live && !tickets.has(tk.id) && matches(tk, filters())) fresh.add(tk.id);
  tickets.set(tk.id, tk);
  render();
}

const pending = new Map();
function refreshSoon(id) {
  clearTimeout(pending.get(id));
  pending.set(id, setTimeout(async () => {
    pending.delete(id);
    try {
      upsert(await api(`/api/v1/tickets/${id}`), true);
    } catch (e) {
      // A ticket that left the viewer's scope (403/404) leaves the list.
      tickets.delete(id);
      render();
    }
  }, 150));
}

let source = null;
function connectLive() {
  // EventSource cannot send headers: the stream route alone takes the token as
  // ?access_token= (documented in the README, never logged). `from=now` starts at
  // the feed's current end; a reconnect resumes from Last-Event-ID.
  const q = new URLSearchParams({ from: 'now', access_token: getToken() });
  source = new EventSource(`/api/v1/events/stream?${q}`);
  const live = $('live');
  let opened = false;
  source.addEventListener('open', () => {
    live.className = 'live on';
    $('live-text').textContent = t('desk.live_on');
    // Anything that changed while the stream was down is picked up by a reload.
    if (opened) reload();
    opened = true;
  });
  source.addEventListener('error', () => {
    live.className = 'live off';
    $('live-text').textContent = t('desk.live_off');
  });
  for (const type of EVENT_TYPES) {
    source.addEventListener(type, (ev) => {
      try {
        refreshSoon(JSON.parse(ev.data).stream_id);
      } catch (e) {
        console.warn('unreadable event', e);
      }
    });
  }
}

run(async () => {
  me = await startPage('desk');
  const state = $('f-state');
  if (me.role === 'handler') {
    $('desk-heading').textContent = t('desk.title_handler');
    state.value = 'assigned';
    state.querySelector('option[value="todo"]').remove();
  } else if (me.role === 'hotline_agent') {
    $('desk-heading').textContent = t('desk.title_hotline');
    state.value = 'handled';
    state.querySelector('option[value="todo"]').remove();
  }
  const cat = $('f-category');
  for (const c of categoryList()) cat.append(el('option', { value: c.code, text: categoryName(c.code) }));
  const units = $('f-unit');
  // Units that receive tickets (a grid never leads one).
  for (const code of subtree(me.unit)) {
    const kind = (unit(code) || {}).kind;
    if ((code !== me.unit || me.role === 'handler') && kind !== 'grid') units.append(el('option', { value: code, text: unitName(code) }));
  }
  if (me.role === 'handler') units.value = me.unit;
  $('filters').addEventListener('submit', (e) => e.preventDefault());
  for (const id of ['f-state', 'f-unit', 'f-overdue']) $(id).addEventListener('change', reload);
  for (const id of ['f-category', 'f-text']) $(id).addEventListener('input', render);
  $('more').addEventListener('click', () => loadMore().catch((e) => { $('page-error').textContent = errorText(e); $('page-error').hidden = false; }));
  await reload();
  connectLive();
});
