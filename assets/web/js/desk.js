// The dispatch desk (/desk): the queue of the viewer's area, searched, filtered and
// sorted by the service (the filters live in the page's URL), shown as cards or as a
// sortable table, with the SLA at a glance, bulk dispatch, keyboard shortcuts and an
// optional notice for new urgent tickets. New and changed tickets come in live over SSE.

import {
  api, atCentre, categoryList, categoryName, clear, deadlineBadge, el, errorText, fmtTime, getToken, holder,
  run, startPage, stateBadge, subtree, t, unit, unitName,
} from './common.js';
import { renderActions } from './actions.js';
import { slaInfo } from './desk-sla.js';
import { renderTable } from './desk-table.js';
import { renderBulk } from './desk-bulk.js';
import { installKeys } from './desk-keys.js';
import { alertIfUrgent, setupAlerts } from './desk-alert.js';

const EVENT_TYPES = [
  'TicketAccepted', 'TicketAssigned', 'TicketSigned', 'TicketReturned', 'ExtensionRequested', 'ExtensionDecided',
  'TicketSupervised', 'TicketHandled', 'VerificationPassed', 'VerificationFailed', 'CitizenFeedbackRecorded',
  'TicketCommented', 'TicketClosed', 'SlaWarning', 'SlaBreached',
];
const PAGE = 50;
const VIEW_KEY = 'yw.desk.view';
// The filters as URL parameters (the form field of each).
const PARAMS = { state: 'f-state', category: 'f-category', unit: 'f-unit', q: 'f-text', sort: 'f-sort' };

let me;
let tickets = new Map(); // id -> ticket, in the service's order
const fresh = new Set(); // ids that arrived live since the page opened
const selected = new Set(); // ids picked for bulk dispatch
let nextCursor = null;
let total = null;
let defaults = {};
let current = null; // the id the keyboard is on
let loadedFilters = null; // the filter set the list was last loaded for (a string)
let mapped = null; // what the map was last sent

const $ = (id) => document.getElementById(id);

function filters() {
  return {
    state: $('f-state').value,
    category: $('f-category').value,
    unit: $('f-unit').value,
    overdue: $('f-overdue').checked,
    text: $('f-text').value.trim(),
    sort: $('f-sort').value,
  };
}

// ---- the filters in the URL: reload and back/forward give the same list.

function toUrl(push) {
  const q = new URLSearchParams();
  for (const [name, id] of Object.entries(PARAMS)) {
    const v = name === 'q' ? $(id).value.trim() : $(id).value;
    if (v !== defaults[name]) q.set(name, v);
  }
  if ($('f-overdue').checked) q.set('overdue', '1');
  const url = `${location.pathname}${q.toString() ? `?${q}` : ''}`;
  if (url === `${location.pathname}${location.search}`) return;
  if (push) history.pushState(null, '', url);
  else history.replaceState(null, '', url);
}

function fromUrl() {
  const q = new URLSearchParams(location.search);
  for (const [name, id] of Object.entries(PARAMS)) {
    const v = q.has(name) ? q.get(name) : defaults[name];
    const field = $(id);
    if (field.tagName === 'SELECT' && ![...field.options].some((o) => o.value === v)) field.value = defaults[name];
    else field.value = v;
  }
  $('f-overdue').checked = q.get('overdue') === '1' || q.get('overdue') === 'true';
}

// ---- what belongs in the list (for tickets that arrive live; the service filters the rest)

function matches(tk, f) {
  if (f.state === 'todo' && !f.overdue) {
    const mine = (tk.state === 'accepted' && holder(tk) === me.unit) || (atCentre(tk) && tk.unit === me.unit);
    if (!mine && me.role !== 'admin') return false;
    if (me.role === 'admin' && !(tk.state === 'accepted' || atCentre(tk))) return false;
  } else if (f.state && f.state !== 'todo' && tk.state !== f.state) return false;
  if (f.unit && tk.unit !== f.unit) return false;
  if (f.overdue && !tk.overdue) return false;
  if (f.category && tk.category !== f.category && !tk.category.startsWith(`${f.category}.`)) return false;
  if (f.text) {
    const addr = tk.location && tk.location.address ? tk.location.address : '';
    const hay = `${tk.number} ${tk.title} ${tk.description} ${addr}`.toLowerCase();
    if (!hay.includes(f.text.toLowerCase())) return false;
  }
  return true;
}

