// The page of `diskq serve`: polls /api/snapshot every sampling interval,
// appends /api/history's new samples to the charts, and draws it all with
// DOM calls (no library, nothing fetched from elsewhere).
"use strict";

const state = { lastAt: null, series: new Map(), writes: false, interval: 1 };
// Points kept per chart: ten minutes of one-second samples, or more.
const MAX_POINTS = 3600;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  return node;
}

function bytes(n) {
  if (n === null || n === undefined) return "?";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
}

function num(n) {
  if (n === null || n === undefined) return "–";
  return Number.isInteger(n) ? n.toLocaleString("en") : n.toFixed(2);
}

function rate(n) {
  if (n === null || n === undefined) return "–";
  const sign = n > 0 ? "+" : "";
  return sign + (Math.abs(n) >= 100 ? n.toFixed(0) : n.toFixed(2)) + "/s";
}

function since(seconds) {
  const s = Math.abs(seconds);
  const text = s < 120 ? s.toFixed(1) + " s" : s < 7200 ? (s / 60).toFixed(1) + " min" : (s / 3600).toFixed(1) + " h";
  return seconds >= 0 ? "in " + text : "ran out " + text + " ago";
}

function seriesKey(cache, queue) {
  return JSON.stringify([cache, queue]);
}

function series(key) {
  let s = state.series.get(key);
  if (!s) { s = { t: [] , values: {} }; state.series.set(key, s); }
  return s;
}

function record(key, at, numbers) {
  const s = series(key);
  s.t.push(at);
  for (const [name, value] of Object.entries(numbers)) {
    if (!s.values[name]) s.values[name] = new Array(s.t.length - 1).fill(null);
    s.values[name].push(value);
  }
  for (const name of Object.keys(s.values)) {
    while (s.values[name].length < s.t.length) s.values[name].push(null);
  }
  if (s.t.length > MAX_POINTS) {
    const cut = s.t.length - MAX_POINTS;
    s.t.splice(0, cut);
    for (const name of Object.keys(s.values)) s.values[name].splice(0, cut);
  }
}

// Counters become per-second rates between consecutive samples, as
// Prometheus' rate does (a counter that went down was reset).
function perSecond(t, values) {
  const out = [null];
  for (let i = 1; i < values.length; i++) {
    const a = values[i - 1], b = values[i], dt = t[i] - t[i - 1];
    if (a === null || b === null || dt <= 0) { out.push(null); continue; }
    out.push((b >= a ? b - a : b) / dt);
  }
  return out;
}

function addSamples(samples) {
  for (const sample of samples) {
    if (state.lastAt !== null && sample.at <= state.lastAt) continue;
    state.lastAt = sample.at;
    for (const [id, cache] of Object.entries(sample.caches)) {
      record(seriesKey(id, "*cache*"), sample.at, { ...cache.gauges, ...cache.counters });
      for (const q of cache.queues) {
        record(seriesKey(id, q.queue), sample.at, { ...q.gauges, ...q.counters });
      }
    }
  }
}

// A small line chart of some series, the same scale for all.
function chart(t, lines, { width = 220, height = 48, label }) {
  const box = svg("svg", { class: "chart", width, height, viewBox: `0 0 ${width} ${height}`, role: "img" });
  if (label) box.setAttribute("aria-label", label);
  const all = lines.flatMap(l => l.values.filter(v => v !== null && Number.isFinite(v)));
  if (t.length < 2 || all.length === 0) return box;
  const t0 = t[0], t1 = t[t.length - 1] > t0 ? t[t.length - 1] : t0 + 1;
  let lo = Math.min(0, ...all), hi = Math.max(...all);
  if (hi === lo) hi = lo + 1;
  const x = v => ((v - t0) / (t1 - t0)) * (width - 4) + 2;
  const y = v => height - 3 - ((v - lo) / (hi - lo)) * (height - 15);
  for (const line of lines) {
    let d = "", pen = false;
    line.values.forEach((v, i) => {
      if (v === null || !Number.isFinite(v)) { pen = false; return; }
      d += (pen ? "L" : "M") + x(t[i]).toFixed(1) + " " + y(v).toFixed(1);
      pen = true;
    });
    if (d) box.append(svg("path", { d, fill: "none", stroke: line.color, "stroke-width": 1.5 }));
  }
  const top = svg("text", { x: 3, y: 9, "font-size": 9, fill: "#6b7380" });
  top.textContent = num(Math.round(hi * 100) / 100);
  box.append(top);
  return box;
}

