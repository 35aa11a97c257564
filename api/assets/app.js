// The bydata dashboard: plain JavaScript, no libraries, everything from bydata's own API (and, when the city
// configured one, street tiles from the one origin the page's Content-Security-Policy admits).
"use strict";

const $ = (id) => document.getElementById(id);
const NS = "http://www.w3.org/2000/svg";
const TZ = "Europe/Copenhagen";
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
  unauthenticated: "a read token is needed: paste one below (an admin creates it: POST /api/v1/tokens with role \"viewer\")",
  invalid_token: "this token is not valid: it is mistyped or was revoked; paste another below",
  forbidden: "this token may not read the dashboard: it needs a viewer, editor or admin token",
};

/// An API answer as JSON; a refusal as an Error whose `status` and `code` say which.
async function api(path) {
  const r = await fetch(path, { headers: { Authorization: "Bearer " + token } });
  if (r.ok) return r.json();
  const body = await r.json().catch(() => ({}));
  const code = (body.error && body.error.code) || "";
  if (r.status === 401) {
    $("token-form").hidden = false;
    throw new Error(TOKEN_WORDS[code] || TOKEN_WORDS[token ? "invalid_token" : "unauthenticated"]);
  }
  const e = new Error((body.error && body.error.message) || `${path}: HTTP ${r.status}`);
  e.status = r.status;
  e.code = code;
  throw e;
}

function svg(tag, attrs, parent) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (parent) parent.appendChild(el);
  return el;
}

function el(tag, text, cls, parent) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = text;
  if (cls) e.className = cls;
  if (parent) parent.appendChild(e);
  return e;
}

/// A number in Danish; below 1, three significant digits (0,0118 kWh/m², not 0,01).
const fmt = (v, digits) =>
  v === null || v === undefined
    ? "–"
    : Math.abs(v) < 1 && v !== 0
      ? Number(v).toLocaleString("da-DK", { maximumSignificantDigits: 3 })
      : Number(v).toLocaleString("da-DK", { maximumFractionDigits: digits ?? 1 });

// --- units as people write them -------------------------------------------------------------------------
// Series carry SenML symbols (RFC 8428): `Cel`, `%RH`, `m3`. People write °C, %, m³.
const UNIT_WORDS = { Cel: "°C", "%RH": "%", "%EL": "%", "/": "%", m3: "m³", m2: "m²", l: "L", count: "", lx: "lx", "km/h": "km/h" };
const unitText = (u) => (u === null || u === undefined ? "" : u in UNIT_WORDS ? UNIT_WORDS[u] : u);
const withUnit = (v, u, digits) => {
  const t = unitText(u);
  return v === null || v === undefined ? "–" : t ? `${fmt(v, digits)} ${t}` : fmt(v, digits);
};

// --- what there is to show: measurements by kind --------------------------------------------------------
const KINDS = [
  ["electricity", "Electricity", /electric|energy|elec|power|kwh/i],
  ["heat", "Heat", /heat|varme|district/i],
  ["water", "Water", /water|vand|m3/i],
  ["climate", "Indoor climate", /temp|humid|co2|voc|pm2|pm10|lux|illumin|noise|pressure/i],
];
// Cumulative meters (consumption per bucket, ranked per m²) against levels (a mean per bucket).
const CONSUMPTION_UNITS = new Set(["kWh", "MWh", "Wh", "m3", "l", "GJ", "MJ"]);

function kindOf(m) {
  const name = m.name;
  for (const [id, label, re] of KINDS) {
    if (id === "electricity" && /heat|varme|water/i.test(name)) continue;
    if (re.test(name)) return [id, label];
  }
  return ["other", "Other"];
}

// --- Europe/Copenhagen time -----------------------------------------------------------------------------
const PARTS = new Intl.DateTimeFormat("en-GB", {
  timeZone: TZ, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
  hour: "2-digit", minute: "2-digit", second: "2-digit",
});

/// Copenhagen's offset from UTC at instant `ms`, in minutes.
function offsetAt(ms) {
  const p = Object.fromEntries(PARTS.formatToParts(new Date(ms)).map((x) => [x.type, x.value]));
  const asUtc = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
  return Math.round((asUtc - Math.floor(ms / 1000) * 1000) / 60000);
}

/// The instant of 00:00 in Copenhagen on `date` (`2026-03-29`).
function midnight(date) {
  const [y, m, d] = date.split("-").map(Number);
  const guess = Date.UTC(y, m - 1, d);
  const first = guess - offsetAt(guess) * 60000;
  return guess - offsetAt(first) * 60000;
}

/// An instant as RFC 3339 in Copenhagen time (`2026-03-29T03:00:00+02:00`).
function rfc3339(ms) {
  const off = offsetAt(ms);
  const local = new Date(ms + off * 60000).toISOString().slice(0, 19);
  const a = Math.abs(off);
  return `${local}${off < 0 ? "-" : "+"}${String(Math.floor(a / 60)).padStart(2, "0")}:${String(a % 60).padStart(2, "0")}`;
}

/// Today's date in Copenhagen, `2026-12-08`, moved by `days`.
function today(days) {
  const t = rfc3339(Date.now()).slice(0, 10);
  const [y, m, d] = t.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d + (days || 0))).toISOString().slice(0, 10);
}

const DATE_TIME = new Intl.DateTimeFormat("da-DK", { timeZone: TZ, dateStyle: "short", timeStyle: "short" });
const DATE = new Intl.DateTimeFormat("da-DK", { timeZone: TZ, dateStyle: "medium" });
const MONTH = new Intl.DateTimeFormat("da-DK", { timeZone: TZ, month: "short", year: "numeric" });

