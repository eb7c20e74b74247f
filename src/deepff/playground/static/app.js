// deepff playground page. It only draws: every number comes from the deepff server.
"use strict";

const $ = (id) => document.getElementById(id);
const CLASS_COLOURS = [[8, 119, 189], [245, 147, 34], [44, 160, 44], [214, 39, 40], [148, 103, 189],
  [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207]];
const NEG = [245, 147, 34], POS = [8, 119, 189], WHITE = [255, 255, 255];

const pg = {
  sid: null, options: null, built: null, playing: false, busy: false, history: [], norms: [],
  stats: { updates: 0, started: 0, rate: 0, waitMs: 0, drawMs: 0, lastTestLoss: null },
};
window.playground = pg;   // read by the browser test

// ------------------------------------------------------------------ server
async function api(path, body) {
  const init = body === undefined ? { method: "GET" } :
    { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const res = await fetch(path, init);
  const data = await res.json();
  if (!res.ok) throw new Error(data.error || res.statusText);
  return data;
}

function say(text) { $("status").textContent = text || ""; }

// ---------------------------------------------------------------- controls
function fillSelect(sel, names, value) {
  sel.textContent = "";
  for (const n of names) {
    const o = document.createElement("option");
    o.value = o.textContent = n;
    sel.appendChild(o);
  }
  if (value !== undefined) sel.value = value;
}

function layerRow(layer, i) {
  const row = document.createElement("div");
  row.className = "layer";
  row.dataset.index = i;
  const title = document.createElement("b");
  title.textContent = `layer ${i + 1}`;
  row.appendChild(title);
  const add = (label, el) => { const l = document.createElement("label"); l.textContent = label + " ";
    l.appendChild(el); row.appendChild(l); return el; };
  const units = add("units", document.createElement("input"));
  Object.assign(units, { type: "number", min: 1, max: pg.options.limits.max_units, value: layer.units });
  units.className = "units";
  const act = add("", document.createElement("select"));
  act.className = "activation";
  fillSelect(act, pg.options.activations, layer.activation);
  const drop = add("dropout", document.createElement("input"));
  Object.assign(drop, { type: "number", min: 0, max: 0.9, step: 0.1, value: layer.dropout || 0 });
  drop.className = "dropout";
  const bn = add("batch norm", document.createElement("input"));
  Object.assign(bn, { type: "checkbox", checked: !!layer.batch_norm });
  bn.className = "batch_norm";
  for (const el of [units, act, drop, bn]) el.addEventListener("change", () => rebuild());
  return row;
}

function setLayers(layers) {
  const box = $("layers");
  box.textContent = "";
  layers.forEach((l, i) => box.appendChild(layerRow(l, i)));
}

function readLayers() {
  return [...$("layers").children].map((row) => ({
    units: Number(row.querySelector(".units").value),
    activation: row.querySelector(".activation").value,
    dropout: Number(row.querySelector(".dropout").value),
    batch_norm: row.querySelector(".batch_norm").checked,
  }));
}

const NUMBER_KEYS = ["noise", "train_fraction", "n_samples", "data_seed", "lr", "batch_size", "l1", "l2", "seed"];
const TEXT_KEYS = ["dataset", "task", "output_activation", "loss", "init", "optimizer"];

function readConfig() {
  const cfg = {};
  for (const k of NUMBER_KEYS) cfg[k] = Number($(k).value);
  for (const k of TEXT_KEYS) cfg[k] = $(k).value || "auto";   // a select whose choice is not listed yet
  cfg.features = [...document.querySelectorAll("#features input:checked")].map((e) => e.value);
  cfg.layers = readLayers();
  return cfg;
}

function setConfig(cfg) {
  for (const k of NUMBER_KEYS) $(k).value = cfg[k];
  for (const k of TEXT_KEYS) if (cfg[k] !== undefined) $(k).value = cfg[k];
  for (const e of document.querySelectorAll("#features input")) e.checked = cfg.features.includes(e.value);
  setLayers(cfg.layers);
  showSliders();
}

function showSliders() {
  $("noise-out").textContent = $("noise").value;
  $("train_fraction-out").textContent = Math.round(100 * $("train_fraction").value) + "%";
  const about = pg.options.datasets[$("dataset").value];
  $("dataset-about").textContent = about ? about.about : "your uploaded table";
}

function configFromUrl() {
  if (location.hash.length < 2) return null;
  try { return JSON.parse(decodeURIComponent(location.hash.slice(1))); } catch (e) { return null; }
}

// The pairs the engine refuses cannot be chosen; the page says why.
function showPairs(pairs, act, loss) {
  const why = [];
  for (const o of $("output_activation").options) {
    const ok = Object.values(pairs[o.value] || {}).some((p) => p === null);
    o.disabled = !ok;
    o.title = ok ? "" : "no loss accepts this output on these data";
  }
  for (const o of $("loss").options) {
    const problem = (pairs[act] || {})[o.value];
    o.disabled = problem !== null;
    o.title = problem || "";
    if (problem) why.push(`${o.value}: ${problem}`);
  }
  $("output_activation").value = act;
  $("loss").value = loss;
  $("pair-why").textContent = why.length ? `Greyed out with a ${act} output:\n` + why.join("\n") : "";
}

// ------------------------------------------------------------------ colour
function mix(a, b, t) { return [0, 1, 2].map((i) => Math.round(a[i] + (b[i] - a[i]) * t)); }
function diverging(v) { return v < 0 ? mix(WHITE, NEG, Math.min(1, -v)) : mix(WHITE, POS, Math.min(1, v)); }
function bytes(b64) { const s = atob(b64); const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i); return out; }

