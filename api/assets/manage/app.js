// The management pages: sign in (a login session, or a pasted API key), choose the organisation, and route
// #/devices, #/device/ID, #/onboard, #/bulk, #/codecs, #/gateways, #/alerts, #/keys, #/members. What a person may not
// do is not offered (the API refuses it anyway).
import { auth, detect, useKey, loadOrgs, chooseOrg, role, can, signOut } from './api.js';
import { h, errorBox } from './ui.js';
import { devicesPage, devicePage } from './devices.js';
import { onboardPage, bulkPage } from './onboard.js';
import { codecsPage, gatewaysPage, keysPage, membersPage } from './admin.js';
import { alertsPage } from './alerts.js';

const $ = id => document.getElementById(id);

const PAGES = {
  devices: devicesPage, device: devicePage, onboard: onboardPage, bulk: bulkPage,
  codecs: codecsPage, gateways: gatewaysPage, keys: keysPage, members: membersPage, alerts: alertsPage,
};
const NEEDS = { onboard: 'editor', bulk: 'editor', keys: 'admin', members: 'admin' };

async function route() {
  const [page, ...rest] = (location.hash.replace(/^#\/?/, '') || 'devices').split('/');
  const name = PAGES[page] ? page : 'devices';
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('active', a.dataset.page === name);
    a.hidden = a.dataset.needs ? !can(a.dataset.needs) : false;
  }
  const view = h('div', { 'data-page': name, 'data-role': role() });
  $('view').replaceChildren(view);
  if (NEEDS[name] && !can(NEEDS[name])) {
    view.append(h('p', {}, `This needs the ${NEEDS[name]} role in ${auth.org}; you are ${role()}.`));
    return;
  }
  try { await PAGES[name](view, ...rest.map(decodeURIComponent)); }
  catch (e) {
    if (e.status === 401) { showSignIn(await detect(), e.message); return; }
    view.append(errorBox(e));
  }
}

function showSignIn(how, error) {
  $('nav').hidden = true; $('view').replaceChildren();
  $('sign-in').hidden = false;
  $('login-row').hidden = how === 'key-only';
  $('key-intro').textContent = how === 'key-only'
    ? 'Paste an API key of your organisation. It is kept in this browser tab only and sent as Authorization: Bearer.'
    : 'Or, for machines and until your login is set up, paste an API key (kept in this browser tab only).';
  $('key-error').textContent = error || '';
}

async function start() {
  const how = await detect();
  if (how === 'login' || how === 'key-only') { showSignIn(how); return; }
  try { await loadOrgs(); }
  catch (e) {
    sessionStorage.removeItem('bydata.manage.key');
    showSignIn(await detect(), e.status === 401 ? `That key is not accepted: ${e.message}` : e.message);
    return;
  }
  $('sign-in').hidden = true;
  $('nav').hidden = false;
  $('sign-out').hidden = false;
  const orgs = auth.orgs;
  $('org').replaceChildren(...orgs.map(o => h('option', { value: o.id, selected: o.id === auth.org }, `${o.name} (${o.your_role})`)));
  $('org-switch').hidden = orgs.length < 2;
  const who = auth.mode === 'session' ? (auth.me.name || auth.me.email || auth.me.subject) : 'API key';
  $('who').textContent = auth.org ? `${who} · ${role()} in ${auth.org}` : `${who} · no organisation`;
  $('who').dataset.role = role();
  if (!auth.org) { $('view').replaceChildren(h('p', {}, 'You have no role in any organisation yet: ask an admin to add you.')); return; }
  route();
}

$('key-form').addEventListener('submit', async ev => {
  ev.preventDefault();
  useKey($('key').value);
  $('key').value = '';
  start();
});
$('sign-out').addEventListener('click', signOut);
$('org').addEventListener('change', e => { chooseOrg(e.target.value); start(); });
window.addEventListener('hashchange', () => { if (auth.mode && auth.org) route(); });
start();
