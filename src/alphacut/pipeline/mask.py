"""From the model's saliency map to an 8-bit mask at the image's size."""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..models.registry import ModelSpec
from .resize import bilinear_resize, lanczos_resize

__all__ = ["cloth_masks", "post_process", "saliency_to_mask"]

# A 3x3 cross: the radius-1 disk rembg opens the mask with.
_CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)


def saliency_to_mask(
    saliency: np.ndarray, spec: ModelSpec, size: tuple[int, int], *, fast: bool = False
) -> Image.Image:
    """Min-max normalise one (H, W) saliency map to 0..255 and resize it to `size` (w, h);
    a probability map (see `Kind.probability`) is only scaled to 0..255.

    The float-to-byte step truncates rather than rounds, and the resize is
    LANCZOS, as in rembg, so masks agree with it. A constant map (no contrast at
    all) yields an empty mask instead of rembg's division by zero. fast: a bilinear resize
    instead (the fast path's; half LANCZOS's time, no ringing at the edge).
    """
    resize = bilinear_resize if fast else lanczos_resize
    pred: np.ndarray = saliency.astype(np.float32, copy=False)
    if spec.sigmoid:
        pred = 1 / (1 + np.exp(-pred))
    if spec.traits.probability:
        levels = np.rint(np.clip(np.nan_to_num(pred), 0, 1) * 255).astype(np.uint8)
        return resize(Image.fromarray(levels, "L"), size)
    high, low = pred.max(), pred.min()
    if not np.isfinite(high - low) or high == low:
        levels = np.zeros(pred.shape, dtype=np.uint8)
    else:
        levels = (np.clip((pred - low) / (high - low), 0, 1) * 255).astype(np.uint8)
    return resize(Image.fromarray(levels, "L"), size)


#: u2net_cloth_seg's classes: 0 background, 1 upper body, 2 lower body, 3 full body.
_CLOTH_CLASSES = {"upper": (1,), "lower": (2,), "full": (3,), "attire": (1, 2, 3)}
_CLOTH_DEFAULT = ("upper", "lower", "full")


def cloth_masks(
    labels: np.ndarray, size: tuple[int, int], category: str | None = None
) -> list[Image.Image]:
    """Binary masks (0/255) of one clothes category, or of upper, lower and full in turn.

    As in rembg the class map itself is resized with LANCZOS, and a class is kept only
    where the resized value still equals its number, so masks agree with rembg's.
    """
    resized = np.asarray(lanczos_resize(Image.fromarray(labels.astype(np.uint8), "L"), size))
    categories = (category,) if category else _CLOTH_DEFAULT
    return [
        Image.fromarray(np.where(np.isin(resized, _CLOTH_CLASSES[c]), 255, 0).astype(np.uint8), "L")
        for c in categories
    ]


def post_process(mask: Image.Image) -> Image.Image:
    """Smooth a mask's edge: a grey opening with a 3x3 cross, a Gaussian blur (sigma 2 px),
    then a hard threshold at 127, giving a binary 0/255 mask (rembg's `post_process_mask`)."""
    from scipy import ndimage

    opened = ndimage.grey_opening(np.asarray(mask), footprint=_CROSS, mode="reflect")
    blurred = ndimage.gaussian_filter(opened.astype(np.float64), sigma=2)
    return Image.fromarray(np.where(blurred < 127, 0, 255).astype(np.uint8), "L")
