// Sluice dashboard: reads /admin/stats/* and draws plain SVG. No dependencies, no build step.
// Every drawn figure carries its value in a data- attribute (data-v, data-requests, ...), so the
// page can be checked against the JSON it was drawn from.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const H = 190, PAD = { l: 60, r: 12, t: 12, b: 24 };
// Charts are drawn at their box's width, one SVG unit a pixel, so text keeps its size.
let W = 640;
const fit = (box) => (W = Math.max(300, Math.round(box.getBoundingClientRect().width) || 640));

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function svgEl(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

const fmt = {
  int: (n) => (n == null ? "–" : Math.round(n).toLocaleString("en-US")),
  usd: (n) => {
    if (n == null) return "–";
    const a = Math.abs(n);
    return (n < 0 ? "-$" : "$") + (a >= 100 ? a.toFixed(0) : a >= 1 ? a.toFixed(2) : a.toFixed(4));
  },
  pct: (n) => (n == null ? "–" : (n * 100).toFixed(1) + "%"),
  ms: (n) => (n == null ? "–" : n >= 100 ? Math.round(n) + " ms" : n.toFixed(1) + " ms"),
  per: (n) => (n == null ? "–" : "$" + n.toFixed(3)),
};

function timeLabel(t, step) {
  const d = new Date(t);
  const pad = (x) => String(x).padStart(2, "0");
  return step >= 86400000 ? `${pad(d.getMonth() + 1)}-${pad(d.getDate())}` : `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function currentWindow() {
  const w = new URLSearchParams(location.search).get("window");
  return /^\d+[mhd]$/.test(w || "") ? w : "24h";
}

async function getJson(path) {
  // From the origin: a page opened as http://user:key@host/ must not fetch with the credentials
  // in the URL (browsers refuse); the key it logged in with goes along as Basic auth.
  const r = await fetch(new URL(path, location.origin), { credentials: "same-origin", headers: { accept: "application/json" } });
  if (!r.ok) {
    let msg = r.status + " " + r.statusText;
    try { msg = (await r.json()).error.message || msg; } catch (_) { /* not JSON */ }
    throw new Error(path + ": " + msg);
  }
  return r.json();
}

function clear(id) {
  const node = document.getElementById(id);
  node.replaceChildren();
  return node;
}

function empty(node, text) {
  node.appendChild(el("div", { class: "empty" }, text));
}

// -- KPI cards ---------------------------------------------------------------------------------

function card(parent, key, label, value, text, sub) {
  const c = el("div", { class: "card", "data-kpi": key, "data-value": value == null ? "" : String(value) });
  c.appendChild(el("div", { class: "label" }, label));
  c.appendChild(el("div", { class: "value" }, text));
  if (sub) c.appendChild(el("div", { class: "sub" }, sub));
  parent.appendChild(c);
}

function renderKpis(s) {
  const t = s.total, box = clear("kpis");
  card(box, "requests", "Requests", t.requests, fmt.int(t.requests), Object.entries(s.apis).map(([k, v]) => `${k} ${fmt.int(v)}`).join(" · "));
  card(box, "spend", "Spend", t.spend_usd, fmt.usd(t.spend_usd), t.unpriced ? `${t.unpriced} unpriced` : "");
  card(box, "avoided", "Cost avoided", t.cost_avoided_usd, fmt.usd(t.cost_avoided_usd),
    `cache ${fmt.usd(t.cache_hit_saved_usd)} · routing ${fmt.usd(t.routing_saved_usd)}`);
  card(box, "hit_rate", "Cache hit rate", t.hit_rate, fmt.pct(t.hit_rate),
    `${fmt.int(t.hits_exact)} exact · ${fmt.int(t.hits_semantic)} semantic of ${fmt.int(t.lookups)}`);
  card(box, "error_rate", "Errors", t.error_rate, fmt.pct(t.error_rate), `${fmt.int(t.errors)} requests`);
  card(box, "failovers", "Failovers", t.failovers, fmt.int(t.failovers), "requests moved to another target");
  card(box, "p50", "Latency p50", t.latency_p50_ms, fmt.ms(t.latency_p50_ms), `p95 ${fmt.ms(t.latency_p95_ms)} · p99 ${fmt.ms(t.latency_p99_ms)}`);
}

function renderBlended(b) {
  const box = clear("blended");
  const row = el("div", { class: "blended" });
  const part = (key, label, v, sub) => {
    const d = el("div", { "data-blended": key, "data-value": v == null ? "" : String(v) });
    d.appendChild(el("div", { class: "muted" }, label));
    d.appendChild(el("div", { class: "value" }, fmt.per(v)));
    d.appendChild(el("div", { class: "muted" }, sub));
    row.appendChild(d);
  };
  part("now", "now", b.now_usd_per_mtok, `${fmt.int(b.now_requests)} gateway requests`);
  part("baseline", "observe-mode baseline", b.baseline_usd_per_mtok,
    b.baseline_requests ? `${fmt.int(b.baseline_requests)} observe requests` : "no observe-mode traffic recorded");
  if (b.change != null) {
    const d = el("div", { "data-blended": "change", "data-value": String(b.change), class: b.change <= 0 ? "down" : "up" });
    d.appendChild(el("div", { class: "muted" }, "change"));
    d.appendChild(el("div", { class: "value" }, (b.change > 0 ? "+" : "") + fmt.pct(b.change)));
    row.appendChild(d);
  }
  box.appendChild(row);
}

// -- charts ------------------------------------------------------------------------------------

function frame(svg, max, fmtY, points, step) {
  const y0 = H - PAD.b, x0 = PAD.l;
  svg.appendChild(svgEl("line", { class: "axis", x1: x0, y1: y0, x2: W - PAD.r, y2: y0 }));
  svg.appendChild(svgEl("line", { class: "axis", x1: x0, y1: PAD.t, x2: W - PAD.r, y2: PAD.t }));
  svg.appendChild(svgEl("text", { x: x0 - 6, y: PAD.t + 4, "text-anchor": "end" }, fmtY(max)));
  svg.appendChild(svgEl("text", { x: x0 - 6, y: y0, "text-anchor": "end" }, fmtY(0)));
  if (points.length) {
    svg.appendChild(svgEl("text", { x: x0, y: H - 6 }, timeLabel(points[0].t, step)));
    svg.appendChild(svgEl("text", { x: W - PAD.r, y: H - 6, "text-anchor": "end" }, timeLabel(points[points.length - 1].t, step)));
  }
}

const xAt = (i, n) => PAD.l + (n <= 1 ? 0 : (i * (W - PAD.l - PAD.r)) / (n - 1));
const yAt = (v, max) => H - PAD.b - (max > 0 ? (v / max) * (H - PAD.t - PAD.b) : 0);

// Lines of `series` ({key, label, value(point)}) over `points`; nulls break no line, they are skipped.
function lineChart(id, points, step, series, fmtY) {
  const box = clear(id);
  fit(box);
  const values = series.map((s) => points.map(s.value));
  const max = Math.max(0, ...values.flat().filter((v) => v != null));
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "data-chart": id, "data-points": points.length });
  svg.appendChild(svgEl("title", {}, series.map((s) => s.label).join(", ")));
  frame(svg, max, fmtY, points, step);
  series.forEach((s, k) => {
    let d = "", sum = 0;
    const g = svgEl("g", { "data-series": s.key });
    values[k].forEach((v, i) => {
      if (v == null) return;
      sum += v;
      const x = xAt(i, points.length), y = yAt(v, max);
      d += (d ? " L" : "M") + x.toFixed(1) + " " + y.toFixed(1);
      if (v > 0) {
        const c = svgEl("circle", { class: s.key, cx: x.toFixed(1), cy: y.toFixed(1), r: 2.2, "data-t": points[i].t, "data-v": v });
        c.appendChild(svgEl("title", {}, `${timeLabel(points[i].t, step)} ${s.label}: ${fmtY(v)}`));
        g.appendChild(c);
      }
    });
    g.setAttribute("data-sum", String(sum));
    g.insertBefore(svgEl("path", { class: s.key, d: d || "M0 0" }), g.firstChild);
    svg.appendChild(g);
  });
  box.appendChild(svg);
  box.appendChild(legendOf(series.map((s) => [s.label, `var(--${s.key})`])));
}

// Bars of `series` side by side in each bucket (sums per bucket, as spend is).
function barChart(id, points, step, series, fmtY) {
  const box = clear(id);
  fit(box);
  const values = series.map((s) => points.map(s.value));
  const max = Math.max(0, ...values.flat().filter((v) => v != null));
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "data-chart": id, "data-points": points.length });
  svg.appendChild(svgEl("title", {}, series.map((s) => s.label).join(", ")));
  frame(svg, max, fmtY, points, step);
  const slot = (W - PAD.l - PAD.r) / Math.max(points.length, 1);
  const bw = Math.max(1, (slot * 0.8) / series.length);
  series.forEach((s, k) => {
    let sum = 0;
    const g = svgEl("g", { "data-series": s.key });
    values[k].forEach((v, i) => {
      if (!v) return;
      sum += v;
      const y = yAt(v, max);
      const r = svgEl("rect", { class: s.key, x: (PAD.l + i * slot + slot * 0.1 + k * bw).toFixed(1), y: y.toFixed(1),
        width: bw.toFixed(1), height: (H - PAD.b - y).toFixed(1), "data-t": points[i].t, "data-v": v });
      r.appendChild(svgEl("title", {}, `${timeLabel(points[i].t, step)} ${s.label}: ${fmtY(v)}`));
      g.appendChild(r);
    });
    g.setAttribute("data-sum", String(sum));
    svg.appendChild(g);
  });
  box.appendChild(svg);
  box.appendChild(legendOf(series.map((s) => [s.label, `var(--${s.key})`])));
}

function legendOf(items) {
  const legend = el("div", { class: "legend" });
  for (const [label, color] of items) {
    const item = el("span", {});
    item.appendChild(el("i", { style: `background: ${color}` }));
    item.appendChild(document.createTextNode(label));
    legend.appendChild(item);
  }
  return legend;
}

// Per route: stacked bars of the exact and semantic hit rate per bucket.
function hitCharts(ts) {
  const box = clear("chart-hits");
  const routes = ts.routes.filter((r) => r.hits.some((h) => h.lookups > 0));
  if (!routes.length) return empty(box, "No cache lookups in this window.");
  const n = ts.points.length;
  for (const r of routes) {
    const fig = el("figure", { "data-route": r.route });
    box.appendChild(fig);
    fit(fig);
    const bw = Math.max(1, (W - PAD.l - PAD.r) / Math.max(n, 1) - 1);
    const tot = r.hits.reduce((a, h) => ({ e: a.e + h.hits_exact, s: a.s + h.hits_semantic, l: a.l + h.lookups }), { e: 0, s: 0, l: 0 });
    fig.setAttribute("data-exact", tot.e);
    fig.setAttribute("data-semantic", tot.s);
    fig.setAttribute("data-lookups", tot.l);
    fig.appendChild(el("h4", {}, `${r.route}: ${fmt.pct(tot.l ? (tot.e + tot.s) / tot.l : null)} (${tot.e} exact, ${tot.s} semantic of ${tot.l})`));
    const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, role: "img" });
    svg.appendChild(svgEl("title", {}, `cache hit rate of ${r.route}`));
    frame(svg, 1, fmt.pct, ts.points, ts.window.step_ms);
    r.hits.forEach((h, i) => {
      if (!h.lookups) return;
      const x = PAD.l + (i * (W - PAD.l - PAD.r)) / Math.max(n, 1);
      let base = H - PAD.b;
      for (const [cls, count] of [["exact", h.hits_exact], ["semantic", h.hits_semantic]]) {
        if (!count) continue;
        const hgt = (count / h.lookups) * (H - PAD.t - PAD.b);
        base -= hgt;
        const rect = svgEl("rect", { class: cls, x: x.toFixed(1), y: base.toFixed(1), width: bw.toFixed(1), height: hgt.toFixed(1), "data-count": count, "data-lookups": h.lookups });
        rect.appendChild(svgEl("title", {}, `${timeLabel(ts.points[i].t, ts.window.step_ms)}: ${count} ${cls} of ${h.lookups}`));
        svg.appendChild(rect);
      }
    });
    fig.appendChild(svg);
  }
  box.appendChild(legendOf([["exact", "var(--exact)"], ["semantic", "var(--semantic)"]]));
}

// Targets' colours; the cache is always green, failures ("(none)") red.
const PALETTE = ["#2f6fd6", "#d98a1e", "#8e5bd6", "#1aa3b8", "#b84d8a", "#6b7585", "#a0522d", "#5b8c00"];

// Horizontal stacked bars: one per route, a segment per answering target.
function routeBars(b) {
  const box = clear("chart-routes");
  if (!b.routes.length) return empty(box, "No requests in this window.");
  fit(box);
  const names = [...new Set(b.routes.flatMap((r) => r.answered_by.map((a) => a.name)))].sort();
  const targets = names.filter((n) => !n.startsWith("("));
  const color = (n) => (n === "(cache)" ? "#2c9c6a" : n === "(none)" ? "#c9372c" : PALETTE[targets.indexOf(n) % PALETTE.length]);
  const max = Math.max(...b.routes.map((r) => r.requests));
  const rowH = 26, h = b.routes.length * rowH + 8, left = 150;
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${h}`, role: "img", "data-chart": "chart-routes" });
  svg.appendChild(svgEl("title", {}, "requests by route and target"));
  b.routes.forEach((r, i) => {
    const y = 4 + i * rowH;
    svg.appendChild(svgEl("text", { x: left - 8, y: y + 15, "text-anchor": "end" }, r.route));
    let x = left;
    for (const a of r.answered_by) {
      const w = (a.requests / max) * (W - left - 60);
      const rect = svgEl("rect", { x: x.toFixed(1), y, width: Math.max(w, 0.5).toFixed(1), height: rowH - 8, fill: color(a.name), "data-route": r.route, "data-target": a.name, "data-requests": a.requests });
      rect.appendChild(svgEl("title", {}, `${r.route} → ${a.name}: ${a.requests} requests, ${fmt.usd(a.spend_usd)}`));
      svg.appendChild(rect);
      x += w;
    }
    svg.appendChild(svgEl("text", { x: x + 6, y: y + 15 }, fmt.int(r.requests)));
  });
  box.appendChild(svg);
  box.appendChild(legendOf(names.map((n) => [n, color(n)])));
}

