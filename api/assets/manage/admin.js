// Codecs (upload with examples, try on bytes, versions), gateways, API keys and members.
import { api, auth, can } from './api.js';
import { h, time, ago, errorBox, flash } from './ui.js';

const table = (id, heads, rows) => h('table', { id }, h('thead', {}, h('tr', {}, heads.map(t => h('th', {}, t)))), h('tbody', {}, rows));
const rerender = () => window.dispatchEvent(new HashChangeEvent('hashchange'));

export async function codecsPage(view) {
  const codecs = (await api('GET', '/api/v1/codecs')).codecs;
  const versions = h('div');
  const showVersions = async c => {
    const all = await Promise.all(Array.from({ length: c.version }, (_, i) =>
      api('GET', `/api/v1/codecs/${encodeURIComponent(c.name)}/${c.version - i}`).catch(() => null)));
    versions.replaceChildren(h('h2', {}, `${c.name}: versions`), table('codec-versions', ['Version', 'Uploaded', 'Examples', 'SHA-256', 'Description'],
      all.filter(Boolean).map(v => h('tr', {}, h('td', {}, `v${v.version}`), h('td', {}, time(v.created_at)),
        h('td', {}, Array.isArray(v.examples) ? v.examples.length : ''), h('td', {}, h('code', {}, v.sha256.slice(0, 12))), h('td', {}, v.description)))));
  };
  view.append(h('h1', {}, 'Codecs'),
    table('codecs', ['Codec', 'Newest', 'Description', 'Examples', 'Uploaded', ''],
      codecs.map(c => h('tr', {}, h('td', {}, h('code', {}, c.codec)), h('td', {}, `v${c.version}`), h('td', {}, c.description),
        h('td', {}, c.examples), h('td', {}, time(c.created_at)), h('td', {}, h('button', { type: 'button', onclick: () => showVersions(c) }, 'Versions'))))),
    codecs.length ? null : h('p', { class: 'muted' }, 'No codecs yet.'),
    versions);
  if (!can('editor')) return;
  const out = h('div');
  const upload = h('form', { class: 'grid panel', id: 'codec-form' },
    h('label', {}, 'Name'), h('input', { name: 'name', required: true, pattern: '[a-z0-9][a-z0-9._-]{0,63}' }),
    h('label', {}, 'Description'), h('input', { name: 'description' }),
    h('label', { class: 'full' }, 'Script (decodeUplink, TS013)'),
    h('textarea', { class: 'full', name: 'script', rows: 8, required: true,
      value: 'function decodeUplink(input) {\n  return { data: { temperature: ((input.bytes[0] << 8) | input.bytes[1]) / 10 } };\n}\n' }),
    h('label', { class: 'full' }, 'Examples (JSON): each must decode as stated'),
    h('textarea', { class: 'full', name: 'examples', rows: 4, value: '[{"description": "22.6 °C", "fport": 1, "bytes_hex": "00e2", "expected": {"temperature": 22.6}}]' }),
    h('div', { class: 'full' }, h('button', { class: 'primary' }, 'Upload as the next version')));
  upload.addEventListener('submit', async ev => {
    ev.preventDefault();
    const f = new FormData(upload);
    let examples;
    try { examples = JSON.parse(f.get('examples') || '[]'); } catch (e) { out.replaceChildren(errorBox({ message: `examples: ${e.message}` })); return; }
    try {
      const r = await api('POST', '/api/v1/codecs', { name: f.get('name'), description: f.get('description'), script: f.get('script'), examples, org: auth.org });
      flash(`${r.codec || r.name} uploaded`); rerender();
    } catch (e) { out.replaceChildren(errorBox(e)); }
  });
  const trialOut = h('div', { id: 'trial-result' });
  const trial = h('form', { class: 'grid panel', id: 'trial-form' },
    h('label', {}, 'Codec'), h('select', { name: 'codec' }, h('option', { value: '' }, 'the script above'), codecs.map(c => h('option', { value: c.codec }, c.codec))),
    h('label', {}, 'fPort'), h('input', { name: 'fport', type: 'number', min: 0, max: 255, value: 1 }),
    h('label', {}, 'Bytes (hex)'), h('input', { name: 'bytes_hex', required: true, placeholder: '00e2' }),
    h('div', { class: 'full' }, h('button', {}, 'Try')));
  trial.addEventListener('submit', async ev => {
    ev.preventDefault();
    const f = new FormData(trial);
    const body = { fport: +f.get('fport'), bytes_hex: f.get('bytes_hex') };
    if (f.get('codec')) body.codec = f.get('codec'); else body.script = new FormData(upload).get('script');
    try {
      const r = await api('POST', '/api/v1/codecs/test', body);
      trialOut.replaceChildren(h('p', { class: r.ok ? 'ok' : 'error' }, r.ok ? 'Decodes; bydata would store:' : 'Would be refused:'),
        table('trial-readings', ['Measurement', 'Value', 'Unit'], r.readings.map(x => h('tr', {}, h('td', {}, x.measurement), h('td', {}, x.value), h('td', {}, x.unit || '')))),
        r.errors.length ? h('ul', { class: 'error' }, r.errors.map(e => h('li', {}, e))) : null,
        r.warnings.length ? h('ul', { class: 'muted' }, r.warnings.map(e => h('li', {}, e))) : null);
    } catch (e) { trialOut.replaceChildren(errorBox(e)); }
  });
  view.append(h('h2', {}, 'Upload a codec'), upload, out, h('h2', {}, 'Try a codec on bytes'), trial, trialOut);
}