/// A time from an answer (RFC 3339; older answers gave Unix nanoseconds) as Danish date and time.
const when = (t) => {
  if (t === null || t === undefined || t === "") return "–";
  const d = typeof t === "number" ? new Date(t / 1e6) : new Date(t);
  return isNaN(d) ? String(t) : DATE_TIME.format(d);
};

/// A bucket's start (RFC 3339 in Copenhagen time, as the API answers with tz) as a label for its width.
function bucketLabel(time, every) {
  const local = time.slice(0, 16);
  if (every === "1h") return local.slice(11, 13) === "00" ? `${local.slice(8, 10)}/${local.slice(5, 7)}` : local.slice(11, 16);
  if (every === "1mo") return MONTH.format(new Date(time));
  if (every === "1y") return local.slice(0, 4);
  return `${local.slice(8, 10)}/${local.slice(5, 7)}`;
}

// --- the analyst's choice -------------------------------------------------------------------------------
function selection(state) {
  const from = $("from").value, to = $("to").value;
  if (!from || !to) throw new Error("choose a from and a to date");
  if (to < from) throw new Error("the to date is before the from date: swap them");
  const fromMs = midnight(from);
  const toMs = midnight(new Date(Date.parse(to + "T00:00:00Z") + 86400e3).toISOString().slice(0, 10));
  const days = (toMs - fromMs) / 86400e3;
  let every = $("every").value;
  if (every === "auto") every = days <= 3 ? "1h" : days <= 62 ? "1d" : days <= 190 ? "1w" : "1mo";
  if (every === "1h" && days > 93) throw new Error("hourly over more than 93 days is too many bars: choose per day, week or month");
  const m = state.measurements.find((x) => x.name === $("measurement").value) || { name: "energy_kwh", units: ["kWh"], fields: ["value"] };
  const unit = (m.units || [])[0] || null;
  const building = state.buildings.find((b) => b.id === $("building").value) || null;
  return {
    measurement: m.name, field: (m.fields || []).includes("value") ? "value" : (m.fields || ["value"])[0],
    unit, kind: kindOf(m), consumption: CONSUMPTION_UNITS.has(unit) || /_kwh$|_m3$|_mwh$/.test(m.name),
    building, from, to, fromMs, toMs, every,
    period: `${DATE.format(new Date(fromMs))} – ${DATE.format(new Date(toMs - 1))}`,
  };
}

function params(s, extra) {
  return new URLSearchParams({ measurement: s.measurement, field: s.field, from: rfc3339(s.fromMs), to: rfc3339(s.toMs), tz: TZ, ...extra });
}

// --- axis ticks: labels on their grid lines, nice steps --------------------------------------------------
/// Ticks from `lo` to `hi` in steps of 1, 2 or 5 × 10^k, about `count` of them; the first and last enclose
/// the data, so the scale runs from tick to tick and every label sits on its line.
function niceTicks(lo, hi, count) {
  if (!(hi > lo)) { hi = lo + 1; }
  const raw = (hi - lo) / Math.max(1, count);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((f) => f * mag).find((s) => s >= raw);
  const first = Math.floor(lo / step + 1e-9) * step, last = Math.ceil(hi / step - 1e-9) * step;
  const ticks = [];
  const digits = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  for (let i = 0; first + i * step <= last + step / 2; i++) ticks.push(Number((first + i * step).toFixed(digits)));
  return { ticks, step, digits };
}

