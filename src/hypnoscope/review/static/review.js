// hypnoscope review: the browser side of `hypnoscope review` (issue #28).
// Plain JavaScript, no build step, nothing loaded from outside. The API is described in
// notes/review_api.md: every request carries the token of the page's URL as X-Review-Token.
"use strict";

const STAGES = ["W", "N1", "N2", "N3", "R"];
// Hypnogram rows from top to bottom, as scorers draw them.
const HYPNOGRAM_ORDER = ["W", "R", "N1", "N2", "N3"];
const STAGE_COLORS = {W: "#e3a21a", N1: "#7fc8e8", N2: "#3a7fc1", N3: "#1b3d75", R: "#d1495b"};
const STAGE_KEYS = {w: "W", 0: "W", 1: "N1", 2: "N2", 3: "N3", r: "R", 5: "R"};
const SCALES_UV = [5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 500, 1000, 2000, 5000];
const LOW_CUTS_HZ = [0.1, 0.3, 0.5, 1, 2, 5, 10];
const HIGH_CUTS_HZ = [10, 15, 30, 35, 40, 50, 70, 100];
const LANE_PX = {min: 64, max: 150};
const AXIS_PX = 22;
const POSITION_DELAY_MS = 400;
const PAGE_CACHE_SIZE = 24;

const state = {
  token: new URLSearchParams(location.search).get("token") || "",
  night: null,         // GET /api/night
  epoch: 0,            // the epoch on screen
  page: null,          // GET /api/page of the epoch on screen
  pageRequest: 0,      // id of the latest page request; older answers are dropped
  pages: new Map(),    // fetchPage's cache
  scales: {},          // channel -> µV of half a lane
  filters: {},         // channel -> [low or null, high or null]
  saves: Promise.resolve(),  // the chain of score/undo requests, sent one at a time
  pending: 0,
  saveFailed: false,   // whether the latest score/undo was refused
  lanePx: 96,         // height of one channel's lane, fitted to the window
  positionTimer: null,
  summaryTimer: null,
};

// ---------------------------------------------------------------- the API

async function api(path, options = {}) {
  const headers = {"X-Review-Token": state.token, ...(options.headers || {})};
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {...options, headers});
  if (!response.ok) {
    let detail = response.statusText;
    try { detail = (await response.json()).detail || detail; } catch (_) { /* not JSON */ }
    const error = new Error(`${path}: ${response.status} ${detail}`);
    error.status = response.status;
    throw error;
  }
  return response.json();
}

function postJson(path, body) {
  return api(path, {method: "POST", body: JSON.stringify(body)});
}

function filtersQuery() {
  return encodeURIComponent(JSON.stringify(state.filters));
}

// ---------------------------------------------------------------- small helpers

function $(id) { return document.getElementById(id); }

function nEpochs() { return state.night ? state.night.n_epochs : 0; }

function clampEpoch(epoch) { return Math.max(0, Math.min(nEpochs() - 1, epoch)); }

function reviewedStage(epoch) { return state.night.reviewed[epoch]; }

function startSecondsOfDay() {
  const match = /T?(\d{2}):(\d{2}):(\d{2}(?:\.\d+)?)/.exec(state.night.start_time || "");
  return match ? 3600 * +match[1] + 60 * +match[2] + +match[3] : null;
}

function pad2(value) { return String(Math.floor(value)).padStart(2, "0"); }

function formatClock(seconds) {
  const s = ((seconds % 86400) + 86400) % 86400;
  return `${pad2(s / 3600)}:${pad2((s % 3600) / 60)}:${pad2(s % 60)}`;
}

function epochOnsetSec(epoch) {
  if (state.page && state.page.epoch === epoch) return state.page.t0_sec;
  return (state.night.onset_sec || 0) + epoch * state.night.epoch_sec;
}

function epochClock(epoch) {
  const t0 = epochOnsetSec(epoch);
  const start = startSecondsOfDay();
  return start === null ? `t+${formatClock(t0)}` : formatClock(start + t0);
}