// -- tables ------------------------------------------------------------------------------------

function table(id, head, rows) {
  const t = clear(id);
  const tr = el("tr");
  for (const [label, num] of head) tr.appendChild(el("th", num ? { class: "num" } : {}, label));
  t.appendChild(el("thead")).appendChild(tr);
  const body = t.appendChild(el("tbody"));
  for (const r of rows) body.appendChild(r);
  return t;
}

function row(attrs, cells) {
  const tr = el("tr", attrs);
  for (const c of cells) {
    if (c instanceof Node) {
      const td = el("td");
      td.appendChild(c);
      tr.appendChild(td);
    } else {
      const [text, num, cls] = Array.isArray(c) ? c : [c, false, ""];
      tr.appendChild(el("td", { class: ((num ? "num " : "") + (cls || "")).trim() }, text));
    }
  }
  return tr;
}

function renderLatencyRoutes(b) {
  table("latency-routes", [["route"], ["p50", 1], ["p95", 1], ["p99", 1]],
    b.routes.map((r) => row({ "data-route": r.route, "data-p50": r.latency_p50_ms ?? "" },
      [r.route, [fmt.ms(r.latency_p50_ms), 1], [fmt.ms(r.latency_p95_ms), 1], [fmt.ms(r.latency_p99_ms), 1]])));
}