function paint(canvas, grid, colourAt) {
  // the canvas holds one pixel per grid point; CSS scales it up, smoothly
  if (canvas.width !== grid) canvas.width = canvas.height = grid;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(grid, grid);
  for (let i = 0; i < grid * grid; i++) {
    const c = colourAt(i);
    img.data[4 * i] = c[0]; img.data[4 * i + 1] = c[1]; img.data[4 * i + 2] = c[2]; img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

function neuronPicture(canvas, b64, grid) {
  const v = bytes(b64);
  paint(canvas, grid, (i) => diverging(v[i] / 127.5 - 1));
}

// ----------------------------------------------------------------- drawing
function drawBoundary(pics) {
  const b = pg.built, out = pics.output, g = out.grid, canvas = $("boundary");
  if (out.kind === "classes") {
    const label = bytes(out.label), conf = bytes(out.confidence), k = Math.max(2, b.n_classes);
    paint(canvas, g, (i) => {
      const p = conf[i] / 255, t = Math.max(0, (p - 1 / k) / (1 - 1 / k));
      return mix(WHITE, CLASS_COLOURS[label[i] % 10], 0.75 * t);
    });
  } else {
    const v = bytes(out.value);
    paint(canvas, g, (i) => diverging(0.75 * (v[i] / 127.5 - 1)));
  }
}

function drawPoints() {
  const b = pg.built, canvas = $("points"), [x0, x1, y0, y1] = b.extent;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const px = (x) => (x - x0) / (x1 - x0) * canvas.width, py = (y) => (y1 - y) / (y1 - y0) * canvas.height;
  const colourOf = (y) => b.task === "classification" ? CLASS_COLOURS[y % 10] :
    diverging(2 * (y - b.y_range[0]) / ((b.y_range[1] - b.y_range[0]) || 1) - 1);
  const dots = (pts, ys, stroke) => pts.forEach((p, i) => {
    ctx.beginPath();
    ctx.arc(px(p[0]), py(p[1]), 3, 0, 2 * Math.PI);
    ctx.fillStyle = `rgb(${colourOf(ys[i]).join(",")})`;
    ctx.fill();
    ctx.strokeStyle = stroke;
    ctx.stroke();
  });
  dots(b.points.train, b.points.y_train, "#fff");
  dots(b.points.test, b.points.y_test, "#000");
}

function drawDiagram(state) {
  const box = $("diagram"), pics = state.pictures, grid = pics.output.grid;
  const cols = [pics.inputs, ...pics.neurons];
  const names = [pg.built.config.features, ...pics.neurons.map((l, i) => l.map((_, j) => `h${i + 1}_${j + 1}`))];
  const size = 34, gapX = 92, gapY = 42, top = 18;
  const height = top + Math.max(...cols.map((c) => c.length)) * gapY + 10;
  const width = cols.length * gapX + 20;
  if (!box.querySelector("svg") || box.dataset.layout !== JSON.stringify(cols.map((c) => c.length))) {
    box.textContent = "";
    box.dataset.layout = JSON.stringify(cols.map((c) => c.length));
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("width", width);
    svg.setAttribute("height", height);
    box.appendChild(svg);
    box.style.position = "relative";
    cols.forEach((col, c) => col.forEach((_, j) => {
      const cv = document.createElement("canvas");
      cv.width = cv.height = grid;
      cv.className = "neuron";
      cv.title = names[c][j];
      Object.assign(cv.style, { position: "absolute", left: `${10 + c * gapX}px`, top: `${top + j * gapY}px`,
        width: `${size}px`, height: `${size}px`, border: "1px solid #999" });
      cv.dataset.col = c; cv.dataset.row = j;
      box.appendChild(cv);
    }));
  }
  const svg = box.querySelector("svg");
  const centre = (c, j) => [10 + c * gapX + size / 2, top + j * gapY + size / 2];
  const wanted = state.weights.reduce((n, W) => n + W.length * W[0].length, 0);
  if (svg.childElementCount !== wanted) {
    svg.textContent = "";
    for (let k = 0; k < wanted; k++) {
      const line = document.createElementNS("http://www.w3.org/2000/svg", "line");
      line.appendChild(document.createElementNS("http://www.w3.org/2000/svg", "title"));
      svg.appendChild(line);
    }
  }
  let k = 0;
  state.weights.forEach((W, l) => {
    const maxW = Math.max(1e-9, ...W.flat().map(Math.abs));
    const last = l === state.weights.length - 1;
    W.forEach((row, i) => row.forEach((w, j) => {
      const [xa, ya] = centre(l, i);
      const [xb, yb] = last ? [10 + (l + 1) * gapX, top + j * gapY + size / 2] : centre(l + 1, j);
      const line = svg.children[k++];
      line.setAttribute("x1", xa + size / 2); line.setAttribute("y1", ya);
      line.setAttribute("x2", xb - (last ? 0 : size / 2)); line.setAttribute("y2", yb);
      line.setAttribute("stroke", w < 0 ? "rgb(245,147,34)" : "rgb(8,119,189)");
      line.setAttribute("stroke-width", (0.5 + 3.5 * Math.abs(w) / maxW).toFixed(2));
      line.firstChild.textContent = `W${l + 1}[${i + 1},${j + 1}] = ${w}`;
    }));
  });
  for (const cv of box.querySelectorAll("canvas.neuron")) {
    neuronPicture(cv, cols[Number(cv.dataset.col)][Number(cv.dataset.row)], grid);
  }
}

function drawChart(canvas, series, logScale) {
  const ctx = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  const all = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p[1]) && (!logScale || p[1] > 0));
  if (all.length < 2) return;
  const f = logScale ? Math.log10 : (v) => v;
  const xs = all.map((p) => p[0]), ys = all.map((p) => f(p[1]));
  const xmin = Math.min(...xs), xmax = Math.max(...xs), ymin = logScale ? Math.min(...ys) : 0;
  const ymax = Math.max(...ys);
  const X = (x) => 4 + (x - xmin) / ((xmax - xmin) || 1) * (w - 8);
  const Y = (y) => h - 4 - (f(y) - ymin) / ((ymax - ymin) || 1) * (h - 8);
  for (const s of series) {
    ctx.beginPath();
    ctx.strokeStyle = s.colour;
    s.points.forEach((p, i) => (i ? ctx.lineTo(X(p[0]), Y(p[1])) : ctx.moveTo(X(p[0]), Y(p[1]))));
    ctx.stroke();
  }
  ctx.fillStyle = "#666";
  ctx.fillText(logScale ? `1e${ymax.toFixed(1)}` : ymax.toPrecision(3), 6, 12);
}