function formatNumber(value, digits = 1) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return typeof value === "number" ? value.toFixed(digits) : String(value);
}

function setMessage(text, isError = false) {
  const el = $("status-message");
  el.textContent = text;
  el.classList.toggle("error", isError);
}

function setPending(delta) {
  state.pending += delta;
  document.body.dataset.pending = String(state.pending);
  const saved = state.saveFailed ? "the last change was NOT saved" : "all changes saved";
  $("save-state").textContent = state.pending > 0 ? "saving…" : saved;
  $("save-state").classList.toggle("error", state.saveFailed);
}

// ---------------------------------------------------------------- channel controls

function channelDefaults(channel) {
  state.scales[channel.name] = channel.default_scale_uv || 100;
  const [low, high] = channel.default_filter || [null, null];
  state.filters[channel.name] = [low, high];
}

function cutOptions(values, current, nyquist) {
  const usable = values.filter((v) => v < nyquist);
  if (current !== null && !usable.includes(current)) usable.push(current);
  usable.sort((a, b) => a - b);
  return [null, ...usable];
}

function makeSelect(title, values, current, format, onChange) {
  const select = document.createElement("select");
  select.title = title;
  for (const value of values) {
    const option = document.createElement("option");
    option.value = value === null ? "" : String(value);
    option.textContent = format(value);
    option.selected = value === current;
    select.append(option);
  }
  select.addEventListener("change", () => {
    onChange(select.value === "" ? null : Number(select.value));
    select.blur();
  });
  return select;
}

function makeButton(text, title, onClick) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = text;
  button.title = title;
  button.addEventListener("click", () => { onClick(); button.blur(); });
  return button;
}

function unitLabel(unit) {
  if (!unit || unit === "uV") return "µV";
  return unit === "n/a" ? "" : unit;
}

const SCORING_ROLES = ["eeg", "eog", "emg"];

// EEG, EOG and EMG always; the other channels (respiration, markers ...) when asked for.
function shownChannels() {
  const scoring = state.night.channels.filter((c) => SCORING_ROLES.includes(c.role));
  return $("all-channels").checked || !scoring.length ? state.night.channels : scoring;
}

function toggleOtherChannels() {
  $("all-channels").blur();
  fitLanes();
  renderChannelControls();
  drawPage();
}

function stepScale(name, direction) {
  const scales = [...new Set([...SCALES_UV, state.scales[name]])].sort((a, b) => a - b);
  const next = scales.indexOf(state.scales[name]) + direction;
  state.scales[name] = scales[Math.max(0, Math.min(scales.length - 1, next))];
  renderChannelControls();
  drawPage();
}

function setFilter(name, index, value) {
  const band = [...state.filters[name]];
  band[index] = value;
  if (band[0] !== null && band[1] !== null && band[0] >= band[1]) {
    setMessage(`${name}: the low cut must be below the high cut`, true);
    renderChannelControls();  // back to the band in use
    return;
  }
  state.filters[name] = band;
  loadPage(state.epoch);
}

function channelControl(channel) {
  const name = channel.name;
  const row = document.createElement("div");
  row.className = `channel role-${channel.role}`;
  row.style.height = `${state.lanePx}px`;
  const label = document.createElement("div");
  label.className = "channel-name";
  label.textContent = name;
  const scale = document.createElement("div");
  scale.className = "row";
  const value = document.createElement("span");
  value.className = "scale-value";
  value.textContent = `±${state.scales[name]} ${unitLabel(channel.unit)}`;
  scale.append(makeButton("−", `${name}: smaller traces`, () => stepScale(name, +1)),
               value,
               makeButton("+", `${name}: larger traces`, () => stepScale(name, -1)));
  const nyquist = channel.sfreq / 2;
  const [low, high] = state.filters[name];
  const hz = (v) => (v === null ? "off" : `${v} Hz`);
  const cuts = document.createElement("div");
  cuts.className = "row";
  cuts.append(
    makeSelect(`${name}: low cut`, cutOptions(LOW_CUTS_HZ, low, nyquist), low,
               (v) => `LF ${hz(v)}`, (v) => setFilter(name, 0, v)),
    makeSelect(`${name}: high cut`, cutOptions(HIGH_CUTS_HZ, high, nyquist), high,
               (v) => `HF ${hz(v)}`, (v) => setFilter(name, 1, v)));
  row.append(label, scale, cuts);
  return row;
}

