// Video in the page: upload to POST /api/video, follow the job at /api/jobs/{id}, then play
// the result (VP9 with alpha) on the backdrop and offer it for download.
import { authHeaders, config, formatBytes } from "/static/settings.js";

const SUFFIXES = /\.(mp4|m4v|mov|mkv|webm|avi|mpe?g|ogv|3gp)$/i;
const POLL_MS = 400;
// The options that mean something for a video; image encodings (format, quality) do not.
const FIELDS = ["model", "only_mask", "post_process_mask", "alpha_matting"];

/** Whether `file` goes to the video endpoint rather than the image one. */
export function isVideo(file) {
  if (file.type) return file.type.startsWith("video/");
  return SUFFIXES.test(file.name);
}

/** Why this video should not be uploaded, as {title, text}, or null when it may go. */
export function checkVideo(file) {
  if (file.size === 0) return { title: "Empty file.", text: "The file has no bytes in it." };
  if (!config.video) {
    return { title: "No video here.", text: "This server does not process video (alphacut[video])." };
  }
  if (file.size > config.video_max_upload_bytes) {
    return {
      title: "Too large.",
      text:
        `It is ${formatBytes(file.size)}; this server takes videos up to ` +
        `${formatBytes(config.video_max_upload_bytes)}.`,
    };
  }
  return null;
}

function describe(job) {
  const { fraction, fps, eta_s: eta } = job.progress;
  if (job.state === "queued") return "Waiting for the video queue…";
  const parts = ["Removing the background…"];
  if (fraction !== null) parts.push(`${Math.floor(fraction * 100)}%`);
  if (fps) parts.push(`${fps.toFixed(1)} fps`);
  if (eta !== null) parts.push(`${Math.ceil(eta)} s left`);
  return parts.join(" · ");
}

function post(card, hooks) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    card.xhr = xhr;
    const body = new FormData();
    body.append("file", card.file, card.file.name);
    for (const name of FIELDS) {
      const value = card.options[name];
      if (value !== undefined && value !== "") body.append(name, String(value));
    }
    xhr.open("POST", "/api/video");
    xhr.responseType = "json";
    for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) hooks.setProgress(card, event.loaded / event.total);
    });
    xhr.addEventListener("load", () => resolve(xhr));
    xhr.addEventListener("error", () => resolve(xhr));
    xhr.addEventListener("abort", () => resolve(null));
    hooks.setState(card, "uploading", "Uploading… 0%");
    xhr.send(body);
  });
}

async function follow(card, job, hooks) {
  const { progress } = card.refs;
  for (;;) {
    if (card.gone) return null;
    const response = await fetch(`/api/jobs/${job}`, { headers: authHeaders() });
    const status = await response.json().catch(() => ({}));
    if (!response.ok) return { failed: response.status, error: status.error || {} };
    if (status.state === "done") return status;
    if (status.state === "failed" || status.state === "cancelled") {
      return { failed: 422, error: status.error || { message: `The job was ${status.state}.` } };
    }
    const fraction = status.progress.fraction;
    if (status.state === "running" && fraction !== null) progress.value = fraction * 100;
    else progress.removeAttribute("value");
    hooks.setState(card, "processing", describe(status));
    await new Promise((wake) => setTimeout(wake, POLL_MS));
  }
}

/** Upload one video card, follow its job, and show the result; `hooks` are the page's. */
export async function runVideo(card, hooks) {
  const xhr = await post(card, hooks);
  card.xhr = null;
  if (xhr === null || card.gone) return;
  if (xhr.status !== 202) {
    if (xhr.status === 401 || xhr.status === 403) hooks.showKeyField(true);
    const error = xhr.response?.error || {};
    hooks.fail(card, hooks.explain(xhr.status, error, xhr.getResponseHeader("Retry-After"), card.file.name));
    return;
  }
  card.job = xhr.response.id;
  card.refs.progress.removeAttribute("value");
  hooks.setState(card, "processing", "Waiting for the video queue…");
  const finished = await follow(card, card.job, hooks);
  if (finished === null) return;
  if (finished.failed) {
    hooks.fail(card, hooks.explain(finished.failed, finished.error, null, card.file.name));
    return;
  }
  const response = await fetch(finished.result_url, { headers: authHeaders() });
  if (!response.ok) {
    hooks.fail(card, hooks.explain(response.status, {}, null, card.file.name));
    return;
  }
  show(card, await response.blob(), hooks);
}

function show(card, blob, hooks) {
  const { refs } = card;
  card.blob = blob;
  if (card.resultUrl) URL.revokeObjectURL(card.resultUrl);
  card.resultUrl = URL.createObjectURL(blob);
  refs.video.addEventListener(
    "loadedmetadata",
    () => {
      refs.stage.style.aspectRatio = `${refs.video.videoWidth} / ${refs.video.videoHeight}`;
    },
    { once: true },
  );
  refs.video.src = card.resultUrl;
  refs.video.hidden = false;
  refs.video.play().catch(() => {}); // autoplay may wait for a click; the controls are there
  refs.download.href = card.resultUrl;
  refs.download.download = `${hooks.stem(card.file.name)}.webm`;
  refs.download.setAttribute("aria-label", `Download ${refs.download.download}`);
  hooks.setState(card, "done", "");
  hooks.announce(`${card.file.name} is ready.`);
}

/** A video card went away: stop its upload or its job on the server. */
export function forget(card) {
  card.gone = true;
  card.xhr?.abort();
  if (card.job && !card.blob) {
    fetch(`/api/jobs/${card.job}`, { method: "DELETE", headers: authHeaders() }).catch(() => {});
  }
}
