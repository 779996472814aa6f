// The tickets' map on the desk and the grid page, hooked in with one line:
// <script type="module" src="/web/js/ticket-map.js"></script>. Once the page has
// signed in (body.ready), it adds a card with the open tickets in the viewer's
// scope (GET /api/v1/tickets, the newest 500) as points on the map; a page that
// filters its tickets may send them with a `yw:tickets` event to show those instead.

import { api, el, errorText, t } from './common.js';
import { drawTickets, legend, makeMap } from './map.js';

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

async function mount() {
  await whenReady();
  const box = el('div', { id: 'ticket-map', class: 'map-box' });
  const status = el('p', { class: 'muted map-status', role: 'status' });
  const card = el('details', { class: 'card map-card', id: 'map-card', open: true },
    el('summary', { text: t('map.title') }), box, legend(), status);
  place(card);
  try {
    const m = await makeMap(box);
    const page = await api('/api/v1/tickets?limit=500');
    const open = page.items.filter((x) => x.state !== 'closed');
    let drawn = drawTickets(m, open);
    m.fit(drawn.points);
    status.textContent = t('map.count', { shown: drawn.points.length, open: open.length });
    card.addEventListener('toggle', () => m.map.invalidateSize());
    document.body.dataset.mapReady = String(drawn.points.length);
    // The page may show its own selection instead (the desk's filters): one line,
    // document.dispatchEvent(new CustomEvent('yw:tickets', { detail: tickets })).
    document.addEventListener('yw:tickets', (e) => {
      const list = Array.isArray(e.detail) ? e.detail : [];
      drawn.layer.remove();
      drawn = drawTickets(m, list);
      m.fit(drawn.points);
      status.textContent = t('map.count', { shown: drawn.points.length, open: list.filter((x) => x.state !== 'closed').length });
      document.body.dataset.mapReady = String(drawn.points.length);
    });
  } catch (e) {
    status.textContent = errorText(e);
    document.body.dataset.mapReady = 'error';
  }
}

mount();