// Lanes share the height left below the page's top, within LANE_PX's bounds.
function fitLanes() {
  const top = $("signal-wrap").getBoundingClientRect().top;
  const free = (window.innerHeight - top - 16 - AXIS_PX) / Math.max(1, shownChannels().length);
  state.lanePx = Math.round(Math.max(LANE_PX.min, Math.min(LANE_PX.max, free)));
}

function renderChannelControls() {
  const box = $("channel-controls");
  box.replaceChildren();
  const spacer = document.createElement("div");
  spacer.style.height = `${AXIS_PX}px`;
  box.append(spacer, ...shownChannels().map(channelControl));
}

// ---------------------------------------------------------------- drawing the page

function fitCanvas(canvas, cssHeight) {
  const ratio = window.devicePixelRatio || 1;
  const cssWidth = canvas.clientWidth;
  canvas.style.height = `${cssHeight}px`;
  canvas.width = Math.round(cssWidth * ratio);
  canvas.height = Math.round(cssHeight * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  return {ctx, width: cssWidth, height: cssHeight};
}

function drawTimeGrid(ctx, width, height, seconds) {
  ctx.font = "11px sans-serif";
  ctx.textBaseline = "middle";
  for (let s = 0; s <= seconds; s += 1) {
    const x = Math.round((s / seconds) * (width - 1)) + 0.5;
    ctx.strokeStyle = s % 5 === 0 ? "#c9ced6" : "#eceef2";
    ctx.beginPath();
    ctx.moveTo(x, AXIS_PX);
    ctx.lineTo(x, height);
    ctx.stroke();
    if (s % 5 === 0 && s < seconds) {
      ctx.fillStyle = "#555";
      ctx.fillText(`${s} s`, x + 3, AXIS_PX / 2);
    }
  }
}

function drawTrace(ctx, data, top, width, scaleUv) {
  const lane = state.lanePx;
  const mid = top + lane / 2;
  const perUv = lane / 2 / scaleUv;
  const step = data.length > 1 ? (width - 1) / (data.length - 1) : 0;
  ctx.beginPath();
  let drawing = false;
  data.forEach((value, i) => {
    if (value === null) { drawing = false; return; }
    const y = Math.max(top, Math.min(top + lane, mid - value * perUv));
    if (drawing) ctx.lineTo(i * step, y); else ctx.moveTo(i * step, y);
    drawing = true;
  });
  ctx.stroke();
}

function drawLanes(ctx, width) {
  const byName = new Map(state.page.channels.map((c) => [c.name, c]));
  shownChannels().forEach((channel, lane) => {
    const top = AXIS_PX + lane * state.lanePx;
    ctx.strokeStyle = "#e2e5ea";
    ctx.beginPath();
    ctx.moveTo(0, top + state.lanePx / 2 + 0.5);
    ctx.lineTo(width, top + state.lanePx / 2 + 0.5);
    ctx.stroke();
    const page = byName.get(channel.name);
    if (!page) return;
    ctx.save();
    ctx.strokeStyle = channel.role === "emg" ? "#2d6a4f" : channel.role === "eog" ? "#6a3d9a" : "#1d1f24";
    ctx.lineWidth = 1;
    drawTrace(ctx, page.data, top, width, state.scales[channel.name]);
    ctx.restore();
  });
}

function drawPage() {
  if (!state.night) return;
  const canvas = $("signals");
  const height = AXIS_PX + shownChannels().length * state.lanePx;
  const {ctx, width} = fitCanvas(canvas, height);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, width, height);
  const seconds = Math.round(state.night.epoch_sec * (state.page ? state.page.n : 1));
  drawTimeGrid(ctx, width, height, seconds);
  if (state.page && state.page.epoch === state.epoch) drawLanes(ctx, width);
  canvas.dataset.epoch = state.page ? String(state.page.epoch) : "";
}

