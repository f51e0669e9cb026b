// The settings panel: server config (/api/config), the model list (/api/models), the removal
// options and the API key, remembered in localStorage.

const $ = (selector) => document.querySelector(selector);
const STORE_KEY = "alphacut.apiKey";
const STORE_OPTIONS = "alphacut.options";
const FORMAT_LABELS = { png: "PNG", webp: "WebP", jpeg: "JPEG (no transparency)" };
const FLAGS = ["only_mask", "post_process_mask", "alpha_matting"];

/** What the server said in /api/config; these defaults stand in if it cannot be read. */
export const config = {
  max_upload_bytes: 25 * 1024 * 1024,
  auth_required: false,
  default_model: "u2net",
  formats: ["png", "webp", "jpeg"],
  video: false,
  video_max_upload_bytes: 512 * 1024 * 1024,
};

const ui = {
  form: $("#settings"),
  model: $("#model"),
  modelNote: $("#model-note"),
  format: $("#format"),
  keyField: $("#api-key-field"),
  key: $("#api-key"),
  limitHint: $("#limit-hint"),
};

export function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  return `${(n / 1024 / 1024).toFixed(n < 10 * 1024 * 1024 ? 1 : 0)} MB`;
}

export function readStore(key, fallback) {
  try {
    const raw = localStorage.getItem(key);
    return raw === null ? fallback : JSON.parse(raw);
  } catch {
    return fallback;
  }
}

export function writeStore(key, value) {
  try {
    localStorage.setItem(key, JSON.stringify(value));
  } catch {
    // Private mode or a full storage: the choice is just not remembered.
  }
}

/** The Authorization header for the key in the panel, if there is one. */
export function authHeaders() {
  const key = ui.key.value.trim();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

/** The options for the next upload, named as POST /api/remove names its form fields. */
export function readOptions() {
  const options = { model: ui.model.value, format: ui.format.value || "png" };
  for (const name of FLAGS) options[name] = ui.form.elements[name].checked;
  return options;
}

/** Reveal the API key field (after a 401, say), and optionally move focus to it. */
export function showKeyField(focus = false) {
  ui.keyField.hidden = false;
  if (focus) ui.key.focus();
}

async function getJSON(url) {
  const response = await fetch(url, { headers: authHeaders() });
  if (!response.ok) throw new Error(`${url} answered HTTP ${response.status}`);
  return response.json();
}

function fillFormats(saved) {
  ui.format.replaceChildren(
    ...config.formats.map((fmt) => new Option(FORMAT_LABELS[fmt] || fmt.toUpperCase(), fmt)),
  );
  if (config.formats.includes(saved.format)) ui.format.value = saved.format;
  if (config.auth_required || ui.key.value) showKeyField();
  const limit = formatBytes(config.max_upload_bytes);
  ui.limitHint.textContent = `Up to ${limit} each; several at once are fine.`;
}

function fillModels(data, saved) {
  const models = data.models?.length
    ? data.models
    : [{ name: config.default_model, available: true }];
  // Ready models first; the rest need a download, which a server may refuse ("allowed": false).
  const ready = document.createElement("optgroup");
  ready.label = "On this server";
  const later = document.createElement("optgroup");
  later.label = "Not on this server yet";
  for (const model of models) {
    const size = model.size_mb ? ` ${model.size_mb} MB` : "";
    const available = model.available !== false;
    const refused = !available && model.allowed === false;
    const status = refused ? "not installed" : `download${size}`;
    const label = available ? `${model.name}${size && ` ·${size}`}` : `${model.name} (${status})`;
    const option = new Option(label, model.name);
    option.title = describe(model);
    option.disabled = refused;
    option.dataset.available = String(available);
    (available ? ready : later).append(option);
  }
  ui.model.replaceChildren(...[ready, later].filter((group) => group.children.length));
  const usable = models.filter((model) => model.available !== false || model.allowed !== false);
  const names = usable.map((model) => model.name);
  ui.model.value = names.includes(saved.model) ? saved.model : data.default || config.default_model;
  describeModel();
}

/** A model's description, licence and where its file comes from, in one line. */
function describe(model) {
  const source = model.source && `from ${model.source}${model.source_terms ? ` (${model.source_terms})` : ""}`;
  return [model.description, model.license && `licence ${model.license}`, source]
    .filter(Boolean)
    .join(" · ");
}

function describeModel() {
  const option = ui.model.selectedOptions[0];
  if (!option) return;
  const missing = option.dataset.available === "false";
  const text = missing
    ? "Not on the server yet: the first image downloads this model, which can be slow."
    : option.title;
  ui.modelNote.textContent = text;
  ui.modelNote.hidden = !text;
  ui.modelNote.classList.toggle("is-warning", missing);
}

/**
 * Restore saved choices, read the server's config and models, and keep the choices saved.
 * `report(text)` is told what went wrong, or "" once all is well.
 */
export async function loadSettings(report) {
  const saved = readStore(STORE_OPTIONS, {});
  for (const name of FLAGS) ui.form.elements[name].checked = Boolean(saved[name]);
  ui.key.value = readStore(STORE_KEY, "");
  ui.form.addEventListener("submit", (event) => event.preventDefault());
  ui.form.addEventListener("change", (event) => {
    if (event.target === ui.key) {
      writeStore(STORE_KEY, ui.key.value.trim());
      loadModels(readOptions()).then(report); // /api/models needs the key if the server has keys
    } else {
      writeStore(STORE_OPTIONS, readOptions());
    }
    if (event.target === ui.model) describeModel();
  });

  let problem = "";
  try {
    Object.assign(config, await getJSON("/api/config"));
  } catch (err) {
    problem = `Could not read the server's settings (${err.message}); using defaults. `;
  }
  fillFormats(saved);
  report((problem + (await loadModels(saved))).trim());
}

/** Fill the model list from /api/models; resolves to a problem to show, or "". */
async function loadModels(saved) {
  try {
    fillModels(await getJSON("/api/models"), saved);
    return "";
  } catch (err) {
    fillModels({}, saved);
    if (config.auth_required && !ui.key.value.trim()) {
      showKeyField();
      return "This server needs an API key: enter it in Settings.";
    }
    return `Could not list the models (${err.message}); using ${config.default_model}.`;
  }
}
