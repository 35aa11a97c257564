// The bydata dashboard: plain JavaScript, no libraries, everything from bydata's own API.
"use strict";

const $ = (id) => document.getElementById(id);
const NS = "http://www.w3.org/2000/svg";
let token = "";

function readToken() {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) {
    token = decodeURIComponent(m[1]);
    localStorage.setItem("bydata-token", token);
    history.replaceState(null, "", location.pathname);
  } else {
    token = localStorage.getItem("bydata-token") || "";
  }
}

// What to tell a person whose token does not get them in: none given, one bydata does not know, or one
// whose role may not read.
const TOKEN_WORDS = {
  unauthenticated: "a read token is needed: paste one below (an admin creates it: POST /api/v1/tokens with role \"read\")",
  invalid_token: "this token is not valid: it is mistyped or was revoked; paste another below",
  forbidden: "this token may not read the dashboard: it needs a read or admin token",
};

async function api(path) {
  const r = await fetch(path, { headers: { Authorization: "Bearer " + token } });
  if (r.ok) return r.json();
  const body = await r.json().catch(() => ({}));
  const code = (body.error && body.error.code) || "";
  if (r.status === 401 || r.status === 403) {
    $("token-form").hidden = false;
    throw new Error(TOKEN_WORDS[code] || TOKEN_WORDS[token ? "invalid_token" : "unauthenticated"]);
  }
  throw new Error(path + ": " + ((body.error && body.error.message) || r.status));
}

function svg(tag, attrs, parent) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (parent) parent.appendChild(el);
  return el;
}

const fmt = (v, digits) =>
  v === null || v === undefined ? "–" : Number(v).toLocaleString("da-DK", { maximumFractionDigits: digits ?? 1 });

function period(kind) {
  const now = new Date();
  if (kind === "day") return { every: "1h", from: new Date(now - 24 * 3600e3), label: (d) => d.slice(11, 16) };
  if (kind === "month") return { every: "1d", from: new Date(now - 30 * 86400e3), label: (d) => d.slice(8, 10) + "/" + d.slice(5, 7) };
  return { every: "1mo", from: new Date(now.getFullYear(), 0, 1), label: (d) => d.slice(5, 7) };
}

function drawChart(kpis, label) {
  const box = $("chart");
  box.textContent = "";
  const buckets = kpis.buckets;
  const W = 900, H = 260, L = 48, B = 24;
  const max = Math.max(1e-9, ...buckets.flatMap((b) => [b.consumption || 0, b.last_year || 0]));
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "consumption per bucket" }, box);
  const step = (W - L) / Math.max(1, buckets.length);
  const bw = Math.max(1, step * 0.4);
  let drawn = 0;
  for (let i = 0; i <= 4; i++) {
    const y = H - B - ((H - B - 10) * i) / 4;
    svg("line", { x1: L, x2: W, y1: y, y2: y, stroke: "#e6ebee" }, s);
    svg("text", { x: L - 6, y: y + 4, "text-anchor": "end", class: "axis" }, s).textContent = fmt((max * i) / 4, 0);
  }
  buckets.forEach((b, i) => {
    const x = L + i * step + step * 0.1;
    for (const [key, cls, dx] of [["last_year", "then", 0], ["consumption", "now", bw]]) {
      const v = b[key];
      if (v === null || v === undefined) continue;
      const h = ((H - B - 10) * v) / max;
      const r = svg("rect", { x: x + dx, y: H - B - h, width: bw, height: Math.max(0, h), class: "bar " + cls }, s);
      svg("title", {}, r).textContent = `${b.time}: ${fmt(v)} ${kpis.unit || ""}`;
      if (cls === "now" && v > 0) drawn++;
    }
    if (buckets.length <= 31 || i % Math.ceil(buckets.length / 31) === 0) {
      svg("text", { x: x + bw, y: H - 6, "text-anchor": "middle", class: "axis" }, s).textContent = label(b.time);
    }
  });
  box.dataset.bars = String(drawn);
  $("unit").textContent = kpis.unit ? `(${kpis.unit})` : "";
  const t = kpis.totals;
  $("totals").innerHTML = "";
  for (const [name, v, unit] of [
    ["Consumption", t.consumption, kpis.unit || ""],
    ["Per m²", t.per_m2, (kpis.unit || "") + "/m²"],
    ["Same period last year", t.last_year, kpis.unit || ""],
    ["CO2e", t.co2e_kg, "kg"],
  ]) {
    const d = document.createElement("div");
    d.innerHTML = `<dt></dt><dd></dd>`;
    d.querySelector("dt").textContent = name;
    d.querySelector("dd").textContent = `${fmt(v, 2)} ${unit}`;
    $("totals").appendChild(d);
  }
}