// Pages already asked for, as promises, by epoch and filters (the latest PAGE_CACHE_SIZE).
function fetchPage(epoch) {
  const key = `${epoch}|${JSON.stringify(state.filters)}`;
  let page = state.pages.get(key);
  if (page) {
    state.pages.delete(key);  // most recently used last
  } else {
    page = api(`/api/page/${epoch}?n=1&filters=${filtersQuery()}`);
    page.catch(() => state.pages.delete(key));
  }
  state.pages.set(key, page);
  while (state.pages.size > PAGE_CACHE_SIZE) state.pages.delete(state.pages.keys().next().value);
  return page;
}

async function loadPage(epoch) {
  const request = ++state.pageRequest;
  try {
    const page = await fetchPage(epoch);
    if (request !== state.pageRequest) return;  // the scorer has moved on
    state.page = page;
    drawPage();
    renderStatus();
    if (epoch + 1 < nEpochs()) fetchPage(epoch + 1).catch(() => {});  // scoring moves on
  } catch (error) {
    if (request === state.pageRequest) setMessage(error.message, true);
  }
}

// ---------------------------------------------------------------- the navigator

const NAV_GUTTER_PX = 24;  // left of the navigator: the hypnogram's stage names

function navigatorLayout(width, height) {
  const density = {top: 0, height: Math.round(height * 0.36)};
  const hypnogram = {top: density.height + 6, height: height - density.height - 20};
  const marks = {top: height - 10, height: 8};
  return {width, density, hypnogram, marks};
}

// x of an epoch's start in the navigator, whose epochs span the width right of the gutter
function epochX(epoch, width) {
  return NAV_GUTTER_PX + (epoch / nEpochs()) * (width - NAV_GUTTER_PX);
}

function epochWidth(width, least) {
  return Math.max(least, (width - NAV_GUTTER_PX) / nEpochs());
}

function drawHypnodensity(ctx, layout) {
  const {width, density} = layout;
  const probabilities = state.night.probabilities;
  const w = epochWidth(width, 1);
  if (!probabilities) {
    ctx.fillStyle = "#f1f2f5";
    ctx.fillRect(NAV_GUTTER_PX, density.top, width - NAV_GUTTER_PX, density.height);
    return;
  }
  probabilities.forEach((row, epoch) => {
    let y = density.top;
    row.forEach((p, k) => {
      const h = p * density.height;
      ctx.fillStyle = STAGE_COLORS[STAGES[k]];
      ctx.fillRect(epochX(epoch, width), y, w + 0.5, h + 0.5);
      y += h;
    });
  });
}

function stageY(stage, box) {
  const row = HYPNOGRAM_ORDER.indexOf(stage);
  return box.top + ((row + 0.5) / HYPNOGRAM_ORDER.length) * box.height;
}

function drawStageLine(ctx, stages, box, width) {
  ctx.beginPath();
  let drawing = false;
  stages.forEach((stage, epoch) => {
    if (!stage) { drawing = false; return; }
    const y = stageY(stage, box);
    const x0 = epochX(epoch, width);
    if (drawing) ctx.lineTo(x0, y); else ctx.moveTo(x0, y);
    ctx.lineTo(epochX(epoch + 1, width), y);
    drawing = true;
  });
  ctx.stroke();
}

function drawHypnogram(ctx, layout) {
  const {width, hypnogram: box} = layout;
  ctx.font = "10px sans-serif";
  ctx.textBaseline = "middle";
  ctx.fillStyle = "#666";
  HYPNOGRAM_ORDER.forEach((stage) => ctx.fillText(stage, 2, stageY(stage, box)));
  ctx.strokeStyle = "#8a8f98";
  ctx.lineWidth = 1;
  drawStageLine(ctx, state.night.auto, box, width);
  const w = epochWidth(width, 2);
  state.night.reviewed.forEach((stage, epoch) => {
    if (!stage) return;
    ctx.fillStyle = STAGE_COLORS[stage];
    ctx.fillRect(epochX(epoch, width), stageY(stage, box) - 4, w, 8);
  });
}

