"""The refine stage, measured on composites made the way matting benchmarks are (a true
matte and foreground over other real photos): automatic refinement lowers SAD, a simulated
user's strokes fix the regions they cover and change nothing far from them, bad hints files
get clear errors, and a solver failure falls back instead of crashing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("pymatting")
pytest.importorskip("cv2")

from alphacut import ImageTooLarge, InputError, Limits, OptionsError, RemoveOptions, Remover
from alphacut.imagefile import DecodedImage
from alphacut.pipeline.hints import read_hints
from alphacut.pipeline.refine import Hints, Refinement, band_radius, refine_alpha
from clips import skimage_photo, truth_matte

ALPHACUT = str(Path(sys.executable).with_name("alphacut"))
CASES = [("im_21.png", "chelsea.png"), ("im_21.png", "rocket.jpg"),
         ("0002-01.jpg", "coffee.png"), ("0002-01.jpg", "rocket.jpg")]  # fmt: skip


def composite(subject: str, background: str) -> tuple[Image.Image, np.ndarray]:
    matte = truth_matte(subject)
    alpha, fg = matte.alpha, matte.foreground
    height, width = alpha.shape
    bg = Image.open(skimage_photo(background)).convert("RGB").resize((width, height))
    plate = np.asarray(bg, np.float32) / 255
    pixels = alpha[..., None] * fg + (1 - alpha[..., None]) * plate
    return Image.fromarray(np.rint(pixels * 255).astype(np.uint8)), alpha


@pytest.fixture(scope="module")
def remover() -> Remover:
    return Remover("u2netp")


def mask_of(remover: Remover, image: Image.Image, **options: object) -> np.ndarray:
    result = remover.process(
        DecodedImage(image, None, "composite"),
        RemoveOptions(only_mask=True, **options),  # type: ignore[arg-type]
    )
    return np.asarray(result, dtype=np.float64) / 255


def sad(alpha: np.ndarray, truth: np.ndarray) -> float:
    return float(np.abs(alpha - truth).sum() / 1000)


def test_automatic_refinement_lowers_sad(remover: Remover) -> None:
    before, after = [], []
    for subject, background in CASES:
        image, truth = composite(subject, background)
        before.append(sad(mask_of(remover, image), truth))
        after.append(sad(mask_of(remover, image, refine="auto"), truth))
    assert np.mean(after) <= 0.8 * np.mean(before), (before, after)  # target: 10% lower
    assert all(a < b for a, b in zip(after, before, strict=True)), (before, after)


def _largest(region: np.ndarray) -> np.ndarray:
    import cv2

    count, labels, stats, _ = cv2.connectedComponentsWithStats(region.astype(np.uint8), 8)
    if count < 2:
        return np.zeros(region.shape, bool)
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return np.asarray(labels == biggest)


def far_from(hints: Hints, image: Image.Image) -> np.ndarray:
    """Pixels more than 3 band radii (the documented reach of a stroke) from every painted
    pixel, by an exact Euclidean distance, plus 2 pixels for the approximate one the
    refinement uses: measured here on its own, not with the code under test."""
    from scipy.ndimage import distance_transform_edt

    painted = hints.keep | hints.remove | hints.edge
    distance = distance_transform_edt(~painted)
    return np.asarray(distance > 3 * band_radius(image.width, image.height) + 2)


def test_a_simulated_users_strokes_fix_what_they_cover(remover: Remover) -> None:
    """Keep and remove strokes on the largest wrong regions, found from the error against the
    truth, as interactive-segmentation benchmarks simulate clicks."""
    image, truth = composite("0002-01.jpg", "coffee.png")
    raw = mask_of(remover, image)
    kept_wrongly = _largest((raw > 0.5) & (truth < 0.05))
    lost_wrongly = _largest((raw < 0.5) & (truth > 0.95))
    assert kept_wrongly.sum() > 50 or lost_wrongly.sum() > 50
    hints = Hints(keep=lost_wrongly, remove=kept_wrongly, edge=np.zeros(truth.shape, bool))
    mask = Image.fromarray(np.rint(raw * 255).astype(np.uint8), "L")
    automatic = np.asarray(refine_alpha(image, mask), np.float64) / 255
    hinted = np.asarray(refine_alpha(image, mask, hints), np.float64) / 255
    stroked = kept_wrongly | lost_wrongly
    before = np.abs(automatic - truth)[stroked].sum()
    after = np.abs(hinted - truth)[stroked].sum()
    assert after <= 0.1 * before, (before, after)  # 90% less error where the user painted
    far = far_from(hints, image)
    assert far.mean() > 0.5
    np.testing.assert_array_equal(hinted[far], automatic[far])


def _hints_png(
    path: Path, size: tuple[int, int], box: tuple[int, int, int, int], grey: int
) -> Path:
    layer = Image.new("LA", size, (0, 0))
    layer.paste((grey, 255), box)
    layer.save(path)
    return path


def test_hints_files_keep_remove_and_edge(tmp_path: Path) -> None:
    path = tmp_path / "h.png"
    layer = Image.new("RGBA", (30, 20), (0, 0, 0, 0))
    layer.paste((255, 255, 255, 255), (0, 0, 10, 20))  # keep
    layer.paste((0, 0, 0, 255), (10, 0, 20, 20))  # remove
    layer.paste((128, 128, 128, 255), (20, 0, 25, 20))  # edge; 25.. no hint
    layer.save(path)
    hints = read_hints(path, (30, 20))
    assert (hints.keep.sum(), hints.remove.sum(), hints.edge.sum()) == (200, 200, 100)
    assert not (hints.keep | hints.remove | hints.edge)[:, 25:].any()
    plain = tmp_path / "trimap.png"
    Image.new("L", (30, 20), 255).save(plain)  # no alpha: every pixel is a hint
    assert read_hints(plain, (30, 20)).keep.all()


def test_bad_hints_get_clear_errors(tmp_path: Path) -> None:
    small = _hints_png(tmp_path / "small.png", (10, 10), (0, 0, 5, 5), 255)
    with pytest.raises(InputError, match="the hints are 10x10, the image 30x20"):
        read_hints(small, (30, 20))
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(InputError, match="hints"):
        read_hints(text, (30, 20))
    with pytest.raises(ImageTooLarge):
        read_hints(small, (10, 10), Limits(max_pixels=50))


def test_cli_hints_for_a_folder_match_the_input_names(tmp_path: Path) -> None:
    photos = tmp_path / "in"
    photos.mkdir()
    source = Path(__file__).parent / "data" / "photos"
    for name in ("car-1.jpg", "girl-1.jpg"):
        (photos / name).write_bytes((source / name).read_bytes())
    width, height = Image.open(photos / "car-1.jpg").size
    hints = tmp_path / "hints"
    hints.mkdir()
    _hints_png(hints / "car-1.png", (width, height), (0, 0, width, height), 0)  # remove all
    out = tmp_path / "out"
    done = subprocess.run([ALPHACUT, "remove", str(photos), "-o", str(out), "--hints", str(hints),
                           "--no-progress"], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert np.asarray(Image.open(out / "car-1.png").getchannel("A")).max() == 0
    assert np.asarray(Image.open(out / "girl-1.png").getchannel("A")).max() == 255  # no hints
    wrong = _hints_png(tmp_path / "wrong.png", (7, 7), (0, 0, 7, 7), 0)
    bad = subprocess.run([ALPHACUT, "remove", str(photos / "car-1.jpg"), "-o", str(out / "x.png"),
                          "--hints", str(wrong)], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert bad.returncode == 65, bad.stderr
    assert "the hints are 7x7" in bad.stderr


def test_a_failing_solve_falls_back_to_the_guided_filter() -> None:
    """A mask unsure everywhere leaves closed-form matting no known pixels (pymatting
    raises); the result is then the guided filter's, which differs from the starting alpha."""
    from alphacut.pipeline.refine import guided_matte

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    ramp = np.tile(np.linspace(40, 215, 50), (40, 1)).astype(np.uint8)  # never sure: 25 < x < 230
    alpha = np.asarray(
        refine_alpha(image, Image.fromarray(ramp), refinement=Refinement(method="cf"))
    )
    start = ramp.astype(np.float32) / 255
    assert np.abs(alpha / 255 - start).max() > 4 / 255  # not the starting alpha kept
    radius = max(2, band_radius(50, 40))
    expected = np.clip(guided_matte(pixels, start, radius), 0, 1) * 255
    assert np.abs(alpha - expected).max() <= 1


