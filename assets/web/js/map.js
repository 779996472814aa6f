// The map (issue 22, point 6): Leaflet, vendored under /web/vendor/leaflet/, loaded on
// demand. Tiles come from the server's setting (GET /api/v1/map `tiles`, a URL
// template); without one the map is a plain background with the units' boundaries
// from the organisation file, so it works with no internet. Tickets are points
// coloured by state, red when overdue. Leaflet styles elements from script (which
// the pages' CSP allows); nothing here is inline.

import { api, el, t } from './common.js';

let leaflet = null;
let config = null;

function addCss(href) {
  if (document.querySelector(`link[href="${href}"]`)) return;
  document.head.append(el('link', { rel: 'stylesheet', href }));
}

// window.L, once leaflet.js and the styles are loaded.
export function loadLeaflet() {
  if (!leaflet) {
    addCss('/web/vendor/leaflet/leaflet.css');
    addCss('/web/map.css');
    leaflet = new Promise((resolve, reject) => {
      if (window.L) {
        resolve(window.L);
        return;
      }
      const s = el('script', { src: '/web/vendor/leaflet/leaflet.js' });
      s.addEventListener('load', () => resolve(window.L));
      s.addEventListener('error', () => reject(new Error('leaflet.js did not load')));
      document.head.append(s);
    });
  }
  return leaflet;
}

// The server's map settings: {tiles, boundaries}.
export function mapConfig() {
  if (!config) config = api('/api/v1/map');
  return config;
}

// Where the map opens when there is nothing to fit: the first boundary, or the
// district of the demo organisation.
const FALLBACK = [37.5, 122.1];

// A map in `container`: tiles or the plain background, and the boundaries. Returns
// {map, L, fit(latlngs)}.
export async function makeMap(container, { zoom = 14 } = {}) {
  const [L, cfg] = await Promise.all([loadLeaflet(), mapConfig()]);
  container.classList.add('yw-map');
  // Nothing of the map may stick out past the page (the pages' tests check every
  // element at 360 px): the SVG layer no larger than the map (Leaflet pads it by a
  // tenth each side), and no zoom animation, whose proxy element is a huge
  // translated box. Zooming jumps instead, which slow phones do better anyway.
  const map = L.map(container, {
    zoomControl: true,
    attributionControl: !!cfg.tiles,
    renderer: L.svg({ padding: 0 }),
    zoomAnimation: false,
    // Quarter steps: the boundaries fill the map rather than half of it.
    zoomSnap: 0.25,
  });
  if (cfg.tiles) {
    L.tileLayer(cfg.tiles, { maxZoom: 19, subdomains: 'abc' }).addTo(map);
  } else {
    container.classList.add('plain');
  }
  let bounds = null;
  if (cfg.boundaries.length) {
    const layer = L.geoJSON(
      {
        type: 'FeatureCollection',
        features: cfg.boundaries.map((b) => ({
          type: 'Feature',
          properties: { unit: b.unit, name: b.name, kind: b.kind },
          geometry: b.geometry,
        })),
      },
      {
        style: (f) => ({ className: `yw-boundary kind-${f.properties.kind}`, weight: f.properties.kind === 'grid' ? 1 : 2, fill: true }),
        onEachFeature: (f, l) => l.bindTooltip(f.properties.name, { sticky: true }),
        interactive: true,
      },
    ).addTo(map);
    bounds = layer.getBounds();
    // Clicks on a boundary go to the map (the intake's point picker).
    layer.eachLayer((l) => l.on('click', (e) => map.fire('click', e)));
  }
  if (bounds && bounds.isValid()) map.fitBounds(bounds);
  else map.setView(FALLBACK, zoom);
  const fit = (latlngs) => {
    if (!latlngs.length) return;
    const b = L.latLngBounds(latlngs);
    if (bounds && bounds.isValid()) b.extend(bounds);
    map.fitBounds(b, { padding: [16, 16], maxZoom: 16 });
  };
  return { map, L, cfg, fit };
}

// The point of a ticket, or null.
export function pointOf(ticket) {
  const l = ticket.location || {};
  return typeof l.lat === 'number' && typeof l.lon === 'number' ? [l.lat, l.lon] : null;
}

// The colour class of a ticket: overdue above its state.
export function pointClass(ticket) {
  return ticket.overdue && ticket.state !== 'closed' ? 'pt-overdue' : `pt-${ticket.state}`;
}

// Draws `tickets` as points on `m` (from makeMap) in a layer it returns; a click on
// a point opens the ticket page (or calls onPick).
export function drawTickets(m, tickets, { onPick } = {}) {
  const { L, map } = m;
  const layer = L.layerGroup().addTo(map);
  const pts = [];
  for (const tk of tickets) {
    const p = pointOf(tk);
    if (!p) continue;
    pts.push(p);
    const mk = L.circleMarker(p, { radius: 7, weight: 2, fillOpacity: 0.85, className: `yw-pt ${pointClass(tk)}` });
    const state = tk.overdue && tk.state !== 'closed' ? `${t(`state.${tk.state}`)} · ${t('map.overdue')}` : t(`state.${tk.state}`);
    mk.bindTooltip(`${tk.number} · ${state}`);
    mk.on('click', () => (onPick ? onPick(tk) : (location.href = `/tickets/${tk.id}`)));
    mk.addTo(layer);
  }
  return { layer, points: pts };
}

// The legend under a map: the colours of the states and of overdue.
export function legend() {
  const states = ['accepted', 'assigned', 'handled', 'verified'];
  return el('p', { class: 'map-legend muted' },
    states.map((s) => el('span', { class: 'lg' }, el('i', { class: `dot pt-${s}` }), t(`state.${s}`))),
    el('span', { class: 'lg' }, el('i', { class: 'dot pt-overdue' }), t('map.overdue')));
}
