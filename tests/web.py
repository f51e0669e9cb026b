"""The web page's test kit: Debian's Chromium, a real uvicorn on loopback, page helpers.

Uses /usr/bin/chromium through Playwright (never a downloaded browser).
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from playwright import sync_api

from alphacut.server import ServerSettings, create_app

CHROMIUM = Path("/usr/bin/chromium")
# In CI (where `make test` installs chromium) a missing browser is a failure, never a skip.
if not CHROMIUM.exists() and os.environ.get("CI"):
    raise RuntimeError("CI needs Debian's Chromium at /usr/bin/chromium (make browser)")
NEEDS_CHROMIUM = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium (make browser)"
)
expect = sync_api.expect

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "tests" / "data" / "photos" / "car-1.jpg"
ARTIFACTS = ROOT / "test-artifacts"
LAUNCH_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# Counts the result's pixels by alpha, drawn at natural size onto a fresh canvas.
COUNT_ALPHA_JS = """(img) => {
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  let clear = 0, opaque = 0, mostly = 0;
  for (let i = 3; i < px.length; i += 4) {
    px[i] === 255 ? opaque++ : clear++;
    if (px[i] >= 128) mostly++;
  }
  return {width: canvas.width, height: canvas.height, clear, opaque, mostly};
}"""

# Every pixel's alpha of an <img> or a playing <video>, drawn to a canvas.
READ_ALPHA_JS = """(media) => {
  const width = media.naturalWidth || media.videoWidth;
  const height = media.naturalHeight || media.videoHeight;
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(media, 0, 0);
  const px = ctx.getImageData(0, 0, width, height).data;
  const alpha = new Array(px.length / 4);
  for (let i = 0; i < alpha.length; i++) alpha[i] = px[4 * i + 3];
  return { width, height, alpha };
}"""


def read_alpha(element) -> object:  # type: ignore[no-untyped-def]
    """The alpha channel of an <img> or <video> locator, as a (height, width) uint8 array."""
    import numpy as np

    read = element.evaluate(READ_ALPHA_JS)
    return np.array(read["alpha"], dtype=np.uint8).reshape(read["height"], read["width"])


# Reads the mask canvas: whether it is grey (r == g == b, opaque) and how much is black/white.
READ_MASK_JS = """(canvas) => {
  const px = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let grey = true, black = 0, white = 0;
  for (let i = 0; i < px.length; i += 4) {
    if (px[i] !== px[i + 1] || px[i] !== px[i + 2] || px[i + 3] !== 255) grey = false;
    if (px[i] === 0) black++;
    if (px[i] === 255) white++;
  }
  return {width: canvas.width, height: canvas.height, grey, black, white};
}"""


@contextmanager
def running_server(settings: ServerSettings) -> Iterator[str]:
    """alphacut's app in a real uvicorn on a free loopback port; yields its base URL."""
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, name="web-page-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped while starting"
        assert time.monotonic() < deadline, "uvicorn did not start within 30 s"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def open_page(browser, base_url: str, errors: list[str], **context_options):
    context = browser.new_context(accept_downloads=True, **context_options)
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # The server's Content-Security-Policy allows no inline script or style: a violation is
    # a page error too.
    page.on(
        "console",
        lambda message: (
            errors.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.goto(base_url + "/")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    return context, page


def upload(page, path: Path, state: str = "done"):
    """Pick one file through the file input and wait for its card to reach `state`."""
    page.get_by_test_id("file-input").set_input_files(path)
    card = page.get_by_test_id("card").last
    expect(card).to_have_attribute("data-state", re.compile("^(done|error)$"), timeout=60_000)
    if state == "done" and card.get_attribute("data-state") == "error":
        pytest.fail(f"upload failed: {card.get_by_test_id('error-message').inner_text()}")
    expect(card).to_have_attribute("data-state", state)
    return card
