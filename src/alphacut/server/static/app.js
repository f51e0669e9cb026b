// alphacut web page: pick/drop/paste images, upload each to POST /api/remove, show the cutout
// on a backdrop with a before/after slider and a client-side mask view, download one or all.
import { checkFile, explain } from "/static/messages.js";
import {
  authHeaders,
  formatBytes,
  loadSettings,
  readOptions,
  readStore,
  showKeyField,
  writeStore,
} from "/static/settings.js";
import { attachBrush, bindBrushKeys } from "/static/brush.js";
import { checkVideo, forget, isVideo, runVideo } from "/static/video.js";
import { makeZip } from "/static/zip.js";

const $ = (selector) => document.querySelector(selector);
const PARALLEL_UPLOADS = 2;
const STORE_BACKDROP = "alphacut.backdrop";
const EXTENSIONS = { "image/png": "png", "image/webp": "webp", "image/jpeg": "jpg" };

const cards = new Set();
const queue = [];
let running = 0;

const ui = {
  dropZone: $("#drop-zone"),
  input: $("#file-input"),
  notice: $("#notice"),
  results: $("#results"),
  list: $("#cards"),
  live: $("#live"),
  downloadAll: $("#download-all"),
  doneCount: $("#done-count"),
  clearAll: $("#clear-all"),
  template: $("#card-template"),
};

function stem(name) {
  return name.replace(/\.[^./\\]+$/, "") || "image";
}

function notify(text) {
  ui.notice.textContent = text;
  ui.notice.hidden = !text;
}

function announce(text) {
  ui.live.textContent = text;
}

// ---- cards ---------------------------------------------------------------------------------

function createCard(file, options) {
  const el = ui.template.content.firstElementChild.cloneNode(true);
  const refs = {};
  for (const node of el.querySelectorAll("*")) {
    for (const attr of node.getAttributeNames()) {
      if (attr.startsWith("data-") && attr !== "data-testid") refs[attr.slice(5)] = node;
    }
  }
  const card = { el, refs, file, options, sourceUrl: URL.createObjectURL(file) };
  card.video = isVideo(file);
  el.classList.toggle("is-video", card.video);
  refs.name.textContent = file.name;
  refs.name.title = file.name;
  describeCard(card);
  if (!card.video) refs.before.src = card.sourceUrl; // a video's first frame needs no preview
  refs.before.alt = `Original: ${file.name}`;
  refs.before.addEventListener("load", () => fitStage(card, refs.before), { once: true });
  refs.before.addEventListener("error", () => refs.stage.classList.add("no-preview"), {
    once: true,
  });
  refs.remove.setAttribute("aria-label", `Remove ${file.name}`);
  refs.remove.addEventListener("click", () => removeCard(card));
  refs.retry.addEventListener("click", () => retry(card));
  refs["mask-toggle"].addEventListener("click", () => toggleMask(card));
  refs.stage.querySelector("input[type=range]").addEventListener("input", (event) => {
    refs.stage.style.setProperty("--pos", `${event.target.value}%`);
  });
  cards.add(card);
  ui.list.append(el);
  return card;
}

function describeCard(card) {
  const { options, file } = card;
  const what = options.only_mask ? "mask" : card.video ? "WebM video" : options.format.toUpperCase();
  const model = options.model || "default model";
  card.refs.sub.textContent = `${formatBytes(file.size)} · ${model} · ${what}`;
}

function fitStage(card, img) {
  if (img.naturalWidth && img.naturalHeight) {
    card.refs.stage.style.aspectRatio = `${img.naturalWidth} / ${img.naturalHeight}`;
  }
}

function setState(card, state, status = "") {
  card.el.dataset.state = state;
  card.refs.status.textContent = status;
  if (state !== "error") card.refs.error.hidden = true;
  card.refs.retry.hidden = true;
  updateToolbar();
}

function setProgress(card, fraction) {
  const percent = Math.round(fraction * 100);
  card.refs.progress.value = percent;
  card.refs.status.textContent = `Uploading… ${percent}%`;
}

function fail(card, { title, text, retryable = false }) {
  setState(card, "error", "");
  const error = card.refs.error;
  error.replaceChildren();
  const strong = document.createElement("strong");
  strong.textContent = title;
  error.append(strong, ` ${text}`);
  error.hidden = false;
  card.refs.retry.hidden = !retryable;
  announce(`${card.file.name}: ${title}`);
}

