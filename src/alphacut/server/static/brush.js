// The refine brush: paint keep, remove and edge strokes over a result, and after each stroke
// POST /api/refine (the upload by reference, so the photo is not sent again) and show the
// new result in place. Strokes are kept as a list, so undo, redo and reset redraw them.
import { authHeaders } from "/static/settings.js";

// What each brush paints into the hints image the server reads, and how it looks on screen.
const TOOLS = {
  keep: { hint: "#ffffff", shown: "rgba(34, 197, 94, 0.55)" },
  remove: { hint: "#000000", shown: "rgba(239, 68, 68, 0.55)" },
  edge: { hint: "#808080", shown: "rgba(59, 130, 246, 0.55)" },
};
const MIN_SIZE = 2;
const MAX_SIZE = 300;
const ZOOMS = [1, 1.5, 2, 3, 4, 6, 8];

let active = null; // the card whose brush has the keyboard

/** Add the Refine mode to a finished image card; `hooks` are the page's card functions. */
export function attachBrush(card, hooks) {
  const { refs } = card;
  if (card.brush) {
    card.brush.base = card.blob; // a new result (a retry): strokes start again from it
    resetStrokes(card);
    return;
  }
  const brush = {
    tool: "remove",
    size: 24,
    strokes: [],
    undone: [],
    zoom: 0,
    pan: { x: 0, y: 0 },
    base: card.blob,
    pending: null,
    busy: false,
    showStrokes: true,
  };
  card.brush = brush;
  refs["refine-toggle"].hidden = false;
  refs["refine-toggle"].addEventListener("click", () => toggle(card, hooks));
  const panel = refs["refine-panel"];
  for (const button of panel.querySelectorAll("[data-tool]")) {
    button.addEventListener("click", () => setTool(card, button.dataset.tool));
  }
  refs["brush-size"].addEventListener("input", (event) => setSize(card, Number(event.target.value)));
  refs["brush-undo"].addEventListener("click", () => undo(card, hooks));
  refs["brush-redo"].addEventListener("click", () => redo(card, hooks));
  refs["brush-reset"].addEventListener("click", () => reset(card, hooks));
  refs["brush-zoom-in"].addEventListener("click", () => zoomBy(card, 1));
  refs["brush-zoom-out"].addEventListener("click", () => zoomBy(card, -1));
  refs["brush-strokes"].addEventListener("click", () => {
    brush.showStrokes = !brush.showStrokes;
    refs["brush-strokes"].setAttribute("aria-pressed", String(brush.showStrokes));
    drawOverlay(card);
  });
  bindPainting(card, hooks);
  setTool(card, brush.tool);
  setSize(card, brush.size);
}

function toggle(card, hooks) {
  const on = card.el.dataset.refining !== "true";
  card.el.dataset.refining = String(on);
  card.refs["refine-panel"].hidden = !on;
  card.refs["refine-toggle"].setAttribute("aria-pressed", String(on));
  card.refs["refine-toggle"].textContent = on ? "Done refining" : "Refine";
  card.refs.stage.style.setProperty("--pos", on ? "0%" : "50%");
  if (on) {
    active = card;
    sizeOverlay(card);
    drawOverlay(card);
    hooks.announce(`Refining ${card.file.name}: paint over what to keep or remove.`);
  } else if (active === card) {
    active = null;
  }
}

function setTool(card, tool) {
  card.brush.tool = tool;
  for (const button of card.refs["refine-panel"].querySelectorAll("[data-tool]")) {
    button.setAttribute("aria-pressed", String(button.dataset.tool === tool));
  }
}

function setSize(card, size) {
  const clamped = Math.max(MIN_SIZE, Math.min(MAX_SIZE, Math.round(size)));
  card.brush.size = clamped;
  card.refs["brush-size"].value = String(clamped);
  card.refs["brush-size-value"].textContent = `${clamped} px`;
}

// ---- geometry: the overlay canvas has the image's own pixels; CSS scales it ---------------

function imageSize(card) {
  const img = card.refs.result;
  return { width: img.naturalWidth, height: img.naturalHeight };
}

function sizeOverlay(card) {
  const { width, height } = imageSize(card);
  const overlay = card.refs.overlay;
  if (overlay.width !== width || overlay.height !== height) {
    overlay.width = width;
    overlay.height = height;
  }
}

