"""Image in, masks out: prepare, infer, and turn the model's output into masks."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image

from ..models.session import Session
from ..options import RemoveOptions
from .mask import cloth_masks, saliency_to_mask
from .prepare import prepare

__all__ = ["predict_mask", "predict_mask_batch", "predict_masks"]


def predict_mask(session: Session, image: Image.Image) -> Image.Image:
    """The 8-bit mask (mode L) of `image`'s salient subject, at the image's own size."""
    return predict_mask_batch(session, [image])[0]


def predict_mask_batch(
    session: Session,
    images: list[Image.Image],
    run: Callable[[np.ndarray], np.ndarray] | None = None,
) -> list[Image.Image]:
    """`predict_mask` for several images in one model run (a dynamic-batch session). `run`:
    what runs the prepared batch instead of `session.run` (a server's micro-batcher, which
    may join it with other requests' images)."""
    fast = session.runtime.fast  # an INT8 model: parity with rembg no longer binds
    batch = np.concatenate([prepare(i, session.spec, fast=fast) for i in images])
    saliency = (run or session.run)(batch)
    return [
        saliency_to_mask(s, session.spec, i.size, fast=fast)
        for s, i in zip(saliency, images, strict=True)
    ]


def predict_masks(
    session: Session, image: Image.Image, options: RemoveOptions
) -> list[Image.Image]:
    """Every mask the model gives for `image`: one for saliency models and SAM, one per
    clothes category for u2net_cloth_seg (rembg stacks their results vertically)."""
    own = session.own_masks(image, options)
    if own is not None:
        return own
    if session.spec.traits.labels:
        labels = session.run(prepare(image, session.spec))[0]
        return cloth_masks(labels, image.size, options.cloth_category)
    return [predict_mask(session, image)]