function legend(items) {
  const node = el("div", { class: "legend" });
  for (const [name, color] of items) {
    const mark = el("i");
    mark.style.background = color;
    node.append(mark, name);
  }
  return node;
}

function css(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

async function post(route, params) {
  const token = document.getElementById("token").value.trim();
  const query = new URLSearchParams(params).toString();
  const problem = document.getElementById("problem");
  try {
    const response = await fetch(route + "?" + query, { method: "POST", headers: { "X-Diskq-Token": token } });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || response.statusText);
    problem.hidden = true;
  } catch (e) {
    problem.textContent = "Not done: " + e.message;
    problem.hidden = false;
  }
  poll(false);
}

function queueParams(cache, queue) {
  const params = { cache };
  if (queue !== null) params.queue = queue;
  return params;
}

function queueName(queue) {
  return queue === null ? "(integer keys)" : queue;
}

function renderQueueTable(cache) {
  if (cache.queues.length === 0) return el("p", { class: "empty", text: "no queue" });
  const head = el("tr", {},
    el("th", { text: "queue" }), el("th", { class: "num", text: "depth" }),
    el("th", { class: "num", text: "scheduled" }), el("th", { class: "num", text: "leased" }),
    el("th", { class: "num", text: "dead letters" }), el("th", { class: "num", text: "depth change" }),
    el("th", { class: "num", text: "pushed" }), el("th", { class: "num", text: "done" }),
    el("th", { text: "last minutes" }), el("th", { text: "work per second" }));
  const table = el("table", { class: "queues" }, el("thead", {}, head));
  const body = el("tbody");
  const colors = { queued: css("--queued"), leased: css("--leased"), dead_letters: css("--dead"),
    pushed: css("--hits"), done: css("--misses") };
  for (const q of cache.queues) {
    const s = series(seriesKey(cache.id, q.queue));
    const lines = ["queued", "leased", "dead_letters"].map(name => ({ values: s.values[name] || [], color: colors[name] }));
    const attrs = { "data-queue-row": "", "data-cache": cache.id, "data-queue": q.queue === null ? "" : q.queue,
      "data-int-queue": q.queue === null ? "true" : "false" };
    body.append(el("tr", attrs,
      el("td", { class: "mono", text: queueName(q.queue) }),
      el("td", { class: "num depth", text: num(q.queued) }),
      el("td", { class: "num scheduled", text: num(q.scheduled), title: "pushed or put back with a delay, not due yet" }),
      el("td", { class: "num leased", text: num(q.leased) + (q.expired_leases ? ` (${q.expired_leases} ran out)` : "") }),
      el("td", { class: "num dead", text: num(q.dead_letters) }),
      el("td", { class: "num", text: rate(q.rates.queued_change_per_s), title: "change of the depth per second over the last minute" }),
      el("td", { class: "num pushed-rate", text: rate(q.rates.pushed_per_s), title: "items pushed per second over the last minute (the queue's counter)" }),
      el("td", { class: "num done-rate", text: rate(doneRate(q.rates)), title: "items acked or popped per second over the last minute" }),
      el("td", {}, chart(s.t, lines, { width: 200, height: 36, label: "depth, leased and dead letters" })),
      el("td", {}, chart(s.t, [
          { values: perSecond(s.t, s.values.pushed || []), color: colors.pushed },
          { values: sumSeries(perSecond(s.t, s.values.acked || []), perSecond(s.t, s.values.popped || [])), color: colors.done }],
        { width: 160, height: 36, label: "pushed and done per second" }))));
  }
  table.append(body);
  return el("div", {}, table,
    legend([["depth", colors.queued], ["leased", colors.leased], ["dead letters", colors.dead_letters],
      ["pushed/s", colors.pushed], ["acked or popped/s", colors.done]]),
    renderCounters(cache));
}

function doneRate(rates) {
  if (rates.acked_per_s === undefined && rates.popped_per_s === undefined) return null;
  return (rates.acked_per_s || 0) + (rates.popped_per_s || 0);
}

function sumSeries(a, b) {
  return a.map((v, i) => (v === null || b[i] === null || b[i] === undefined) ? null : v + b[i]);
}