/// A value axis on `s` (width W, plot from `top` to `bottom`, left margin L); answers the scale.
function valueAxis(s, lo, hi, W, L, top, bottom, unit) {
  const { ticks, digits } = niceTicks(lo, hi, 5);
  const t0 = ticks[0], t1 = ticks[ticks.length - 1];
  const y = (v) => bottom - ((bottom - top) * (v - t0)) / (t1 - t0);
  for (const t of ticks) {
    const g = svg("g", { class: "tick", "data-value": String(t) }, s);
    const yy = y(t).toFixed(2);
    svg("line", { x1: L, x2: W, y1: yy, y2: yy, class: t === 0 ? "grid zero" : "grid" }, g);
    svg("text", { x: L - 6, y: yy, "text-anchor": "end", "dominant-baseline": "middle", class: "axis" }, g).textContent =
      Number(t).toLocaleString("da-DK", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  }
  if (unit) svg("text", { x: 4, y: top - 8, class: "axis unit" }, s).textContent = unit;
  return y;
}

// --- export exactly what is shown -----------------------------------------------------------------------
// The same two dialects as the query API's `format=csv` and `format=csv-da`: RFC 4180 with RFC 3339 times;
// or what Excel with Danish settings opens by double-click (BOM, semicolons, decimal commas, date-times it
// recognises plus a utc_offset column).
function csv(columns, rows, danish) {
  const sep = danish ? ";" : ",";
  const field = (v) => {
    let s = v === null || v === undefined ? "" : typeof v === "number" ? (danish ? String(v).replace(".", ",") : String(v)) : String(v);
    return s.includes(sep) || /["\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  const cols = [];
  for (const c of columns) {
    if (c.time && danish) cols.push(c.name, "utc_offset");
    else cols.push(c.name);
  }
  const lines = [cols.map(field).join(sep)];
  for (const r of rows) {
    const out = [];
    columns.forEach((c, i) => {
      const v = r[i];
      if (c.time && danish) out.push(v ? v.slice(0, 10) + " " + v.slice(11, 19) : "", v ? v.slice(19) || "+00:00" : "");
      else out.push(v);
    });
    lines.push(out.map(field).join(sep));
  }
  return (danish ? "\ufeff" : "") + lines.join("\r\n") + "\r\n";
}

function setExport(prefix, name, columns, rows) {
  for (const [suffix, danish] of [["csv", false], ["csv-da", true]]) {
    const a = $(`export-${prefix}-${suffix}`);
    a.href = "data:text/csv;charset=utf-8," + encodeURIComponent(csv(columns, rows, danish));
    a.download = `${name}${danish ? "-da" : ""}.csv`;
    a.dataset.rows = String(rows.length);
  }
}

function clearExport(prefix) {
  for (const suffix of ["csv", "csv-da"]) {
    const a = $(`export-${prefix}-${suffix}`);
    a.removeAttribute("href");
    a.dataset.rows = "0";
  }
}

// --- the main chart -------------------------------------------------------------------------------------
function noData(text) {
  $("chart-notes").textContent = "";
  $("no-data").hidden = !text;
  $("no-data").textContent = text || "";
  $("chart").dataset.empty = text ? "1" : "0";
}

/// Consumption per bucket of the building's meters against the same bucket a year earlier (the KPIs).
async function drawConsumption(s) {
  const b = s.building;
  const kpis = await api(`/api/v1/buildings/${encodeURIComponent(b.id)}/kpis?${params(s, { every: s.every })}`);
  const u = unitText(kpis.unit || s.unit);
  const buckets = kpis.buckets || [];
  const box = $("chart");
  box.textContent = "";
  $("chart-title").textContent = `${s.kind[1]} consumption — ${b.name}, ${s.period}`;
  $("unit").textContent = u ? `(${u} per ${{ "1h": "hour", "1d": "day", "1w": "week", "1mo": "month", "1y": "year" }[s.every]})` : "";
  $("legend").innerHTML = '<span class="swatch now"></span> this period <span class="swatch then"></span> same period last year';
  const values = buckets.flatMap((x) => [x.consumption, x.last_year]).filter((v) => v !== null && v !== undefined);
  const shown = buckets.filter((x) => x.consumption !== null && x.consumption !== undefined).length;
  box.dataset.bars = "0";
  box.dataset.series = "0";
  if (!shown) {
    noData(`No data: no ${s.measurement} readings of ${b.name} in ${s.period}.` + (kpis.notice ? " " + kpis.notice : ""));
    drawTotals([]);
    clearExport("chart");
    return;
  }
  noData("");
  const W = 900, H = 280, L = 64, B = 28, T = 24;
  const sv = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${s.measurement} per bucket` }, box);
  const y = valueAxis(sv, Math.min(0, ...values), Math.max(...values), W, L, T, H - B, u);
  const step = (W - L) / Math.max(1, buckets.length);
  const bw = Math.max(1, step * 0.4);
  let drawn = 0;
  const labelEvery = Math.ceil(buckets.length / 24);
  buckets.forEach((bk, i) => {
    const x = L + i * step + step * 0.1;
    for (const [key, cls, dx] of [["last_year", "then", 0], ["consumption", "now", bw]]) {
      const v = bk[key];
      if (v === null || v === undefined) continue;
      const y0 = y(0), y1 = y(v);
      const r = svg("rect", { x: x + dx, y: Math.min(y0, y1), width: bw, height: Math.abs(y0 - y1), class: "bar " + cls, "data-value": String(v) }, sv);
      svg("title", {}, r).textContent = `${bucketLabel(bk.time, s.every)}: ${withUnit(v, kpis.unit, 2)}`;
      if (cls === "now") drawn++;
    }
    if (i % labelEvery === 0) {
      svg("text", { x: x + bw, y: H - 8, "text-anchor": "middle", class: "axis" }, sv).textContent = bucketLabel(bk.time, s.every);
    }
  });
  box.dataset.bars = String(drawn);
  const t = kpis.totals || {};
  drawTotals([
    ["Consumption", withUnit(t.consumption, kpis.unit, 2)],
    ["Per m²", t.per_m2 === null || t.per_m2 === undefined ? "–" : `${fmt(t.per_m2, 3)} ${u}/m²`],
    ["Same period last year", withUnit(t.last_year, kpis.unit, 2)],
    ["CO2e", withUnit(t.co2e_kg, "kg", 1)],
  ]);
  drawChartNotes(kpis);
  setExport("chart", `${b.id}-${s.measurement}-${s.from}-${s.to}`,
    [{ name: "time", time: true }, { name: `consumption_${u || "value"}` }, { name: `last_year_${u || "value"}` }],
    buckets.map((bk) => [bk.time, bk.consumption, bk.last_year]));
}

// Where the CO2e's emission factors came from, hour by hour (Energinet's measured CO2Emis over its
// prognosis CO2EmisProg over factors imported by hand, else the stated fallback), and the meters' gaps.
const SOURCE_WORDS = { CO2Emis: "measured (Energinet)", CO2EmisProg: "prognosis (Energinet)" };

function drawChartNotes(kpis) {
  const box = $("chart-notes");
  box.textContent = "";
  const ef = kpis.emission_factor || {};
  const parts = Object.entries(ef.hours_by_source || {}).map(([src, h]) => `${h} h ${SOURCE_WORDS[src] || src}`);
  if (ef.hours_on_fallback) parts.push(`${ef.hours_on_fallback} h on the fallback of ${fmt(ef.fallback_g_per_kwh, 0)} g/kWh`);
  if (parts.length) el("p", `CO2e from emission factors: ${parts.join(", ")}.`, "hint", box);
  for (const g of kpis.gaps || []) el("p", `Gap, left out: ${gapWords(g)}.`, "hint gap", box);
}

/// A level (temperature, humidity, CO2) per bucket: the mean of each of the building's series.
async function drawLevels(s) {
  const b = s.building;
  const q = params(s, { every: s.every, fn: "mean", "tag.building": b.id });
  const answer = await api(`/api/v1/query?${q}`);
  const series = (answer.series || []).filter((x) => (x.points || []).some((p) => p.value !== null && p.value !== undefined));
  const box = $("chart");
  box.textContent = "";
  const unit = (series[0] && series[0].unit) || answer.unit || s.unit;
  const u = unitText(unit);
  $("chart-title").textContent = `${s.kind[1]}: ${s.measurement} — ${b.name}, ${s.period}`;
  $("unit").textContent = u ? `(${u}, mean per ${{ "1h": "hour", "1d": "day", "1w": "week", "1mo": "month" }[s.every]})` : "";
  box.dataset.bars = "0";
  box.dataset.series = "0";
  $("legend").textContent = "";
  if (!series.length) {
    noData(`No data: no ${s.measurement} readings of ${b.name} in ${s.period}.` + (answer.notice ? " " + answer.notice : ""));
    drawTotals([]);
    clearExport("chart");
    return;
  }
  noData("");
  const times = [...new Set(series.flatMap((x) => x.points.map((p) => p.time)))].sort();
  const values = series.flatMap((x) => x.points.map((p) => p.value)).filter((v) => typeof v === "number");
  const W = 900, H = 280, L = 64, B = 28, T = 24;
  const sv = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${s.measurement} per bucket` }, box);
  const y = valueAxis(sv, Math.min(...values), Math.max(...values), W, L, T, H - B, u);
  const x = (t) => L + 8 + ((W - L - 16) * times.indexOf(t)) / Math.max(1, times.length - 1);
  const labelEvery = Math.ceil(times.length / 24);
  times.forEach((t, i) => {
    if (i % labelEvery === 0) svg("text", { x: x(t), y: H - 8, "text-anchor": "middle", class: "axis" }, sv).textContent = bucketLabel(t, s.every);
  });
  const name = (x) => x.tags.device || Object.values(x.tags).join(" ");
  series.forEach((x0, k) => {
    const pts = x0.points.filter((p) => typeof p.value === "number").map((p) => `${x(p.time).toFixed(1)},${y(p.value).toFixed(1)}`);
    svg("polyline", { points: pts.join(" "), class: `line c${k % 6}`, "data-series": name(x0) }, sv);
    const sw = el("span", "", `swatch c${k % 6}`, $("legend"));
    sw.setAttribute("aria-hidden", "true");
    $("legend").appendChild(document.createTextNode(` ${name(x0)} `));
  });
  box.dataset.series = String(series.length);
  drawTotals(series.map((x0) => {
    const v = x0.points.map((p) => p.value).filter((v) => typeof v === "number");
    return [`${name(x0)}: mean`, withUnit(v.reduce((a, c) => a + c, 0) / v.length, unit, 1)];
  }));
  const cols = [{ name: "time", time: true }, ...series.map((x0) => ({ name: `${name(x0)}_${u || "value"}` }))];
  const rows = times.map((t) => [t, ...series.map((x0) => { const p = x0.points.find((p) => p.time === t); return p ? p.value : null; })]);
  setExport("chart", `${b.id}-${s.measurement}-${s.from}-${s.to}`, cols, rows);
}

function drawTotals(items) {
  $("totals").textContent = "";
  for (const [name, text] of items) {
    const d = el("div", null, null, $("totals"));
    el("dt", name, null, d);
    el("dd", text, null, d);
  }
}

// --- ranking per m² against last year -------------------------------------------------------------------
async function drawRanking(s, state) {
  const card = $("ranking-card");
  const body = $("ranking").querySelector("tbody");
  body.textContent = "";
  $("ranking-chart").textContent = "";
  $("ranking-chart").dataset.bars = "0";
  $("ranking").dataset.rows = "0";
  clearExport("ranking");
  if (!s.consumption) {
    $("ranking-title").textContent = "Buildings ranked per m²";
    $("ranking-note").textContent = `Ranking compares consumption; ${s.measurement} is a level, not a meter. Choose electricity, heat or water.`;
    return;
  }
  card.hidden = false;
  let r;
  try {
    r = await api(`/api/v1/buildings/ranking?${params(s)}`);
  } catch (e) {
    $("ranking-note").textContent = `The ranking is not available: ${e.message}`;
    return;
  }
  const u = unitText(r.unit || s.unit);
  $("ranking-title").textContent = `Buildings ranked by ${s.kind[1].toLowerCase()} per m², ${s.period}, against the same period last year`;
  const rows = r.buildings || [];
  const withData = rows.filter((b) => b.per_m2 !== null && b.per_m2 !== undefined);
  $("ranking-note").textContent = withData.length
    ? `${withData.length} of ${rows.length} buildings with data; highest consumption per m² first. Choose a building to see its meters.`
    : `No data: none of the ${rows.length} buildings has ${s.measurement} readings in ${s.period}.`;
  for (const b of rows) {
    const tr = el("tr", null, null, body);
    tr.dataset.building = b.id;
    const gaps = (b.gaps || []).length;
    const cells = [
      [b.rank === null || b.rank === undefined ? "–" : String(b.rank), "num"],
      [b.name, ""],
      [b.kind, ""],
      [`${fmt(b.floor_area_m2, 0)} m²`, "num"],
      [String(b.meters ?? "–"), "num"],
      [withUnit(b.consumption, r.unit, 1), "num"],
      [b.per_m2 === null || b.per_m2 === undefined ? "no data" : `${fmt(b.per_m2, 3)} ${u}/m²`, "num per-m2"],
      [b.last_year_per_m2 === null || b.last_year_per_m2 === undefined ? "no data" : `${fmt(b.last_year_per_m2, 3)} ${u}/m²`, "num"],
      [b.change_pct === null || b.change_pct === undefined ? "–" : `${b.change_pct > 0 ? "+" : ""}${fmt(b.change_pct, 1)} %`, "num"],
      [gaps ? `${gaps} gap${gaps > 1 ? "s" : ""}` : "", ""],
    ];
    for (const [text, cls] of cells) el("td", text, cls, tr);
    if (gaps) tr.lastChild.title = b.gaps.map(gapWords).join("\n");
    if (b.per_m2 !== null && b.per_m2 !== undefined) tr.querySelector(".per-m2").dataset.value = String(b.per_m2);
    tr.addEventListener("click", () => {
      $("building").value = b.id;
      refresh(state).catch(show);
    });
  }
  $("ranking").dataset.rows = String(rows.length);
  drawRankingChart(withData, u);
  setExport("ranking", `ranking-${s.measurement}-${s.from}-${s.to}`,
    ["rank", "building", "name", "kind", "floor_area_m2", "meters", `consumption_${u}`, `per_m2_${u}`, `last_year_per_m2_${u}`, "change_pct", "gaps"].map((name) => ({ name })),
    rows.map((b) => [b.rank, b.id, b.name, b.kind, b.floor_area_m2, b.meters, b.consumption, b.per_m2, b.last_year_per_m2, b.change_pct, (b.gaps || []).length]));
}

/// A span a meter's readings do not cover (left out of the consumption rather than guessed), in words.
function gapWords(g) {
  const meter = g.meter ? g.meter.metering_point || g.meter.device || Object.values(g.meter).join(" ") : "a meter";
  return `${meter}: no readings ${when(g.from)} – ${when(g.to)}${g.period === "last_year" ? " (last year)" : ""}`;
}

/// Horizontal bars per m², this period and last year, on one nice axis.
function drawRankingChart(rows, u) {
  const box = $("ranking-chart");
  if (!rows.length) return;
  const W = 900, L = 200, T = 28, row = 26, H = T + rows.length * row + 8;
  const sv = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "consumption per m² by building" }, box);
  const max = Math.max(...rows.flatMap((b) => [b.per_m2 || 0, b.last_year_per_m2 || 0]));
  const { ticks, digits } = niceTicks(0, max, 5);
  const x = (v) => L + ((W - L - 20) * v) / ticks[ticks.length - 1];
  for (const t of ticks) {
    const g = svg("g", { class: "tick", "data-value": String(t) }, sv);
    svg("line", { x1: x(t), x2: x(t), y1: T - 4, y2: H, class: "grid" }, g);
    svg("text", { x: x(t), y: T - 10, "text-anchor": "middle", class: "axis" }, g).textContent =
      Number(t).toLocaleString("da-DK", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  }
  svg("text", { x: 4, y: T - 10, class: "axis unit" }, sv).textContent = `${u}/m²`;
  rows.forEach((b, i) => {
    const y0 = T + i * row;
    svg("text", { x: L - 8, y: y0 + row / 2, "text-anchor": "end", "dominant-baseline": "middle", class: "label" }, sv).textContent = b.name;
    if (b.last_year_per_m2 !== null && b.last_year_per_m2 !== undefined) {
      svg("rect", { x: L, y: y0 + 3, width: x(b.last_year_per_m2) - L, height: 8, class: "bar then" }, sv);
    }
    svg("rect", { x: L, y: y0 + 12, width: x(b.per_m2) - L, height: 10, class: "bar now", "data-building": b.id, "data-value": String(b.per_m2) }, sv);
  });
  box.dataset.bars = String(rows.length);
}

