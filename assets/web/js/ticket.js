// The ticket page (/tickets/{id}): the facts, the photos, the viewer's actions and
// the whole timeline in plain words (who, which unit, when, deadline met or missed).
// It follows the live feed of its ticket (`/api/v1/events/stream?ticket=`) and
// redraws when anyone acts, without a reload (issue 22, point 9).

import {
  api, authHeaders, categoryName, clear, deadlineBadge, el, fmtDeadline, fmtTime, getToken, homeFor, lang, notify, run, startPage,
  stateBadge, t, unitName,
} from './common.js';
import { renderActions } from './actions.js';

const $ = (id) => document.getElementById(id);
// The path names the ticket by id or by number (YYYYMMDD-NNNNNN); a number is
// resolved to the id on load.
const key = decodeURIComponent(location.pathname.split('/').filter(Boolean).pop() || '');
const byNumber = /^\d{8}-\d{6}$/.test(key);
let id = byNumber ? '' : key;
let me;

function fact(label, value) {
  if (value === null || value === undefined || value === '') return [];
  return [el('dt', { text: label }), el('dd', {}, value)];
}

// Whether the viewer is filling in an action's form, which a live redraw must not wipe
// (its submit then meets the newer version and says the ticket changed).
function midAction() {
  return !!document.querySelector('#t-actions .action-form form');
}

function renderTicket(tk, live = false) {
  document.title = `${tk.number} · ${t('app.name')}`;
  const head = clear($('t-head'));
  head.append(el('span', { class: 'number', text: tk.number }), stateBadge(tk));
  if (tk.urgency !== 'normal') head.append(el('span', { class: `badge urgency-${tk.urgency}`, text: t(`urgency.${tk.urgency}`) }));
  if (tk.overdue) head.append(el('span', { class: 'badge overdue', text: t('flag.overdue') }));
  if (tk.self_handled) head.append(el('span', { class: 'badge', text: t('flag.self_handled') }));
  $('t-title').textContent = tk.title;
  $('t-desc').textContent = tk.description || '';
  const loc = tk.location || {};
  const where = [loc.address, loc.grid ? unitName(loc.grid) : null,
    (loc.lat !== null && loc.lat !== undefined) ? `${Number(loc.lat).toFixed(5)}, ${Number(loc.lon).toFixed(5)}` : null]
    .filter(Boolean).join(' · ');
  const reporter = tk.reporter ? [tk.reporter.name, tk.reporter.phone].filter(Boolean).join(' ') : '';
  const facts = clear($('t-facts'));
  facts.append(
    ...fact(t('ticket.category'), categoryName(tk.category)),
    ...fact(t('ticket.source'), t(`source.${tk.source}`)),
    ...fact(t('ticket.created'), fmtTime(tk.created_at)),
    ...fact(t('ticket.location'), where),
    ...fact(t('ticket.reporter'), reporter),
    ...fact(t('ticket.centre'), unitName(tk.centre)),
    ...fact(t('desk.suggested'), tk.suggested_unit ? unitName(tk.suggested_unit) : ''),
    ...fact(t('desk.return_reason'), tk.return_reason || ''),
    ...fact(t('ticket.unit'), tk.unit ? unitName(tk.unit) : ''),
    ...fact(t('ticket.co_units'), (tk.co_units || []).map((c) => unitName(c)).join(lang() === 'en' ? ', ' : '、')),
    ...fact(t('ticket.handler'), tk.handler || ''),
    ...fact(t('ticket.deadlines'), (tk.deadlines.sign_due_at || tk.deadlines.handle_due_at)
      ? el('span', { class: 'deadlines' },
        deadlineBadge('sign', tk.deadlines.sign, tk.deadlines.sign_due_at),
        deadlineBadge('handle', tk.deadlines.handle, tk.deadlines.handle_due_at))
      : ''),
    ...fact(t('ticket.result'), tk.result || ''),
    ...fact(t('ticket.satisfaction'), tk.satisfaction ? t(`satisfaction.${tk.satisfaction}`) : ''),
    ...fact(t('ticket.close_code'), tk.close_code ? t(`close.${tk.close_code}`) : ''),
  );
  if (!(live && midAction())) renderActions($('t-actions'), tk, me, async () => load());
  document.body.dataset.version = String(tk.version);
  document.body.dataset.state = tk.state;
}

// ---- photos: fetched with the token or session and shown from object URLs (an <img src>
// cannot send the Authorization header).

const shown = new Map();
async function photo(hash) {
  if (shown.has(hash)) return shown.get(hash);
  const r = await fetch(`/api/v1/tickets/${id}/attachments/${hash}`, {
    headers: authHeaders(),
  });
  if (!r.ok) throw new Error(`photo ${r.status}`);
  const url = URL.createObjectURL(await r.blob());
  shown.set(hash, url);
  return url;
}