function drawQueueAndReviewMarks(ctx, layout) {
  const {width, marks} = layout;
  const w = epochWidth(width, 2);
  for (const item of state.night.queue) {
    ctx.fillStyle = reviewedStage(item.epoch) ? "#b8c2cc" : "#f08c00";
    ctx.fillRect(epochX(item.epoch, width), marks.top, w, marks.height / 2);
  }
  state.night.reviewed.forEach((stage, epoch) => {
    if (!stage) return;
    ctx.fillStyle = "#2b8a3e";
    ctx.fillRect(epochX(epoch, width), marks.top + marks.height / 2, w, marks.height / 2);
  });
}

function drawCurrentEpoch(ctx, layout) {
  const x = epochX(state.epoch, layout.width);
  const w = epochWidth(layout.width, 2);
  ctx.fillStyle = "rgba(0, 0, 0, 0.18)";
  ctx.fillRect(x - 2, 0, w + 4, layout.marks.top + layout.marks.height);
  ctx.strokeStyle = "#000";
  ctx.lineWidth = 1.5;
  ctx.strokeRect(x - 2, 0.75, w + 4, layout.marks.top + layout.marks.height - 1.5);
}

function drawNavigator() {
  if (!state.night) return;
  const canvas = $("navigator");
  const {ctx, width, height} = fitCanvas(canvas, 170);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, width, height);
  const layout = navigatorLayout(width, height);
  drawHypnodensity(ctx, layout);
  drawHypnogram(ctx, layout);
  drawQueueAndReviewMarks(ctx, layout);
  drawCurrentEpoch(ctx, layout);
}

function navigatorEpochAt(event) {
  const canvas = $("navigator");
  const x = event.clientX - canvas.getBoundingClientRect().left - canvas.clientLeft;
  const fraction = (x - NAV_GUTTER_PX) / (canvas.clientWidth - NAV_GUTTER_PX);
  return clampEpoch(Math.floor(fraction * nEpochs()));
}

function renderLegend() {
  const items = STAGES.map((s) => `<span><i style="background:${STAGE_COLORS[s]}"></i>${s}</span>`);
  items.push('<span><i class="line"></i>automatic</span>',
             '<span><i class="reviewed"></i>reviewed</span>',
             '<span><i style="background:#f08c00"></i>to check</span>');
  $("legend").innerHTML = items.join("");
}

// ---------------------------------------------------------------- status, queue, summary

function renderStatus() {
  if (!state.night) return;
  const epoch = state.epoch;
  const auto = state.night.auto[epoch];
  const confidence = state.night.confidence ? state.night.confidence[epoch] : null;
  const reviewed = reviewedStage(epoch);
  const quality = state.night.quality ? state.night.quality[epoch] : null;
  $("status-epoch").textContent = `Epoch ${epoch + 1} / ${nEpochs()}`;
  $("status-clock").textContent = epochClock(epoch);
  const percent = confidence === null ? "" : ` (${formatNumber(100 * confidence, 0)} %)`;
  $("status-auto").textContent = `automatic ${auto || "–"}${percent}`;
  $("status-reviewed").textContent = `reviewed ${reviewed || "–"}`;
  $("status-reviewed").className = reviewed ? `stage stage-${reviewed}` : "";
  $("status-quality").textContent = quality && quality !== "ok" ? `quality: ${quality}` : "";
  $("status").dataset.epoch = String(epoch);
  $("status").dataset.reviewed = reviewed || "";
}

