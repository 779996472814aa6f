// The tickets' map on the desk and the grid page, hooked in with one line:
// <script type="module" src="/web/js/ticket-map.js"></script>. Once the page has
// signed in (body.ready), it adds a card with the open tickets in the viewer's
// scope (GET /api/v1/tickets, the newest 500) as points on the map; a page that
// filters its tickets (the desk) sends them with a `yw:tickets` event to show those
// instead:
//   document.dispatchEvent(new CustomEvent('yw:tickets', { detail: { tickets, filters } }))
// `filters` names the filter set the list answers (any string): the map re-fits its
// bounds when it changes, and keeps the person's view when the same set only grew
// (load more) or changed live. A bare array as detail is a new set each time.
// Such a page answers `yw:tickets-wanted` (sent once when this module loads) by
// setting `detail.page = true` and sending its list again if it has one, so the map
// neither misses a list sent before it listened nor fetches tickets of its own.

import { api, el, errorText, t } from './common.js';
import { drawTickets, legend, makeMap, pointOf } from './map.js';

function whenReady() {
  return new Promise((resolve) => {
    if (document.body.classList.contains('ready')) {
      resolve();
      return;
    }
    const obs = new MutationObserver(() => {
      if (document.body.classList.contains('ready')) {
        obs.disconnect();
        resolve();
      }
    });
    obs.observe(document.body, { attributes: true, attributeFilter: ['class'] });
  });
}

// Where the card goes: after the desk's filters, or before the grid page's own
// reports, or at the end of the page.
function place(card) {
  const filters = document.getElementById('filters');
  const mine = document.getElementById('mine');
  const main = document.querySelector('main') || document.body;
  if (filters) filters.after(card);
  else if (mine && mine.closest('section')) mine.closest('section').before(card);
  else main.append(card);
}

// The page's own list: the last one sent, and who draws it once the map is up.
let sent = null;
let onSent = null;
document.addEventListener('yw:tickets', (e) => {
  const d = e.detail;
  sent = Array.isArray(d)
    ? { tickets: d, filters: {} } // a fresh object: never equal to the last set
    : { tickets: Array.isArray(d && d.tickets) ? d.tickets : [], filters: d ? d.filters : undefined };
  if (onSent) onSent(sent);
});
const hello = { page: false };
document.dispatchEvent(new CustomEvent('yw:tickets-wanted', { detail: hello }));

async function mount() {
  await whenReady();
  const box = el('div', { id: 'ticket-map', class: 'map-box' });
  const status = el('p', { class: 'muted map-status', role: 'status' });
  const card = el('details', { class: 'card map-card', id: 'map-card', open: true },
    el('summary', { text: t('map.title') }), box, legend(), status);
  place(card);
  try {
    const m = await makeMap(box);
    card.addEventListener('toggle', () => m.map.invalidateSize());
    let drawn = null;
    let fitted; // the filter set the bounds were last fitted to
    let fits = 0;
    const show = (list, filters, refit) => {
      if (drawn) drawn.layer.remove();
      drawn = drawTickets(m, list);
      // Each point names its ticket (data-number, read by the pages' tests):
      // drawTickets adds one marker per ticket with a point, in order, and a layer
      // group keeps that order.
      const placed = list.filter((x) => pointOf(x));
      drawn.layer.getLayers().forEach((l, i) => {
        const node = l.getElement && l.getElement();
        if (node && placed[i]) node.dataset.number = placed[i].number;
      });
      if (refit) {
        m.fit(drawn.points);
        fitted = filters;
        fits += 1;
      }
      status.textContent = t('map.count', { shown: drawn.points.length, open: list.filter((x) => x.state !== 'closed').length });
      document.body.dataset.mapFits = String(fits);
      document.body.dataset.mapReady = String(drawn.points.length);
    };
    if (!hello.page && !sent) {
      // No page list: the newest open tickets (unless the page sends one meanwhile).
      const page = await api('/api/v1/tickets?limit=500');
      if (!sent) show(page.items.filter((x) => x.state !== 'closed'), undefined, true);
    }
    // The page's list: now if it came, and each time it comes again.
    onSent = (s) => show(s.tickets, s.filters, fits === 0 || s.filters !== fitted);
    if (sent) onSent(sent);
  } catch (e) {
    status.textContent = errorText(e);
    document.body.dataset.mapReady = 'error';
  }
}

mount();
