// stylize serve: the page. Plain JS over the documented API (docs/web.md).
"use strict";
const $ = (id) => document.getElementById(id);
const state = { config: null, content: null, styles: [], watched: null, sources: new Map(), jobs: new Map(), losses: [] };

function showError(message) {
  const e = $("error");
  e.textContent = message ? "error: " + message : "";
  e.hidden = !message;
}

function networkDefaults() {
  const name = $("network").value || state.config.defaultNetwork;
  return state.config.networks.find((n) => n.name === name);
}

function strengthFactor() { return Math.pow(10, Number($("strength").value)); }

function updateStrengthLabel() {
  const f = strengthFactor();
  $("strength-label").textContent = "×" + (f >= 10 ? f.toFixed(0) : f >= 1 ? f.toFixed(1) : f.toFixed(2));
}

function thumb(file) {
  const img = document.createElement("img");
  img.src = URL.createObjectURL(file);
  img.alt = file.name;
  img.title = file.name;
  return img;
}

function renderInputs() {
  $("content-thumbs").replaceChildren(...(state.content ? [thumb(state.content)] : []));
  $("style-thumbs").replaceChildren(...state.styles.map(thumb));
  $("blend-row").hidden = state.styles.length < 2;
  const blend = $("blend");
  const old = [...blend.querySelectorAll("input")].map((i) => i.value);
  blend.replaceChildren(...state.styles.map((f, i) => {
    const label = document.createElement("label");
    label.textContent = f.name.length > 14 ? f.name.slice(0, 12) + "…" : f.name;
    const input = document.createElement("input");
    input.type = "number"; input.min = "0"; input.step = "0.1"; input.value = old[i] ?? "1"; input.id = "blend-" + (i + 1);
    label.append(input);
    return label;
  }));
  $("start").disabled = !(state.content && state.styles.length > 0);
}

function wireDrop(dropId, inputId, multiple) {
  const drop = $(dropId), input = $(inputId);
  const take = (files) => {
    const images = [...files];
    if (images.length === 0) return;
    if (multiple) state.styles = images; else state.content = images[0];
    showError("");
    renderInputs();
  };
  input.addEventListener("change", () => take(input.files));
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); take(e.dataTransfer.files); });
}

async function fetchFile(url, name) {
  const r = await fetch(url);
  const blob = await r.blob();
  return new File([blob], name, { type: blob.type });
}

function formFields() {
  const fields = [];
  const d = networkDefaults();
  if ($("size").value) fields.push(["size", $("size").value]);
  if ($("iterations").value) fields.push(["iterations", $("iterations").value]);
  if ($("network").value) fields.push(["network", $("network").value]);
  if (Number($("strength").value) !== 0) fields.push(["style-weight", String(Number((d.styleWeight * strengthFactor()).toPrecision(4)))]);
  const colours = $("preserve-color").value;
  if (colours === "palette") fields.push(["palette-transfer", "1"]);
  else if (colours === "none") fields.push(["palette-transfer", "0"]);
  else if (colours) fields.push(["preserve-color", colours]);
  if ($("scales").value) fields.push(["scales", $("scales").value]);
  if (state.styles.length > 1) fields.push(["style-blend", [...$("blend").querySelectorAll("input")].map((i) => i.value || "1").join(",")]);
  return fields;
}

async function start() {
  showError("");
  const form = new FormData();
  form.append("content", state.content, state.content.name);
  for (const s of state.styles) form.append("style", s, s.name);
  for (const [k, v] of formFields()) form.append(k, v);
  $("start").disabled = true;
  try {
    const r = await fetch("/api/jobs", { method: "POST", body: form });
    const body = await r.json();
    if (!r.ok) { showError(body.error); return; }
    watch(body.id);
    follow(body.id);
  } catch (e) {
    showError("the server did not answer (" + e.message + ")");
  } finally {
    $("start").disabled = !(state.content && state.styles.length > 0);
  }
}

function describe(job) {
  const s = job.settings || {};
  const parts = [];
  if (s.size) parts.push(s.size + " px");
  if (s.network) parts.push(s.network);
  if (s.iterations) parts.push(s.iterations + " it");
  if (s["style-weight"]) parts.push("β " + s["style-weight"]);
  if (s["preserve-color"]) parts.push("colours: " + s["preserve-color"]);
  if (s["palette-transfer"]) parts.push("palette " + s["palette-transfer"]);
  if (s.scales) parts.push("scales " + s.scales);
  if (s["style-blend"]) parts.push("blend " + s["style-blend"]);
  return parts.join(" · ") || "defaults";
}