function renderTargets(t) {
  table("targets", [["target"], ["breaker"], ["latency now", 1], ["answered", 1], ["spend", 1], ["attempts", 1], ["failed", 1], ["failed over", 1]],
    t.targets.map((x) => row({ "data-target": x.target, "data-breaker": x.breaker || "gone", "data-answered": x.answered, "data-failed-over": x.failed_over_from }, [
      x.target,
      el("span", { class: "badge " + (x.breaker || "gone") }, x.breaker || "not configured"),
      [fmt.ms(x.latency_ewma_ms), 1], [fmt.int(x.answered), 1], [fmt.usd(x.spend_usd), 1],
      [fmt.int(x.attempts), 1], [fmt.int(x.attempt_failures), 1], [fmt.int(x.failed_over_from), 1],
    ])));
  const rows = t.failovers.map((f) => row({ "data-request": f.request_id }, [
    new Date(f.time_ms).toLocaleString(), f.route,
    f.tried.map(([target, outcome]) => `${target} (${outcome})`).join(" → "),
    f.answered_by || "none", [String(f.status), 1],
  ]));
  const tbl = table("failovers", [["time"], ["route"], ["tried"], ["answered by"], ["status", 1]], rows);
  if (!rows.length) tbl.appendChild(el("caption", { class: "empty" }, "No failovers recorded."));
}

