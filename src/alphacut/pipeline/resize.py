"""LANCZOS resizing that gives the same pixels on every Pillow version.

Pillow up to 12 resized in two 8-bit passes, horizontal then vertical, rounding
and clipping to 0..255 in between; rembg's reference outputs carry that
behaviour. Pillow 13 changed how a single `resize` combines the passes, which
moves mask values by up to 38 levels on some shapes. Running the two passes as
two separate one-axis resizes reproduces the old result exactly on both.
"""

from __future__ import annotations

from PIL import Image

__all__ = ["lanczos_resize"]


def lanczos_resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """`image` resized to `size` (width, height) with LANCZOS, horizontal pass first."""
    width, height = size
    if image.width != width:
        image = image.resize((width, image.height), Image.Resampling.LANCZOS)
    if image.height != height:
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    return image
