// The device list (search, filters, state, newest values, last refusal) and a device's own page.
import { api, auth, can } from './api.js';
import { h, time, ago, mapLimit, deviceState, lastRefusal, stateBadge, value, lineChart, errorBox, flash } from './ui.js';

/** A device is "overdue" when its last accepted message is older than this. bydata keeps no expected
 *  interval per device: the person chooses one here (kept in this browser), 1 h unless they do. */
const INTERVALS = [[300, '5 min'], [900, '15 min'], [3600, '1 h'], [21600, '6 h'], [86400, '24 h']];
function interval() { return +(localStorage.getItem('bydata.manage.interval') || 3600); }

const filters = { q: '', tag: '', building: '', transport: '', state: '' };

/** Each device of the organisation with its status and newest values. */
async function load() {
  const { devices } = await api('GET', '/api/v1/devices');
  const mine = devices.filter(d => d.org === auth.org);
  return mapLimit(mine, 6, async d => {
    const [status, latest] = await Promise.all([
      api('GET', `/api/v1/devices/${encodeURIComponent(d.id)}/status`).catch(() => ({})),
      api('GET', `/api/v1/devices/${encodeURIComponent(d.id)}/latest`).catch(() => ({ latest: [] })),
    ]);
    return { device: d, status, latest: latest.latest || [], ...deviceState(status, interval()) };
  });
}

function matches(row) {
  const d = row.device, f = filters;
  const tags = Object.entries(d.tags || {}).map(([k, v]) => `${k}=${v}`);
  if (f.q && !`${d.id} ${d.name}`.toLowerCase().includes(f.q.toLowerCase())) return false;
  if (f.tag && !tags.some(t => t.toLowerCase().includes(f.tag.toLowerCase()))) return false;
  if (f.building && (d.tags || {}).building !== f.building) return false;
  if (f.transport && d.transport !== f.transport) return false;
  if (f.state && row.state !== f.state) return false;
  return true;
}

function deviceRow(row) {
  const d = row.device;
  const values = row.latest.slice(0, 3).map(l =>
    h('div', { class: 'value', 'data-measurement': l.measurement }, `${l.measurement}${l.field && l.field !== 'value' ? '.' + l.field : ''} `, h('strong', {}, value(l.value, l.unit))));
  const refusal = row.refusal
    ? h('div', { class: 'refusal' + (row.state === 'refusing' ? '' : ' old'), title: time(row.refusal.time) }, `${row.refusal.words} (${ago(row.refusal.time)})`)
    : null;
  return h('tr', { 'data-id': d.id, 'data-state': row.state },
    h('td', {}, h('a', { href: `#/device/${encodeURIComponent(d.id)}` }, d.id), h('div', { class: 'muted' }, d.name)),
    h('td', {}, d.transport),
    h('td', {}, Object.entries(d.tags || {}).map(([k, v]) => h('span', { class: 'tag' }, `${k}=${v}`))),
    h('td', {}, stateBadge(row.state), refusal),
    h('td', { class: 'values' }, values.length ? values : h('span', { class: 'muted' }, '—')),
    h('td', {}, ago(row.status.last_seen)));
}