function fmt(v) { return v === undefined || v === null ? "-" : Number(v).toFixed(4); }

function show(state) {
  const last = state.last;
  pg.history.push(last);
  for (const r of state.grad_norms) pg.norms.push(r);
  if (pg.norms.length > 3000) pg.norms = pg.norms.filter((_, i) => i % 2 === 0);
  $("epoch").textContent = last.epoch;
  $("steps").textContent = last.step;
  $("test-loss").textContent = fmt(last.test_loss);
  $("train-loss").textContent = fmt(last.train_loss);
  $("test-loss").dataset.value = last.test_loss;
  $("acc-line").hidden = last.test_accuracy === undefined;
  $("test-acc").textContent = last.test_accuracy === undefined ? "-" : (100 * last.test_accuracy).toFixed(1) + "%";
  $("train-acc").textContent = last.train_accuracy === undefined ? "-" : (100 * last.train_accuracy).toFixed(1) + "%";
  pg.stats.lastTestLoss = last.test_loss;
  drawBoundary(state.pictures);
  drawDiagram(state);
  drawChart($("curves"), [
    { colour: "#999", points: pg.history.map((r) => [r.epoch, r.train_loss]) },
    { colour: "#000", points: pg.history.map((r) => [r.epoch, r.test_loss]) }], false);
  const nLayers = state.weights.length;
  const series = [];
  for (let l = 0; l < nLayers; l++) {
    series.push({ colour: `rgb(${CLASS_COLOURS[l % 10].join(",")})`,
      points: pg.norms.map((r) => [r.step, r.norms[l]]) });
  }
  drawChart($("gradnorms"), series, true);
  $("gradnorm-legend").textContent = series.map((s, l) => `layer ${l + 1}`).join(", ") +
    " (colours: blue, orange, green, red, ...)";
}

