"""Golden tests: alphacut's output against rembg 2.0.86's, photo by photo."""

from __future__ import annotations

import io

import imagehash
import numpy as np
import pytest
from PIL import Image

from alphacut import remove
from helpers import DATA, PHOTOS, alpha, save_failure

PHOTO_NAMES = sorted(p.name for p in PHOTOS.iterdir())


def assert_parity(name: str, actual: Image.Image, expected: Image.Image) -> None:
    problems = []
    if (actual.size, actual.mode) != (expected.size, expected.mode):
        problems.append(f"size/mode {actual.size} {actual.mode} != {expected.size} {expected.mode}")
    else:
        worst = int(np.abs(alpha(actual) - alpha(expected)).max())
        if worst > 2:
            problems.append(f"alpha differs by up to {worst}")
        if imagehash.phash(actual) != imagehash.phash(expected):
            problems.append("perceptual hashes differ")
    if problems:
        folder = save_failure(name, actual, expected)
        pytest.fail(f"{name}: {'; '.join(problems)} (images in {folder})")


@pytest.mark.parametrize("name", PHOTO_NAMES)
def test_bytes_match_rembg_reference(session, name: str) -> None:
    output = remove((PHOTOS / name).read_bytes(), session=session)
    expected = Image.open(DATA / "rembg-u2netp" / (name.rsplit(".", 1)[0] + ".png"))
    assert_parity(name, Image.open(io.BytesIO(output)), expected)


def test_openvino_backend_stays_within_two_levels(session) -> None:
    """The opt-in OpenVINO backend: alpha within ±2 of rembg on every photo, though (unlike
    ONNX Runtime) not bit-identical, so a perceptual hash may flip on some photo."""
    pytest.importorskip("openvino")
    from alphacut import RuntimeOptions, new_session

    fast = new_session("u2netp", runtime=RuntimeOptions(backend="openvino"))
    assert fast.providers == ("OpenVINO-CPU",)
    same_hash = 0
    for name in PHOTO_NAMES:
        actual = Image.open(io.BytesIO(remove((PHOTOS / name).read_bytes(), session=fast)))
        expected = Image.open(DATA / "rembg-u2netp" / (name.rsplit(".", 1)[0] + ".png"))
        assert actual.size == expected.size
        assert int(np.abs(alpha(actual) - alpha(expected)).max()) <= 2, name
        same_hash += imagehash.phash(actual) == imagehash.phash(expected)
    assert same_hash >= len(PHOTO_NAMES) - 2


def test_rembg_golden_file(session) -> None:
    output = remove((PHOTOS / "anime-girl-1.jpg").read_bytes(), session=session)
    expected = Image.open(DATA / "rembg-expected-anime-girl-1.u2netp.png")
    assert_parity("golden-anime-girl-1", Image.open(io.BytesIO(output)), expected)


def test_pil_and_array_inputs_give_the_same_pixels_as_bytes(session) -> None:
    path = PHOTOS / "car-1.jpg"
    from_bytes = Image.open(io.BytesIO(remove(path.read_bytes(), session=session)))
    from_pil = remove(Image.open(path), session=session)
    from_array = remove(np.asarray(Image.open(path)), session=session)
    assert isinstance(from_pil, Image.Image)
    assert from_pil.mode == "RGBA"
    assert isinstance(from_array, np.ndarray)
    assert from_array.shape == (360, 480, 4)
    assert np.array_equal(np.asarray(from_pil), np.asarray(from_bytes))
    assert np.array_equal(from_array, np.asarray(from_bytes))


def test_masks_do_not_depend_on_pillow_single_call_resampling() -> None:
    """Pillow 13 changed single-call LANCZOS resizes; alphacut's two passes must equal
    explicit one-axis resizes, which is what Pillow 12 (and rembg's references) did."""
    from alphacut.pipeline.resize import lanczos_resize

    rng = np.random.default_rng(7)
    mask = Image.fromarray(rng.integers(0, 256, (320, 320), dtype=np.uint8), "L")
    for size in [(400, 267), (290, 173), (3000, 2000), (1, 1), (2, 1)]:
        manual = mask.resize((size[0], 320), Image.Resampling.LANCZOS).resize(
            size, Image.Resampling.LANCZOS
        )
        assert np.array_equal(np.asarray(lanczos_resize(mask, size)), np.asarray(manual)), size