function renderJobs() {
  const active = [...state.jobs.values()].filter((j) => j.status === "queued" || j.status === "running" || j.id === state.watched);
  $("jobs").replaceChildren(...active.map((j) => {
    const li = document.createElement("li");
    li.dataset.id = j.id;
    li.className = "job" + (j.id === state.watched ? " watched" : "");
    const st = document.createElement("span");
    st.className = "status " + j.status;
    st.textContent = j.status === "queued" ? "queued #" + j.position : j.status;
    const what = document.createElement("span");
    what.className = "what";
    what.textContent = j.content.name + " + " + j.styles.map((s) => s.name).join(", ");
    li.append(st, what);
    if (j.status === "queued" || j.status === "running") {
      const b = document.createElement("button");
      b.textContent = "Cancel"; b.className = "cancel-job";
      b.addEventListener("click", (e) => { e.stopPropagation(); cancel(j.id); });
      li.append(b);
    }
    li.addEventListener("click", () => watch(j.id));
    return li;
  }));
}

async function cancel(id) {
  await fetch("/api/jobs/" + id, { method: "DELETE" });
}

function follow(id) {
  if (state.sources.has(id)) return;
  const es = new EventSource("/api/jobs/" + id + "/events");
  state.sources.set(id, es);
  es.addEventListener("job", (e) => {
    const job = JSON.parse(e.data);
    const known = state.jobs.get(id);
    state.jobs.set(id, job);
    if (id === state.watched) renderWatched(job, !known || known.status !== job.status);
    renderJobs();
    if (job.status === "done" || job.status === "failed" || job.status === "cancelled") {
      es.close();
      state.sources.delete(id);
      if (job.status === "done") loadGallery();
    }
  });
  es.addEventListener("progress", (e) => {
    const p = JSON.parse(e.data);
    const job = state.jobs.get(id);
    if (job) { job.iteration = p.iteration; job.iterations = p.iterations; job.status = "running"; }
    if (id !== state.watched) return;
    state.losses.push(p.loss);
    $("status").textContent = "running"; $("status").className = "status running";
    $("iter").textContent = (p.scales > 1 ? "scale " + p.scale + "/" + p.scales + " · " : "") + "iteration " + p.iteration + " / " + p.iterations;
    $("loss").textContent = "loss " + p.loss.toExponential(3) + " (content " + p.content.toExponential(2) + ", style " + p.style.toExponential(2) + ")";
    $("eta").textContent = "about " + formatTime(p.eta) + " left";
    drawCurve();
  });
  es.addEventListener("preview", (e) => {
    if (id !== state.watched) return;
    const p = JSON.parse(e.data);
    $("preview").src = p.image;
    $("preview").dataset.iteration = p.iteration;
    $("caption").textContent = "iteration " + p.iteration;
  });
  es.onerror = () => { if (es.readyState === EventSource.CLOSED) state.sources.delete(id); };
}

function formatTime(s) {
  if (!isFinite(s)) return "?";
  s = Math.max(0, Math.round(s));
  return s >= 60 ? Math.floor(s / 60) + " min " + (s % 60) + " s" : s + " s";
}

async function watch(id) {
  state.watched = id;
  const r = await fetch("/api/jobs/" + id);
  if (!r.ok) return;
  const job = await r.json();
  state.jobs.set(id, job);
  state.losses = job.losses.slice();
  renderWatched(job, true);
  renderJobs();
  if (job.status === "queued" || job.status === "running") follow(id);
}

function renderWatched(job, full) {
  $("live-empty").hidden = true;
  $("live").hidden = false;
  $("live").dataset.id = job.id;
  $("live").dataset.status = job.status;
  const st = $("status");
  st.textContent = job.status === "queued" ? "queued, #" + job.position + " in line" : job.status;
  st.className = "status " + job.status;
  $("cancel").hidden = !(job.status === "queued" || job.status === "running");
  if (job.iterations) $("iter").textContent = "iteration " + job.iteration + " / " + job.iterations;
  if (job.status === "failed") { $("eta").textContent = ""; $("loss").textContent = "error: " + job.error; }
  if (job.status === "cancelled") $("eta").textContent = "";
  if (full) {
    const inputs = [job.content, ...job.styles].map((i) => { const img = document.createElement("img"); img.src = i.url; img.alt = i.name; img.title = i.name; return img; });
    $("inputs").replaceChildren(...inputs);
    if (job.status !== "done") { $("preview").removeAttribute("src"); $("caption").textContent = job.status === "queued" ? "waiting for its turn" : ""; }
  }
  const done = job.status === "done";
  $("actions").hidden = !done;
  if (done) {
    $("preview").src = job.result.url;
    $("caption").textContent = job.result.width + "×" + job.result.height + " · " + formatTime(job.elapsed) + " · seed " + job.seed + " · " + describe(job);
    $("eta").textContent = "";
    $("download-png").href = job.result.url;
    $("download-jpeg").href = job.result.url + "?format=jpeg";
  }
  drawCurve();
}

