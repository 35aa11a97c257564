// Talking to bydata's API, signed in one of two ways: a login session (its cookie, sent by the browser, and
// the CSRF token from /auth/me on every change) or an API key the person pasted (kept in this tab's
// sessionStorage, sent as a Bearer token). No other state is kept.
const KEY = 'bydata.manage.key';

export const auth = { mode: null, csrf: null, me: null, orgs: [], org: null };

export function pastedKey() { return sessionStorage.getItem(KEY); }
export function useKey(key) { sessionStorage.setItem(KEY, key.trim()); auth.mode = 'key'; }

/** How this person can sign in: 'key' (a pasted key), 'session' (logged in), 'login' (login is available,
 *  not logged in), 'key-only' (this bydata has no login: /auth/me is not there). */
export async function detect() {
  if (pastedKey()) { auth.mode = 'key'; return 'key'; }
  let r;
  try { r = await fetch('/auth/me', { credentials: 'same-origin', headers: { Accept: 'application/json' } }); }
  catch { return 'key-only'; }
  if (r.status === 200) {
    auth.me = await r.json();
    auth.csrf = auth.me.csrf_token || auth.me.csrf || null;
    auth.mode = 'session';
    return 'session';
  }
  return r.status === 404 ? 'key-only' : 'login';
}

export async function signOut() {
  if (auth.mode === 'session') {
    await fetch('/auth/logout', { method: 'POST', credentials: 'same-origin', redirect: 'manual',
      headers: auth.csrf ? { 'X-CSRF-Token': auth.csrf } : {} }).catch(() => {});
  }
  sessionStorage.removeItem(KEY);
  location.hash = '';
  location.reload();
}

/** An error answered by the API: its status, code, message and (for a bad body) every problem. */
export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status; this.code = e.code; this.problems = e.problems || [];
  }
}

/** Calls the API; `body` is JSON unless it is a string (then sent as `type`). Answers the parsed JSON. */
export async function api(method, path, body, type = 'application/json') {
  const headers = { Accept: 'application/json' };
  if (auth.mode === 'key') headers.Authorization = 'Bearer ' + pastedKey();
  else if (method !== 'GET' && auth.csrf) headers['X-CSRF-Token'] = auth.csrf;
  let payload;
  if (body !== undefined) {
    payload = typeof body === 'string' ? body : JSON.stringify(body);
    headers['Content-Type'] = typeof body === 'string' ? type : 'application/json';
  }
  const r = await fetch(path, { method, headers, body: payload, credentials: 'same-origin' });
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}

const RANK = { viewer: 1, editor: 2, admin: 3 };

/** The person's role in the current organisation. */
export function role() {
  const o = auth.orgs.find(o => o.id === auth.org);
  return (o && o.your_role) || 'viewer';
}

/** Whether the person holds at least `needed` in the current organisation. */
export function can(needed) { return (RANK[role()] || 0) >= (RANK[needed] || 0); }

/** Loads the organisations and chooses one (the remembered one, else the first with the highest role). */
export async function loadOrgs() {
  const { orgs } = await api('GET', '/api/v1/orgs');
  auth.orgs = orgs.filter(o => o.your_role);
  const remembered = localStorage.getItem('bydata.manage.org');
  const best = [...auth.orgs].sort((a, b) => (RANK[b.your_role] || 0) - (RANK[a.your_role] || 0))[0];
  auth.org = auth.orgs.some(o => o.id === remembered) ? remembered : best && best.id;
  return auth.orgs;
}

export function chooseOrg(id) { auth.org = id; localStorage.setItem('bydata.manage.org', id); }
