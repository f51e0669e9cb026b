"""The edge: how a mask becomes the cutout's alpha and colours.

Every edge method is an `Edge`, a function of the image and one mask that returns the RGBA
cutout (or, for only_mask, the mask). `edge_for` picks one from the options, in rembg's
order of precedence: ViTMatte's alpha with decontaminated colours; closed-form alpha
matting; refinement's alpha with colours decontaminated near the edge; decontaminated
colours (`decontaminate`); the plain mask.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image

from .._extras import pymatting, pymatting_quietly
from .._parallel import run_parallel, spans, strip_count
from ..errors import OptionsError
from ..options import RemoveOptions
from .trimap import matting_trimap

__all__ = [
    "Edge",
    "Refiner",
    "alpha_matting_cutout",
    "cutout",
    "decontaminated_band",
    "decontaminated_cutout",
    "edge_for",
    "require_edge",
]

#: One mask to its result for an image: the RGBA cutout, before any background.
Edge = Callable[[Image.Image, Image.Image], Image.Image]

#: Refines a mask into an alpha matte (mode L) for an image: ViTMatte, say.
Refiner = Callable[[Image.Image, Image.Image], Image.Image]


def edge_for(options: RemoveOptions, refiner: Refiner | None = None) -> Edge:
    """The edge method `options` ask for; `refiner`: ViTMatte's, needed with `vitmatte`."""
    if options.only_mask:
        return lambda _, mask: mask
    if options.vitmatte:
        if refiner is None:
            raise OptionsError("vitmatte needs a refiner: use Remover or remove()")
        return lambda image, mask: decontaminated_cutout(image, refiner(image, mask))
    if options.alpha_matting:
        return lambda image, mask: _matted_or_soft(image, mask, options)
    if options.refine is not None:  # refined edges get true colours, near the edge only
        return decontaminated_band
    if options.decontaminate:
        return decontaminated_cutout
    return cutout


def require_edge(options: RemoveOptions) -> None:
    """Import now what the edge and refinement need for `options`, so that a missing extra
    is one MissingDependency before any model loads, not one per image: refinement needs
    OpenCV and pymatting (alphacut[matting]); ViTMatte, alpha matting and decontamination
    need pymatting for the cutout's colours."""
    if options.refine is not None:
        from .refine import require_refinement

        require_refinement(options.refine, colours=not options.only_mask)
    elif not options.only_mask and (
        options.vitmatte or options.alpha_matting or options.decontaminate
    ):
        pymatting()


def cutout(image: Image.Image, mask: Image.Image) -> Image.Image:
    """RGBA cutout: colour and alpha both weighted by the mask over a transparent canvas.

    The bytes are those of `Image.composite(image, transparent, mask)`, rembg's recipe.
    For an opaque image that blend is exactly Pillow's conversion to premultiplied
    alpha (both compute round(colour * mask / 255) the same way), which costs half as
    much and, on a large image, runs in strips on all cores.
    """
    if image.mode != "RGB":
        return Image.composite(image, Image.new("RGBA", image.size, 0), mask)
    parts = strip_count(image.width * image.height, image.height)
    if parts == 1:
        pixels = _premultiplied(image, mask).tobytes()
    else:

        def strip(rows: tuple[int, int]) -> bytes:
            box = (0, rows[0], image.width, rows[1])
            return _premultiplied(image.crop(box), mask.crop(box)).tobytes()

        pixels = b"".join(run_parallel(strip, spans(image.height, parts)))
    # The premultiplied bytes are the cutout's RGBA bytes; only the mode name changes.
    return Image.frombuffer("RGBA", image.size, pixels, "raw", "RGBA", 0, 1)


def _premultiplied(image: Image.Image, mask: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    rgba.putalpha(mask)
    return rgba.convert("RGBa")


def _matted_or_soft(image: Image.Image, mask: Image.Image, options: RemoveOptions) -> Image.Image:
    try:
        return alpha_matting_cutout(image, mask, options)
    except ValueError:
        # Matting fails when the trimap has no unknown region; keep the soft mask then.
        return decontaminated_cutout(image, mask)


def alpha_matting_cutout(
    image: Image.Image, mask: Image.Image, options: RemoveOptions
) -> Image.Image:
    """Closed-form matting inside rembg's trimap of the mask's confident regions."""
    matting = pymatting()
    normalized = np.asarray(image.convert("RGB")) / 255.0
    with pymatting_quietly():
        alpha = matting.estimate_alpha_cf(normalized, matting_trimap(mask, options) / 255.0)
    foreground = matting.estimate_foreground_ml(normalized, alpha)
    return _rgba(matting.stack_images(foreground, alpha))


def decontaminated_cutout(image: Image.Image, mask: Image.Image) -> Image.Image:
    """The mask as alpha, with colours re-estimated so soft edges carry no background tint."""
    matting = pymatting()
    normalized = np.asarray(image.convert("RGB")) / 255.0
    alpha = np.asarray(mask) / 255.0
    foreground = matting.estimate_foreground_ml(normalized, alpha)
    return _rgba(matting.stack_images(foreground, alpha))


def _rgba(stacked: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(stacked * 255, 0, 255).astype(np.uint8))


_TILE = 384  # decontamination works on tiles this size around the soft pixels
_TILE_MARGIN = 32


def decontaminated_band(image: Image.Image, mask: Image.Image) -> Image.Image:
    """The cutout with foreground colours re-estimated (pymatting's estimate_foreground_ml)
    where the alpha is soft, tile by tile around those pixels only: an opaque pixel keeps its
    colour and a clear one has none to show, so a 6 MP photo with a thin edge costs a few
    tiles rather than the whole frame."""
    estimate_foreground_ml = pymatting().estimate_foreground_ml
    rgb = np.array(image.convert("RGB"))
    alpha = np.asarray(mask.convert("L"))
    soft = (alpha > 0) & (alpha < 255)
    height, width = alpha.shape
    for top in range(0, height, _TILE):
        for left in range(0, width, _TILE):
            core = (slice(top, min(height, top + _TILE)), slice(left, min(width, left + _TILE)))
            if not soft[core].any():
                continue
            rows = slice(max(0, top - _TILE_MARGIN), min(height, top + _TILE + _TILE_MARGIN))
            cols = slice(max(0, left - _TILE_MARGIN), min(width, left + _TILE + _TILE_MARGIN))
            foreground = estimate_foreground_ml(rgb[rows, cols] / 255.0, alpha[rows, cols] / 255.0)
            estimated = np.clip(np.rint(np.asarray(foreground) * 255.0), 0, 255).astype(np.uint8)
            inner = (slice(core[0].start - rows.start, core[0].stop - rows.start),
                     slice(core[1].start - cols.start, core[1].stop - cols.start))  # fmt: skip
            patch = rgb[core]
            patch[soft[core]] = estimated[inner][soft[core]]
    return Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
