"""Shared test helpers: data paths, real photos, comparisons."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

DATA = Path(__file__).parent / "data"
PHOTOS = DATA / "photos"
ARTIFACTS = Path(__file__).parent.parent / "test-artifacts"
ALPHACUT = str(Path(sys.executable).with_name("alphacut"))


def alphacut(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """The installed command line, as a user runs it; `env` adds to this process's."""
    return subprocess.run(
        [ALPHACUT, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )


def skimage_photo(name: str, width: int = 160) -> Image.Image:
    """A real photo bundled with scikit-image, scaled to `width` pixels wide."""
    from skimage import data

    image = Image.fromarray(getattr(data, name)())
    height = max(1, round(image.height * width / image.width))
    return image.resize((width, height), Image.Resampling.LANCZOS)


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def alpha(image: Image.Image) -> np.ndarray:
    return np.asarray(image.getchannel("A"), dtype=np.int16)


def save_failure(name: str, actual: Image.Image, expected: Image.Image) -> Path:
    """Keep both images for a human to compare when a golden test fails."""
    folder = ARTIFACTS / "failures"
    folder.mkdir(parents=True, exist_ok=True)
    actual.save(folder / f"{name}.actual.png")
    expected.save(folder / f"{name}.expected.png")
    return folder


def assert_white_where_masked_out(jpeg: bytes, mask: Image.Image) -> None:
    """`jpeg` is a JPEG whose background, where the model's `mask` is 0, is white (a few
    pixels in from the subject's edge, where JPEG's ringing and the mask's blur end)."""
    from scipy.ndimage import binary_erosion

    assert jpeg[:2] == b"\xff\xd8", jpeg[:16]
    image = Image.open(io.BytesIO(jpeg))
    assert image.format == "JPEG"
    assert image.size == mask.size
    background = binary_erosion(np.asarray(mask) == 0, iterations=4)
    assert background.mean() > 0.05, "the photo has too little background to check"
    pixels = np.asarray(image.convert("RGB"))[background]
    assert pixels.min() >= 240, pixels.min()
    foreground = np.asarray(mask) == 255
    assert np.asarray(image.convert("L"))[foreground].mean() < 230, "the subject was painted over"