// --- drill-down: the building's meters ------------------------------------------------------------------
/// Each series of the measurement in the building: its consumption in the period (or mean, for a level),
/// its share, and its latest reading.
async function drawMeters(s) {
  const b = s.building;
  const body = $("meters").querySelector("tbody");
  body.textContent = "";
  $("meters").dataset.rows = "0";
  clearExport("meters");
  $("meters-title").textContent = `Meters in ${b.name}: ${s.measurement}, ${s.period}`;
  const fn = s.consumption ? "consumption" : "mean";
  const whole = s.every; // per bucket, summed here, so a long period still uses calendar buckets
  let answer, used = fn;
  try {
    answer = await api(`/api/v1/query?${params(s, { every: whole, fn, "tag.building": b.id })}`);
  } catch (e) {
    // A store without fn=consumption (before it existed) answers increase, said so below.
    if (fn !== "consumption" || e.status !== 400) throw e;
    used = "increase";
    answer = await api(`/api/v1/query?${params(s, { every: whole, fn: used, "tag.building": b.id })}`);
  }
  const latest = await api(`/api/v1/query?${params(s, { "tag.building": b.id })}`).catch(() => ({ series: [] }));
  const series = answer.series || [];
  if (!series.length) {
    $("meters-note").textContent = `No data: no ${s.measurement} series in ${b.name} in ${s.period}.` + (answer.notice ? " " + answer.notice : "");
    return;
  }
  const key = (x) => JSON.stringify(x.tags);
  const lastOf = new Map((latest.series || []).map((x) => [key(x), (x.points || [])[x.points.length - 1]]));
  const rows = series.map((x) => {
    const v = x.points.map((p) => p.value).filter((v) => typeof v === "number");
    const total = !v.length ? null : s.consumption ? v.reduce((a, c) => a + c, 0) : v.reduce((a, c) => a + c, 0) / v.length;
    const meter = x.tags.metering_point || x.tags.meter || x.tags.device || Object.values(x.tags).join(" ");
    const gaps = x.points.filter((p) => p.value === null || p.value === undefined).length;
    return { meter, device: x.tags.device || "", total, gaps, unit: x.unit || s.unit, last: lastOf.get(key(x)) };
  });
  const sum = rows.reduce((a, r) => a + (r.total || 0), 0);
  for (const r of rows) {
    const tr = el("tr", null, null, body);
    tr.dataset.meter = r.meter;
    el("td", r.meter, "", tr);
    el("td", r.device, "", tr);
    el("td", withUnit(r.total, r.unit, 2), "num", tr);
    el("td", s.consumption && sum > 0 && r.total !== null ? `${fmt((100 * r.total) / sum, 1)} %` : "", "num", tr);
    el("td", r.last ? withUnit(r.last.value, r.unit, 2) : "–", "num", tr);
    el("td", r.last ? when(r.last.time) : "–", "", tr);
  }
  $("meters").dataset.rows = String(rows.length);
  const gaps = rows.reduce((a, r) => a + r.gaps, 0);
  const per = { "1h": "hour", "1d": "day", "1w": "week", "1mo": "month" }[s.every];
  // Buckets with a boundary before a meter's first reading or after its last are gaps (nothing to
  // interpolate): left out here, where the building's total above counts what the readings cover of them.
  $("meters-note").textContent = s.consumption
    ? `Consumption per meter, the sum of its ${per}s (${used === "consumption" ? "exact to their boundaries" : "increase: the store has no fn=consumption"}); shares of the building's ${withUnit(sum, s.unit, 2)}.` +
      (gaps ? ` ${gaps} ${per}${gaps > 1 ? "s" : ""} at the edges of the readings cannot be interpolated and are left out, so this can be less than the total above.` : "")
    : "Mean per meter over the period.";
  const u = unitText(s.unit) || "value";
  setExport("meters", `meters-${b.id}-${s.measurement}-${s.from}-${s.to}`,
    [{ name: "meter" }, { name: "device" }, { name: `${s.consumption ? "consumption" : "mean"}_${u}` }, { name: `latest_${u}` }, { name: "latest_time", time: true }],
    rows.map((r) => [r.meter, r.device, r.total, r.last ? r.last.value : null, r.last ? r.last.time : null]));
}