function queueItem(item) {
  const li = document.createElement("li");
  li.dataset.epoch = String(item.epoch);
  li.classList.toggle("done", Boolean(reviewedStage(item.epoch)));
  li.classList.toggle("current", item.epoch === state.epoch);
  const confidence = item.confidence === null || item.confidence === undefined
    ? "" : ` · ${formatNumber(100 * item.confidence, 0)} %`;
  const reasons = (item.reasons || [item.reason]).join(", ");
  li.textContent = `#${item.epoch + 1} ${epochClock(item.epoch)}${confidence} · ${reasons}`;
  li.title = li.textContent;
  li.addEventListener("click", () => goTo(item.epoch));
  return li;
}

function renderQueue() {
  const queue = state.night.queue;
  const left = queue.filter((item) => !reviewedStage(item.epoch)).length;
  $("queue-count").textContent = `(${left} of ${queue.length} left)`;
  $("queue").replaceChildren(...queue.map(queueItem));
}

function statsTable(stats) {
  const keys = Object.keys(stats.automatic || {});
  const rows = keys.map((key) => `<tr><th>${key.replace(/_/g, " ")}</th>` +
    `<td>${formatNumber(stats.automatic[key])}</td>` +
    `<td>${formatNumber((stats.reviewed || {})[key])}</td></tr>`);
  return `<table class="stats"><thead><tr><th></th><th>automatic</th><th>reviewed</th></tr>` +
    `</thead><tbody>${rows.join("")}</tbody></table>`;
}

function confusionTable(confusion, labels = STAGES) {
  if (!confusion || !confusion.length) return "";
  const head = labels.map((s) => `<th>${s}</th>`).join("");
  const rows = confusion.map((row, i) => `<tr><th>${labels[i]}</th>` +
    row.map((n, j) => `<td class="${i === j ? "diag" : ""}">${n}</td>`).join("") + "</tr>");
  return `<table class="confusion"><caption>reviewed (rows) × automatic (columns)</caption>` +
    `<thead><tr><th></th>${head}</tr></thead><tbody>${rows.join("")}</tbody></table>`;
}

function renderSummary(summary) {
  const agreement = summary.agreement || {};
  const accuracy = agreement.accuracy === null || agreement.accuracy === undefined
    ? null : 100 * agreement.accuracy;
  const changed = agreement.changed === undefined ? "" : ` · ${agreement.changed} changed`;
  $("summary").innerHTML =
    `<p><b id="summary-reviewed">${summary.reviewed_epochs}</b> epochs reviewed${changed} · ` +
    `agreement <b id="summary-accuracy">${formatNumber(accuracy)} %</b> · ` +
    `κ <b id="summary-kappa">${formatNumber(agreement.kappa, 2)}</b></p>` +
    confusionTable(agreement.confusion, agreement.labels) + statsTable(summary.stats || {});
}

async function loadSummary() {
  try {
    renderSummary(await api("/api/summary"));
  } catch (error) {
    setMessage(error.message, true);
  }
}

function scheduleSummary() {
  clearTimeout(state.summaryTimer);
  state.summaryTimer = setTimeout(() => state.saves.then(loadSummary), 600);
}

// ---------------------------------------------------------------- moving and scoring

function renderAll() {
  renderStatus();
  renderQueue();
  drawNavigator();
  drawPage();
}

function savePosition() {
  clearTimeout(state.positionTimer);
  state.positionTimer = setTimeout(() => {
    postJson("/api/position", {epoch: state.epoch}).catch((e) => setMessage(e.message, true));
  }, POSITION_DELAY_MS);
}

function goTo(epoch) {
  if (!state.night) return;
  state.epoch = clampEpoch(epoch);
  renderAll();
  loadPage(state.epoch);
  savePosition();
}

function nextInQueue() {
  const open = state.night.queue.filter((i) => !reviewedStage(i.epoch) && i.epoch !== state.epoch);
  if (!open.length) { setMessage("nothing left to check in the queue"); return; }
  goTo(open[0].epoch);
}

function scorerName() { return $("scorer").value.trim(); }