export async function gatewaysPage(view) {
  const gateways = (await api('GET', '/api/v1/gateways')).gateways.filter(g => g.org === auth.org);
  view.append(h('h1', {}, 'Gateways'),
    table('gateways', ['EUI', 'Name', 'Last seen', 'Packets', 'Refused', 'Last error', ''],
      gateways.map(g => h('tr', {}, h('td', {}, h('code', {}, g.eui)), h('td', {}, g.name), h('td', {}, ago(g.status.last_seen)),
        h('td', { class: 'num' }, g.status.rx_packets), h('td', { class: 'num' }, g.status.rx_rejected),
        h('td', { class: 'error' }, g.status.last_error ? `${g.status.last_error.reason} (${ago(g.status.last_error.time)})` : ''),
        h('td', {}, can('editor') ? h('button', { class: 'danger', type: 'button', onclick: async () => {
          if (!confirm(`Remove gateway ${g.eui}?`)) return;
          try { await api('DELETE', `/api/v1/gateways/${g.eui}`); rerender(); } catch (e) { flash(e.message); }
        } }, 'Remove') : '')))),
    gateways.length ? null : h('p', { class: 'muted' }, 'No gateways yet.'));
  if (!can('editor')) return;
  const out = h('div');
  const form = h('form', { class: 'grid panel', id: 'gateway-form' },
    h('label', {}, 'EUI (16 hex digits)'), h('input', { name: 'eui', required: true, pattern: '[0-9a-fA-F]{16}' }),
    h('label', {}, 'Name'), h('input', { name: 'name', required: true }),
    h('label', {}, 'Latitude'), h('input', { name: 'lat', type: 'number', step: 'any' }),
    h('label', {}, 'Longitude'), h('input', { name: 'lon', type: 'number', step: 'any' }),
    h('div', { class: 'full' }, h('button', { class: 'primary' }, 'Add gateway')));
  form.addEventListener('submit', async ev => {
    ev.preventDefault();
    const f = new FormData(form);
    const body = { eui: f.get('eui'), name: f.get('name'), org: auth.org };
    if (f.get('lat') && f.get('lon')) body.location = { lat: +f.get('lat'), lon: +f.get('lon') };
    try { await api('POST', '/api/v1/gateways', body); flash('gateway added'); rerender(); } catch (e) { out.replaceChildren(errorBox(e)); }
  });
  view.append(h('h2', {}, 'Add a gateway'), form, out);
}