// -------------------------------------------------------------------- math
function shapeText(s) { return `(${s.join(", ")})`; }

function showShapes(sh) {
  const box = $("shapes"), L = sh.layers.length, n = sh.batch;
  const lines = [];
  const add = (eq, shapes) => lines.push([eq, shapes]);
  lines.push([`Rows are samples: one batch has n = ${n} rows; ${sh.n_params} parameters in all.`, ""]);
  add("h^0 = X", `X ${shapeText([n, sh.n_features])}`);
  lines.push(["forward", ""]);
  sh.layers.forEach((ly, i) => {
    const l = i + 1;
    const hin = `h^${l - 1} ${shapeText([n, ly.W[0]])}`;
    if (ly.batch_norm) {
      add(`a^${l} = gamma^${l} BN(h^${l - 1} W^${l}) + beta^${l}`,
        `${hin} W^${l} ${shapeText(ly.W)}, gamma^${l} beta^${l} ${shapeText(ly.gamma)} -> a^${l} ${shapeText(ly.a)}`);
    } else {
      add(`a^${l} = h^${l - 1} W^${l} + b^${l}`,
        `${hin} W^${l} ${shapeText(ly.W)} + b^${l} ${shapeText(ly.b)} -> a^${l} ${shapeText(ly.a)}`);
    }
    add(`h^${l} = ${ly.activation}(a^${l})` + (ly.dropout ? `  then o mask / (1 - ${ly.dropout}) in training` : ""),
      `h^${l} ${shapeText(ly.h)}`);
  });
  add(`J = ${sh.loss}(h^${L}, y)`, "");
  lines.push(["backward", ""]);
  const out = sh.layers[L - 1];
  add(sh.fused ? `g^${L} = (h^${L} - y) / n   (fused: ${out.activation} + ${sh.loss})` :
    `g^${L} = ${out.activation}'(a^${L}) o dJ/dh^${L}`, `g^${L} ${shapeText(out.g)}`);
  for (let l = L; l >= 1; l--) {
    const ly = sh.layers[l - 1];
    add(`dW^${l} = (h^${l - 1})^T g^${l}`,
      `(h^${l - 1})^T ${shapeText([ly.W[0], n])} g^${l} ${shapeText([n, ly.W[1]])} -> dW^${l} ${shapeText(ly.W)}`);
    if (!ly.batch_norm) add(`db^${l} = sum_rows(g^${l})`, `db^${l} ${shapeText(ly.b)}`);
    else add(`dgamma^${l}, dbeta^${l} from g^${l} through BN`, `${shapeText(ly.gamma)}`);
    if (l > 1) {
      const prev = sh.layers[l - 2];
      add(`g^${l - 1} = (g^${l} (W^${l})^T) o ${prev.activation}'(a^${l - 1})`,
        `g^${l} ${shapeText(ly.g)} (W^${l})^T ${shapeText([ly.W[1], ly.W[0]])} -> g^${l - 1} ${shapeText(prev.g)}`);
    }
  }
  box.textContent = "";
  for (const [eq, shapes] of lines) {
    const row = document.createElement("div");
    const e = document.createElement("span"); e.className = "eq"; e.textContent = eq.padEnd(64);
    const s = document.createElement("span"); s.className = "shape"; s.textContent = shapes;
    row.append(e, s);
    box.appendChild(row);
  }
}

