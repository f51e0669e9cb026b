"""The refine brush in Debian's Chromium: paint a remove stroke with the mouse across part of
the subject the model kept, and the returned image is transparent there and unchanged far
away; undo brings back the previous result exactly; screenshots go to test-artifacts/."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import expect

pytest.importorskip("pymatting")

from web import ARTIFACTS, NEEDS_CHROMIUM, read_alpha, upload

pytestmark = NEEDS_CHROMIUM

PHOTO = Path(__file__).parent / "data" / "photos" / "girl-1.jpg"  # 600x399


def _alpha(card) -> np.ndarray:  # type: ignore[no-untyped-def]
    return read_alpha(card.get_by_test_id("result-image"))  # type: ignore[return-value]


def _settled(card, page) -> None:  # type: ignore[no-untyped-def]
    expect(card).to_have_attribute("data-refine-busy", "false", timeout=60_000)
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0",
                           arg=card.get_by_test_id("result-image").element_handle())  # fmt: skip


def test_a_remove_stroke_clears_what_it_covers_and_undo_restores(page, page_errors) -> None:  # type: ignore[no-untyped-def]
    card = upload(page, PHOTO)
    before = _alpha(card)
    # Across the torso, where the model kept the subject opaque.
    row, left, right = 240, 196, 252
    assert before[row - 4 : row + 5, left:right].min() >= 250
    card.get_by_test_id("refine-toggle").click()
    overlay = card.get_by_test_id("brush-overlay")
    expect(overlay).to_be_visible()
    box = overlay.bounding_box()
    assert box is not None
    scale = min(box["width"] / 600, box["height"] / 399)
    x0 = box["x"] + (box["width"] - 600 * scale) / 2
    y0 = box["y"] + (box["height"] - 399 * scale) / 2

    def at(x: float, y: float) -> tuple[float, float]:
        return x0 + x * scale, y0 + y * scale

    card.get_by_test_id("tool-remove").click()
    page.mouse.move(*at(left, row))
    page.mouse.down()
    for x in range(left, right + 1, 5):
        page.mouse.move(*at(x, row))
    page.mouse.up()
    expect(card).to_have_attribute("data-refine-busy", "true", timeout=10_000)
    _settled(card, page)
    after = _alpha(card)
    ARTIFACTS.mkdir(exist_ok=True)
    card.screenshot(path=str(ARTIFACTS / "brush-after-stroke.png"))
    stroke = after[row - 5 : row + 6, left + 12 : right - 12]  # inside the 24 px brush
    assert stroke.max() < 10, stroke.max()
    far = np.ones(after.shape, bool)
    far[max(0, row - 130) : row + 130, max(0, left - 130) : right + 130] = False
    np.testing.assert_array_equal(after[far], before[far])
    assert not card.get_by_test_id("brush-undo").is_disabled()
    page.keyboard.press("Control+z")
    _settled(card, page)
    np.testing.assert_array_equal(_alpha(card), before)
    card.screenshot(path=str(ARTIFACTS / "brush-after-undo.png"))
    page.keyboard.press("Control+Shift+z")
    _settled(card, page)
    assert _alpha(card)[row - 5 : row + 6, left + 12 : right - 12].max() < 10
    page.keyboard.press("]")
    assert card.get_by_test_id("brush-size").input_value() == "30"
    assert page_errors == []


def test_the_brush_works_on_a_phone_sized_touch_screen(browser, base_url, page_errors) -> None:  # type: ignore[no-untyped-def]
    """A 390x844 touch viewport: the panel's controls fit the width, and a touch stroke
    (Pointer Events from a finger) clears what it covers."""
    from web import open_page

    context, page = open_page(browser, base_url, page_errors, viewport={"width": 390, "height": 844},
                              has_touch=True, is_mobile=True)  # fmt: skip
    try:
        card = upload(page, PHOTO)
        before = _alpha(card)
        card.get_by_test_id("refine-toggle").click()
        panel = card.get_by_test_id("refine-panel")
        expect(panel).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scroll
        for control in ("tool-keep", "tool-remove", "tool-edge", "brush-undo", "brush-size"):
            box = card.get_by_test_id(control).bounding_box()
            assert box is not None
            assert box["x"] >= 0
            assert box["x"] + box["width"] <= 390, control
        overlay = card.get_by_test_id("brush-overlay")
        box = overlay.bounding_box()
        assert box is not None
        scale = min(box["width"] / 600, box["height"] / 399)
        x0 = box["x"] + (box["width"] - 600 * scale) / 2
        y0 = box["y"] + (box["height"] - 399 * scale) / 2
        row, left, right = 240, 196, 252
        points = [(x0 + x * scale, y0 + row * scale) for x in range(left, right + 1, 4)]
        # A real finger drag through Chromium's input pipeline (CDP touch events), which the
        # page sees as Pointer Events of type "touch".
        cdp = context.new_cdp_session(page)
        for kind, (x, y) in [("touchStart", points[0])] + [("touchMove", p) for p in points[1:]]:
            cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [{"x": x, "y": y}]})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        _settled(card, page)
        after = _alpha(card)
        assert after[row - 5 : row + 6, left + 12 : right - 12].max() < 10
        assert (after != before).any()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "brush-phone.png"), full_page=False)
        assert page_errors == []
    finally:
        context.close()