/** The image pixel under a pointer event, through the zoom and pan. */
function toImage(card, event) {
  const box = card.refs.overlay.getBoundingClientRect();
  const { width, height } = imageSize(card);
  // object-fit: contain letterboxes the image inside the overlay's box.
  const scale = Math.min(box.width / width, box.height / height);
  const left = box.left + (box.width - width * scale) / 2;
  const top = box.top + (box.height - height * scale) / 2;
  return { x: (event.clientX - left) / scale, y: (event.clientY - top) / scale, scale };
}

function applyView(card) {
  const { zoom, pan } = card.brush;
  const factor = ZOOMS[zoom];
  card.refs.stage.style.setProperty("--zoom", String(factor));
  card.refs.stage.style.setProperty("--pan-x", `${pan.x}px`);
  card.refs.stage.style.setProperty("--pan-y", `${pan.y}px`);
  card.refs["brush-zoom-value"].textContent = `${Math.round(factor * 100)}%`;
}

function zoomBy(card, step) {
  const brush = card.brush;
  brush.zoom = Math.max(0, Math.min(ZOOMS.length - 1, brush.zoom + step));
  if (brush.zoom === 0) brush.pan = { x: 0, y: 0 };
  applyView(card);
}

// ---- painting ------------------------------------------------------------------------------

function bindPainting(card, hooks) {
  const overlay = card.refs.overlay;
  let stroke = null;
  let panning = null;
  overlay.addEventListener("pointerdown", (event) => {
    if (card.el.dataset.refining !== "true") return;
    event.preventDefault();
    active = card;
    try {
      overlay.setPointerCapture(event.pointerId); // keep the stroke when it leaves the canvas
    } catch {
      // A pointer the browser no longer tracks cannot be captured; the stroke still paints.
    }
    // A middle button, or a second finger's worth of Alt/Space, moves the view instead.
    if (event.button === 1 || event.altKey) {
      panning = { x: event.clientX, y: event.clientY, start: { ...card.brush.pan } };
      return;
    }
    const point = toImage(card, event);
    // The size is in the image's own pixels, so a stroke covers the same area at any zoom.
    stroke = { tool: card.brush.tool, size: card.brush.size, points: [[point.x, point.y]] };
    card.brush.live = stroke;
    drawOverlay(card);
  });
  overlay.addEventListener("pointermove", (event) => {
    if (panning) {
      card.brush.pan = {
        x: panning.start.x + event.clientX - panning.x,
        y: panning.start.y + event.clientY - panning.y,
      };
      applyView(card);
      return;
    }
    if (!stroke) return;
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
    for (const each of events.length ? events : [event]) {
      const point = toImage(card, each);
      stroke.points.push([point.x, point.y]);
    }
    drawOverlay(card);
  });
  const finish = () => {
    panning = null;
    if (!stroke) return;
    card.brush.strokes.push(stroke);
    card.brush.undone = [];
    card.brush.live = null;
    stroke = null;
    changed(card, hooks);
  };
  overlay.addEventListener("pointerup", finish);
  overlay.addEventListener("pointercancel", finish);
  overlay.addEventListener(
    "wheel",
    (event) => {
      if (card.el.dataset.refining !== "true") return;
      event.preventDefault();
      zoomBy(card, event.deltaY < 0 ? 1 : -1);
    },
    { passive: false },
  );
}

function paint(ctx, stroke, colour) {
  ctx.strokeStyle = colour;
  ctx.fillStyle = colour;
  ctx.lineWidth = stroke.size;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  const [first, ...rest] = stroke.points;
  ctx.beginPath();
  if (!rest.length) {
    ctx.arc(first[0], first[1], stroke.size / 2, 0, Math.PI * 2);
    ctx.fill();
    return;
  }
  ctx.moveTo(first[0], first[1]);
  for (const [x, y] of rest) ctx.lineTo(x, y);
  ctx.stroke();
}

/** Draw the strokes on screen. Each is drawn opaque on its own layer first, so overlapping
 * parts of one stroke do not darken. */