// The library's counters of each queue: what it has done since the directory was made.
const COUNTERS = ["pushed", "popped", "leased", "acked", "nacked", "redelivered", "dead_lettered", "scheduled"];
function renderCounters(cache) {
  const head = el("tr", {}, el("th", { text: "queue" }),
    ...COUNTERS.map(name => el("th", { class: "num", text: name.replace("_", "-") })));
  const rows = cache.queues.map(q => el("tr", { "data-counters": "", "data-queue": q.queue === null ? "" : q.queue },
    el("td", { class: "mono", text: queueName(q.queue) }),
    ...COUNTERS.map(name => el("td", { class: "num counter-" + name, text: num(q.counters[name]),
      title: q.rates[name + "_per_s"] !== undefined ? rate(q.rates[name + "_per_s"]) + " over the last minute" : null }))));
  return el("details", { class: "counters", "data-name": "counters" }, el("summary", { text: "counters (since the directory was made)" }),
    el("table", {}, el("thead", {}, head), el("tbody", {}, ...rows)));
}

function renderLeases(cache, q, now) {
  const rows = q.leases.map(l => el("tr", { class: "lease" + (l.expired ? " expired" : ""), "data-lease": l.holder,
      "data-item": String(l.item) },
    el("td", { class: "mono", text: String(l.item) }),
    el("td", { class: "mono", text: l.holder, title: "the lease's name (its token stays secret)" }),
    el("td", { text: since(l.deadline - now), title: new Date(l.deadline * 1000).toISOString() }),
    el("td", { class: "num", text: num(l.deliveries) }),
    el("td", { class: "last-error", text: l.last_error === null ? "–" : l.last_error }),
    el("td", { class: "num", text: bytes(l.size) }),
    el("td", { class: "preview mono", text: l.preview ? l.preview.text : "" })));
  // The count and the list are read a moment apart: "more" only when the list was cut.
  const more = q.leases.length >= q.listed_at_most && q.leased > q.leases.length
    ? el("p", { class: "empty", text: `${q.leased - q.leases.length} more (see /api/queue)` }) : null;
  return el("div", { "data-leases": "", "data-cache": cache.id, "data-queue": q.queue === null ? "" : q.queue },
    el("h3", { text: `leases in flight · ${queueName(q.queue)}` }),
    el("table", {}, el("thead", {}, el("tr", {}, el("th", { text: "item" }), el("th", { text: "holder" }),
      el("th", { text: "deadline" }), el("th", { class: "num", text: "deliveries" }), el("th", { text: "last error" }),
      el("th", { class: "num", text: "size" }),
      el("th", { text: "value" }))), el("tbody", {}, ...rows)), more);
}

function renderDeadLetters(cache, q) {
  const rows = q.dead_letter_items.map(d => {
    const purge = state.writes ? el("button", { text: "purge", "data-action": "purge", onclick: () => {
      if (confirm(`Delete the dead letter ${d.key}?`)) post("/api/purge", { ...queueParams(cache.id, q.queue), key: d.key });
    } }) : null;
    return el("tr", { class: "dead-letter", "data-key": d.key },
      el("td", { class: "mono", text: d.key }),
      el("td", { class: "num", text: bytes(d.size) }),
      el("td", { class: "num deliveries", text: d.deliveries === null ? "–" : num(d.deliveries),
        title: d.deliveries === null ? "not recorded: pushed there directly, or a PostgreSQL store" : null }),
      el("td", { class: "last-error", text: d.last_error === null ? "–" : d.last_error,
        title: d.dead_at ? "dead-lettered " + new Date(d.dead_at * 1000).toISOString() : null }),
      el("td", { class: "preview mono", text: d.preview ? d.preview.text : "" }),
      el("td", {}, purge));
  });
  const actions = state.writes ? el("span", {},
    el("button", { text: "requeue all", "data-action": "requeue", onclick: () => post("/api/requeue", queueParams(cache.id, q.queue)) }),
    el("button", { text: "purge all", "data-action": "purge-all", onclick: () => {
      if (confirm(`Delete every dead letter of ${queueName(q.queue)}?`)) post("/api/purge", queueParams(cache.id, q.queue));
    } })) : null;
  const more = q.dead_letter_items.length >= q.listed_at_most && q.dead_letters > q.dead_letter_items.length
    ? el("p", { class: "empty", text: `${q.dead_letters - q.dead_letter_items.length} more (see /api/queue)` }) : null;
  return el("div", { "data-dead-letters": "", "data-cache": cache.id, "data-queue": q.queue === null ? "" : q.queue },
    el("h3", {}, `dead letters · ${q.dead_letter_queue}`, actions),
    el("table", {}, el("thead", {}, el("tr", {}, el("th", { text: "key" }), el("th", { class: "num", text: "size" }),
      el("th", { class: "num", text: "deliveries" }), el("th", { text: "last error" }), el("th", { text: "value" }),
      el("th", {}))), el("tbody", {}, ...rows)), more);
}

function stat(name, value, title) {
  return el("div", { class: "stat", title }, el("b", { text: value }), el("span", { text: name }));
}