// --- latest readings ------------------------------------------------------------------------------------
async function drawLatest(building, devices) {
  const body = $("latest").querySelector("tbody");
  body.textContent = "";
  let rows = 0;
  for (const d of devices.filter((d) => d.tags && d.tags.building === building)) {
    const latest = await api(`/api/v1/devices/${encodeURIComponent(d.id)}/latest`);
    for (const l of latest.latest || []) {
      const tr = el("tr", null, null, body);
      tr.dataset.device = d.id;
      tr.dataset.measurement = l.measurement;
      el("td", d.name, "", tr);
      el("td", l.measurement, "", tr);
      el("td", withUnit(l.value, l.unit, 2), "num", tr);
      el("td", when(l.time), "", tr).dataset.time = l.time;
      rows++;
    }
    // Fields the device sent as text (a firmware version, a door's "open") are its state, shown as written.
    for (const [field, t] of Object.entries(latest.state || {})) {
      const tr = el("tr", null, "text-state", body);
      for (const text of [d.name, field, t.value, when(t.time)]) el("td", text, "", tr);
      rows++;
    }
  }
  if (!rows) el("td", "No data: no readings from this building's sensors yet.", "no-data", el("tr", null, null, body)).colSpan = 4;
  $("latest").dataset.rows = String(rows);
}