export async function keysPage(view) {
  if (!can('admin')) { view.append(h('h1', {}, 'Keys'), h('p', {}, 'API keys are managed by the organisation’s admins.')); return; }
  const tokens = (await api('GET', '/api/v1/tokens')).tokens.filter(t => t.org === auth.org);
  const out = h('div');
  view.append(h('h1', {}, 'API keys'),
    table('keys', ['Name', 'Role', 'State', 'Created', 'Expires', 'Last used', ''],
      tokens.map(t => h('tr', { 'data-state': t.state }, h('td', {}, t.name), h('td', {}, t.role), h('td', {}, t.state), h('td', {}, time(t.created_at)),
        h('td', {}, t.expires_at ? time(t.expires_at) : 'never'), h('td', {}, t.last_used_at ? ago(t.last_used_at) : 'never'),
        h('td', {}, t.state === 'active' ? h('button', { class: 'danger', type: 'button', onclick: async () => {
          if (!confirm(`Revoke “${t.name}”? It stops working at once.`)) return;
          try { await api('DELETE', `/api/v1/tokens/${encodeURIComponent(t.id)}`); rerender(); } catch (e) { flash(e.message); }
        } }, 'Revoke') : '')))));
  const form = h('form', { class: 'grid panel', id: 'key-create' },
    h('label', {}, 'Name'), h('input', { name: 'name', required: true, placeholder: 'dashboard at city hall' }),
    h('label', {}, 'Role'), h('select', { name: 'role' }, ['viewer', 'editor', 'admin'].map(r => h('option', { value: r }, r))),
    h('label', {}, 'Expires (optional)'), h('input', { name: 'expires', type: 'date' }),
    h('div', { class: 'full' }, h('button', { class: 'primary' }, 'Create key')));
  form.addEventListener('submit', async ev => {
    ev.preventDefault();
    const f = new FormData(form);
    const body = { name: f.get('name'), role: f.get('role'), org: auth.org };
    if (f.get('expires')) body.expires_at = new Date(f.get('expires') + 'T23:59:59').toISOString();
    try {
      const r = await api('POST', '/api/v1/tokens', body);
      out.replaceChildren(h('div', { class: 'secret' }, h('p', {}, h('strong', {}, `The key “${r.name}”, shown only this once:`)), h('pre', { id: 'new-key' }, r.token),
        h('button', { type: 'button', onclick: rerender }, 'Done')));
    } catch (e) { out.replaceChildren(errorBox(e)); }
  });
  view.append(h('h2', {}, 'Create a key'), form, out);
}

export async function membersPage(view) {
  if (!can('admin')) { view.append(h('h1', {}, 'Members'), h('p', {}, 'Members are managed by the organisation’s admins.')); return; }
  const base = `/api/v1/orgs/${encodeURIComponent(auth.org)}/members`;
  const members = (await api('GET', base)).members;
  const roleSelect = (value, onchange) => h('select', { onchange }, ['viewer', 'editor', 'admin'].map(r => h('option', { value: r, selected: r === value }, r)));
  const out = h('div');
  view.append(h('h1', {}, 'Members'),
    h('p', { class: 'muted' }, 'People who log in (by the subject or e-mail their identity provider gives) and their role here.'),
    table('members', ['Member', 'Role', 'Added', ''], members.map(m => h('tr', {}, h('td', {}, m.member),
      h('td', {}, roleSelect(m.role, async e => {
        try { await api('PUT', `${base}/${encodeURIComponent(m.member)}`, { role: e.target.value }); flash(`${m.member} is now ${e.target.value}`); } catch (err) { flash(err.message); }
      })),
      h('td', {}, time(m.added_at)),
      h('td', {}, h('button', { class: 'danger', type: 'button', onclick: async () => {
        if (!confirm(`Remove ${m.member}?`)) return;
        try { await api('DELETE', `${base}/${encodeURIComponent(m.member)}`); rerender(); } catch (e) { flash(e.message); }
      } }, 'Remove'))))));
  const form = h('form', { class: 'grid panel', id: 'member-add' },
    h('label', {}, 'Member'), h('input', { name: 'member', required: true, placeholder: 'person@example.dk' }),
    h('label', {}, 'Role'), roleSelect('viewer'),
    h('div', { class: 'full' }, h('button', { class: 'primary' }, 'Add or change')));
  form.querySelector('select').name = 'role';
  form.addEventListener('submit', async ev => {
    ev.preventDefault();
    const f = new FormData(form);
    try { await api('PUT', `${base}/${encodeURIComponent(f.get('member'))}`, { role: f.get('role') }); rerender(); } catch (e) { out.replaceChildren(errorBox(e)); }
  });
  view.append(h('h2', {}, 'Add a member'), form, out);
}