function renderCache(cache, now) {
  const g = cache.gauges, c = cache.counters, r = cache.rates || {};
  const section = el("section", { class: "cache", "data-cache-id": cache.id },
    el("h2", {}, cache.id === "." ? "(the directory)" : cache.id, " ", el("span", { class: "kind", text: cache.kind })),
    el("div", { class: "path", text: cache.path || "" }));
  if (cache.error) section.append(el("p", { class: "error", text: "cannot read it now: " + cache.error }));
  const limit = g.size_limit;
  const used = el("div", { class: "bar" }, el("i"));
  if (limit) used.firstChild.style.width = Math.min(100, (100 * (g.size || 0)) / limit).toFixed(1) + "%";
  const sizeStat = stat("size of " + bytes(limit) + " limit", bytes(g.size));
  sizeStat.append(used);
  section.append(el("div", { class: "stats" },
    stat("items", num(g.items)), g.size === undefined ? null : sizeStat, stat(cache.backend === "postgres" ? "in the database" : "on disk", bytes(g.volume)),
    stat(cache.statistics ? "hits" : "hits (statistics off)", num(c.hits) + (r.hits_per_s ? ` · ${rate(r.hits_per_s)}` : "")),
    stat("misses", num(c.misses) + (r.misses_per_s ? ` · ${rate(r.misses_per_s)}` : "")),
    stat("culled", num(c.culled), "live items removed for the size limit")));
  const s = series(seriesKey(cache.id, "*cache*"));
  section.append(el("div", { class: "charts" },
    el("figure", {}, chart(s.t, [{ values: s.values.items || [], color: css("--queued") }], { label: "items" }),
      el("figcaption", { text: "items" })),
    el("figure", {}, chart(s.t, [
        { values: perSecond(s.t, s.values.hits || []), color: css("--hits") },
        { values: perSecond(s.t, s.values.misses || []), color: css("--misses") }], { label: "hits and misses per second" }),
      el("figcaption", { text: "hits / misses per second" }))));
  section.append(el("h3", { text: "queues" }), renderQueueTable(cache));
  for (const q of cache.queues) {
    if (q.leases.length > 0) section.append(renderLeases(cache, q, now));
    if (q.dead_letter_items.length > 0) section.append(renderDeadLetters(cache, q));
  }
  const settings = el("table", {}, el("tbody", {}, ...Object.entries(cache.settings).map(([k, v]) =>
    el("tr", {}, el("td", { class: "mono", text: k }), el("td", { class: "mono", text: String(v) })))));
  section.append(el("details", { "data-name": "settings" }, el("summary", { text: "settings" }), settings));
  return section;
}

function render(snapshot) {
  document.getElementById("directory").textContent = snapshot.directory;
  const mode = document.getElementById("mode");
  mode.textContent = snapshot.writes ? "writes allowed" : "read-only";
  mode.className = "badge" + (snapshot.writes ? " writes" : "");
  document.getElementById("token-box").hidden = !snapshot.writes;
  document.getElementById("interval").textContent = snapshot.interval;
  state.writes = snapshot.writes;
  state.interval = snapshot.interval;
  const main = document.getElementById("caches");
  const openKey = d => d.closest("section")?.dataset.cacheId + "|" + d.dataset.name;
  const open = new Set([...main.querySelectorAll("details[open]")].map(openKey));
  const sections = snapshot.caches.map(c => renderCache(c, snapshot.at));
  for (const section of sections) {
    for (const d of section.querySelectorAll("details")) if (open.has(openKey(d))) d.open = true;
  }
  main.replaceChildren(...sections);
  document.getElementById("updated").textContent = "sampled " + new Date(snapshot.at * 1000).toLocaleTimeString();
}

let timer = null;
async function poll(schedule = true) {
  try {
    const query = state.lastAt === null ? "" : "?since=" + state.lastAt;
    const history = await (await fetch("/api/history" + query, { cache: "no-store" })).json();
    addSamples(history.samples);
    const response = await fetch("/api/snapshot", { cache: "no-store" });
    const snapshot = await response.json();
    if (!response.ok) throw new Error(snapshot.error || response.statusText);
    render(snapshot);
    if (document.getElementById("problem").textContent.startsWith("The server")) document.getElementById("problem").hidden = true;
  } catch (e) {
    const problem = document.getElementById("problem");
    problem.textContent = "The server does not answer: " + e.message;
    problem.hidden = false;
  }
  if (schedule) {
    clearTimeout(timer);
    timer = setTimeout(poll, Math.max(250, state.interval * 1000));
  }
}

poll();