// --- the map --------------------------------------------------------------------------------------------
// Two tile grids: Web Mercator (XYZ, WMTS GoogleMapsCompatible) and Dataforsyningen's View1 (ETRS89 / UTM
// zone 32N, origin 120000, 6500000, 1638.4 m per pixel at L00, halving per level; 256-pixel tiles).
const GRIDS = {
  "web-mercator": {
    maxZoom: 19,
    // World pixels at zoom z.
    px(lon, lat, z) {
      const n = 256 * Math.pow(2, z);
      const s = Math.sin((lat * Math.PI) / 180);
      return [((lon + 180) / 360) * n, (0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)) * n];
    },
    tiles: (z) => Math.pow(2, z),
  },
  "dk-view1": {
    maxZoom: 13,
    px(lon, lat, z) {
      const [e, n] = utm32(lon, lat);
      const res = 1638.4 / Math.pow(2, z);
      return [(e - 120000) / res, (6500000 - n) / res];
    },
    tiles: () => Infinity,
  },
};

/// ETRS89 (GRS80) longitude/latitude to UTM zone 32N easting/northing, metres (Krüger's series, to the mm).
function utm32(lon, lat) {
  const a = 6378137, f = 1 / 298.257222101, k0 = 0.9996, lon0 = (9 * Math.PI) / 180;
  const n = f / (2 - f), A = (a / (1 + n)) * (1 + (n * n) / 4 + (n ** 4) / 64);
  const al = [(n / 2) - (2 * n * n) / 3 + (5 * n ** 3) / 16, (13 * n * n) / 48 - (3 * n ** 3) / 5, (61 * n ** 3) / 240];
  const phi = (lat * Math.PI) / 180, lam = (lon * Math.PI) / 180 - lon0;
  const e2 = (2 * Math.sqrt(n)) / (1 + n);
  const t = Math.sinh(Math.atanh(Math.sin(phi)) - e2 * Math.atanh(e2 * Math.sin(phi)));
  const xi = Math.atan2(t, Math.cos(lam)), eta = Math.atanh(Math.sin(lam) / Math.sqrt(1 + t * t));
  let E = eta, N = xi;
  for (let j = 1; j <= 3; j++) {
    E += al[j - 1] * Math.cos(2 * j * xi) * Math.sinh(2 * j * eta);
    N += al[j - 1] * Math.sin(2 * j * xi) * Math.cosh(2 * j * eta);
  }
  return [500000 + k0 * A * E, k0 * A * N];
}