function removeCard(card) {
  if (card.video) forget(card);
  card.xhr?.abort();
  const waiting = queue.indexOf(card);
  if (waiting >= 0) queue.splice(waiting, 1);
  URL.revokeObjectURL(card.sourceUrl);
  if (card.resultUrl) URL.revokeObjectURL(card.resultUrl);
  const next = card.el.nextElementSibling || card.el.previousElementSibling;
  card.el.remove();
  cards.delete(card);
  updateToolbar();
  (next?.querySelector("[data-remove]") || ui.dropZone).focus(); // keep keyboard users placed
}

function updateToolbar() {
  ui.results.hidden = cards.size === 0;
  const done = [...cards].filter((card) => card.blob).length;
  ui.downloadAll.disabled = done === 0;
  ui.doneCount.textContent = String(done);
  ui.doneCount.hidden = done < 2;
}

// ---- checks and uploads --------------------------------------------------------------------

function addFiles(files) {
  const options = readOptions();
  for (const file of files) {
    const card = createCard(file, options);
    const problem = card.video ? checkVideo(file) : checkFile(file);
    if (problem) fail(card, problem);
    else enqueue(card);
  }
  ui.results.scrollIntoView({ behavior: "smooth", block: "nearest" });
}

function enqueue(card) {
  card.refs.progress.value = 0;
  setState(card, "uploading", "Waiting…");
  queue.push(card);
  pump();
}

function retry(card) {
  card.options = readOptions();
  describeCard(card);
  enqueue(card);
}

function pump() {
  while (running < PARALLEL_UPLOADS && queue.length) {
    const card = queue.shift();
    running += 1;
    const work = card.video ? runVideo(card, VIDEO_HOOKS) : upload(card);
    work.finally(() => {
      running -= 1;
      pump();
    });
  }
}

function upload(card) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    card.xhr = xhr;
    const body = new FormData();
    body.append("file", card.file, card.file.name);
    for (const [name, value] of Object.entries(card.options)) {
      if (value !== "") body.append(name, String(value));
    }
    xhr.open("POST", "/api/remove");
    xhr.responseType = "blob";
    for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) setProgress(card, event.loaded / event.total);
    });
    xhr.upload.addEventListener("load", () => {
      card.refs.progress.removeAttribute("value"); // indeterminate while the model runs
      setState(card, "processing", "Removing the background…");
    });
    xhr.addEventListener("load", () => settle(card, xhr).finally(resolve));
    xhr.addEventListener("error", () => {
      fail(card, explain(0, {}, null));
      resolve();
    });
    xhr.addEventListener("abort", resolve);
    setState(card, "uploading", "Uploading… 0%");
    xhr.send(body);
  });
}

async function settle(card, xhr) {
  card.xhr = null;
  if (xhr.status === 200) {
    card.source = xhr.getResponseHeader("X-Alphacut-Source"); // for strokes: POST /api/refine
    return showResult(card, xhr.response);
  }
  let error = {};
  try {
    error = JSON.parse(await xhr.response.text()).error || {};
  } catch {
    // Not our JSON (a proxy's HTML page, say): fall back to the status alone.
  }
  if (xhr.status === 401 || xhr.status === 403) showKeyField(true);
  fail(card, explain(xhr.status, error, xhr.getResponseHeader("Retry-After"), card.file.name));
}

async function showResult(card, blob, { keepBrush = false } = {}) {
  const { refs, file, options } = card;
  card.blob = blob;
  card.maskDrawn = false;
  if (card.resultUrl) URL.revokeObjectURL(card.resultUrl);
  card.resultUrl = URL.createObjectURL(blob);
  refs.result.src = card.resultUrl;
  refs.result.alt = `${file.name} without its background`;
  await refs.result.decode().catch(() => {}); // an undisplayable result can still be downloaded
  fitStage(card, refs.result);
  const ext = EXTENSIONS[blob.type] || (options.format === "jpeg" ? "jpg" : options.format);
  refs.download.href = card.resultUrl;
  refs.download.download = `${stem(file.name)}.${ext}`;
  refs.download.setAttribute("aria-label", `Download ${refs.download.download}`);
  showMask(card, false);
  // A mask-only or JPEG result has no alpha channel to look at.
  refs["mask-toggle"].hidden = options.only_mask || ext === "jpg";
  setState(card, "done", "");
  if (keepBrush) return;
  if (!options.only_mask && ext !== "jpg") attachBrush(card, BRUSH_HOOKS);
  announce(`${file.name} is ready.`);
}

const VIDEO_HOOKS = { setState, setProgress, fail, explain, showKeyField, stem, announce };
const BRUSH_HOOKS = { showResult, announce, notify };

