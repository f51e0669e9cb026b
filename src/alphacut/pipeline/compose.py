"""Combine the image and its mask into the requested result."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

from .._parallel import run_parallel, spans, strip_count
from ..errors import MissingDependency
from ..options import RGBA, RemoveOptions

__all__ = ["apply_background_image", "apply_bgcolor", "compose", "cutout"]


def compose(
    image: Image.Image,
    mask: Image.Image,
    options: RemoveOptions,
    background: Image.Image | None = None,
) -> Image.Image:
    """The result for `options`: the mask itself (mode L) or an RGBA cutout, optionally
    placed on `options.bgcolor` or on `background` (already decoded)."""
    if options.only_mask:
        return mask
    if options.alpha_matting:
        try:
            result = alpha_matting_cutout(image, mask, options)
        except ValueError:
            # Matting fails when the trimap has no unknown region; keep the soft mask then.
            result = decontaminated_cutout(image, mask)
    else:
        result = cutout(image, mask)
    if options.bgcolor is not None:
        return apply_bgcolor(result, options.bgcolor)
    if background is not None:
        return apply_background_image(result, background)
    return result


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


def _pymatting() -> tuple[object, object, object]:
    try:
        from pymatting.alpha.estimate_alpha_cf import estimate_alpha_cf
        from pymatting.foreground.estimate_foreground_ml import estimate_foreground_ml
        from pymatting.util.util import stack_images
    except ImportError as exc:
        raise MissingDependency(
            "alpha matting needs pymatting: pip install 'alphacut[matting]'"
        ) from exc
    return estimate_alpha_cf, estimate_foreground_ml, stack_images


def alpha_matting_cutout(
    image: Image.Image, mask: Image.Image, options: RemoveOptions
) -> Image.Image:
    """Closed-form matting inside a trimap built from the mask's confident regions."""
    from scipy.ndimage import binary_erosion

    estimate_alpha_cf, estimate_foreground_ml, stack_images = _pymatting()
    pixels = np.asarray(image.convert("RGB"))
    levels = np.asarray(mask)
    size = options.alpha_matting_erode_size
    structure = np.ones((size, size), dtype=np.uint8) if size > 0 else None
    sure_fg = binary_erosion(
        levels > options.alpha_matting_foreground_threshold, structure=structure
    )
    sure_bg = binary_erosion(
        levels < options.alpha_matting_background_threshold, structure=structure, border_value=1
    )
    trimap = np.full(levels.shape, 128, dtype=np.uint8)
    trimap[sure_fg] = 255
    trimap[sure_bg] = 0
    normalized = pixels / 255.0
    alpha = estimate_alpha_cf(normalized, trimap / 255.0)  # type: ignore[operator]
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
