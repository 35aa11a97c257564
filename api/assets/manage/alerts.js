// The alerts page (#/alerts): the organisation's current alerts (firing first), their rules and silences.
// Editors add rules and silences here; the server evaluates the rules, this page only shows what it found.
import { api, auth, can } from './api.js';
import { h, ago, errorBox, flash } from './ui.js';

const table = (id, heads, rows) => h('table', { id }, h('thead', {}, h('tr', {}, heads.map(t => h('th', {}, t)))), h('tbody', {}, rows));
const rerender = () => window.dispatchEvent(new HashChangeEvent('hashchange'));
const ORDER = { firing: 0, pending: 1, resolved: 2 };

/** What a rule watches, in words. */
function condition(r) {
  const c = r.condition;
  const what = c.kind === 'silence' ? `silent longer than ${c.every || 'its interval'}${c.learn ? ' (learned)' : ''}`
    : c.kind === 'threshold' ? `${c.measurement} ${c.above !== undefined ? '> ' + c.above : '< ' + c.below}`
    : c.kind === 'refusals' ? `more than ${c.above || 0} refusals in ${c.window}`
    : `battery below ${c.below}`;
  return r.for ? `${what} for ${r.for}` : what;
}

export async function alertsPage(view) {
  const [{ alerts, counts }, { rules }, { silences }] = await Promise.all([
    api('GET', `/api/v1/alerts?org=${encodeURIComponent(auth.org)}`),
    api('GET', '/api/v1/alert-rules'), api('GET', '/api/v1/silences')]);
  const mine = rules.filter(r => r.org === auth.org);
  const names = Object.fromEntries(mine.map(r => [r.id, r.name]));
  alerts.sort((a, b) => ORDER[a.state] - ORDER[b.state]);
  view.append(h('h1', {}, 'Alerts'),
    h('p', { id: 'alert-counts' }, ['firing', 'pending', 'resolved'].map(s =>
      h('span', { class: `state ${s === 'firing' ? 'refusing' : s === 'pending' ? 'overdue' : 'sending'}`, 'data-count': s }, `${counts[s] || 0} ${s}`)), ' '),
    table('alerts', ['State', 'Object', 'What', 'Since', 'Rule', 'Group'], alerts.map(a => h('tr', { 'data-state': a.state },
      h('td', {}, a.state + (a.silenced ? ' (silenced)' : '')), h('td', {}, h('code', {}, a.object)), h('td', {}, a.summary),
      h('td', {}, ago(a.since)), h('td', {}, names[a.rule] || a.rule_name), h('td', {}, h('code', {}, a.group))))),
    alerts.length ? null : h('p', { class: 'muted' }, 'No alerts: nothing is wrong, or no rule watches it yet.'),
    h('h2', {}, 'Rules'),
    table('alert-rules', ['Name', 'Condition', 'Channels', ''], mine.map(r => h('tr', {},
      h('td', {}, r.name + (r.enabled === false ? ' (disabled)' : '')), h('td', {}, condition(r)), h('td', {}, (r.channels || []).join(', ')),
      h('td', {}, can('editor') ? h('button', { class: 'danger', type: 'button', onclick: async () => {
        if (!confirm(`Delete rule ${r.name} and its alerts?`)) return;
        try { await api('DELETE', `/api/v1/alert-rules/${r.id}`); rerender(); } catch (e) { flash(e.message); }
      } }, 'Delete') : '')))),
    h('h2', {}, 'Silences'),
    table('silences', ['Until', 'Rule', 'Devices', 'Comment', ''], silences.filter(s => s.org === auth.org && s.active).map(s => h('tr', {},
      h('td', {}, s.ends_at), h('td', {}, names[s.rule] || s.rule || 'all rules'), h('td', {}, (s.devices || []).join(', ') || 'all'),
      h('td', {}, s.comment || ''),
      h('td', {}, can('editor') ? h('button', { type: 'button', onclick: async () => {
        try { await api('DELETE', `/api/v1/silences/${s.id}`); rerender(); } catch (e) { flash(e.message); }
      } }, 'End') : '')))));
  if (!can('editor')) return;
  const out = h('div');
  const form = h('form', { class: 'grid panel', id: 'rule-form' },
    h('label', {}, 'Name'), h('input', { name: 'name', required: true, value: 'quiet sensors' }),
    h('label', {}, 'Silent longer than'), h('input', { name: 'every', required: true, value: '1h', pattern: '[0-9]+(ms|s|m|h|d)' }),
    h('label', {}, 'Learn from uplinks'), h('input', { name: 'learn', type: 'checkbox', checked: true }),
    h('label', {}, 'Devices with tag (key=value, empty: all)'), h('input', { name: 'tag' }),
    h('label', {}, 'Channels (comma-separated)'), h('input', { name: 'channels' }),
    h('div', { class: 'full' }, h('button', { class: 'primary' }, 'Add silence rule')));
  form.addEventListener('submit', async ev => {
    ev.preventDefault();
    const f = new FormData(form);
    const [k, v] = (f.get('tag') || '').split('=');
    const body = { name: f.get('name'), org: auth.org,
      condition: { kind: 'silence', every: f.get('every'), ...(f.get('learn') ? { learn: {} } : {}) },
      select: k && v !== undefined ? { tags: { [k]: v } } : { all: 'devices' },
      channels: (f.get('channels') || '').split(',').map(c => c.trim()).filter(Boolean) };
    try { await api('POST', '/api/v1/alert-rules', body); flash('rule added'); rerender(); } catch (e) { out.replaceChildren(errorBox(e)); }
  });
  view.append(h('h2', {}, 'Add a rule'), form, out);
}