function photoTile(hash) {
  const tile = el('figure', { class: 'photo', dataset: { hash } }, el('span', { class: 'muted', text: t('photo.loading') }));
  photo(hash).then((url) => {
    clear(tile).append(el('a', { href: url, target: '_blank', rel: 'noopener' }, el('img', { src: url, alt: t('ticket.photos') })));
  }).catch(() => {
    clear(tile).append(el('span', { class: 'muted', text: t('photo.unavailable') }));
    tile.classList.add('missing');
  });
  return tile;
}

const isHash = (h) => typeof h === 'string' && /^[0-9a-f]{64}$/.test(h);

function renderPhotos(hashes) {
  const box = clear($('t-photos'));
  const list = [...new Set(hashes.filter(isHash))];
  $('t-photos-box').hidden = !list.length;
  for (const h of list) box.append(photoTile(h));
}

// ---- the timeline

function actorLine(e) {
  const m = e.metadata || {};
  if (e.type === 'SlaWarning' || e.type === 'SlaBreached') return t('actor.system');
  const role = m.role ? t(`role.${m.role}`) : '';
  return [m.actor, role, m.unit ? unitName(m.unit) : null].filter(Boolean).join(' · ');
}

function verdict(kind, met) {
  return el('span', { class: `deadline dl-${met ? 'met' : 'missed'}` },
    `${t(`deadline.${kind}`)} · ${t(met ? 'deadline.met' : 'deadline.missed')}`);
}

function describe(e, due) {
  const d = e.data || {};
  const at = Date.parse(e.occurred_at);
  const extra = [];
  let text;
  switch (e.type) {
    case 'TicketAccepted':
      text = t('ev.accepted', { source: t(`source.${d.source}`), centre: unitName(d.centre) });
      if (d.suggested_unit) extra.push(t('ev.suggested', { unit: unitName(d.suggested_unit) }));
      if (Array.isArray(d.photos) && d.photos.some(isHash)) {
        extra.push(el('div', { class: 'photos small' }, d.photos.filter(isHash).map(photoTile)));
      }
      break;
    case 'TicketAssigned':
      text = d.to_centre
        ? t('ev.assigned_centre', { unit: unitName(d.unit) })
        : t('ev.assigned', { unit: unitName(d.unit) });
      if (d.co_units && d.co_units.length) extra.push(t('ev.co_units', { units: d.co_units.map((c) => unitName(c)).join(lang() === 'en' ? ', ' : '、') }));
      if (d.sign_due_at) extra.push(t('ev.deadlines', { sign: fmtDeadline(d.sign_due_at), handle: fmtDeadline(d.handle_due_at) }));
      if (d.note) extra.push(d.note);
      due.sign = d.sign_due_at ? Date.parse(d.sign_due_at) : null;
      due.handle = d.handle_due_at ? Date.parse(d.handle_due_at) : null;
      break;
    case 'TicketSigned':
      text = t('ev.signed', { unit: unitName(d.unit), handler: d.handler });
      if (due.sign) extra.push(verdict('sign', at <= due.sign));
      break;
    case 'TicketReturned':
      text = t('ev.returned', { unit: unitName(d.unit), to: unitName(d.to_unit) });
      extra.push(d.reason);
      due.sign = null;
      due.handle = null;
      break;
    case 'ExtensionRequested':
      text = t('ev.extension_requested', { days: d.days });
      extra.push(d.reason);
      break;
    case 'ExtensionDecided':
      text = d.approved ? t('ev.extension_approved', { days: d.days, due: fmtDeadline(d.handle_due_at) }) : t('ev.extension_rejected');
      if (d.approved && d.handle_due_at) due.handle = Date.parse(d.handle_due_at);
      break;
    case 'TicketSupervised':
      text = d.count > 1 ? t('ev.supervised_again', { n: d.count }) : t('ev.supervised');
      extra.push(d.note);
      break;
    case 'TicketHandled':
      text = d.self_handled ? t('ev.self_handled') : t('ev.handled');
      extra.push(d.result);
      if (due.handle && !d.self_handled) extra.push(verdict('handle', at <= due.handle));
      if (Array.isArray(d.photos) && d.photos.some(isHash)) {
        extra.push(el('div', { class: 'photos small' }, d.photos.filter(isHash).map(photoTile)));
      }
      break;
    case 'VerificationPassed':
      text = t('ev.verified');
      if (d.note) extra.push(d.note);
      break;
    case 'VerificationFailed':
      text = t('ev.verification_failed', { due: fmtDeadline(d.handle_due_at) });
      if (d.note) extra.push(d.note);
      due.handle = Date.parse(d.handle_due_at);
      break;
    case 'CitizenFeedbackRecorded':
      text = t('ev.feedback', { satisfaction: t(`satisfaction.${d.satisfaction}`) });
      break;
    case 'TicketCommented':
      text = t('ev.commented');
      extra.push(d.text);
      break;
    case 'TicketClosed':
      text = t('ev.closed', { code: t(`close.${d.code}`) });
      break;
    case 'SlaWarning':
      text = t('ev.sla_warning', { deadline: t(`deadline.${d.deadline}`), due: fmtDeadline(d.due_at) });
      break;
    case 'SlaBreached':
      text = t('ev.sla_breached', { deadline: t(`deadline.${d.deadline}`), due: fmtDeadline(d.due_at) });
      break;
    default:
      text = e.type;
  }
  return { text, extra: extra.filter((x) => x !== undefined && x !== null && x !== '') };
}

