// Onboarding: one MQTT device through a form (its password shown once, with the broker and a ready
// mosquitto_pub line), or many from a CSV file (checked first, every bad row named; then all or nothing).
import { api, auth } from './api.js';
import { h, errorBox, download, csvCell } from './ui.js';

const DOMAINS = ['air', 'building', 'energy', 'environment', 'lighting', 'mobility', 'noise', 'parking', 'waste', 'water', 'weather'];

/** Where devices connect: the host this page was reached at, the ports bydata listens on. */
async function broker() {
  const b = await api('GET', '/api/v1/broker').catch(() => ({}));
  return { host: location.hostname, port: b.port, tls_port: b.tls_port };
}

const quote = s => `'${String(s).replace(/'/g, `'\\''`)}'`;

export function mosquittoLine(b, creds, sample = '{"temperature": 21.5}') {
  const tls = !b.port && b.tls_port;
  return ['mosquitto_pub', '-h', b.host, '-p', String(tls ? b.tls_port : b.port || 1883),
    ...(tls ? ['--capath', '/etc/ssl/certs'] : []),
    '-i', creds.client_id, '-u', creds.username, '-P', quote(creds.password),
    '-t', creds.publish_topic, '-q', '1', '-m', quote(sample)].join(' ');
}

function credentialsPanel(device, b) {
  const c = device.mqtt;
  const line = mosquittoLine(b, c);
  return h('div', { class: 'secret', id: 'credentials' },
    h('h2', {}, `${device.id} is onboarded`),
    h('p', {}, h('strong', {}, 'The password is shown only this once'), ': bydata keeps only its hash. Copy it now.'),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Broker'), h('dd', { id: 'broker' }, `${b.host} port ${b.port ?? '—'}${b.tls_port ? `, TLS port ${b.tls_port}` : ''}`),
      h('dt', {}, 'Client id'), h('dd', {}, h('code', {}, c.client_id)),
      h('dt', {}, 'Username'), h('dd', {}, h('code', {}, c.username)),
      h('dt', {}, 'Password'), h('dd', {}, h('code', { id: 'password' }, c.password)),
      h('dt', {}, 'Topic'), h('dd', {}, h('code', {}, c.publish_topic))),
    h('p', {}, 'Try it — this sends one reading as the device:'),
    h('pre', { id: 'mosquitto-line' }, line),
    h('div', { class: 'actions' },
      h('button', { type: 'button', onclick: () => navigator.clipboard && navigator.clipboard.writeText(line) }, 'Copy'),
      h('a', { class: 'button', href: `#/device/${encodeURIComponent(device.id)}` }, 'Open the device')));
}

export async function onboardPage(view) {
  const codecs = await api('GET', '/api/v1/codecs').then(c => c.codecs).catch(() => []);
  const out = h('div');
  const field = (label, input) => [h('label', { for: input.id }, label), input];
  const form = h('form', { class: 'grid panel', id: 'onboard-form' },
    ...field('Name', h('input', { id: 'f-name', required: true, maxlength: 200, placeholder: 'Room 1.12 climate' })),
    ...field('Id (optional)', h('input', { id: 'f-id', pattern: '[a-z0-9][a-z0-9._-]{0,63}', placeholder: 'made from the name when empty' })),
    ...field('Domain', h('select', { id: 'f-domain' }, DOMAINS.map(d => h('option', { value: d, selected: d === 'building' }, d)))),
    ...field('Codec', h('select', { id: 'f-codec' },
      ['auto', 'json', 'senml', 'cayenne'].map(c => h('option', { value: c }, c)),
      codecs.map(c => h('option', { value: `js:${c.name}` }, `js:${c.name} (newest, now v${c.version})`)))),
    ...field('Latitude', h('input', { id: 'f-lat', type: 'number', step: 'any', min: -90, max: 90 })),
    ...field('Longitude', h('input', { id: 'f-lon', type: 'number', step: 'any', min: -180, max: 180 })),
    ...field('Tags', h('textarea', { id: 'f-tags', rows: 3, placeholder: 'one key=value per line, e.g.\nbuilding=dokk1\nroom=1.12' })),
    h('div', { class: 'full' }, h('button', { class: 'primary', id: 'f-submit' }, 'Onboard (MQTT)'),
      h('span', { class: 'hint' }, ' LoRaWAN devices are onboarded through the API (POST /api/v1/devices with their keys).')));
  form.addEventListener('submit', async ev => {
    ev.preventDefault();
    const v = id => form.querySelector('#' + id).value.trim();
    const body = { name: v('f-name'), transport: 'mqtt', domain: v('f-domain'), codec: v('f-codec'), org: auth.org, tags: {} };
    if (v('f-id')) body.id = v('f-id');
    if (v('f-lat') || v('f-lon')) body.location = { lat: +v('f-lat'), lon: +v('f-lon') };
    for (const line of v('f-tags').split('\n').map(l => l.trim()).filter(Boolean)) {
      const i = line.indexOf('=');
      if (i < 1) { out.replaceChildren(errorBox({ message: `tag "${line}": write key=value` })); return; }
      body.tags[line.slice(0, i).trim()] = line.slice(i + 1).trim();
    }
    try {
      const [device, b] = await Promise.all([api('POST', '/api/v1/devices', body), broker()]);
      form.reset();
      out.replaceChildren(credentialsPanel(device, b));
    } catch (e) { out.replaceChildren(errorBox(e)); }
  });
  view.append(h('h1', {}, 'Onboard a device'), form, out);
}