function drawCurve() {
  const c = $("curve"), g = c.getContext("2d");
  const w = c.width, h = c.height, data = state.losses.filter((v) => v > 0).map(Math.log10);
  g.clearRect(0, 0, w, h);
  if (data.length < 2) return;
  const lo = Math.min(...data), hi = Math.max(...data), span = hi - lo || 1;
  g.strokeStyle = "#3d5a80"; g.lineWidth = 2; g.beginPath();
  data.forEach((v, i) => {
    const x = 6 + (i / (data.length - 1)) * (w - 12), y = 8 + (1 - (v - lo) / span) * (h - 16);
    if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
  });
  g.stroke();
  g.fillStyle = "#7a736a"; g.font = "11px system-ui"; g.fillText("loss (log)", 8, 14);
}

async function loadGallery() {
  const r = await fetch("/api/jobs");
  if (!r.ok) return;
  const jobs = await r.json();
  for (const j of jobs) {
    if ((j.status === "queued" || j.status === "running") && !state.jobs.has(j.id)) { state.jobs.set(j.id, j); follow(j.id); }
  }
  renderJobs();
  $("gallery").replaceChildren(...jobs.filter((j) => j.status === "done").map((j) => {
    const item = document.createElement("div");
    item.className = "gallery-item"; item.dataset.id = j.id;
    const img = document.createElement("img");
    img.src = j.result.url; img.alt = "result " + j.id; img.loading = "lazy";
    img.addEventListener("click", () => watch(j.id));
    const meta = document.createElement("div");
    meta.className = "meta";
    const text = document.createElement("span");
    text.textContent = j.content.name + " × " + j.styles.map((s) => s.name).join(", ") + " — " + describe(j);
    const reload = document.createElement("button");
    reload.textContent = "Load settings";
    reload.addEventListener("click", () => loadSettings(j));
    meta.append(text, reload);
    item.append(img, meta);
    return item;
  }));
}

async function loadSettings(job) {
  const s = job.settings || {};
  $("size").value = s.size || "512";
  $("iterations").value = s.iterations || "";
  $("network").value = s.network || "";
  $("preserve-color").value = s["preserve-color"] || (s["palette-transfer"] === undefined ? "" : Number(s["palette-transfer"]) > 0 ? "palette" : "none");
  $("scales").value = s.scales || "";
  const d = networkDefaults();
  $("strength").value = s["style-weight"] ? Math.log10(Number(s["style-weight"]) / d.styleWeight).toFixed(1) : "0";
  updateStrengthLabel();
  state.content = await fetchFile(job.content.url, job.content.name);
  state.styles = await Promise.all(job.styles.map((st) => fetchFile(st.url, st.name)));
  renderInputs();
  if (s["style-blend"]) s["style-blend"].split(",").forEach((v, i) => { const input = $("blend-" + (i + 1)); if (input) input.value = v; });
}

async function init() {
  wireDrop("content-drop", "content-input", false);
  wireDrop("style-drop", "style-input", true);
  const r = await fetch("/api/config");
  state.config = await r.json();
  const net = $("network");
  const first = document.createElement("option");
  first.value = ""; first.textContent = "default (" + state.config.defaultNetwork + ")";
  net.append(first, ...state.config.networks.filter((n) => n.weightsFound || n.name === state.config.defaultNetwork).map((n) => {
    const o = document.createElement("option"); o.value = n.name; o.textContent = n.name; return o;
  }));
  net.addEventListener("change", () => { $("iterations").placeholder = "default " + networkDefaults().iterations; });
  $("iterations").placeholder = "default " + networkDefaults().iterations;
  $("strength").addEventListener("input", updateStrengthLabel);
  $("start").addEventListener("click", start);
  $("cancel").addEventListener("click", () => state.watched && cancel(state.watched));
  $("use-examples").addEventListener("click", async () => {
    const ex = state.config.examples;
    state.content = await fetchFile(ex.find((e) => e.role === "content").url, "village.jpg");
    state.styles = [await fetchFile(ex.find((e) => e.role === "style").url, "swirls.jpg")];
    renderInputs();
  });
  $("use-as-content").addEventListener("click", async () => {
    const job = state.jobs.get(state.watched);
    if (!job || !job.result) return;
    state.content = await fetchFile(job.result.url, "stylized-" + job.id + ".png");
    renderInputs();
    window.scrollTo({ top: 0, behavior: "smooth" });
  });
  await loadGallery();
  document.body.dataset.ready = "true";
}

init();