async function drawLatest(building, devices) {
  const body = $("latest").querySelector("tbody");
  body.textContent = "";
  let rows = 0;
  for (const d of devices.filter((d) => d.tags && d.tags.building === building)) {
    const latest = await api(`/api/v1/devices/${encodeURIComponent(d.id)}/latest`);
    for (const l of latest.latest || []) {
      const tr = document.createElement("tr");
      for (const [text, cls] of [[d.name, ""], [l.measurement, ""], [`${fmt(l.value, 2)} ${l.unit || ""}`, "num"], [l.time.slice(11, 16), ""]]) {
        const td = document.createElement("td");
        td.textContent = text;
        if (cls) td.className = cls;
        tr.appendChild(td);
      }
      body.appendChild(tr);
      rows++;
    }
    // Fields the device sent as text (a firmware version, a door's "open") are its state, shown as written.
    for (const [field, t] of Object.entries(latest.state || {})) {
      const tr = document.createElement("tr");
      tr.className = "text-state";
      for (const text of [d.name, field, t.value, t.time.slice(11, 16)]) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.appendChild(td);
      }
      body.appendChild(tr);
      rows++;
    }
  }
  $("latest").dataset.rows = String(rows);
}

async function drawMap() {
  const geo = await api("/api/v1/devices.geojson");
  const box = $("map");
  box.textContent = "";
  const pts = geo.features.map((f) => ({ lon: f.geometry.coordinates[0], lat: f.geometry.coordinates[1], p: f.properties }));
  if (!pts.length) return;
  const W = 400, H = 300, pad = 24;
  const lons = pts.map((p) => p.lon), lats = pts.map((p) => p.lat);
  const [x0, x1, y0, y1] = [Math.min(...lons), Math.max(...lons), Math.min(...lats), Math.max(...lats)];
  // Equirectangular, corrected for latitude so Aarhus is not stretched.
  const k = Math.cos(((y0 + y1) / 2) * Math.PI / 180);
  const span = Math.max((x1 - x0) * k, y1 - y0, 1e-4);
  const sx = (lon) => pad + ((lon - x0) * k / span) * (W - 2 * pad);
  const sy = (lat) => H - pad - ((lat - y0) / span) * (H - 2 * pad);
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "device map" }, box);
  svg("rect", { x: 0, y: 0, width: W, height: H, class: "land", rx: 6 }, s);
  for (const p of pts) {
    const c = svg("circle", { cx: sx(p.lon), cy: sy(p.lat), r: 6, class: "dev " + (p.p.transport || "") }, s);
    svg("title", {}, c).textContent = `${p.p.name} (${p.p.id})`;
  }
  box.dataset.points = String(pts.length);
}

/// How a device is doing, in words a sensor owner reads at a glance.
function deviceState(s) {
  if (!s.last_seen) return ["never", "never sent"];
  const age = (Date.now() - Date.parse(s.last_seen)) / 1000;
  if (s.last_error && Date.parse(s.last_error.time) >= Date.parse(s.last_decoded || 0)) return ["refusing", "last message refused"];
  if (age > 3600) return ["quiet", "quiet for " + Math.round(age / 3600) + " h"];
  return ["ok", "sending"];
}

/// A time from an answer (RFC 3339; older answers gave Unix nanoseconds) as the reader's local date and time.
const when = (t) => {
  if (t === null || t === undefined || t === "") return "–";
  const d = typeof t === "number" ? new Date(t / 1e6) : new Date(t);
  return isNaN(d) ? String(t) : d.toLocaleString("da-DK", { dateStyle: "short", timeStyle: "medium" });
};

const ago = (t) => {
  if (!t) return "–";
  const s = Math.max(0, (Date.now() - Date.parse(t)) / 1000);
  return s < 90 ? Math.round(s) + " s ago" : s < 5400 ? Math.round(s / 60) + " min ago" : Math.round(s / 3600) + " h ago";
};