// ---- result views --------------------------------------------------------------------------

/** Paint the result's alpha channel as grey (0 = black, 255 = white) on the card's canvas. */
function drawMask(card) {
  const { result, mask } = card.refs;
  mask.width = result.naturalWidth;
  mask.height = result.naturalHeight;
  const ctx = mask.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(result, 0, 0);
  const pixels = ctx.getImageData(0, 0, mask.width, mask.height);
  const px = pixels.data;
  for (let i = 0; i < px.length; i += 4) {
    px[i] = px[i + 1] = px[i + 2] = px[i + 3];
    px[i + 3] = 255;
  }
  ctx.putImageData(pixels, 0, 0);
  card.maskDrawn = true;
}

function showMask(card, on) {
  const { result, mask } = card.refs;
  if (on && !card.maskDrawn) drawMask(card);
  mask.hidden = !on;
  result.hidden = on;
  const toggle = card.refs["mask-toggle"];
  toggle.setAttribute("aria-pressed", String(on));
  toggle.textContent = on ? "Show cutout" : "Show mask";
}

function toggleMask(card) {
  showMask(card, card.refs["mask-toggle"].getAttribute("aria-pressed") !== "true");
}

function setBackdrop(name) {
  ui.results.dataset.backdrop = name;
  for (const button of document.querySelectorAll("[data-bg]")) {
    button.setAttribute("aria-pressed", String(button.dataset.bg === name));
  }
  writeStore(STORE_BACKDROP, name);
}

async function downloadAll() {
  const done = [...cards].filter((card) => card.blob);
  const used = new Set();
  const entries = [];
  for (const card of done) {
    const name = card.refs.download.download;
    let unique = name;
    for (let n = 2; used.has(unique); n++) unique = name.replace(/(\.[^.]+)?$/, `-${n}$1`);
    used.add(unique);
    entries.push({ name: unique, data: new Uint8Array(await card.blob.arrayBuffer()) });
  }
  const link = document.createElement("a");
  link.href = URL.createObjectURL(makeZip(entries));
  link.download = "alphacut-results.zip";
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
}

// ---- wiring --------------------------------------------------------------------------------

function bindIntake() {
  ui.dropZone.addEventListener("click", () => ui.input.click());
  ui.input.addEventListener("change", () => {
    addFiles([...ui.input.files]);
    ui.input.value = "";
  });
  // The whole window accepts drops, so a near miss never navigates away from the page.
  let depth = 0; // dragenter/dragleave fire for every child crossed; count to know when out
  const hasFiles = (event) => [...(event.dataTransfer?.types || [])].includes("Files");
  const highlight = () => ui.dropZone.classList.toggle("is-over", depth > 0);
  document.addEventListener("dragenter", (event) => {
    if (!hasFiles(event)) return;
    depth += 1;
    highlight();
  });
  document.addEventListener("dragleave", (event) => {
    if (!hasFiles(event)) return;
    depth = Math.max(0, depth - 1);
    highlight();
  });
  document.addEventListener("dragover", (event) => {
    if (hasFiles(event)) event.preventDefault();
  });
  document.addEventListener("drop", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    depth = 0;
    highlight();
    addFiles([...event.dataTransfer.files]);
  });
  document.addEventListener("paste", (event) => {
    const files = [...(event.clipboardData?.files || [])];
    if (!files.length) return; // plain text pasted into the key field, say
    event.preventDefault();
    // Clipboard images are all called "image.png"; name them by time so downloads differ.
    const stamp = new Date().toTimeString().slice(0, 8).replaceAll(":", "");
    const named = files.map((file, i) => {
      const ext = file.type.split("/")[1] || "png";
      return new File([file], `pasted-${stamp}${i ? `-${i + 1}` : ""}.${ext}`, { type: file.type });
    });
    addFiles(named);
  });
}

function bindControls() {
  for (const button of document.querySelectorAll("[data-bg]")) {
    button.addEventListener("click", () => setBackdrop(button.dataset.bg));
  }
  ui.downloadAll.addEventListener("click", () => {
    downloadAll().catch((err) => notify(`Could not build the .zip: ${err.message}`));
  });
  ui.clearAll.addEventListener("click", () => {
    for (const card of [...cards]) removeCard(card);
    ui.dropZone.focus();
  });
}

async function init() {
  bindIntake();
  bindControls();
  bindBrushKeys(BRUSH_HOOKS);
  setBackdrop(readStore(STORE_BACKDROP, "checker"));
  await loadSettings(notify);
  document.body.dataset.ready = "true";
}

init();
