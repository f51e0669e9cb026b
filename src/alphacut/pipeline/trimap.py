"""The trimap: where a mask is sure foreground, sure background, or unknown for the matting.

Every matting stage builds it here, from a mask's confident regions eroded inward. The
erosion differs by purpose: alpha matting and ViTMatte erode by rembg's square, whose exact
shape their parity with rembg needs; refinement erodes by a disc whose radius grows with the
image, by distance transform, so a large radius costs no more than a small one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from .._extras import require
from ..options import RemoveOptions

__all__ = [
    "BACKGROUND",
    "FOREGROUND",
    "UNKNOWN",
    "band_trimap",
    "disc_eroded",
    "disc_grown",
    "fractions",
    "matting_trimap",
    "opencv",
    "square_eroded",
    "trimap_from",
]

Bools = NDArray[np.bool_]
Levels = NDArray[np.uint8]

FOREGROUND, UNKNOWN, BACKGROUND = 255, 128, 0

#: Mask levels refinement takes as confident: the model is sure above and below these.
_SURE_FOREGROUND, _SURE_BACKGROUND = 230, 25


def trimap_from(sure_foreground: Bools, sure_background: Bools) -> Levels:
    """FOREGROUND, BACKGROUND, and UNKNOWN elsewhere (background wins where both are set)."""
    levels = np.full(sure_foreground.shape, UNKNOWN, dtype=np.uint8)
    levels[sure_foreground] = FOREGROUND
    levels[sure_background] = BACKGROUND
    return levels


def fractions(levels: Levels) -> NDArray[np.float32]:
    """The trimap as pymatting takes it: 1.0, 0.5 and 0.0, exactly."""
    table = np.zeros(256, np.float32)
    table[FOREGROUND], table[UNKNOWN] = 1.0, 0.5
    return table[levels]


def matting_trimap(mask: Image.Image, options: RemoveOptions) -> Levels:
    """rembg's trimap for alpha matting and ViTMatte: the levels above the foreground
    threshold and below the background threshold, each eroded by a square of
    `alpha_matting_erode_size` pixels (0: scipy's default cross, as rembg)."""
    levels = np.asarray(mask)
    size = options.alpha_matting_erode_size
    sure_fg = square_eroded(levels > options.alpha_matting_foreground_threshold, size, outside=0)
    sure_bg = square_eroded(levels < options.alpha_matting_background_threshold, size, outside=1)
    return trimap_from(sure_fg, sure_bg)


def square_eroded(region: Bools, size: int, *, outside: int) -> Bools:
    """`region` eroded by a square of `size` pixels, with pixels beyond the border taken as
    `outside`: what rembg's binary_erosion with a dense size × size structure gives, bit for
    bit (even sizes and borders included), as a row then a column minimum, so it costs the
    same whatever the size (the dense structure's memory grows with size⁴)."""
    from scipy.ndimage import binary_erosion, minimum_filter

    if size == 0:  # scipy's default structure, a 3 × 3 cross: rembg's erosion of size 0
        return np.asarray(binary_erosion(region, border_value=outside))
    eroded = minimum_filter(region.view(np.uint8), size=size, mode="constant", cval=outside)
    return np.asarray(eroded, dtype=bool)


def band_trimap(levels: Levels, radius: int) -> Levels:
    """Refinement's trimap: the mask's confident regions eroded by a disc of `radius`, so the
    unknown band covers where the model is unsure and a margin on each side of its edge."""
    return trimap_from(
        disc_eroded(levels >= _SURE_FOREGROUND, radius),
        disc_eroded(levels <= _SURE_BACKGROUND, radius),
    )


def disc_eroded(region: Bools, radius: int) -> Bools:
    """`region` eroded by a disc of `radius`, by distance transform: a large disc costs no more
    than a small one (a 6 MP photo's band is 36 pixels; a kernel that size takes seconds)."""
    cv2 = opencv()
    distance = cv2.distanceTransform(region.astype(np.uint8), cv2.DIST_L2, 5)
    return np.asarray(distance > radius)


def disc_grown(region: Bools, radius: int) -> Bools:
    """`region` dilated by a disc of `radius` (the complement eroded)."""
    return ~disc_eroded(~region, radius)


def opencv() -> Any:
    """OpenCV, which refinement needs (it comes with alphacut[matting])."""
    return require("cv2", "refinement", extra="matting")
