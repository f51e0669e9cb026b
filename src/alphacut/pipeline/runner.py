"""The stages after the model, in their one order: post-process → refine → edge → compose.

Every cutout alphacut makes goes through `finish`: `Remover` (and so the CLI, batches,
watch, video and Ray actors) and the server, which brings masks it kept per upload. None
repeats a stage. What the stages need besides the image, the masks and the options (a
ViTMatte refiner, a decoded background, hints already read) comes in `Given`, made by the
caller's model pool.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..errors import ImageTooLarge
from ..imagefile import DecodedImage
from ..options import Limits, RemoveOptions
from .compose import compose
from .edge import Refiner
from .hints import hints_for, read_hints
from .mask import post_process
from .refine import Hints, Refinement, automatic_alpha, band_radius, near_strokes, refine_alpha

__all__ = ["Given", "admit", "automatic_alphas", "finish", "post_processed"]


@dataclass(frozen=True)
class Given:
    """What a caller brings to `finish` besides the image, its masks and the options.

    refiner: ViTMatte's, for options.vitmatte. background: options.background_image,
    decoded. hints: painted hints already read; else those of options.hints are looked up
    for the image (a file, or a folder of files named like the inputs) and read under
    `limits`. automatic: each mask's refinement without hints, when kept from before (a
    server keeps it per upload, so a stroke only solves near itself)."""

    refiner: Refiner | None = None
    background: Image.Image | None = None
    hints: Hints | None = None
    automatic: list[Image.Image] | None = None
    limits: Limits | None = None


def admit(
    size: tuple[int, int],
    options: RemoveOptions,
    limits: Limits | None,
    source: str | None = None,
) -> None:
    """ImageTooLarge if a stage `options` ask for may not run on an image of `size` (width,
    height) under `limits`: closed-form alpha matting, whose memory grows with the whole
    image. Called before the model runs (a server: before a video job queues), and again
    by `finish`."""
    if limits is None or limits.max_matting_pixels is None:
        return
    if not options.alpha_matting or options.vitmatte or options.only_mask:
        return
    width, height = size
    if width * height > limits.max_matting_pixels:
        raise ImageTooLarge(
            f"alpha matting is limited to {limits.max_matting_pixels / 1e6:.2f} megapixels "
            f"and this image has {width * height / 1e6:.2f} ({width}x{height}); "
            f"{limits.matting_hint}",
            source=source,
        )


def finish(
    decoded: DecodedImage, masks: list[Image.Image], options: RemoveOptions, given: Given
) -> Image.Image:
    """The result for `options` from the model's `masks` of `decoded` (as `predict_masks`
    gives them, before post-processing): the RGBA cutout or the mask (mode L)."""
    image = decoded.image
    admit(image.size, options, given.limits, decoded.source)
    masks = post_processed(masks, options)
    if options.refine is None:
        return compose(image, masks, options, given.background, given.refiner)
    hints = given.hints if given.hints is not None else _hints_for(decoded, options, given)
    if options.refine_scope == "strokes":
        return _stroke_window(image, masks, options, hints, given.background)
    refinement = Refinement(method=options.refine)
    known = given.automatic if given.automatic is not None else [None] * len(masks)
    refined = [
        refine_alpha(image, m, hints, refinement, a) for m, a in zip(masks, known, strict=True)
    ]
    return compose(image, refined, options, given.background, given.refiner)


def post_processed(masks: list[Image.Image], options: RemoveOptions) -> list[Image.Image]:
    """The masks smoothed by rembg's post-processing when `options` ask for it."""
    return [post_process(m) for m in masks] if options.post_process_mask else masks


def automatic_alphas(
    image: Image.Image, masks: list[Image.Image], options: RemoveOptions
) -> list[Image.Image]:
    """Each of the model's `masks` refined without hints, as `finish` would refine it
    (post-processed first): what a stroke's solve starts from, kept as `Given.automatic`."""
    refinement = Refinement(method=options.refine or "auto")
    return [automatic_alpha(image, m, refinement) for m in post_processed(masks, options)]


def _hints_for(decoded: DecodedImage, options: RemoveOptions, given: Given) -> Hints | None:
    if options.hints is None:
        return None
    found = hints_for(options.hints, decoded.source)
    return read_hints(found, decoded.image.size, given.limits) if found else None


def _stroke_window(
    image: Image.Image,
    masks: list[Image.Image],
    options: RemoveOptions,
    hints: Hints | None,
    background: Image.Image | None,
) -> Image.Image:
    """refine_scope="strokes": the plain cut, with only the box around the strokes cut
    again from the hints (alpha and colours), so a stroke costs what it covers."""
    untouched = compose(image, masks, options.replace(refine=None), background)
    if hints is None or not hints.any:
        return untouched
    radius = band_radius(image.width, image.height)
    near = near_strokes(hints, radius)
    box = _box_around(near, 2 * radius)
    if len(masks) != 1 or background is not None:
        box = (0, 0, image.width, image.height)  # stacked masks or a fitted backdrop: whole
    window = (slice(box[1], box[3]), slice(box[0], box[2]))
    local = Hints(hints.keep[window], hints.remove[window], hints.edge[window])
    crop = image.crop(box)
    refinement = Refinement(method=options.refine or "auto")
    refined = [
        refine_alpha(crop, m.crop(box), local, refinement, automatic=m.crop(box), radius=radius)
        for m in masks
    ]
    patch = compose(crop, refined, options, background)
    region = Image.fromarray(near[window].astype(np.uint8) * 255)
    untouched.paste(Image.composite(patch, untouched.crop(box), region), box[:2])
    return untouched


def _box_around(region: np.ndarray, margin: int) -> tuple[int, int, int, int]:
    """The box (left, top, right, bottom) of `region`'s pixels, grown by `margin`."""
    rows, cols = np.nonzero(region)
    height, width = region.shape
    return (
        max(0, int(cols.min()) - margin),
        max(0, int(rows.min()) - margin),
        min(width, int(cols.max()) + 1 + margin),
        min(height, int(rows.max()) + 1 + margin),
    )