// ---------------------------------------------------------------- actions
async function refreshCode() {
  try {
    const code = await api(`/api/code?session=${pg.sid}`);
    $("code-python").textContent = code.python;
    $("code-yaml").textContent = code.yaml;
  } catch (e) { say(e.message); }
}

let rebuildTimer = null;
function rebuild(changedData) {
  clearTimeout(rebuildTimer);
  rebuildTimer = setTimeout(() => build(changedData), 60);
}

async function build(changedData) {
  const cfg = readConfig();
  if (changedData) { cfg.output_activation = "auto"; cfg.loss = "auto"; }
  const wasPlaying = pg.playing;
  pg.playing = false;
  while (pg.busy) await new Promise((r) => setTimeout(r, 5));
  try {
    const b = await api("/api/build", { session: pg.sid, config: cfg });
    pg.built = b;
    pg.history = [];
    pg.norms = [];
    showPairs(b.pairs, b.output_activation, b.loss);
    const shown = { ...b.config, output_activation: b.output_activation, loss: b.loss };
    history.replaceState(null, "", "#" + encodeURIComponent(JSON.stringify(shown)));
    showSliders();
    showShapes(b.shapes);
    drawPoints();
    show(b);
    $("download").href = `/api/export?session=${pg.sid}`;
    say("");
    await refreshCode();
    if (wasPlaying) play();
  } catch (e) { say(e.message); }
  $("play").classList.toggle("playing", pg.playing);
}

function count(t0, t1) {
  pg.stats.waitMs += t1 - t0;   // the page waiting for the server
  pg.stats.drawMs += performance.now() - t1;
  pg.stats.updates += 1;
  const secs = (performance.now() - pg.stats.started) / 1000;
  if (secs > 0.5) { pg.stats.rate = pg.stats.updates / secs; $("ups").textContent = pg.stats.rate.toFixed(1); }
}

async function trainOnce(epochs) {
  pg.busy = true;
  try {
    const t0 = performance.now();
    const state = await api("/api/train", { session: pg.sid, epochs: epochs });
    const t1 = performance.now();
    show(state);
    count(t0, t1);
  } finally { pg.busy = false; }
}

async function play() {
  pg.playing = true;
  $("play").classList.add("playing");
  $("play").textContent = "pause";
  Object.assign(pg.stats, { updates: 0, waitMs: 0, drawMs: 0, started: performance.now() });
  pg.busy = true;
  try {
    // the next request is on its way while this update is drawn: server and page work side by side
    let pending = api("/api/train", { session: pg.sid, epochs: 1 });
    while (pending) {
      const t0 = performance.now();
      const state = await pending;
      const t1 = performance.now();
      pending = pg.playing ? api("/api/train", { session: pg.sid, epochs: 1 }) : null;
      show(state);
      count(t0, t1);
    }
  } catch (e) { say(e.message); }
  pg.busy = false;
  pg.playing = false;
  $("play").classList.remove("playing");
  $("play").textContent = "play";
  await refreshCode();
}

async function upload(file) {
  const text = await file.text();
  const res = await fetch(`/api/upload?session=${pg.sid}&name=${encodeURIComponent(file.name)}`,
    { method: "POST", headers: { "Content-Type": "text/csv" }, body: text });
  const data = await res.json();
  if (!res.ok) { say(data.error); return; }
  if (![...$("dataset").options].some((o) => o.value === "upload")) {
    const o = document.createElement("option"); o.value = "upload"; o.textContent = "upload";
    $("dataset").appendChild(o);
  }
  $("dataset").value = "upload";
  say(`${data.name}: ${data.rows} rows, features ${data.columns.join(", ")}, target ${data.target}`);
  build(true);
}