export async function bulkPage(view) {
  const text = h('textarea', { id: 'csv', rows: 10, spellcheck: false,
    placeholder: 'id,name,domain,lat,lon,tag:building,tag:room,codec\nroom-1,Room 1.12,building,56.15,10.2,dokk1,1.12,json' });
  const file = h('input', { type: 'file', id: 'csv-file', accept: '.csv,text/csv',
    onchange: async () => { if (file.files[0]) { text.value = await file.files[0].text(); checked = null; go.disabled = true; } } });
  const out = h('div', { id: 'bulk-result' });
  let checked = null;
  const check = h('button', { type: 'button', class: 'primary', id: 'bulk-check', onclick: async () => {
    checked = null; go.disabled = true;
    try {
      const r = await api('POST', `/api/v1/devices/bulk?dry_run=true&org=${encodeURIComponent(auth.org)}`, text.value, 'text/csv');
      checked = text.value; go.disabled = false;
      out.replaceChildren(h('p', { class: 'ok', id: 'bulk-ok' }, `All ${r.count} rows are good. Nothing is created until you press “Onboard all”.`),
        h('table', { id: 'bulk-preview' }, h('thead', {}, h('tr', {}, ['Line', 'Id', 'Name', 'Domain', 'Location', 'Tags', 'Codec'].map(t => h('th', {}, t)))),
          h('tbody', {}, r.devices.map(d => h('tr', {}, h('td', {}, d.line), h('td', {}, d.id || h('span', { class: 'muted' }, 'from the name')), h('td', {}, d.name), h('td', {}, d.domain),
            h('td', {}, d.location ? `${d.location.lat}, ${d.location.lon}` : '—'), h('td', {}, Object.entries(d.tags).map(([k, v]) => h('span', { class: 'tag' }, `${k}=${v}`))), h('td', {}, d.codec))))));
    } catch (e) {
      out.replaceChildren(h('p', {}, 'Nothing was created. Fix these and check again:'), errorBox(e));
    }
  } }, 'Check');
  const go = h('button', { type: 'button', id: 'bulk-go', disabled: true, onclick: async () => {
    if (checked !== text.value) { go.disabled = true; out.replaceChildren(h('p', {}, 'The text changed: check it again.')); return; }
    try {
      const [r, b] = await Promise.all([api('POST', `/api/v1/devices/bulk?org=${encodeURIComponent(auth.org)}`, text.value, 'text/csv'), broker()]);
      go.disabled = true; checked = null;
      const csv = ['id,name,client_id,username,password,topic,host,port',
        ...r.devices.map(d => [d.id, d.name, d.mqtt.client_id, d.mqtt.username, d.mqtt.password, d.mqtt.publish_topic, b.host, b.port ?? ''].map(csvCell).join(','))].join('\n') + '\n';
      out.replaceChildren(h('div', { class: 'secret', id: 'bulk-created' },
        h('h2', {}, `${r.count} devices onboarded`),
        h('p', {}, h('strong', {}, 'Their passwords are shown only this once.'), ' Download them now:'),
        h('button', { class: 'primary', type: 'button', onclick: () => download(`bydata-credentials-${auth.org}.csv`, csv) }, 'Download credentials (CSV)'),
        h('table', {}, h('thead', {}, h('tr', {}, ['Id', 'Password', 'Topic'].map(t => h('th', {}, t)))),
          h('tbody', {}, r.devices.map(d => h('tr', {}, h('td', {}, d.id), h('td', {}, h('code', {}, d.mqtt.password)), h('td', {}, d.mqtt.publish_topic)))))));
    } catch (e) { out.replaceChildren(h('p', {}, 'Nothing was created:'), errorBox(e)); }
  } }, 'Onboard all');
  text.addEventListener('input', () => { go.disabled = checked !== text.value; });
  view.append(h('h1', {}, 'Bulk onboarding'),
    h('div', { class: 'panel' },
      h('p', {}, 'A CSV file, one MQTT device per line (at most 500). Columns: ', h('code', {}, 'name'), ' and ', h('code', {}, 'domain'),
        ' are required; ', h('code', {}, 'id, transport, lat, lon, codec'), ' and any ', h('code', {}, 'tag:KEY'),
        ' are optional. Excel’s semicolon files are read too. Either every row is good and all are created, or nothing is.'),
      h('p', {}, file), text, h('div', { class: 'actions' }, check, go)),
    out);
}
