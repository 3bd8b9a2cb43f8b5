// Morphware dashboard: polls the node's read-only API every second and renders the jobs table
// and, for the selected job (#job=<id>), its phase, price, bids, metrics, payments and a live
// loss curve (inline SVG). No dependencies, no build step.
"use strict";

const POLL_MS = 1000;
const SVG_NS = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

// Loss events of the selected job, fetched incrementally with ?after=<last step>.
let loss = { jobId: null, events: [], lastStep: -1, finalCurve: null };
let timer = null;
let SYMBOL = "tokens";  // the token's symbol, from /api/node once known

async function getJSON(path) {
  const r = await fetch(path, { cache: "no-store" });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.detail || `${r.status} ${r.statusText}`);
  return body;
}

function selectedJob() {
  const m = location.hash.match(/^#job=(\d+)$/);
  return m ? Number(m[1]) : null;
}

function fmt(x, digits = 4) {
  if (x === null || x === undefined) return "–";
  if (typeof x !== "number") return String(x);
  return Number.isInteger(x) ? String(x) : x.toPrecision(digits).replace(/\.?0+$/, "");
}

function short(addr) {
  if (!addr) return "–";
  const s = String(addr);
  return s.length > 14 ? `${s.slice(0, 8)}…${s.slice(-4)}` : s;
}

function ago(t) {
  const s = Math.max(0, Date.now() / 1000 - t);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  return new Date(t * 1000).toLocaleString();
}

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function phaseBadge(td, phase) {
  td.textContent = "";
  const span = document.createElement("span");
  span.className = `phase ${phase || ""}`;
  span.textContent = phase || "–";
  td.appendChild(span);
}

function fillBody(table, rows, render) {
  const body = table.tBodies[0];
  body.replaceChildren();
  for (const row of rows) {
    const tr = document.createElement("tr");
    render(tr, row);
    body.appendChild(tr);
  }
}

function placeholder(table, span, text) {
  const tr = document.createElement("tr");
  const td = cell(tr, text, "muted");
  td.colSpan = span;
  table.tBodies[0].appendChild(tr);
}

// -- node and jobs -------------------------------------------------------------------------------

async function refreshNode() {
  const n = await getJSON("/api/node");
  if (n.token_symbol) SYMBOL = n.token_symbol;
  const who = n.address ? short(n.address) : (n.name || n.data_dir);
  $("node-info").textContent =
    `node ${who} · roles ${n.roles.join(", ") || "none yet"} · block ${n.last_block}`;
  renderLoad(n.load || {});
}

// What the node holds now: training / evaluation queue, expected finish per job.
function renderLoad(load) {
  const rows = [];
  const parts = [];
  const w = load.worker;
  if (w) {
    parts.push(`worker: ${w.training.length}/${w.slots} training, ` +
               `${w.backlog_s.toFixed(0)} s of work held, speed ×${w.speed}`);
    for (const j of w.jobs) rows.push({ role: "worker", now: j.phase === "training", ...j,
                                        deadline: j.work_deadline });
  }
  const v = load.validator;
  if (v) {
    parts.push(`validator: ${v.evaluating.length}/${v.slots} evaluating, ` +
               `~${v.eval_seconds} s each`);
    for (const j of v.jobs) rows.push({ role: "validator", now: j.evaluating, ...j,
                                        deadline: j.commit_deadline });
  }
  if (load.rpc) parts.push(`${load.rpc.total} RPC calls, widest log query ` +
                           `${load.rpc.max_logs_range} blocks`);
  $("load").hidden = parts.length === 0;
  $("load-summary").textContent = parts.join(" · ");
  const when = (t) => (t ? new Date(t * 1000).toLocaleTimeString() : "–");
  fillBody($("load-table"), rows, (tr, r) => {
    cell(tr, `#${r.job}`);
    cell(tr, r.role);
    phaseBadge(cell(tr, ""), r.phase);
    cell(tr, r.now ? "running" : r.declined ? "declined" : "");
    cell(tr, when(r.expected_finish));
    cell(tr, when(r.deadline));
  });
}

async function refreshJobs() {
  const data = await getJSON("/api/jobs");
  $("jobs-empty").hidden = data.jobs.length > 0;
  fillBody($("jobs-table"), data.jobs, (tr, j) => {
    tr.dataset.jobId = j.job_id;
    tr.addEventListener("click", () => { location.hash = `#job=${j.job_id}`; });
    cell(tr, `#${j.job_id}`);
    cell(tr, j.name || "–");
    cell(tr, Object.keys(j.roles).join(", "));
    phaseBadge(cell(tr, ""), j.phase);
    cell(tr, fmt(j.price), "num price");
    cell(tr, j.outcome || "–");
    cell(tr, String(j.loss_steps), "num");
    cell(tr, ago(j.updated));
  });
  const pending = data.submissions.filter((s) => s.job_id === null);
  $("subs").hidden = pending.length === 0;
  fillBody($("subs-table"), pending, (tr, s) => {
    cell(tr, String(s.local_id));
    cell(tr, s.name || s.spec, "mono");
    phaseBadge(cell(tr, ""), s.state);
    cell(tr, "–");
    cell(tr, s.error || "");
  });
}

// -- one job -------------------------------------------------------------------------------------

async function refreshJob(id) {
  const j = await getJSON(`/api/jobs/${id}`);
  $("job-title").textContent = `Job #${j.job_id}${j.name ? ` — ${j.name}` : ""}`;
  phaseBadge($("job-phase"), j.phase);
  const b = j.bids;
  $("job-price").textContent = b.clearing_price === null ? "–" : `${fmt(b.clearing_price)} ${SYMBOL}`;
  $("job-price-rule").textContent =
    b.rule + (b.max_price !== null && b.max_price !== undefined ? ` · max ${fmt(b.max_price)}` : "");
  $("job-winner").textContent = short(b.winner);
  $("job-winner").title = b.winner || "";
  renderMetricCard(j.metrics);
  fillBody($("timeline-table"), j.timeline, (tr, t) => {
    cell(tr, t.role);
    phaseBadge(cell(tr, ""), t.phase);
    cell(tr, new Date(t.at * 1000).toLocaleTimeString());
    cell(tr, t.seconds === null ? "now" : fmt(t.seconds, 3), "num");
  });
  fillBody($("bids-table"), b.bids, (tr, x) => {
    cell(tr, short(x.bidder), "mono").title = x.bidder;
    cell(tr, x.revealed ? fmt(x.ask) : "sealed", "num");
    cell(tr, x.winner ? "winner" : "");
  });
  if (!b.bids.length) placeholder($("bids-table"), 3, "no bids seen (the requester sees them all)");
  $("own-bid").textContent = b.own_bid
    ? `our bid: ${fmt(b.own_bid.ask)} ${SYMBOL} (${b.own_bid.revealed ? "revealed" : b.own_bid.committed ? "sealed" : "not sent"})`
    : "";
  renderMetrics(j.metrics);
  renderPayments(j.payments);
}

function renderMetricCard(m) {
  $("job-metric").textContent = m.median !== null
    ? `${m.metric || "metric"} ${fmt(m.median)}` : (m.own !== null ? `${m.metric || "metric"} ${fmt(m.own)}` : "–");
  $("job-threshold").textContent = m.threshold !== null && m.threshold !== undefined
    ? `threshold ${m.lower_is_better ? "≤" : "≥"} ${fmt(m.threshold)}${m.outcome ? ` · ${m.outcome}` : ""}`
    : (m.outcome || "");
}

function renderMetrics(m) {
  fillBody($("metrics-table"), m.validators, (tr, v) => {
    cell(tr, short(v.validator), "mono").title = v.validator;
    cell(tr, v.metric === null ? "–" : fmt(v.metric), "num");
  });
  if (!m.validators.length) placeholder($("metrics-table"), 2, "no validators known to this node yet");
  const parts = [];
  if (m.revealed.length) parts.push(`revealed: ${m.revealed.map((x) => fmt(x)).join(", ")}`);
  if (m.median !== null) parts.push(`median ${fmt(m.median)}`);
  if (m.own !== null) parts.push(`ours ${fmt(m.own)}`);
  $("metrics-summary").textContent = parts.join(" · ");
}

function renderPayments(p) {
  const rows = [];
  for (const [role, r] of Object.entries(p.roles)) {
    const [what, v] = role === "requester" ? ["spent", r.spent] : ["earned", r.earned];
    rows.push([`${role}: ${what}`, v === null || v === undefined ? "–" : `${fmt(v)} ${SYMBOL}`]);
  }
  const s = p.settlement;
  if (s) {
    rows.push(["worker paid", `${fmt(s.worker_paid)} ${SYMBOL}`]);
    rows.push([`validator fees (${s.validators_paid} × ${fmt(s.validator_fee)})`, `${fmt(s.validator_fees)} ${SYMBOL}`]);
    rows.push(["requester cost", `${fmt(s.requester_cost)} ${SYMBOL}`]);
    rows.push(["refunded of escrow", `${fmt(s.refunded)} of ${fmt(s.escrowed)} ${SYMBOL}`]);
  }
  fillBody($("payments-table"), rows, (tr, [k, v]) => { cell(tr, k); cell(tr, v, "num"); });
}

// -- loss curve ----------------------------------------------------------------------------------

async function refreshLoss(id) {
  if (loss.jobId !== id) loss = { jobId: id, events: [], lastStep: -1, finalCurve: null };
  for (let i = 0; i < 20; i++) {  // bounded catch-up when many events are pending
    const d = await getJSON(`/api/jobs/${id}/loss?after=${loss.lastStep}`);
    if (loss.jobId !== id) return;
    loss.events.push(...d.events);
    loss.lastStep = d.last_step;
    loss.finalCurve = d.final_curve;
    if (!d.more) break;
  }
  drawLoss();
}

function svg(tag, attrs, parent, text) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  parent.appendChild(el);
  return el;
}