function renderTimeline(events) {
  const list = clear($('timeline'));
  const due = { sign: null, handle: null };
  for (const e of events) {
    const { text, extra } = describe(e, due);
    list.append(el('li', { class: `event ev-${e.type}`, dataset: { type: e.type } },
      el('time', { datetime: e.occurred_at, text: fmtTime(e.occurred_at) }),
      el('div', { class: 'event-body' },
        el('p', { class: 'event-text', text }),
        el('p', { class: 'event-actor', text: actorLine(e) }),
        extra.map((x) => (x instanceof Node ? x : el('p', { class: 'event-extra', text: x }))))));
  }
}

let ticketId = null;

async function load(live = false) {
  if (byNumber && !id) id = (await api(`/api/v1/tickets/by-number/${encodeURIComponent(key)}`)).id;
  const [tk, evs] = await Promise.all([api(`/api/v1/tickets/${id}`), api(`/api/v1/tickets/${id}/events`)]);
  ticketId = tk.id;
  renderTicket(tk, live);
  renderTimeline(evs.items);
  const hashes = [...(Array.isArray(tk.photos) ? tk.photos : [])];
  for (const e of evs.items) if (e.data && Array.isArray(e.data.photos)) hashes.push(...e.data.photos);
  renderPhotos(hashes);
}

// ---- live: the ticket's own events, as anyone appends them

const EVENT_TYPES = [
  'TicketAccepted', 'TicketAssigned', 'TicketSigned', 'TicketReturned', 'ExtensionRequested', 'ExtensionDecided',
  'TicketSupervised', 'TicketHandled', 'VerificationPassed', 'VerificationFailed', 'CitizenFeedbackRecorded',
  'TicketCommented', 'TicketClosed', 'SlaWarning', 'SlaBreached',
];

let redraw = null;
function refreshSoon(notice) {
  clearTimeout(redraw);
  redraw = setTimeout(() => {
    load(true).then(() => {
      if (notice) notify(notice);
    }).catch(() => undefined);
  }, 150);
}

function liveState(on) {
  $('t-live').className = `live ticket-live ${on ? 'on' : 'off'}`;
  $('t-live-text').textContent = t(on ? 'ticket.live_on' : 'ticket.live_off');
  document.body.dataset.live = on ? 'on' : 'off';
}

// EventSource reconnects by itself after a drop (resuming after Last-Event-ID); a
// stream the service refused (closed for good) is opened again after a pause. Each
// reopening redraws, for what happened while it was down.
function follow() {
  // EventSource cannot send headers: the stream route alone takes ?access_token=.
  const q = new URLSearchParams({ from: 'now', ticket: ticketId, access_token: getToken() });
  const source = new EventSource(`/api/v1/events/stream?${q}`);
  let opened = false;
  source.addEventListener('open', () => {
    liveState(true);
    if (opened) refreshSoon();
    opened = true;
  });
  source.addEventListener('error', () => {
    liveState(false);
    if (source.readyState === EventSource.CLOSED) {
      setTimeout(() => {
        follow();
      }, 5000);
    }
  });
  for (const type of EVENT_TYPES) {
    source.addEventListener(type, (ev) => {
      let e = null;
      try {
        e = JSON.parse(ev.data);
      } catch (err) {
        return;
      }
      const who = (e.metadata || {}).actor;
      const mine = who && who === me.user;
      refreshSoon(mine ? null : t('ticket.updated', { what: describe(e, { sign: null, handle: null }).text }));
    });
  }
}

run(async () => {
  me = await startPage('ticket');
  $('back').href = homeFor(me.role);
  await load();
  follow();
});
