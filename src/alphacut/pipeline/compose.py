"""Combine the image and its mask into the requested result."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image, ImageOps

from .._extras import require
from .._parallel import run_parallel, spans, strip_count
from ..errors import OptionsError
from ..options import RGBA, RemoveOptions

__all__ = [
    "Refiner",
    "apply_background_image",
    "apply_bgcolor",
    "compose",
    "cutout",
    "cutout_for",
    "require_extras",
    "stack_vertically",
    "trimap",
]


#: Refines a mask into an alpha matte for an image (ViTMatte, say).
Refiner = Callable[[Image.Image, Image.Image], Image.Image]


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

    The edge, in rembg's order of precedence: ViTMatte's alpha (from `refiner`) with
    decontaminated colours; closed-form alpha matting; the mask with decontaminated
    colours (`decontaminate`); the plain mask."""
    result = stack_vertically([cutout_for(image, mask, options, refiner) for mask in masks])
    if options.only_mask:
        return result
    if options.bgcolor is not None:
        return apply_bgcolor(result, options.bgcolor)
    if background is not None:
        return apply_background_image(result, background)
    return result


def cutout_for(
    image: Image.Image, mask: Image.Image, options: RemoveOptions, refiner: Refiner | None = None
) -> Image.Image:
    """The mask (only_mask) or the cutout for one mask, before any background."""
    if options.only_mask:
        return mask
    if options.vitmatte:
        if refiner is None:
            raise OptionsError("vitmatte needs a refiner: use Remover or remove()")
        return decontaminated_cutout(image, refiner(image, mask))
    if options.alpha_matting:
        try:
            result = alpha_matting_cutout(image, mask, options)
        except ValueError:
            # Matting fails when the trimap has no unknown region; keep the soft mask then.
            return decontaminated_cutout(image, mask)
        return result
    if options.refine is not None:  # refined edges get true colours, near the edge only
        from .refine import decontaminated_band

        return decontaminated_band(image, mask)
    if options.decontaminate:
        return decontaminated_cutout(image, mask)
    return cutout(image, mask)


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


def apply_bgcolor(result: Image.Image, color: RGBA) -> Image.Image:
    """`result` alpha-composited over a solid `color`."""
    return Image.alpha_composite(Image.new("RGBA", result.size, color), result)


def apply_background_image(result: Image.Image, background: Image.Image) -> Image.Image:
    """`result` over `background`, scaled and centre-cropped to cover the result exactly."""
    fitted = ImageOps.fit(background.convert("RGBA"), result.size, Image.Resampling.LANCZOS)
    return Image.alpha_composite(fitted, result)


def require_extras(options: RemoveOptions) -> None:
    """Import now what the stages will need for `options`, so that a missing extra is one
    MissingDependency before any model loads, not one per image: refinement needs OpenCV
    and pymatting (alphacut[matting]); ViTMatte, alpha matting and decontamination need
    pymatting for the cutout's colours."""
    if options.refine is not None:
        from .refine import require_refinement

        require_refinement(options.refine, colours=not options.only_mask)
    elif not options.only_mask and (
        options.vitmatte or options.alpha_matting or options.decontaminate
    ):
        _pymatting()


def _pymatting() -> tuple[object, object, object]:
    purpose = "edge matting (alpha matting, decontamination, ViTMatte)"
    alpha = require("pymatting.alpha.estimate_alpha_cf", purpose)
    foreground = require("pymatting.foreground.estimate_foreground_ml", purpose)
    util = require("pymatting.util.util", purpose)
    return alpha.estimate_alpha_cf, foreground.estimate_foreground_ml, util.stack_images


def trimap(mask: Image.Image, options: RemoveOptions) -> np.ndarray:
    """255 sure foreground, 0 sure background, 128 unknown: the mask's confident regions
    (the alpha_matting thresholds) eroded by a square of alpha_matting_erode_size pixels."""
    from scipy.ndimage import binary_erosion

    levels = np.asarray(mask)
    size = options.alpha_matting_erode_size
    structure = np.ones((size, size), dtype=np.uint8) if size > 0 else None
    sure_fg = binary_erosion(
        levels > options.alpha_matting_foreground_threshold, structure=structure
    )
    sure_bg = binary_erosion(
        levels < options.alpha_matting_background_threshold, structure=structure, border_value=1
    )
    result = np.full(levels.shape, 128, dtype=np.uint8)
    result[sure_fg] = 255
    result[sure_bg] = 0
    return result


def alpha_matting_cutout(
    image: Image.Image, mask: Image.Image, options: RemoveOptions
) -> Image.Image:
    """Closed-form matting inside a trimap built from the mask's confident regions."""
    estimate_alpha_cf, estimate_foreground_ml, stack_images = _pymatting()
    normalized = np.asarray(image.convert("RGB")) / 255.0
    alpha = estimate_alpha_cf(normalized, trimap(mask, options) / 255.0)  # type: ignore[operator]
    foreground = estimate_foreground_ml(normalized, alpha)  # type: ignore[operator]
    stacked = stack_images(foreground, alpha)  # type: ignore[operator]
    return Image.fromarray(np.clip(stacked * 255, 0, 255).astype(np.uint8))


def decontaminated_cutout(image: Image.Image, mask: Image.Image) -> Image.Image:
    """The mask as alpha, with colours re-estimated so soft edges carry no background tint."""
    _, estimate_foreground_ml, stack_images = _pymatting()
    normalized = np.asarray(image.convert("RGB")) / 255.0
    alpha = np.asarray(mask) / 255.0
    foreground = estimate_foreground_ml(normalized, alpha)  # type: ignore[operator]
    stacked = stack_images(foreground, alpha)  # type: ignore[operator]
    return Image.fromarray(np.clip(stacked * 255, 0, 255).astype(np.uint8))
