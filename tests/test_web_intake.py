"""How images reach the page, in real Chromium against a real uvicorn: drag and drop, paste,
several files at once, each file's own upload progress, and the API-key field."""

from __future__ import annotations

import base64
import re
from pathlib import Path

from alphacut.server import ServerSettings
from web import (
    COUNT_ALPHA_JS,
    NEEDS_CHROMIUM,
    PHOTO,
    expect,
    open_page,
    running_server,
)

pytestmark = NEEDS_CHROMIUM

PHOTOS = PHOTO.parent
DONE = re.compile("^(done|error)$")

# A DataTransfer holding the given files, built in the page as a browser builds one.
DATA_TRANSFER_JS = """(items) => {
  const transfer = new DataTransfer();
  for (const {name, type, data} of items) {
    const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
    transfer.items.add(new File([bytes], name, {type}));
  }
  return transfer;
}"""

# Fires a paste carrying the given files (or text); answers whether the page took it.
PASTE_JS = """({items, text}) => {
  const transfer = new DataTransfer();
  for (const {name, type, data} of items) {
    const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
    transfer.items.add(new File([bytes], name, {type}));
  }
  if (text) transfer.setData("text/plain", text);
  const event = new ClipboardEvent("paste", {clipboardData: transfer, bubbles: true,
                                             cancelable: true});
  document.body.dispatchEvent(event);
  return event.defaultPrevented;
}"""

# Records every card's state, status line and progress value each time any of them changes.
WATCH_CARDS_JS = """() => {
  window.cardLog = [];
  const snapshot = () => {
    for (const card of document.querySelectorAll("[data-testid=card]")) {
      const entry = {
        name: card.querySelector("[data-name]").textContent,
        state: card.dataset.state,
        status: card.querySelector("[data-status]").textContent,
        value: card.querySelector("[data-progress]").getAttribute("value"),
      };
      const last = window.cardLog.findLast((e) => e.name === entry.name);
      if (!last || JSON.stringify(last) !== JSON.stringify(entry)) window.cardLog.push(entry);
    }
  };
  new MutationObserver(snapshot).observe(document.body, {
    subtree: true, childList: true, characterData: true, attributes: true,
    attributeFilter: ["data-state", "value"],
  });
}"""


def _item(path: Path, name: str | None = None) -> dict[str, str]:
    kind = "image/png" if path.suffix == ".png" else "image/jpeg"
    return {
        "name": name or path.name,
        "type": kind,
        "data": base64.b64encode(path.read_bytes()).decode(),
    }


def _cards_done(page, count: int) -> list:  # type: ignore[no-untyped-def]
    cards = page.get_by_test_id("card")
    expect(cards).to_have_count(count)
    found = []
    for index in range(count):
        card = cards.nth(index)
        expect(card).to_have_attribute("data-state", DONE, timeout=60_000)
        assert card.get_attribute("data-state") == "done", card.inner_text()
        counts = card.get_by_test_id("result-image").evaluate(COUNT_ALPHA_JS)
        assert counts["clear"] > 0
        assert counts["opaque"] > 0
        found.append(card)
    return found


def _names(page) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(n) for n in page.locator("[data-testid=card] [data-name]").all_inner_texts()]


def test_dropping_files_anywhere_on_the_window_uploads_them(page, page_errors) -> None:
    zone = page.get_by_test_id("drop-zone")
    transfer = page.evaluate_handle(DATA_TRANSFER_JS, [_item(PHOTO), _item(PHOTOS / "horse.jpg")])
    page.dispatch_event("footer", "dragenter", {"dataTransfer": transfer})
    expect(zone).to_have_class(re.compile(r"\bis-over\b"))
    page.dispatch_event("footer", "dragleave", {"dataTransfer": transfer})
    expect(zone).not_to_have_class(re.compile(r"\bis-over\b"))
    page.dispatch_event("#drop-zone", "dragenter", {"dataTransfer": transfer})
    page.dispatch_event("#drop-zone", "dragover", {"dataTransfer": transfer})
    url = page.url
    page.dispatch_event("footer", "drop", {"dataTransfer": transfer})
    expect(zone).not_to_have_class(re.compile(r"\bis-over\b"))
    _cards_done(page, 2)
    assert _names(page) == ["car-1.jpg", "horse.jpg"]
    assert page.url == url  # the drop did not navigate to the file
    # Dragging text (not files) is not an upload.
    text = page.evaluate_handle(
        "() => { const t = new DataTransfer(); t.setData('text/plain', 'hi'); return t; }"
    )
    page.dispatch_event("#drop-zone", "drop", {"dataTransfer": text})
    expect(page.get_by_test_id("card")).to_have_count(2)
    assert page_errors == []


