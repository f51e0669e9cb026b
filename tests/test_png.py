"""alphacut's PNG writer must give back exactly the pixels it was given."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageCms

from alphacut.imagefile.png import encode_png


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
@pytest.mark.parametrize("size", [(1, 1), (2, 1), (1, 5), (37, 23), (640, 480)])
@pytest.mark.parametrize("level", [0, 2, 9])
def test_round_trip_is_exact(mode: str, size: tuple[int, int], level: int) -> None:
    rng = np.random.default_rng(sum(size) + level)
    channels = len(mode)
    shape = (size[1], size[0]) if channels == 1 else (size[1], size[0], channels)
    pixels = rng.integers(0, 256, shape, dtype=np.uint8)
    pixels[: size[1] // 2] = 0  # a transparent-looking run, as in cutouts
    image = Image.fromarray(pixels, mode)
    decoded = Image.open(io.BytesIO(encode_png(image, level)))
    decoded.load()
    assert decoded.mode == mode
    assert decoded.size == size
    assert np.array_equal(np.asarray(decoded), pixels)


def test_icc_profile_is_embedded() -> None:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encode_png(Image.new("RGBA", (4, 4), (1, 2, 3, 4)), 2, profile)
    assert Image.open(io.BytesIO(data)).info["icc_profile"] == profile


def test_higher_levels_are_not_larger_on_real_content() -> None:
    from helpers import skimage_photo

    photo = skimage_photo("astronaut", 256).convert("RGBA")
    sizes = [len(encode_png(photo, level)) for level in (0, 1, 6)]
    assert sizes[0] > sizes[1] > sizes[2]


def test_other_modes_are_refused() -> None:
    with pytest.raises(ValueError, match="CMYK"):
        encode_png(Image.new("CMYK", (2, 2)))