// Saves run one after the other, in the order they were keyed, so undo sees every score.
function enqueueSave(send, onDone, onError = () => {}) {
  setPending(+1);
  const done = (answer) => { state.saveFailed = false; onDone(answer); };
  const failed = (error) => {
    state.saveFailed = true;
    onError();
    setMessage(`not saved: ${error.message}`, true);
  };
  state.saves = state.saves
    .then(send)
    .then(done, failed)
    .finally(() => { setPending(-1); scheduleSummary(); });
}

function scoreCurrent(stage) {
  const scorer = scorerName();
  if (!scorer) {
    setMessage("enter your name as scorer before scoring", true);
    $("scorer").focus();
    return;
  }
  const epoch = state.epoch;
  const before = reviewedStage(epoch);
  state.night.reviewed[epoch] = stage;  // shown at once; the server's answer confirms it
  setMessage(`epoch ${epoch + 1} scored ${stage}`);
  enqueueSave(() => postJson("/api/score", {epoch, stage, scorer}),
              (answer) => { state.night.reviewed[answer.epoch] = answer.stage; renderAll(); },
              () => { state.night.reviewed[epoch] = before; renderAll(); });
  goTo(epoch + 1);
}

function undoLast() {
  enqueueSave(() => postJson("/api/undo", {}), (answer) => {
    state.night.reviewed[answer.epoch] = answer.stage;
    setMessage(`undone: epoch ${answer.epoch + 1} is ${answer.stage || "unreviewed"}`);
    goTo(answer.epoch);
  });
}

function isTyping(target) {
  return target instanceof HTMLInputElement || target instanceof HTMLSelectElement ||
    target instanceof HTMLTextAreaElement;
}

function keyAction(key) {
  const stage = STAGE_KEYS[key.toLowerCase()];
  if (stage) return () => scoreCurrent(stage);
  const moves = {ArrowLeft: -1, ArrowRight: +1, PageUp: -1, PageDown: +1};
  if (key in moves) return () => goTo(state.epoch + moves[key]);
  if (key === "u" || key === "U") return undoLast;
  if (key === "n" || key === "N") return nextInQueue;
  return null;
}

function handleKey(event) {
  if (!state.night || event.ctrlKey || event.metaKey || event.altKey) return;
  if (isTyping(event.target)) {
    if (event.key === "Enter" || event.key === "Escape") event.target.blur();
    return;
  }
  const action = keyAction(event.key);
  if (!action) return;
  event.preventDefault();
  action();
}

// ---------------------------------------------------------------- start

function renderStageButtons() {
  $("stage-buttons").replaceChildren(...STAGES.map((stage) => {
    const button = makeButton(stage, `score this epoch ${stage}`, () => scoreCurrent(stage));
    button.className = `stage stage-${stage}`;
    return button;
  }));
}

function wireEvents() {
  document.addEventListener("keydown", handleKey);
  $("navigator").addEventListener("click", (event) => goTo(navigatorEpochAt(event)));
  $("undo").addEventListener("click", (event) => { undoLast(); event.target.blur(); });
  $("next-queue").addEventListener("click", (event) => { nextInQueue(); event.target.blur(); });
  $("refresh-summary").addEventListener("click", loadSummary);
  $("all-channels").addEventListener("change", toggleOtherChannels);
  window.addEventListener("resize", () => {
    if (!state.night) return;
    fitLanes();
    renderChannelControls();
    drawPage();
    drawNavigator();
  });
}

async function start() {
  renderStageButtons();
  renderLegend();
  wireEvents();
  try {
    state.night = await api("/api/night");
  } catch (error) {
    $("save-state").textContent = "";
    setMessage(`cannot open the review: ${error.message}`, true);
    return;
  }
  state.night.channels.forEach(channelDefaults);
  $("recording").textContent = state.night.recording;
  document.title = `${state.night.recording} · hypnoscope review`;
  $("scorer").value = state.night.scorer || "";
  setPending(0);
  fitLanes();
  renderChannelControls();
  goTo(state.night.position || 0);
  loadSummary();
  document.body.dataset.ready = "1";
}

start();