async function gradcheck() {
  const box = $("gradcheck-result");
  box.textContent = "running...";
  try {
    const r = await api("/api/gradcheck", { session: pg.sid });
    box.textContent = "";
    const p = document.createElement("p");
    p.textContent = `largest relative error ${r.max.toExponential(2)} on ${r.samples} training rows ` +
      (r.max < 1e-6 ? "(below 1e-6: backprop agrees with finite differences)" : "(above 1e-6: look closer)");
    p.id = "gradcheck-max";
    p.dataset.value = r.max;
    const table = document.createElement("table");
    for (const [name, err] of Object.entries(r.errors)) {
      const tr = table.insertRow();
      tr.insertCell().textContent = name;
      tr.insertCell().textContent = err.toExponential(2);
    }
    box.append(p, table);
    for (const w of r.warnings) { const n = document.createElement("p"); n.className = "note"; n.textContent = w;
      box.appendChild(n); }
  } catch (e) { box.textContent = e.message; }
}

// -------------------------------------------------------------------- start
async function start() {
  pg.options = await api("/api/options");
  const o = pg.options;
  fillSelect($("dataset"), Object.keys(o.datasets));
  fillSelect($("output_activation"), o.activations);
  fillSelect($("loss"), o.losses);
  fillSelect($("init"), o.initializers);
  fillSelect($("optimizer"), o.optimizers);
  for (const f of o.features) {
    const l = document.createElement("label"), c = document.createElement("input");
    c.type = "checkbox"; c.value = f;
    c.addEventListener("change", () => rebuild());
    l.append(c, " " + f);
    $("features").appendChild(l);
  }
  pg.sid = (await api("/api/session", {})).session;
  const fromUrl = configFromUrl();
  const cfg = { ...o.defaults, ...(fromUrl || {}) };
  if (cfg.dataset === "upload") { cfg.dataset = o.defaults.dataset; say("this link used an uploaded table: upload it again"); }
  setConfig(cfg);
  for (const k of NUMBER_KEYS.concat(["task", "init", "optimizer", "output_activation", "loss"])) {
    $(k).addEventListener("change", () => { showSliders(); rebuild(k === "task"); });
  }
  $("dataset").addEventListener("change", () => { showSliders(); rebuild(true); });
  $("output_activation").addEventListener("change", () => {   // keep the loss one the engine accepts
    const ok = pg.built && pg.built.pairs[$("output_activation").value];
    if (ok && ok[$("loss").value] !== null) $("loss").value = Object.keys(ok).find((k) => ok[k] === null);
  });
  $("noise").addEventListener("input", showSliders);
  $("train_fraction").addEventListener("input", showSliders);
  $("add-layer").addEventListener("click", () => {
    const layers = readLayers();
    if (layers.length >= o.limits.max_hidden_layers) { say(`at most ${o.limits.max_hidden_layers} hidden layers`); return; }
    layers.push({ units: 2, activation: layers.length ? layers[layers.length - 1].activation : "tanh" });
    setLayers(layers); rebuild();
  });
  $("remove-layer").addEventListener("click", () => { const layers = readLayers(); layers.pop(); setLayers(layers); rebuild(); });
  $("play").addEventListener("click", () => (pg.playing ? (pg.playing = false) : play()));
  $("step").addEventListener("click", async () => { if (!pg.playing && !pg.busy) {
    try { await trainOnce(1); await refreshCode(); } catch (e) { say(e.message); } } });
  $("reset").addEventListener("click", () => build(false));
  $("gradcheck").addEventListener("click", gradcheck);
  $("upload").addEventListener("change", (e) => e.target.files.length && upload(e.target.files[0]));
  $("copy-link").addEventListener("click", async () => {
    try { await navigator.clipboard.writeText(location.href); say("link copied"); } catch (e) { say(location.href); }
  });
  await build(fromUrl === null);
  document.body.dataset.ready = "1";
}

start().catch((e) => say(e.message));