export async function devicesPage(view) {
  const buildings = await api('GET', '/api/v1/buildings').then(b => b.buildings.filter(x => x.org === auth.org)).catch(() => []);
  const select = (name, options) => h('select', { 'data-filter': name, onchange: e => { filters[name] = e.target.value; draw(); } },
    options.map(([v, label]) => h('option', { value: v, selected: filters[name] === v }, label)));
  const input = (name, placeholder) => h('input', { 'data-filter': name, type: 'search', placeholder, value: filters[name],
    oninput: e => { filters[name] = e.target.value; draw(); } });
  const intervalSelect = h('select', { id: 'interval', onchange: e => { localStorage.setItem('bydata.manage.interval', e.target.value); refresh(); } },
    INTERVALS.map(([v, l]) => h('option', { value: v, selected: v === interval() }, l)));
  const table = h('table', { id: 'devices', 'data-count': '0' },
    h('thead', {}, h('tr', {}, ['Device', 'Transport', 'Tags', 'State', 'Newest values', 'Last seen'].map(t => h('th', {}, t)))),
    h('tbody'));
  const summary = h('p', { class: 'muted', id: 'summary' }, 'Loading…');
  view.append(
    h('h1', {}, 'Devices'),
    can('editor') ? h('div', { class: 'actions' },
      h('a', { class: 'button primary', href: '#/onboard', 'data-create': 'device' }, 'Onboard a device'),
      h('a', { class: 'button', href: '#/bulk', 'data-create': 'bulk' }, 'Bulk onboarding (CSV)')) : null,
    h('div', { class: 'filters' },
      h('label', {}, 'Search', input('q', 'id or name')),
      h('label', {}, 'Tag', input('tag', 'room=1.12')),
      h('label', {}, 'Building', select('building', [['', 'any'], ...buildings.map(b => [b.id, b.name])])),
      h('label', {}, 'Transport', select('transport', [['', 'any'], ['mqtt', 'MQTT'], ['lorawan', 'LoRaWAN']])),
      h('label', {}, 'State', select('state', [['', 'any'], ['sending', 'sending'], ['overdue', 'overdue'], ['refusing', 'refusing'], ['never', 'never sent']])),
      h('label', {}, 'Overdue after', intervalSelect)),
    summary, table,
    h('p', { class: 'hint' }, 'A device is overdue when its last accepted message is older than the interval chosen above (kept in this browser; 1 h unless changed). The list refreshes every 5 s.'));
  let rows = [];
  function draw() {
    const shown = rows.filter(matches);
    table.tBodies[0].replaceChildren(...shown.map(deviceRow));
    table.dataset.count = String(shown.length);
    const by = s => rows.filter(r => r.state === s).length;
    summary.textContent = `${rows.length} devices · ${by('sending')} sending · ${by('overdue')} overdue · ${by('refusing')} refusing · ${by('never')} never sent` +
      (shown.length === rows.length ? '' : ` · ${shown.length} shown`);
  }
  async function refresh() {
    try { rows = await load(); draw(); table.dataset.loaded = 'true'; }
    catch (e) { summary.replaceChildren(errorBox(e)); }
  }
  await refresh();
  const timer = setInterval(() => { if (document.body.contains(table)) refresh(); else clearInterval(timer); }, 5000);
}