// Mean loss (and mean step) of each epoch, in epoch order; [] when events carry no epoch.
function epochMeans(ev) {
  const acc = new Map();
  for (const e of ev) {
    if (e.epoch === undefined) continue;
    const a = acc.get(e.epoch) || { n: 0, step: 0, loss: 0 };
    a.n += 1; a.step += e.step; a.loss += e.loss;
    acc.set(e.epoch, a);
  }
  return [...acc.entries()].sort((x, y) => x[0] - y[0])
    .map(([epoch, a]) => ({ epoch, step: a.step / a.n, loss: a.loss / a.n }));
}

function drawLoss() {
  const chart = $("loss-chart");
  const ev = loss.events.filter((e) => Number.isFinite(e.loss));
  chart.replaceChildren();
  chart.dataset.points = String(ev.length);
  const W = 720, H = 260, L = 56, R = 12, T = 12, B = 30;
  if (!ev.length) {
    svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty" }, chart,
      "no loss reported yet");
    $("loss-status").textContent = "";
    return;
  }
  const xs = ev.map((e) => e.step), ys = ev.map((e) => e.loss);
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1);
  let y0 = Math.min(...ys), y1 = Math.max(...ys);
  if (y1 - y0 < 1e-12) { y0 -= 0.5; y1 += 0.5; }
  const px = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const py = (y) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  for (let i = 0; i <= 4; i++) {
    const y = y0 + ((y1 - y0) * i) / 4;
    svg("line", { x1: L, x2: W - R, y1: py(y), y2: py(y), class: "grid" }, chart);
    svg("text", { x: L - 6, y: py(y) + 4, "text-anchor": "end", class: "tick" }, chart, fmt(y, 3));
  }
  svg("line", { x1: L, x2: L, y1: T, y2: H - B, class: "axis" }, chart);
  svg("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, class: "axis" }, chart);
  svg("text", { x: L, y: H - 10, class: "tick" }, chart, `step ${x0}`);
  svg("text", { x: W - R, y: H - 10, "text-anchor": "end", class: "tick" }, chart, `step ${x1}`);
  const pts = ev.map((e) => `${px(e.step).toFixed(1)},${py(e.loss).toFixed(1)}`).join(" ");
  svg("polyline", { points: pts, class: "curve", id: "loss-line" }, chart);
  const means = epochMeans(ev);  // the trend through the per-step noise
  if (means.length > 1) {
    const mp = means.map((m) => `${px(m.step).toFixed(1)},${py(m.loss).toFixed(1)}`).join(" ");
    svg("polyline", { points: mp, class: "epoch-line", id: "epoch-line" }, chart);
  }
  for (const m of means) svg("circle", { cx: px(m.step), cy: py(m.loss), r: 3, class: "epoch" }, chart);
  svg("text", { x: W - R, y: T + 12, "text-anchor": "end", class: "tick" }, chart,
    means.length ? "blue: loss per step · orange: mean per epoch" : "loss per step");
  const last = ev[ev.length - 1];
  $("loss-status").textContent = `${ev.length} steps · last loss ${fmt(last.loss)}` +
    (last.epoch !== undefined ? ` · epoch ${last.epoch}` : "");
}

// -- loop ----------------------------------------------------------------------------------------

function showView() {
  const id = selectedJob();
  $("jobs-view").hidden = id !== null;
  $("job-view").hidden = id === null;
}

async function tick() {
  const id = selectedJob();
  try {
    await refreshNode();
    if (id === null) await refreshJobs();
    else await Promise.all([refreshJob(id), refreshLoss(id)]);
    $("error").hidden = true;
    $("conn").className = "conn ok";
  } catch (e) {
    $("error").textContent = String(e.message || e);
    $("error").hidden = false;
    $("conn").className = "conn bad";
  }
}

let generation = 0;  // a hash change starts a new loop; the old one stops at its next turn

async function loop(gen) {
  if (gen !== generation) return;
  await tick();
  if (gen === generation) timer = setTimeout(() => loop(gen), POLL_MS);
}

window.addEventListener("hashchange", () => {
  showView();
  clearTimeout(timer);
  loop(++generation);
});
$("back").addEventListener("click", (e) => { e.preventDefault(); location.hash = ""; });
showView();
loop(generation);
