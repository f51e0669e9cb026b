"""Image in, mask out: prepare, infer, and turn the saliency map into a mask."""

from __future__ import annotations

from PIL import Image

from ..models.session import Session
from .mask import saliency_to_mask
from .prepare import prepare

__all__ = ["predict_mask"]


def predict_mask(session: Session, image: Image.Image) -> Image.Image:
    """The 8-bit mask (mode L) of `image`'s salient subject, at the image's own size."""
    saliency = session.run(prepare(image, session.spec))
    return saliency_to_mask(saliency[0], session.spec, image.size)