function renderCache(c) {
  document.getElementById("cache-note").textContent = !c.enabled ? "The cache is off."
    : c.prompts_logged ? "Prompt previews shown: [accounting] log_prompts is on."
      : "Prompt previews are shown only with [accounting] log_prompts = true.";
  const now = Date.now() / 1000;
  const rows = (c.entries || []).map((e) => row({ "data-entry": e.id, "data-hits": e.hits }, [
    e.route, [fmt.int(e.hits), 1], [Math.max(0, Math.round((now - e.created_unix) / 60)) + " min", 1],
    [fmt.int(e.size_bytes) + " B", 1], [e.prompt == null ? "—" : e.prompt, false, "prompt"],
  ]));
  const tbl = table("cache", [["route"], ["hits", 1], ["age", 1], ["size", 1], ["prompt"]], rows);
  if (!rows.length) tbl.appendChild(el("caption", { class: "empty" }, "No cache hits yet."));
}

// -- load --------------------------------------------------------------------------------------

async function load() {
  const w = currentWindow();
  for (const b of document.querySelectorAll("#windows button")) b.classList.toggle("on", b.dataset.window === w);
  const q = "?window=" + encodeURIComponent(w);
  const status = document.getElementById("status");
  try {
    const [s, ts, b, t, c] = await Promise.all([
      getJson("/admin/stats/summary" + q), getJson("/admin/stats/timeseries" + q),
      getJson("/admin/stats/breakdown" + q), getJson("/admin/stats/targets" + q), getJson("/admin/stats/cache"),
    ]);
    renderKpis(s);
    renderBlended(s.blended);
    const step = ts.window.step_ms;
    barChart("chart-spend", ts.points, step, [
      { key: "spend", label: "spend", value: (p) => p.spend_usd },
      { key: "avoided", label: "cost avoided", value: (p) => p.cost_avoided_usd },
    ], fmt.usd);
    lineChart("chart-latency", ts.points, step, [
      { key: "p50", label: "p50", value: (p) => p.latency_p50_ms },
      { key: "p95", label: "p95", value: (p) => p.latency_p95_ms },
    ], fmt.ms);
    hitCharts(ts);
    routeBars(b);
    renderLatencyRoutes(b);
    renderTargets(t);
    renderCache(c);
    status.textContent = `${w} in ${ts.window.resolution} buckets · updated ${new Date().toLocaleTimeString()}`;
    if (!s.window.audit_enabled) status.textContent += " · audit disabled: no figures are recorded";
    document.body.dataset.state = "ready";
  } catch (e) {
    status.textContent = String(e.message || e);
    status.className = "error";
    document.body.dataset.state = "error";
  }
}

for (const b of document.querySelectorAll("#windows button")) {
  b.addEventListener("click", () => {
    history.replaceState(null, "", "?window=" + b.dataset.window);
    load();
  });
}
load();
setInterval(load, 30000);
