// Small DOM helpers, times in words, a device's state, and the SVG line chart. No framework.

/** Makes an element: h('a', {href: '#'}, 'text', child…). Attributes starting with "on" become listeners. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

export function flash(text) {
  const f = document.getElementById('flash');
  f.textContent = text; f.hidden = false;
  clearTimeout(flash.t); flash.t = setTimeout(() => { f.hidden = true; }, 4000);
}

/** An API error in words, with every problem it names as a list (bad CSV rows, bad fields). */
export function errorBox(e) {
  const box = h('div', { class: 'error', role: 'alert' }, h('p', {}, e.message));
  if (e.problems && e.problems.length) {
    box.append(h('ul', { class: 'problems' },
      e.problems.map(p => h('li', { 'data-field': p.field }, p.field ? h('strong', {}, p.field + ': ') : '', p.message))));
  }
  return box;
}

export function time(s) {
  if (!s) return '—';
  const d = new Date(s);
  return isNaN(d) ? s : d.toLocaleString();
}

export function ago(s, now = Date.now()) {
  if (!s) return 'never';
  const secs = Math.round((now - Date.parse(s)) / 1000);
  if (secs < 60) return `${Math.max(secs, 0)} s ago`;
  if (secs < 3600) return `${Math.round(secs / 60)} min ago`;
  if (secs < 86400) return `${Math.round(secs / 3600)} h ago`;
  return `${Math.round(secs / 86400)} d ago`;
}

/** Runs `f` over `items`, at most `n` at a time (the browser and bydata both stay responsive). */
export async function mapLimit(items, n, f) {
  const out = new Array(items.length);
  let next = 0;
  const worker = async () => { while (next < items.length) { const i = next++; out[i] = await f(items[i], i); } };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  return out;
}

const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** The newest refusal of a device, in words, from its status: a payload refused (`last_error`) or a login
 *  refused at the broker or a LoRaWAN frame that failed its check (`unverified_attempts`). */
export function lastRefusal(status) {
  const out = [];
  if (status.last_error) out.push({ time: status.last_error.time, words: status.last_error.reason });
  const u = status.unverified_attempts || {};
  if (u.last && (u.wrong_password || u.unverified_frames)) {
    const parts = [];
    if (u.wrong_password) parts.push(`${plural(u.wrong_password, 'login')} with a wrong password`);
    if (u.unverified_frames) parts.push(`${plural(u.unverified_frames, 'frame')} that failed the integrity check`);
    out.push({ time: u.last, words: `refused ${parts.join(' and ')} since ${time(u.since)}` });
  }
  out.sort((a, b) => Date.parse(b.time) - Date.parse(a.time));
  return out[0] || null;
}

/** sending / overdue / refusing / never: "refusing" when the newest thing the device did was refused;
 *  "overdue" when its last accepted message is older than `intervalSecs`. */
export function deviceState(status, intervalSecs, now = Date.now()) {
  const refusal = lastRefusal(status);
  const accepted = status.last_decoded || null;
  if (refusal && (!accepted || Date.parse(refusal.time) >= Date.parse(accepted))) return { state: 'refusing', refusal };
  if (!accepted) return { state: 'never', refusal };
  if (now - Date.parse(accepted) > intervalSecs * 1000) return { state: 'overdue', refusal };
  return { state: 'sending', refusal };
}

export const STATE_WORDS = { sending: 'sending', overdue: 'overdue', refusing: 'refusing', never: 'never sent' };

export function stateBadge(state) { return h('span', { class: `state ${state}`, 'data-state': state }, STATE_WORDS[state]); }

export function value(v, unit) {
  const n = typeof v === 'number' ? (Math.abs(v) >= 100 ? v.toFixed(0) : +v.toFixed(2)) : v;
  const u = { Cel: '°C', '%RH': '%' }[unit] || unit;
  return u ? `${n} ${u}` : `${n}`;
}

const SVG = 'http://www.w3.org/2000/svg';
function s(tag, attrs, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

/** A small line chart of `points` ([{time, value}], nulls are gaps), with min and max on the axis. */
export function lineChart(points, unit) {
  const W = 320, H = 120, L = 38, B = 18, T = 6;
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img' });
  const pts = points.filter(p => p.value !== null && p.value !== undefined)
    .map(p => ({ t: Date.parse(p.time), v: p.value }));
  svg.setAttribute('data-points', String(pts.length));
  if (!pts.length) { svg.append(s('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'axis' }, 'no values in the last 24 h')); return svg; }
  const t0 = Math.min(...pts.map(p => p.t)), t1 = Math.max(...pts.map(p => p.t));
  let v0 = Math.min(...pts.map(p => p.v)), v1 = Math.max(...pts.map(p => p.v));
  if (v0 === v1) { v0 -= 1; v1 += 1; }
  const x = t => L + (t1 === t0 ? (W - L) / 2 : (t - t0) / (t1 - t0) * (W - L - 4));
  const y = v => T + (1 - (v - v0) / (v1 - v0)) * (H - T - B);
  for (const v of [v0, v1]) {
    svg.append(s('line', { x1: L, x2: W, y1: y(v), y2: y(v), class: 'grid' }));
    svg.append(s('text', { x: L - 4, y: y(v) + 3, 'text-anchor': 'end', class: 'axis' }, value(v)));
  }
  const fmt = t => new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  svg.append(s('text', { x: L, y: H - 4, class: 'axis' }, fmt(t0)));
  svg.append(s('text', { x: W, y: H - 4, 'text-anchor': 'end', class: 'axis' }, fmt(t1) + (unit ? ` · ${unit}` : '')));
  if (pts.length === 1) svg.append(s('circle', { cx: x(pts[0].t), cy: y(pts[0].v), r: 3, class: 'line' }));
  else svg.append(s('polyline', { class: 'line', points: pts.map(p => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' ') }));
  return svg;
}

/** Text as a downloadable file. */
export function download(name, text, type = 'text/csv') {
  const a = h('a', { href: URL.createObjectURL(new Blob([text], { type })), download: name });
  document.body.append(a); a.click(); a.remove();
}

export function csvCell(v) {
  const t = v === null || v === undefined ? '' : String(v);
  return /[",\n\r]/.test(t) ? `"${t.replace(/"/g, '""')}"` : t;
}
