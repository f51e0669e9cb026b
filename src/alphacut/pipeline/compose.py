"""Combine the image and its mask into the requested result."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageOps

from ..options import RGBA, RemoveOptions
from .edge import Refiner, edge_for

__all__ = ["apply_background_image", "apply_bgcolor", "compose", "stack_vertically"]


def compose(
    image: Image.Image,
    masks: Sequence[Image.Image],
    options: RemoveOptions,
    background: Image.Image | None = None,
    refiner: Refiner | None = None,
) -> Image.Image:
    """The result for `options`: the mask itself (mode L) or an RGBA cutout, optionally
    placed on `options.bgcolor` or on `background` (already decoded). Several masks (a
    clothes model's categories) give their results stacked vertically, as rembg does.

    The edge is the one `options` ask for (see `edge_for`); `refiner`: ViTMatte's."""
    edge = edge_for(options, refiner)
    result = stack_vertically([edge(image, mask) for mask in masks])
    if options.only_mask:
        return result
    if options.bgcolor is not None:
        return apply_bgcolor(result, options.bgcolor)
    if background is not None:
        return apply_background_image(result, background)
    return result


def stack_vertically(results: list[Image.Image]) -> Image.Image:
    """Several results one above the other on an RGBA canvas (rembg's multi-mask output);
    a single result is returned as it is."""
    if len(results) == 1:
        return results[0]
    canvas = Image.new("RGBA", (results[0].width, sum(r.height for r in results)))
    top = 0
    for result in results:
        canvas.paste(result, (0, top))
        top += result.height
    return canvas


def apply_bgcolor(result: Image.Image, color: RGBA) -> Image.Image:
    """`result` alpha-composited over a solid `color`."""
    return Image.alpha_composite(Image.new("RGBA", result.size, color), result)


def apply_background_image(result: Image.Image, background: Image.Image) -> Image.Image:
    """`result` over `background`, scaled and centre-cropped to cover the result exactly."""
    fitted = ImageOps.fit(background.convert("RGBA"), result.size, Image.Resampling.LANCZOS)
    return Image.alpha_composite(fitted, result)