function query(f, cursor, state, unitCode) {
  const q = new URLSearchParams({ limit: String(PAGE), sort: f.sort });
  if (cursor) q.set('cursor', cursor);
  if (state) q.set('state', state);
  if (f.overdue) q.set('overdue', 'true');
  if (unitCode) q.set('unit', unitCode);
  if (f.category) q.set('category', f.category);
  if (f.text) q.set('q', f.text);
  return `/api/v1/tickets?${q}`;
}

async function fetchQueue(cursor) {
  const f = filters();
  // 待我派单 names undispatched tickets, which have no deadline yet: with 仅看超期 it
  // widens to every state.
  const todo = f.state === 'todo' && !f.overdue;
  const state = todo ? 'accepted' : (f.state === 'todo' ? '' : f.state);
  const page = await api(query(f, cursor, state, f.unit));
  let items = page.items;
  let n = typeof page.total === 'number' ? page.total : null;
  // Hops that reached the viewer's own centre wait for it to dispatch them on.
  if (todo && !cursor && me.centre && !f.unit) {
    const hops = await api(query(f, null, 'assigned', me.unit));
    items = items.concat(hops.items);
    if (n !== null && typeof hops.total === 'number') n += hops.total;
  }
  return { items, next: page.next_cursor, total: n };
}

let generation = 0;
async function reload() {
  $('page-error').hidden = true;
  document.body.dataset.loaded = 'false';
  const mine = ++generation;
  const set = filterSet(filters());
  try {
    const { items, next, total: n } = await fetchQueue(null);
    if (mine !== generation) return; // a newer filter answered first
    tickets = new Map(items.map((x) => [x.id, x]));
    for (const id of [...selected]) if (!tickets.has(id)) selected.delete(id);
    nextCursor = next;
    total = n;
    loadedFilters = set;
    render();
    toMap();
    document.body.dataset.loaded = 'true';
  } catch (e) {
    showError(e);
  }
}

async function loadMore() {
  if (!nextCursor) return;
  const { items, next } = await fetchQueue(nextCursor);
  for (const x of items) tickets.set(x.id, x);
  nextCursor = next;
  render();
  toMap();
}

function showError(e) {
  $('page-error').textContent = errorText(e);
  $('page-error').hidden = false;
}

// ---- the map (ticket-map.js) shows the list: sent whenever the list is loaded or
// changes (filters, search, load more, a ticket that changed), never on a selection.
// `filters` tells the map when to re-fit its bounds: only for a new filter set, not
// when more pages load or a ticket changes live.

function filterSet(f) {
  return JSON.stringify([f.state, f.category, f.unit, f.overdue, f.text]);
}

function toMap() {
  mapped = { tickets: shown(), filters: loadedFilters };
  document.dispatchEvent(new CustomEvent('yw:tickets', { detail: mapped }));
}

// The map asks once, when it loads: the desk sends its list, now or when it has one.
document.addEventListener('yw:tickets-wanted', (e) => {
  if (e.detail) e.detail.page = true;
  if (mapped) document.dispatchEvent(new CustomEvent('yw:tickets', { detail: mapped }));
});

// ---- one card

function refreshSla() {
  for (const node of document.querySelectorAll('#queue [data-id], #queue-table tr[data-id]')) {
    const tk = tickets.get(node.dataset.id);
    const old = node.querySelector('.sla');
    if (tk && old) old.replaceWith(slaChip(tk));
  }
}

function slaChip(tk) {
  const s = slaInfo(tk);
  return s ? el('span', { class: `sla sla-${s.level}`, dataset: { sla: s.level }, text: s.text }) : null;
}

