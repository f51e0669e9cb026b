// What to tell the user when a file cannot be turned into a cutout: checks made before
// uploading, and the server's error answers turned into a short title and a sentence.
import { config, formatBytes } from "/static/settings.js";

/** Why `file` should not be uploaded, as {title, text}, or null when it may go. */
export function checkFile(file) {
  if (file.type && !file.type.startsWith("image/")) {
    return { title: "Not an image.", text: `This file is ${file.type}; choose a picture.` };
  }
  if (file.size === 0) return { title: "Empty file.", text: "The file has no bytes in it." };
  if (file.size > config.max_upload_bytes) {
    return {
      title: "Too large.",
      text:
        `It is ${formatBytes(file.size)}; this server takes up to ` +
        `${formatBytes(config.max_upload_bytes)} per image.`,
    };
  }
  return null;
}

/**
 * Turn an HTTP status (0: no answer) and the server's {type, message} for the file `name`
 * into {title, text, retryable}.
 */
export function explain(status, error, retryAfter, name = "") {
  // The server names the source first ("car.png: a text file, not an image", or "upload: …");
  // the card shows the file name already, so keep the reason and make it a sentence.
  let reason = error.message || "";
  for (const prefix of [`${name}: `, "upload: "]) {
    if (reason.startsWith(prefix)) reason = reason.slice(prefix.length);
  }
  const said = reason ? `${reason[0].toUpperCase()}${reason.slice(1)}`.replace(/\.?$/, ".") : "";
  const final = (title, fallback) => ({ title, text: said || fallback });
  const again = (title, hint) => ({ title, text: `${said} ${hint}`.trim(), retryable: true });
  switch (status) {
    case 0:
      return again(
        "Network error.",
        "The connection closed before an answer came: the server may have refused a large " +
          "upload, or be down. Check it and retry.",
      );
    case 413:
      return final("Too large.", "The server refused a file this big.");
    case 415:
      return final("Not a usable image.", "The server could not read this file.");
    case 400:
    case 422:
      return final("Cannot process this file.", `The server answered HTTP ${status}.`);
    case 404:
      return final("Model not available.", "This server does not have that model.");
    case 501:
      return final("Not available on this server.", "Turn that option off and retry.");
    case 401:
    case 403:
      return again("API key needed.", "Enter a valid key in Settings, then retry.");
    case 503: {
      const seconds = Number(retryAfter);
      const when = seconds > 0 ? `in ${seconds} s` : "in a moment";
      const busy = !error.type || error.type === "Overloaded"; // else a model failed to load
      return again(busy ? "Server busy." : "Service unavailable.", `Retry ${when}.`);
    }
    case 504:
      return again("Timed out.", "The image took too long; retry, or try a lighter model.");
    default:
      return again(`Server error (HTTP ${status}).`, "Retry, or try other settings.");
  }
}