function tileConfig() {
  const m = $("map").dataset;
  if (!m.tiles) return null;
  const grid = GRIDS[m.grid] ? m.grid : "web-mercator";
  return { url: m.tiles, attribution: m.attribution || "", grid, maxZoom: Math.min(Number(m.maxZoom) || GRIDS[grid].maxZoom, GRIDS[grid].maxZoom) };
}

async function drawMap(state) {
  const geo = await api("/api/v1/devices.geojson");
  const box = $("map");
  box.textContent = "";
  const pts = geo.features.map((f) => ({ lon: f.geometry.coordinates[0], lat: f.geometry.coordinates[1], name: f.properties.name, id: f.properties.id, cls: "dev " + (f.properties.transport || "") }));
  for (const b of state.buildings) {
    if (b.location) pts.push({ lon: b.location.lon, lat: b.location.lat, name: b.name, id: b.id, cls: "building", building: b.id });
  }
  box.dataset.points = String(pts.length);
  const tiles = tileConfig();
  const grid = GRIDS[tiles ? tiles.grid : "web-mercator"];
  const W = 480, H = 320, pad = 28;
  // The deepest zoom at which every point fits (one point: a street-level view).
  const pick = (z) => {
    const xy = pts.map((p) => grid.px(p.lon, p.lat, z));
    const xs = xy.map((p) => p[0]), ys = xy.map((p) => p[1]);
    return { z, xy, cx: (Math.min(...xs) + Math.max(...xs)) / 2, cy: (Math.min(...ys) + Math.max(...ys)) / 2, w: Math.max(...xs) - Math.min(...xs), h: Math.max(...ys) - Math.min(...ys) };
  };
  let view = null;
  const top = tiles ? tiles.maxZoom : 16;
  for (let z = Math.min(top, 16); z >= 0 && pts.length; z--) {
    view = pick(z);
    if (view.w <= W - 2 * pad && view.h <= H - 2 * pad) break;
  }
  box.dataset.zoom = view ? String(view.z) : "";
  const x0 = view ? view.cx - W / 2 : 0, y0 = view ? view.cy - H / 2 : 0;
  const pct = (v, of) => `${((100 * v) / of).toFixed(4)}%`;
  const plain = el("div", null, "plain", box);
  plain.setAttribute("aria-hidden", "true");
  const layer = el("div", null, "tiles", box);
  if (tiles && view) {
    box.dataset.tilesState = "loading";
    const n = grid.tiles(view.z);
    const imgs = [];
    for (let ty = Math.floor(y0 / 256); ty * 256 < y0 + H; ty++) {
      for (let tx = Math.floor(x0 / 256); tx * 256 < x0 + W; tx++) {
        if (ty < 0 || ty >= n) continue;
        const wx = ((tx % n) + n) % n;
        const img = el("img", null, "tile", layer);
        img.alt = "";
        img.draggable = false;
        img.style.left = pct(tx * 256 - x0, W);
        img.style.top = pct(ty * 256 - y0, H);
        img.style.width = pct(256, W);
        img.style.height = pct(256, H);
        img.src = tiles.url.replaceAll("{zz}", String(view.z).padStart(2, "0")).replaceAll("{z}", String(view.z)).replaceAll("{x}", String(wx)).replaceAll("{y}", String(ty));
        imgs.push(img);
      }
    }
    let loaded = 0;
    const attribution = el("div", tiles.attribution, "attribution", box);
    for (const img of imgs) {
      img.addEventListener("load", () => {
        loaded++;
        box.dataset.tilesLoaded = String(loaded);
        if (loaded === imgs.length && box.dataset.tilesState === "loading") box.dataset.tilesState = "loaded";
      });
      // One tile that does not come (server down, offline, refused by the policy) and the map falls back to
      // the plain background: half a street map misleads more than none.
      img.addEventListener("error", () => {
        if (box.dataset.tilesState === "failed") return;
        box.dataset.tilesState = "failed";
        layer.textContent = "";
        attribution.remove();
        $("map-note").textContent = `Street tiles could not be loaded from ${new URL(tiles.url.replace(/[{}]/g, "")).origin}; the plain background is shown.`;
      });
    }
  } else {
    box.dataset.tilesState = "none";
  }
  const sv = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "map of devices and buildings", preserveAspectRatio: "none" }, box);
  if (!view) {
    svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "none" }, sv).textContent = "No devices or buildings with a location.";
    return;
  }
  pts.forEach((p, i) => {
    const [px, py] = view.xy[i];
    const c = p.building
      ? svg("rect", { x: px - x0 - 6, y: py - y0 - 6, width: 12, height: 12, class: p.cls, "data-building": p.building }, sv)
      : svg("circle", { cx: px - x0, cy: py - y0, r: 6, class: p.cls }, sv);
    svg("title", {}, c).textContent = `${p.name} (${p.id})`;
    if (p.building) c.addEventListener("click", () => { $("building").value = p.building; refresh(state).catch(show); });
  });
}

// --- devices --------------------------------------------------------------------------------------------
/// How a device is doing, in words a sensor owner reads at a glance.
function deviceState(s) {
  if (!s.last_seen) return ["never", "never sent"];
  const age = (Date.now() - Date.parse(s.last_seen)) / 1000;
  if (s.last_error && Date.parse(s.last_error.time) >= Date.parse(s.last_decoded || 0)) return ["refusing", "last message refused"];
  if (age > 3600) return ["quiet", "quiet for " + Math.round(age / 3600) + " h"];
  return ["ok", "sending"];
}

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
    const tr = el("tr", null, null, body);
    tr.dataset.device = d.id;
    const cells = [d.name + " (" + d.id + ")", d.transport, d.codec, "", ago(s.last_seen), s.received, s.decoded, s.rejected];
    cells.forEach((text, k) => {
      const td = el("td", null, k >= 5 ? "num" : "", tr);
      if (k === 3) el("span", words, "state " + cls, td);
      else td.textContent = String(text);
      if (k === 4 && s.last_seen) td.title = when(s.last_seen);
    });
    tr.addEventListener("click", () => showDevice(d, s).catch(show));
  });
  $("devices").dataset.devices = String(devices.length);
  $("devices").dataset.sending = String(sending);
}