function drawOverlay(card) {
  const overlay = card.refs.overlay;
  const ctx = overlay.getContext("2d");
  ctx.clearRect(0, 0, overlay.width, overlay.height);
  if (!card.brush.showStrokes) return;
  const all = card.brush.live ? [...card.brush.strokes, card.brush.live] : card.brush.strokes;
  for (const stroke of all) paint(ctx, stroke, TOOLS[stroke.tool].shown);
}

/** The hints image the server reads: opaque white, black and grey strokes on transparency. */
function hintsBlob(card) {
  const { width, height } = imageSize(card);
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  for (const stroke of card.brush.strokes) paint(ctx, stroke, TOOLS[stroke.tool].hint);
  // Anti-aliased stroke edges are half transparent: the server counts alpha >= 128 only.
  return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
}

// ---- history and requests --------------------------------------------------------------

function undo(card, hooks) {
  const stroke = card.brush.strokes.pop();
  if (!stroke) return;
  card.brush.undone.push(stroke);
  changed(card, hooks);
}

function redo(card, hooks) {
  const stroke = card.brush.undone.pop();
  if (!stroke) return;
  card.brush.strokes.push(stroke);
  changed(card, hooks);
}

function resetStrokes(card) {
  card.brush.strokes = [];
  card.brush.undone = [];
  card.brush.live = null;
  drawOverlay(card);
}

function reset(card, hooks) {
  if (!card.brush.strokes.length) return;
  card.brush.undone = [];
  card.brush.strokes = [];
  changed(card, hooks);
}

function updateButtons(card) {
  const { refs, brush } = card;
  refs["brush-undo"].disabled = !brush.strokes.length;
  refs["brush-redo"].disabled = !brush.undone.length;
  refs["brush-reset"].disabled = !brush.strokes.length;
}

function changed(card, hooks) {
  drawOverlay(card);
  updateButtons(card);
  // One request at a time; while one runs, only the newest state waits to be sent.
  card.brush.pending = card.brush.strokes.length;
  if (!card.brush.busy) send(card, hooks);
}

async function send(card, hooks) {
  const brush = card.brush;
  brush.busy = true;
  card.el.dataset.refineBusy = "true";
  try {
    while (brush.pending !== null) {
      brush.pending = null;
      if (!brush.strokes.length) {
        await hooks.showResult(card, brush.base, { keepBrush: true });
        continue;
      }
      const blob = await refine(card, hooks, await hintsBlob(card));
      if (blob) await hooks.showResult(card, blob, { keepBrush: true });
    }
  } finally {
    brush.busy = false;
    card.el.dataset.refineBusy = "false";
    hooks.announce(`${card.file.name}: result updated.`);
  }
}

async function refine(card, hooks, hints) {
  const send = async (withFile) => {
    const body = new FormData();
    body.append("hints", hints, "hints.png");
    if (withFile || !card.source) body.append("file", card.file, card.file.name);
    else body.append("ref", card.source);
    for (const [name, value] of Object.entries(card.options)) {
      if (value !== "" && value !== false) body.append(name, String(value));
    }
    body.append("refine_scope", "strokes"); // a stroke changes what it covers, nothing else
    return fetch("/api/refine", { method: "POST", body, headers: authHeaders() });
  };
  let response = await send(false);
  if (response.status === 404) {
    const error = (await response.clone().json().catch(() => ({}))).error || {};
    if (error.type === "UnknownSource") response = await send(true); // the server forgot it
  }
  if (!response.ok) {
    const error = (await response.json().catch(() => ({}))).error || {};
    hooks.notify(`Refine failed: ${error.message || `HTTP ${response.status}`}`);
    return null;
  }
  card.source = response.headers.get("X-Alphacut-Source") || card.source;
  return response.blob();
}

// ---- keyboard: [ and ] size the brush, Ctrl+Z and Ctrl+Shift+Z undo and redo -------------

export function bindBrushKeys(hooks) {
  document.addEventListener("keydown", (event) => {
    const card = active;
    if (!card || card.el.dataset.refining !== "true") return;
    if (event.target instanceof HTMLInputElement && event.target.type !== "range") return;
    if (event.key === "[" || event.key === "]") {
      event.preventDefault();
      setSize(card, card.brush.size * (event.key === "]" ? 1.25 : 0.8));
    } else if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z") {
      event.preventDefault();
      if (event.shiftKey) redo(card, hooks);
      else undo(card, hooks);
    }
  });
}
