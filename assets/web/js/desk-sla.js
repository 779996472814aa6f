// SLA at a glance on the desk (issue 22, point 3): the time left on the deadline in
// force or how long it is overdue (amber once the SLA watcher has warned, red once
// it has passed), and how long an undispatched ticket has been waiting.

import { atCentre, t } from './common.js';

const HOUR = 3600 * 1000;
const DAY = 24 * HOUR;

// A span of time as "N 天", "N 小时" or "N 分钟" (whole units, rounded down, at least 1).
export function span(ms) {
  const a = Math.abs(ms);
  if (a >= DAY) return t('desk.dur.days', { n: Math.floor(a / DAY) });
  if (a >= HOUR) return t('desk.dur.hours', { n: Math.floor(a / HOUR) });
  return t('desk.dur.minutes', { n: Math.max(1, Math.floor(a / 60000)) });
}

// The deadline now in force on an open ticket: signing until the unit signs, then
// handling. Null when nothing is running (not dispatched, or done).
export function openDeadline(tk) {
  if (tk.state !== 'assigned' || atCentre(tk)) return null;
  const d = tk.deadlines || {};
  if (!tk.handler && d.sign_due_at) return { kind: 'sign', due: d.sign_due_at, warned: !!d.sign_warned };
  if (d.handle_due_at) return { kind: 'handle', due: d.handle_due_at, warned: !!d.handle_warned };
  return null;
}

// Whether the ticket waits for a centre to dispatch it (new, sent back, or a hop).
export function waiting(tk) {
  return tk.state === 'accepted' || atCentre(tk);
}

// { level: 'ok' | 'warn' | 'late' | 'wait', text, ms } for the ticket, or null. `ms`
// sorts: time left (negative once late), or minus the waiting time.
export function slaInfo(tk, now = Date.now()) {
  if (waiting(tk)) {
    // New: since accepted; sent back or passed to a centre: since then.
    const since = Date.parse(tk.state === 'accepted' && !tk.returned ? tk.created_at : tk.updated_at);
    return { level: 'wait', text: t('desk.sla.wait', { d: span(now - since) }), ms: since - now };
  }
  const dl = openDeadline(tk);
  if (!dl) return null;
  const left = Date.parse(dl.due) - now;
  const what = t(`desk.sla.${dl.kind}`);
  if (left <= 0) return { level: 'late', text: t('desk.sla.over', { what, d: span(left) }), ms: left };
  return { level: dl.warned ? 'warn' : 'ok', text: t('desk.sla.left', { what, d: span(left) }), ms: left };
}