async function showDevice(d, s) {
  const box = $("device-detail");
  const latest = await api(`/api/v1/devices/${encodeURIComponent(d.id)}/latest`);
  box.hidden = false;
  box.textContent = "";
  el("h3", d.name, null, box);
  const line = (text, cls) => el("p", text, cls, box);
  line(`Last seen ${ago(s.last_seen)}; ${s.received} messages received, ${s.decoded} decoded into ${s.values_stored} values, ${s.rejected} refused.`);
  if (s.last_error) line(`Last refusal (${when(s.last_error.time)}): ${s.last_error.reason}`, "error");
  if (s.last_warning) line(`Last warning (${when(s.last_warning.time)}): ${s.last_warning.reason}`, "warning");
  for (const r of s.decoded_by || []) line(`Decoded by ${r.codec}: ${r.uplinks} uplinks, ${when(r.from)} – ${when(r.to)}`);
  if ((s.last_radio || []).length) line("Heard by " + s.last_radio.map((r) => `${r.gateway} (${r.rssi} dBm, SNR ${r.snr} dB)`).join(", "));
  const values = (latest.latest || []).map((l) => `${l.measurement} ${withUnit(l.value, l.unit, 2)}`).join(" · ");
  line(values ? "Latest values: " + values : "No data: no values stored yet.");
  const texts = Object.entries(latest.state || {}).map(([field, t]) => `${field} "${t.value}" (${when(t.time)})`).join(" · ");
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

// --- steering -------------------------------------------------------------------------------------------
let generation = 0;

async function refresh(state) {
  if (!$("building").value) return;
  const s = selection(state);
  const mine = ++generation;
  $("status").textContent = "loading…";
  $("status").dataset.state = "loading";
  // An answer for an older choice is dropped: the analyst changed their mind while it was on its way.
  const current = () => mine === generation;
  await (s.consumption ? drawConsumption(s) : drawLevels(s));
  if (!current()) return;
  await Promise.all([drawRanking(s, state), drawMeters(s), drawLatest(s.building.id, state.devices)]);
  if (!current()) return;
  $("status").textContent = "updated " + DATE_TIME.format(new Date());
  $("status").dataset.state = "done";
}

function preset(name) {
  const t = today(0);
  const year = t.slice(0, 4);
  const [from, to] = {
    "2d": [today(-1), t],
    "30d": [today(-29), t],
    year: [`${year}-01-01`, t],
    lastyear: [`${year - 1}-01-01`, `${year - 1}-12-31`],
  }[name];
  $("from").value = from;
  $("to").value = to;
}

async function main() {
  readToken();
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    localStorage.setItem("bydata-token", $("token").value);
    location.reload();
  });
  try {
    const [buildings, devices, measurements] = await Promise.all([api("/api/v1/buildings"), api("/api/v1/devices"), api("/api/v1/measurements")]);
    // Only what the buildings have: measurements whose series carry a `building` tag (else all of them).
    const all = measurements.measurements || [];
    const inBuildings = all.filter((m) => m.tags && m.tags.building);
    const state = { devices: devices.devices, buildings: buildings.buildings, measurements: inBuildings.length ? inBuildings : all };
    for (const b of state.buildings) el("option", `${b.name} (${fmt(b.floor_area_m2, 0)} m²)`, null, $("building")).value = b.id;
    const groups = new Map();
    for (const m of state.measurements) {
      const [id, label] = kindOf(m);
      if (!groups.has(id)) groups.set(id, el("optgroup", null, null, null));
      const g = groups.get(id);
      g.label = label;
      g.dataset.kind = id;
      const u = unitText((m.units || [])[0]);
      el("option", `${label}: ${m.name}${u ? ` (${u})` : ""}`, null, g).value = m.name;
    }
    for (const [id] of [...KINDS, ["other"]]) if (groups.has(id)) $("measurement").appendChild(groups.get(id));
    if (!state.measurements.length) el("option", "no data stored yet", null, $("measurement")).value = "";
    const pick = state.measurements.find((m) => kindOf(m)[0] === "electricity") || state.measurements[0];
    if (pick) $("measurement").value = pick.name;
    if (!state.buildings.length) $("status").textContent = "No buildings registered yet: POST /api/v1/buildings (an editor).";
    preset("2d");
    const again = () => refresh(state).catch(show);
    for (const id of ["building", "measurement", "from", "to", "every"]) $(id).addEventListener("change", again);
    for (const b of document.querySelectorAll("[data-preset]")) b.addEventListener("click", () => { preset(b.dataset.preset); again(); });
    $("controls").addEventListener("submit", (e) => { e.preventDefault(); again(); });
    // The badge is extra: a token that may not read alerts still gets the rest of the dashboard.
    await Promise.all([refresh(state).catch(show), drawMap(state).catch(show), drawDevices(state.devices), drawAlerts().catch(() => {})]);
    setInterval(() => { if ($("to").value >= today(0)) again(); drawAlerts().catch(() => {}); }, 60_000);
  } catch (e) {
    show(e);
  }
}

function show(e) {
  $("status").textContent = String(e.message || e);
  $("status").dataset.state = "error";
}

main();
