// The actions a viewer may take on a ticket, as buttons that open a small form. The
// desk and the ticket page share them. The service decides in the end (a refusal
// is shown as its problem detail); this only hides what the role cannot do.

import {
  api, atCentre, clear, command, el, errorText, holder, newKey, notify, t, unit, unitName,
} from './common.js';

// Uploads one photo (POST /api/v1/attachments, multipart field `file`); returns its hash.
export async function uploadPhoto(file, key = newKey()) {
  const form = new FormData();
  form.append('file', file, file.name || 'photo');
  const r = await api('/api/v1/attachments', { method: 'POST', body: form, headers: { 'Idempotency-Key': key } });
  return r.hash;
}

// The action ids the viewer's role allows on the ticket in its state.
export function available(ticket, me) {
  const role = me.role;
  const admin = role === 'admin';
  const out = [];
  const st = ticket.state;
  const centreHop = atCentre(ticket);
  if (st !== 'closed' && (role === 'dispatcher' || admin)) {
    if ((st === 'accepted' || centreHop) && (admin || holder(ticket) === me.unit)) out.push('assign');
    if (centreHop && (admin || ticket.unit === me.unit)) out.push('return');
    if (st === 'assigned' && !centreHop) out.push('supervise');
    if (ticket.pending_extension_days !== null && ticket.pending_extension_days !== undefined) {
      out.push('approve-extension', 'reject-extension');
    }
    if (st === 'handled') out.push('verify-pass', 'verify-fail');
    if (st === 'verified' || st === 'accepted') out.push('close');
  }
  if (st === 'assigned' && !centreHop && (role === 'handler' || admin) && (admin || ticket.unit === me.unit)) {
    if (!ticket.handler) out.push('sign');
    else {
      out.push('handle');
      if (ticket.deadlines && ticket.deadlines.handle_due_at && ticket.pending_extension_days == null) {
        out.push('request-extension');
      }
    }
    if (!out.includes('return')) out.push('return');
  }
  if (['hotline_agent', 'dispatcher', 'admin'].includes(role) && (st === 'handled' || st === 'verified') && !ticket.satisfaction) {
    out.push('feedback');
  }
  const handlerOutside = role === 'handler' && ticket.unit !== me.unit && !(ticket.co_units || []).includes(me.unit);
  if (role !== 'analyst' && !handlerOutside) out.push('comment');
  return out;
}

// The unit a centre would pick for the suggested unit: the suggestion itself when the
// centre dispatches to it, else the target on the way to it (a township, say).
function suggestedTarget(targets, suggested) {
  if (!suggested) return null;
  let code = suggested;
  while (code) {
    if (targets.includes(code)) return code;
    const u = unit(code);
    code = u ? u.parent : null;
  }
  return null;
}

function textField(name, label, { multiline = false, value = '', required = true } = {}) {
  const input = multiline
    ? el('textarea', { name, rows: 3, required })
    : el('input', { name, type: 'text', required, value });
  if (multiline) input.value = value;
  return el('label', { class: 'field' }, el('span', { text: label }), input);
}

