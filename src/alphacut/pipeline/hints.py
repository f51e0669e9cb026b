"""Reading a hints image: what a user painted on a transparent layer over the photo.

Transparent pixels (alpha < 128) carry no hint; opaque ones mean keep (grey ≥ 192), remove
(≤ 63) or edge (in between: let the matting decide). An image without alpha is opaque
everywhere, so a plain greyscale trimap works too. It must have the photo's size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from ..imagefile import ImageSource, decode
from ..options import Limits
from .refine import Hints

__all__ = ["hints_for", "read_hints"]

KEEP_AT = 192
REMOVE_AT = 63


def read_hints(source: ImageSource, size: tuple[int, int], limits: Limits | None = None) -> Hints:
    """The hints in `source` (a path, bytes or image) for a photo of `size` (width, height);
    a clear InputError for a file that is not an image, is too large or has another size."""
    name = f"hints {source}" if isinstance(source, (str, Path)) else "hints"
    image = decode(source, limits=limits, source=name).image
    if image.size != size:
        raise InputError(
            f"the hints are {image.width}x{image.height}, the image {size[0]}x{size[1]}: "
            "paint them at the image's size",
            source=name,
        )
    has_alpha = image.mode == "RGBA"
    grey = np.asarray(image.convert("L"))
    if has_alpha:
        opaque = np.asarray(image.convert("RGBA").getchannel("A")) >= 128
    else:
        opaque = np.ones(grey.shape, bool)
    keep = opaque & (grey >= KEEP_AT)
    remove = opaque & (grey <= REMOVE_AT)
    return Hints(keep=keep, remove=remove, edge=opaque & ~keep & ~remove)


def hints_for(hints: Path, source: str) -> Path | None:
    """The hints file for the input `source`: `hints` itself, or in a folder of hints the
    file named like the input (any image suffix, PNG first); None when the folder has none."""
    if not hints.is_dir():
        return hints
    stem = Path(source).stem
    for suffix in (".png", ".webp", ".tif", ".tiff"):
        candidate = hints / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None