def test_pasting_images_uploads_them_under_distinct_names(page, page_errors) -> None:
    items = [_item(PHOTO, "image.png"), _item(PHOTOS / "horse.jpg", "image.png")]
    assert page.evaluate(PASTE_JS, {"items": items, "text": ""}) is True
    _cards_done(page, 2)
    first, second = _names(page)
    assert re.fullmatch(r"pasted-\d{6}\.(jpeg|png)", first), first
    assert second == first.replace(".", "-2.", 1)
    # Text pasted (into the key field, say) is left alone.
    assert page.evaluate(PASTE_JS, {"items": [], "text": "just text"}) is False
    expect(page.get_by_test_id("card")).to_have_count(2)
    assert page_errors == []


def test_several_files_at_once_each_get_a_card_and_a_result(page, page_errors) -> None:
    files = [PHOTO, PHOTOS / "horse.jpg", PHOTOS / "whisk.png", PHOTOS / "girl-1.jpg"]
    page.get_by_test_id("file-input").set_input_files(files)
    _cards_done(page, len(files))
    assert _names(page) == [f.name for f in files]
    expect(page.get_by_test_id("download-all")).to_be_enabled()
    expect(page.locator("#done-count")).to_have_text("4")
    assert page_errors == []


def test_each_file_shows_its_own_upload_progress(page, page_errors, tmp_path: Path) -> None:
    from PIL import Image

    # Two uploads of a few megabytes each on a link throttled to 1 MB/s: seconds of progress.
    big = []
    for index, name in enumerate(("plants-1.jpg", "bike.jpg")):
        with Image.open(PHOTOS / name) as photo:
            path = tmp_path / f"big-{index}.png"
            photo.convert("RGB").resize((1400, 1000)).save(path, compress_level=0)
        big.append(path)
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 20, "downloadThroughput": -1, "uploadThroughput": 1e6},
    )
    page.evaluate(WATCH_CARDS_JS)
    page.get_by_test_id("file-input").set_input_files(big)
    _cards_done(page, 2)
    log = page.evaluate("window.cardLog")
    for path in big:
        entries = [e for e in log if e["name"] == path.name]
        percents = [
            int(m.group(1))
            for e in entries
            if (m := re.fullmatch(r"Uploading… (\d+)%", e["status"]))
        ]
        assert any(0 < p < 100 for p in percents), (path.name, percents)
        assert percents == sorted(percents), percents
        states = [e["state"] for e in entries]
        assert states.index("processing") > states.index("uploading")
        assert states[-1] == "done"
        # While the model runs the bar is indeterminate (no value), as a bar should be.
        assert any(e["state"] == "processing" and e["value"] is None for e in entries)
    # The two bars moved separately: at some moment they showed different percentages.
    assert len({(e["name"], e["value"]) for e in log if e["state"] == "uploading"}) > 4
    assert page_errors == []


def test_api_key_field_on_a_server_that_needs_a_key(browser, page_errors) -> None:
    settings = ServerSettings(api_keys=("web-key",))
    with running_server(settings) as base_url:
        context, page = open_page(browser, base_url, page_errors)
        try:
            field = page.get_by_test_id("api-key")
            expect(field).to_be_visible()  # the server said auth_required
            page.get_by_test_id("file-input").set_input_files(PHOTO)
            card = page.get_by_test_id("card").last
            expect(card).to_have_attribute("data-state", "error", timeout=60_000)
            expect(card.get_by_test_id("error-message")).to_contain_text("API key needed")
            field.fill("wrong-key")
            field.dispatch_event("change")
            card.locator("[data-retry]").click()
            expect(card).to_have_attribute("data-state", "error", timeout=60_000)
            field.fill("web-key")
            field.dispatch_event("change")
            card.locator("[data-retry]").click()
            expect(card).to_have_attribute("data-state", "done", timeout=60_000)
            counts = card.get_by_test_id("result-image").evaluate(COUNT_ALPHA_JS)
            assert counts["clear"] > 0
            # The key is remembered: a reload fills it in and uploads work at once.
            page.reload()
            expect(page.locator("body")).to_have_attribute("data-ready", "true")
            expect(page.get_by_test_id("api-key")).to_have_value("web-key")
            page.get_by_test_id("file-input").set_input_files(PHOTO)
            expect(page.get_by_test_id("card").last).to_have_attribute(
                "data-state", "done", timeout=60_000
            )
        finally:
            context.close()
    assert page_errors == []


def test_api_key_field_stays_hidden_when_no_key_is_needed(page) -> None:
    expect(page.get_by_test_id("api-key")).to_be_hidden()