function pick(tk) {
  if (!canPick(tk)) return null;
  return el('input', {
    type: 'checkbox', class: 'pick', 'aria-label': t('desk.pick', { number: tk.number }), checked: selected.has(tk.id),
    onchange: (e) => toggle(tk.id, e.target.checked),
  });
}

function card(tk) {
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
      tk.handler ? ` · ${t('ticket.handler')} ${tk.handler}` : '',
      (tk.co_units || []).length ? ` · ${t('desk.co_units')} ${tk.co_units.map(unitName).join('、')}` : '')
    : null;
  const flags = [];
  if (tk.overdue) flags.push(el('span', { class: 'badge overdue', text: t('flag.overdue') }));
  if (tk.returned) flags.push(el('span', { class: 'badge', text: t('flag.returned', { n: tk.returned }) }));
  if (tk.supervised) flags.push(el('span', { class: 'badge', text: t('flag.supervised', { n: tk.supervised }) }));
  if (tk.pending_extension_days) flags.push(el('span', { class: 'badge warn', text: t('flag.extension_pending', { n: tk.pending_extension_days }) }));
  if (fresh.has(tk.id)) flags.push(el('span', { class: 'badge new', text: t('desk.new') }));
  const cls = `ticket card${fresh.has(tk.id) ? ' fresh' : ''}${current === tk.id ? ' current' : ''}`;
  return el('li', { class: cls, dataset: { id: tk.id, number: tk.number, state: tk.state } },
    el('div', { class: 'ticket-head' },
      pick(tk),
      el('a', { href: `/tickets/${tk.id}`, class: 'number', text: tk.number }),
      stateBadge(tk), urgent, flags, slaChip(tk)),
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

// ---- the list

// What the list shows, in the service's order (tickets that arrived live first).
function shown() {
  const f = filters();
  const list = [...tickets.values()].filter((x) => matches(x, f));
  return list.filter((x) => fresh.has(x.id)).concat(list.filter((x) => !fresh.has(x.id)));
}

function view() {
  return localStorage.getItem(VIEW_KEY) === 'table' ? 'table' : 'cards';
}

function render() {
  const list = shown();
  const cards = $('queue');
  const table = $('queue-table');
  clear(cards);
  clear(table);
  const asTable = view() === 'table';
  cards.hidden = asTable;
  table.hidden = !asTable;
  $('view-cards').setAttribute('aria-pressed', String(!asTable));
  $('view-table').setAttribute('aria-pressed', String(asTable));
  if (asTable) {
    renderTable(table, list, {
      me, selected, current, canPick, onToggle: toggle, onCurrent: setCurrent,
      actionsFor: (tk, box) => renderActions(box, tk, me, (updated) => upsert(updated, false)),
    });
  } else {
    for (const tk of list) cards.append(card(tk));
    if (!list.length) cards.append(el('li', { class: 'empty', text: t('desk.empty') }));
  }
  const n = total === null ? list.length : Math.max(total, list.length);
  $('count').textContent = t('desk.count', { n });
  $('count').dataset.total = String(n);
  $('more').hidden = !nextCursor;
  renderBulk($('bulk'), { me, selected, tickets, onDone: afterBulk, onClear: () => { selected.clear(); render(); } });
}

function canPick(tk) {
  return (me.role === 'dispatcher' || me.role === 'admin') && (tk.state === 'accepted' || atCentre(tk))
    && (me.role === 'admin' || holder(tk) === me.unit);
}

function toggle(id, on) {
  if (on) selected.add(id);
  else selected.delete(id);
  renderBulk($('bulk'), { me, selected, tickets, onDone: afterBulk, onClear: () => { selected.clear(); render(); } });
}

function afterBulk(updated) {
  for (const tk of updated) {
    tickets.set(tk.id, tk);
    selected.delete(tk.id);
  }
  render();
  toMap();
}

function setCurrent(id) {
  current = id;
  // The table shows the actions of its current row under it.
  if (view() === 'table') render();
  for (const node of document.querySelectorAll('#queue .current')) node.classList.remove('current');
  const node = document.querySelector(`#queue [data-id="${id}"], #queue-table tr[data-id="${id}"]`);
  if (node) {
    node.classList.add('current');
    node.scrollIntoView({ block: 'nearest' });
  }
}

// Moves the keyboard's place by `step` (j: +1, k: -1), in the order shown.
function move(step) {
  const ids = view() === 'table'
    ? [...document.querySelectorAll('#queue-table tbody tr[data-id]')].map((x) => x.dataset.id)
    : shown().map((x) => x.id);
  if (!ids.length) return;
  const at = ids.indexOf(current);
  const next = at < 0 ? (step > 0 ? 0 : ids.length - 1) : Math.min(ids.length - 1, Math.max(0, at + step));
  setCurrent(ids[next]);
}

// Opens the dispatch form of the ticket the keyboard is on.
function assignCurrent() {
  if (!current) move(1);
  const node = document.querySelector(`#queue [data-id="${current}"], #table-detail[data-id="${current}"]`);
  const btn = node && node.querySelector('button[data-action="assign"]');
  if (btn) btn.click();
}

// Puts the ticket's current form in the list, or takes it out if it no longer
// belongs there.
function upsert(tk, live) {
  // The live echo of the page's own command changes nothing: the list stays as it is
  // (a redraw would close a form being filled in).
  const known = tickets.get(tk.id);
  if (live && known && known.version === tk.version) return;
  if (live && !known && matches(tk, filters())) {
    fresh.add(tk.id);
    alertIfUrgent(tk);
  }
  tickets.set(tk.id, tk);
  render();
  toMap();
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
      toMap();
    }
  }, 150));
}

