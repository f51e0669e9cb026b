"""ViTMatte: a network that turns a mask's trimap into an alpha matte (rembg's `vitmatte`)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..models.session import Session
from ..options import RemoveOptions
from .trimap import matting_trimap

__all__ = ["vitmatte_alpha"]

#: The checkpoints' fixed input: their position tables are built for this size.
_SIDE = 1024


def vitmatte_alpha(
    session: Session, image: Image.Image, mask: Image.Image, options: RemoveOptions
) -> Image.Image:
    """The alpha (mode L) ViTMatte predicts for `image` inside `mask`'s trimap.

    The image is resized bilinearly and the trimap by nearest neighbour (its three levels
    must stay three), both scaled to 0..1 and stacked as four channels, as rembg does.
    """
    side = (_SIDE, _SIDE)
    pixels = np.asarray(image.convert("RGB").resize(side, Image.Resampling.BILINEAR), np.float32)
    levels = Image.fromarray(matting_trimap(mask, options)).resize(side, Image.Resampling.NEAREST)
    stacked = np.concatenate(
        [(pixels / 255.0).transpose(2, 0, 1), (np.asarray(levels, np.float32) / 255.0)[None]]
    )[None].astype(np.float32)
    alpha = np.clip(session.run(stacked)[0], 0.0, 1.0)
    matte = Image.fromarray((alpha * 255).astype(np.uint8), "L")
    return matte.resize(image.size, Image.Resampling.BILINEAR)