// The form of one action: its fields, and how to turn them into the command body.
function formFor(action, ticket, me) {
  switch (action) {
    case 'assign': {
      const centre = me.role === 'admin' ? holder(ticket) : me.unit;
      const targets = (unit(centre) || {}).dispatch_targets || [];
      const back = ticket.returned_by || [];
      const suggested = suggestedTarget(targets, ticket.suggested_unit);
      const pick = back.includes(suggested) ? null : suggested;
      // Without a suggestion (none, or the unit that sent the ticket back) nothing is
      // preselected: the dispatcher chooses. A unit that sent it back is marked.
      const label = (code) => {
        if (code === pick) return `${unitName(code)} ${t('desk.suggested_mark')}`;
        return back.includes(code) ? `${unitName(code)} ${t('desk.returned_mark')}` : unitName(code);
      };
      const select = el('select', { name: 'unit', required: true },
        pick ? null : el('option', { value: '', text: t('desk.choose_unit'), selected: true }),
        targets.map((code) => el('option', { value: code, selected: code === pick, text: label(code) })));
      // 协办: other units that help the lead unit (never the lead unit itself).
      const boxes = targets.map((code) => el('label', { class: 'field check co-unit' },
        el('input', { type: 'checkbox', name: 'co_unit', value: code }), el('span', { text: unitName(code) })));
      const co = el('details', { class: 'co-units' }, el('summary', { text: t('act.field.co_units') }),
        el('div', { class: 'co-unit-list' }, boxes));
      const sync = () => {
        for (const b of boxes) {
          const input = b.querySelector('input');
          input.disabled = input.value === select.value;
          if (input.disabled) input.checked = false;
        }
      };
      select.addEventListener('change', sync);
      sync();
      return {
        fields: [el('label', { class: 'field' }, el('span', { text: t('act.field.unit') }), select), co,
          textField('note', t('act.field.note'), { required: false })],
        body: (f) => {
          const coUnits = boxes.map((b) => b.querySelector('input')).filter((x) => x.checked && !x.disabled).map((x) => x.value);
          return {
            unit: f.unit.value,
            ...(coUnits.length ? { co_units: coUnits } : {}),
            ...(f.note.value.trim() ? { note: f.note.value.trim() } : {}),
          };
        },
        command: 'assign',
      };
    }
    case 'sign':
      return {
        fields: [textField('handler', t('act.field.handler'), { value: me.user })],
        body: (f) => ({ handler: f.handler.value.trim() }),
        command: 'sign',
      };
    case 'return':
      return {
        fields: [textField('reason', t('act.field.reason'), { multiline: true })],
        body: (f) => ({ reason: f.reason.value.trim() }),
        command: 'return',
      };
    case 'request-extension':
      return {
        fields: [
          el('label', { class: 'field' }, el('span', { text: t('act.field.days') }),
            el('input', { name: 'days', type: 'number', min: 1, max: 30, value: 3, required: true })),
          textField('reason', t('act.field.reason'), { multiline: true }),
        ],
        body: (f) => ({ days: Number(f.days.value), reason: f.reason.value.trim() }),
        command: 'request-extension',
      };
    case 'approve-extension':
      return {
        fields: [el('label', { class: 'field' }, el('span', { text: t('act.field.days') }),
          el('input', { name: 'days', type: 'number', min: 1, max: 30, value: ticket.pending_extension_days, required: true }))],
        body: (f) => ({ approved: true, days: Number(f.days.value) }),
        command: 'decide-extension',
      };
    case 'reject-extension':
      return { fields: [], body: () => ({ approved: false }), command: 'decide-extension' };
    case 'supervise':
      return {
        fields: [textField('note', t('act.field.note'), { multiline: true })],
        body: (f) => ({ note: f.note.value.trim() }),
        command: 'supervise',
      };
    case 'handle':
      return {
        fields: [
          textField('result', t('act.field.result'), { multiline: true }),
          el('label', { class: 'field' }, el('span', { text: t('act.field.photos') }),
            el('input', { name: 'photos', type: 'file', accept: 'image/*', multiple: true })),
        ],
        body: async (f) => {
          const photos = [];
          for (const file of f.photos.files) photos.push(await uploadPhoto(file));
          return { result: f.result.value.trim(), ...(photos.length ? { photos } : {}) };
        },
        command: 'handle',
      };
    case 'verify-pass':
    case 'verify-fail':
      return {
        fields: [textField('note', t('act.field.note'), { multiline: true, required: action === 'verify-fail' })],
        body: (f) => ({ passed: action === 'verify-pass', note: f.note.value.trim() }),
        command: 'verify',
      };
    case 'feedback': {
      const select = el('select', { name: 'satisfaction' },
        ['satisfied', 'basically_satisfied', 'unsatisfied'].map((s) => el('option', { value: s, text: t(`satisfaction.${s}`) })));
      return {
        fields: [el('label', { class: 'field' }, el('span', { text: t('act.field.satisfaction') }), select)],
        body: (f) => ({ satisfaction: f.satisfaction.value }),
        command: 'feedback',
      };
    }
    case 'comment':
      return {
        fields: [textField('text', t('act.field.comment'), { multiline: true })],
        body: (f) => ({ text: f.text.value.trim() }),
        command: 'comment',
      };
    case 'close': {
      const codes = ticket.state === 'verified' ? ['resolved'] : ['duplicate', 'invalid', 'withdrawn'];
      const select = el('select', { name: 'code' }, codes.map((c) => el('option', { value: c, text: t(`close.${c}`) })));
      const dup = el('label', { class: 'field' }, el('span', { text: t('act.field.duplicate_of') }),
        el('input', { name: 'duplicate_of', type: 'text', placeholder: t('act.field.duplicate_hint'), inputmode: 'numeric' }));
      dup.hidden = codes[0] !== 'duplicate';
      select.addEventListener('change', () => { dup.hidden = select.value !== 'duplicate'; });
      return {
        fields: [el('label', { class: 'field' }, el('span', { text: t('act.field.code') }), select), dup],
        body: (f) => ({
          code: f.code.value,
          ...(f.code.value === 'duplicate' && f.duplicate_of.value.trim() ? { duplicate_of: f.duplicate_of.value.trim() } : {}),
        }),
        command: 'close',
      };
    }
    default:
      return null;
  }
}

// Renders the action buttons of `ticket` into `box`; `onDone(ticket)` gets the
// ticket as the service answered.
export function renderActions(box, ticket, me, onDone) {
  clear(box);
  const list = available(ticket, me);
  if (!list.length) return;
  const buttons = el('div', { class: 'action-buttons' });
  const formBox = el('div', { class: 'action-form' });
  for (const action of list) {
    const kind = ['verify-fail', 'reject-extension', 'return'].includes(action) ? 'secondary' : (action === 'comment' ? 'ghost' : 'primary');
    buttons.append(el('button', {
      type: 'button', class: `btn ${kind}`, dataset: { action }, text: t(`act.${action}`),
      onclick: () => openForm(formBox, action, ticket, me, onDone),
    }));
  }
  box.append(buttons, formBox);
}

function openForm(formBox, action, ticket, me, onDone) {
  clear(formBox);
  const spec = formFor(action, ticket, me);
  if (!spec) return;
  const status = el('p', { class: 'form-status', role: 'status' });
  const submit = el('button', { type: 'submit', class: 'btn primary', dataset: { submit: action }, text: t(`act.${action}`) });
  const form = el('form', { class: 'card inline-form', dataset: { form: action } },
    el('h3', { text: t(`act.${action}`) }), spec.fields,
    el('div', { class: 'row' }, submit,
      el('button', { type: 'button', class: 'btn ghost', text: t('act.cancel'), onclick: () => clear(formBox) })),
    status);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    submit.disabled = true;
    status.textContent = t('act.sending');
    try {
      const body = await spec.body(form.elements);
      const updated = await command(ticket, spec.command, body);
      clear(formBox);
      notify(t('act.done', { action: t(`act.${action}`), number: updated.number }), 'ok');
      onDone(updated);
    } catch (e) {
      status.textContent = errorText(e);
      status.classList.add('error');
      submit.disabled = false;
    }
  });
  formBox.append(form);
  const first = form.querySelector('input, textarea, select');
  if (first) first.focus();
  formBox.scrollIntoView({ block: 'nearest' });
}