function connectLive() {
  // EventSource cannot send headers: the stream route alone takes the token as
  // ?access_token= (documented in the README, never logged). `from=now` starts at
  // the feed's current end; a reconnect resumes from Last-Event-ID.
  const q = new URLSearchParams({ from: 'now', access_token: getToken() });
  const source = new EventSource(`/api/v1/events/stream?${q}`);
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

function setView(v) {
  localStorage.setItem(VIEW_KEY, v);
  render();
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
  defaults = { state: state.value, category: '', unit: units.value, q: '', sort: '-created' };
  fromUrl();
  $('filters').addEventListener('submit', (e) => {
    e.preventDefault();
    toUrl(true);
    reload();
  });
  for (const id of ['f-state', 'f-unit', 'f-category', 'f-sort']) {
    $(id).addEventListener('change', () => { toUrl(true); reload(); });
  }
  $('f-overdue').addEventListener('change', () => {
    // The overdue view: every state, the nearest deadline first.
    if ($('f-overdue').checked) {
      if (state.value === 'todo') state.value = '';
      $('f-sort').value = 'deadline';
    }
    toUrl(true);
    reload();
  });
  let typing;
  $('f-text').addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(() => { toUrl(false); reload(); }, 300);
  });
  window.addEventListener('popstate', () => { fromUrl(); reload(); });
  $('more').addEventListener('click', () => loadMore().catch(showError));
  $('view-cards').addEventListener('click', () => setView('cards'));
  $('view-table').addEventListener('click', () => setView('table'));
  $('queue-table').addEventListener('resort', render);
  setupAlerts($('alert-toggle'));
  $('keys-button').addEventListener('click', () => { $('keys-help').hidden = !$('keys-help').hidden; });
  installKeys({
    move,
    assign: assignCurrent,
    search: () => $('f-text').focus(),
    pick: () => {
      const tk = tickets.get(current);
      if (tk && canPick(tk)) {
        toggle(tk.id, !selected.has(tk.id));
        render();
      }
    },
    open: () => {
      if (!current) return false;
      location.href = `/tickets/${current}`;
      return true;
    },
    help: $('keys-help'),
  });
  // The countdowns move on without a reload (and without closing an open form).
  setInterval(refreshSla, 60000);
  await reload();
  connectLive();
});