def test_budgets_and_knn_each_change_what_runs(remover: Remover) -> None:
    """No time left: every crop gets the guided filter. A smaller pixel budget solves a
    scaled crop (other values, still a good matte). knn is pymatting's other solver."""
    image, truth = composite("0002-01.jpg", "coffee.png")
    raw = mask_of(remover, image)
    mask = Image.fromarray(np.rint(raw * 255).astype(np.uint8), "L")

    def refined(**settings: object) -> np.ndarray:
        result = refine_alpha(image, mask, refinement=Refinement(**settings))  # type: ignore[arg-type]
        return np.asarray(result, np.float64) / 255

    guided, cf = refined(method="guided"), refined(method="cf")
    np.testing.assert_array_equal(refined(method="cf", seconds=0), guided)
    assert not np.array_equal(cf, guided)
    scaled = refined(method="cf", pixel_budget=2000)
    assert not np.array_equal(scaled, cf)
    assert sad(scaled, truth) < 1.5 * sad(cf, truth)
    knn = refined(method="knn")
    assert not np.array_equal(knn, cf)
    assert not np.array_equal(knn, guided)
    assert sad(knn, truth) < sad(raw, truth)


def test_refine_options_are_checked() -> None:
    assert RemoveOptions(hints=Path("h.png")).refine == "auto"
    with pytest.raises(OptionsError, match="refine must be one of"):
        RemoveOptions(refine="magic")  # type: ignore[arg-type]
    with pytest.raises(OptionsError, match="own matting"):
        RemoveOptions(refine="cf", alpha_matting=True)


def test_stroke_scope_changes_nothing_but_the_strokes(remover: Remover) -> None:
    """refine_scope="strokes" (the brush's): outside the band around the strokes the result
    is the plain cut, colours included; under a remove stroke it is clear."""
    image, _ = composite("im_21.png", "rocket.jpg")
    decoded = DecodedImage(image, None, "composite")
    plain = np.asarray(remover.process(decoded, RemoveOptions()))
    remove = np.zeros((image.height, image.width), bool)
    remove[150:170, 120:200] = True
    hints = Hints(keep=np.zeros_like(remove), remove=remove, edge=np.zeros_like(remove))
    options = RemoveOptions(refine="cf", refine_scope="strokes")
    stroked = np.asarray(remover.process(decoded, options, hints=hints))
    assert stroked[remove][:, 3].max() == 0
    far = far_from(hints, image)
    assert far.mean() > 0.5
    np.testing.assert_array_equal(stroked[far], plain[far])
    unpainted = np.asarray(remover.process(decoded, options))
    np.testing.assert_array_equal(unpainted, plain)
    with pytest.raises(OptionsError, match="refine_scope"):
        RemoveOptions(refine_scope="everywhere")  # type: ignore[arg-type]