async function drawDevices(devices) {
  const body = $("devices").querySelector("tbody");
  body.textContent = "";
  let sending = 0;
  const statuses = await Promise.all(devices.map((d) => api(`/api/v1/devices/${encodeURIComponent(d.id)}/status`)));
  devices.forEach((d, i) => {
    const s = statuses[i];
    const [cls, words] = deviceState(s);
    if (cls === "ok") sending++;
    const tr = document.createElement("tr");
    tr.dataset.device = d.id;
    const cells = [d.name + " (" + d.id + ")", d.transport, d.codec, "", ago(s.last_seen), s.received, s.decoded, s.rejected];
    cells.forEach((text, k) => {
      const td = document.createElement("td");
      if (k === 3) {
        const span = document.createElement("span");
        span.className = "state " + cls;
        span.textContent = words;
        td.appendChild(span);
      } else {
        td.textContent = String(text);
      }
      if (k >= 5) td.className = "num";
      tr.appendChild(td);
    });
    tr.addEventListener("click", () => showDevice(d, s).catch(show));
    body.appendChild(tr);
  });
  $("devices").dataset.devices = String(devices.length);
  $("devices").dataset.sending = String(sending);
}

async function showDevice(d, s) {
  const box = $("device-detail");
  const latest = await api(`/api/v1/devices/${encodeURIComponent(d.id)}/latest`);
  box.hidden = false;
  box.textContent = "";
  const h = document.createElement("h3");
  h.textContent = d.name;
  box.appendChild(h);
  const line = (text, cls) => {
    const p = document.createElement("p");
    p.textContent = text;
    if (cls) p.className = cls;
    box.appendChild(p);
  };
  line(`Last seen ${ago(s.last_seen)}; ${s.received} messages received, ${s.decoded} decoded into ${s.values_stored} values, ${s.rejected} refused.`);
  if (s.last_error) line(`Last refusal (${when(s.last_error.time)}): ${s.last_error.reason}`, "error");
  if (s.last_warning) line(`Last warning (${when(s.last_warning.time)}): ${s.last_warning.reason}`, "warning");
  for (const r of s.decoded_by || []) line(`Decoded by ${r.codec}: ${r.uplinks} uplinks, ${when(r.from)} – ${when(r.to)}`);
  if ((s.last_radio || []).length) line("Heard by " + s.last_radio.map((r) => `${r.gateway} (${r.rssi} dBm, SNR ${r.snr} dB)`).join(", "));
  const values = (latest.latest || []).map((l) => `${l.measurement} ${fmt(l.value, 2)} ${l.unit || ""}`).join(" · ");
  line(values ? "Latest values: " + values : "No values stored yet.");
  const texts = Object.entries(latest.state || {}).map(([field, t]) => `${field} "${t.value}" (${t.time})`).join(" · ");
  if (texts) line("Text state: " + texts);
}

// The count of firing alerts the token's organisations have, linking to the management page's list.
async function drawAlerts() {
  const { counts } = await api("/api/v1/alerts?state=firing");
  const n = counts.firing || 0;
  const badge = $("alerts-badge");
  badge.textContent = n === 1 ? "1 alert firing" : `${n} alerts firing`;
  badge.dataset.firing = String(n);
  badge.classList.toggle("firing", n > 0);
  badge.hidden = false;
}

async function refresh(state) {
  const building = $("building").value;
  if (!building) return;
  const p = period($("period").value);
  $("status").textContent = "loading…";
  const q = new URLSearchParams({ measurement: "energy_kwh", every: p.every, from: p.from.toISOString(), to: new Date().toISOString() });
  const kpis = await api(`/api/v1/buildings/${encodeURIComponent(building)}/kpis?${q}`);
  drawChart(kpis, p.label);
  await drawLatest(building, state.devices);
  $("status").textContent = "updated " + new Date().toLocaleTimeString("da-DK");
}

async function main() {
  readToken();
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    localStorage.setItem("bydata-token", $("token").value);
    location.reload();
  });
  try {
    const [buildings, devices] = await Promise.all([api("/api/v1/buildings"), api("/api/v1/devices")]);
    const state = { devices: devices.devices };
    for (const b of buildings.buildings) {
      const o = document.createElement("option");
      o.value = b.id;
      o.textContent = `${b.name} (${fmt(b.floor_area_m2, 0)} m²)`;
      $("building").appendChild(o);
    }
    $("building").addEventListener("change", () => refresh(state).catch(show));
    $("period").addEventListener("change", () => refresh(state).catch(show));
    // The badge is extra: a token that may not read alerts still gets the rest of the dashboard.
    await Promise.all([refresh(state), drawMap(), drawDevices(state.devices), drawAlerts().catch(() => {})]);
    setInterval(() => { refresh(state).catch(show); drawAlerts().catch(() => {}); }, 60_000);
  } catch (e) {
    show(e);
  }
}

function show(e) {
  $("status").textContent = String(e.message || e);
}

main();