export async function devicePage(view, id) {
  const path = `/api/v1/devices/${encodeURIComponent(id)}`;
  const [device, status, latest] = await Promise.all([api('GET', path), api('GET', `${path}/status`), api('GET', `${path}/latest`)]);
  const st = deviceState(status, interval());
  const refusal = lastRefusal(status);
  const battery = latest.latest.find(l => /batt/i.test(l.measurement) || /batt/i.test(l.field));
  const facts = h('dl', { class: 'facts' },
    h('dt', {}, 'State'), h('dd', {}, stateBadge(st.state)),
    h('dt', {}, 'Name'), h('dd', {}, device.name),
    h('dt', {}, 'Transport'), h('dd', {}, device.transport + (device.publish_topic ? ` · publishes to ${device.publish_topic}` : '')),
    h('dt', {}, 'Domain'), h('dd', {}, device.domain),
    h('dt', {}, 'Codec'), h('dd', {}, device.codec),
    h('dt', {}, 'Location'), h('dd', {}, device.location ? `${device.location.lat}, ${device.location.lon}` : '—'),
    h('dt', {}, 'Tags'), h('dd', {}, Object.entries(device.tags || {}).map(([k, v]) => h('span', { class: 'tag' }, `${k}=${v}`))),
    h('dt', {}, 'Battery'), h('dd', {}, battery ? value(battery.value, battery.unit) : 'not reported'),
    h('dt', {}, 'Radio'), h('dd', {}, (status.last_radio || []).length
      ? status.last_radio.map(r => h('div', {}, `${r.gateway}: RSSI ${r.rssi ?? '?'} dBm, SNR ${r.snr ?? '?'} dB`))
      : (device.transport === 'lorawan' ? 'no uplink heard yet' : 'not applicable (MQTT)')),
    h('dt', {}, 'Created'), h('dd', {}, time(device.created_at)));
  const latestTable = h('table', { id: 'latest' },
    h('thead', {}, h('tr', {}, ['Measurement', 'Field', 'Value', 'Time'].map(t => h('th', {}, t)))),
    h('tbody', {}, latest.latest.map(l => h('tr', {}, h('td', {}, l.measurement), h('td', {}, l.field), h('td', { class: 'num' }, value(l.value, l.unit)), h('td', {}, time(l.time)))),
      Object.entries(latest.state || {}).map(([k, t]) => h('tr', {}, h('td', {}, k), h('td', {}, 'text'), h('td', {}, t.value), h('td', {}, time(t.time))))));
  const history = h('table', {},
    h('thead', {}, h('tr', {}, ['When', 'What'].map(t => h('th', {}, t)))),
    h('tbody', {},
      [
        ...(status.decoded_by || []).map(r => ({ time: r.to, what: `decoded ${r.uplinks} uplink${r.uplinks === 1 ? '' : 's'} with ${r.codec} (${time(r.from)} – ${time(r.to)})` })),
        status.last_error && { time: status.last_error.time, what: `refused: ${status.last_error.reason}`, cls: 'error' },
        status.last_warning && { time: status.last_warning.time, what: `warning: ${status.last_warning.reason}` },
        refusal && refusal.words !== (status.last_error || {}).reason && { time: refusal.time, what: refusal.words, cls: 'error' },
      ].filter(Boolean).sort((a, b) => Date.parse(b.time) - Date.parse(a.time))
        .map(e => h('tr', { class: e.cls || '' }, h('td', {}, time(e.time)), h('td', {}, e.what)))));
  const counters = h('p', { class: 'muted' },
    `received ${status.received} · decoded ${status.decoded} · refused ${status.rejected} · values stored ${status.values_stored} · last seen ${ago(status.last_seen)}`);
  const charts = h('div', { class: 'charts', id: 'charts' });
  const secret = h('div');
  view.append(
    h('p', {}, h('a', { href: '#/devices' }, '← Devices')),
    h('h1', {}, device.id),
    h('div', { class: 'panel' }, facts, counters),
    can('editor') ? h('div', { class: 'actions' },
      device.transport === 'mqtt' ? h('button', { onclick: () => rotate(device, secret) }, 'New MQTT password') : null,
      h('button', { class: 'danger', onclick: () => remove(device) }, 'Delete device')) : null,
    secret,
    h('h2', {}, 'Latest values'), latestTable,
    h('h2', {}, 'Last 24 hours'), charts,
    h('h2', {}, 'Status history'), history);
  const to = new Date(), from = new Date(to - 86400e3);
  const wanted = [...new Map(latest.latest.map(l => [`${l.measurement}.${l.field}`, l])).values()].slice(0, 12);
  await mapLimit(wanted, 4, async l => {
    const q = new URLSearchParams({ measurement: l.measurement, field: l.field, device: device.id, from: from.toISOString(), to: to.toISOString(), every: '15m', fn: 'mean' });
    const answer = await api('GET', `/api/v1/query?${q}`).catch(() => ({ series: [] }));
    const points = (answer.series[0] || {}).points || [];
    charts.append(h('div', { class: 'chart', 'data-measurement': l.measurement },
      h('h3', {}, l.field === 'value' ? l.measurement : `${l.measurement}.${l.field}`), lineChart(points, l.unit)));
  });
}

async function rotate(device, into) {
  if (!confirm(`Make a new MQTT password for ${device.id}? The old one stops working for new connections.`)) return;
  try {
    const r = await api('POST', `/api/v1/devices/${encodeURIComponent(device.id)}/credentials`);
    into.replaceChildren(h('div', { class: 'secret' }, h('p', {}, 'The new password, shown only this once:'), h('pre', {}, r.mqtt.password)));
  } catch (e) { into.replaceChildren(errorBox(e)); }
}

async function remove(device) {
  if (!confirm(`Delete ${device.id}? Its stored history stays.`)) return;
  try { await api('DELETE', `/api/v1/devices/${encodeURIComponent(device.id)}`); flash(`${device.id} deleted`); location.hash = '#/devices'; }
  catch (e) { flash(e.message); }
}
