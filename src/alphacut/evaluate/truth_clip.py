"""A video with a known matte, made the way matting benchmarks are made: a real subject with
a true alpha and foreground moves across a real background photo that pans, with a little
sensor noise in every frame. Every pixel's true motion is known, so the warping error can be
measured against it, and every frame's true alpha, so MAD, MSE and dtSSD can.

The subject's matte comes from its own photo: a careful trimap (the model's confident
regions, eroded well inside and outside the subject), closed-form matting of the original
photo, and foreground colours estimated from that alpha (pymatting). Motions are whole
pixels, so the truth is exact: no resampling blurs it from frame to frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from .._extras import pymatting, require
from ..errors import InputError
from ..pipeline.trimap import fractions, trimap_from
from .temporal import Motion

__all__ = ["Matte", "TruthClip", "backdrop", "cached_matte", "make_truth_clip", "matte_from_photo"]

Float = NDArray[np.float32]


@dataclass(frozen=True)
class Matte:
    """A subject: alpha (H×W, 0..1) and foreground colours (H×W×3, 0..1)."""

    alpha: Float
    foreground: Float


@dataclass(frozen=True)
class TruthClip:
    """frames: RGB uint8; alphas: the truth per frame; motions[i] carries frame i+1 to i."""

    frames: list[NDArray[np.uint8]]
    alphas: list[Float]
    motions: list[Motion]


def matte_from_photo(photo: Image.Image, mask: Image.Image, *, band: float = 0.02) -> Matte:
    """The matte of `photo`'s subject from a model `mask` (L, same size): sure foreground
    where the mask is ≥ 240 and sure background where it is ≤ 15, each eroded by `band` ×
    the image diagonal, and closed-form matting in between."""
    matting = pymatting()
    cv2 = require("cv2", "the truth clip", extra="video")

    image = np.asarray(photo.convert("RGB"), dtype=np.float64) / 255.0
    soft = np.asarray(mask.convert("L"))
    radius = max(2, round(band * float(np.hypot(*soft.shape))))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    sure_fg = cv2.erode((soft >= 240).astype(np.uint8), kernel).astype(bool)
    sure_bg = cv2.erode((soft <= 15).astype(np.uint8), kernel).astype(bool)
    if not sure_fg.any() or not sure_bg.any():
        missing = "subject" if not sure_fg.any() else "background"
        raise InputError(
            f"no pixel is surely {missing} once a band of {radius} px is kept off the edge: "
            "the mask is not confident enough (or the models disagree) to solve a matte from"
        )
    trimap = fractions(trimap_from(sure_fg, sure_bg)).astype(np.float64)
    alpha = np.clip(matting.estimate_alpha_cf(image, trimap), 0.0, 1.0)
    foreground = matting.estimate_foreground_ml(image, alpha)
    return Matte(alpha.astype(np.float32), np.clip(foreground, 0, 1).astype(np.float32))


def cached_matte(photo: Path, cache: Path, *, side: int = 400) -> Matte:
    """The matte of `photo` scaled to fit `side`, with u2netp's mask as the trimap's source,
    made once and kept in `cache` (closed-form matting takes seconds, its first call a
    minute while numba compiles)."""
    from ..options import RemoveOptions
    from ..remover import Remover

    cached = cache / f"{photo.stem}-{side}.npz"
    if cached.is_file():
        with np.load(cached) as data:
            return Matte(data["alpha"], data["foreground"])
    image = Image.open(photo).convert("RGB")
    image.thumbnail((side, side))
    mask = Remover("u2netp").remove_image(image, RemoveOptions(only_mask=True))
    matte = matte_from_photo(image, mask)
    cache.mkdir(parents=True, exist_ok=True)
    partial = cached.with_name(f".{cached.stem}.partial.npz")
    np.savez_compressed(partial, alpha=matte.alpha, foreground=matte.foreground)
    partial.replace(cached)
    return matte


def make_truth_clip(
    matte: Matte,
    background: Image.Image,
    *,
    size: tuple[int, int] = (320, 240),
    frames: int = 24,
    subject_step: int = 3,
    pan_step: int = 2,
    noise: float = 3.0,
    seed: int = 0,
) -> TruthClip:
    """`frames` frames of `size` (width, height): the subject, scaled to 85% of the height
    and standing on the bottom edge, walks `subject_step` pixels right per frame while the
    camera pans `pan_step` pixels across `background`; Gaussian noise of `noise` grey
    levels is added to each frame."""
    cv2 = require("cv2", "the truth clip", extra="video")

    width, height = size
    scale = 0.85 * height / matte.alpha.shape[0]
    sub_w, sub_h = round(matte.alpha.shape[1] * scale), round(matte.alpha.shape[0] * scale)
    alpha = cv2.resize(matte.alpha, (sub_w, sub_h), interpolation=cv2.INTER_AREA)
    fg = cv2.resize(matte.foreground, (sub_w, sub_h), interpolation=cv2.INTER_AREA)
    travel = subject_step * (frames - 1)
    if sub_w + travel > width:
        raise ValueError("the subject would leave the frame: fewer frames or a smaller step")
    scenery = backdrop(background, width + pan_step * (frames - 1), height)
    rng = np.random.default_rng(seed)
    left0 = (width - sub_w - travel) // 2
    top = height - sub_h
    clip_frames, alphas, offsets = [], [], []
    for t in range(frames):
        left, pan = left0 + subject_step * t, pan_step * t
        canvas_alpha = np.zeros((height, width), np.float32)
        canvas_alpha[top:, left : left + sub_w] = alpha
        canvas_fg = np.zeros((height, width, 3), np.float32)
        canvas_fg[top:, left : left + sub_w] = fg
        plate = scenery[:, pan : pan + width]
        a = canvas_alpha[..., None]
        pixels = (a * canvas_fg + (1 - a) * plate) * 255.0 + rng.normal(0, noise, plate.shape)
        clip_frames.append(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))
        alphas.append(canvas_alpha)
        offsets.append((left, pan))
    motions = [
        _true_motion(alphas[t], alphas[t - 1], offsets[t], offsets[t - 1]) for t in range(1, frames)
    ]
    return TruthClip(clip_frames, alphas, motions)


def backdrop(photo: Image.Image, width: int, height: int) -> Float:
    """The photo scaled to cover width × height, cropped from its centre, in 0..1."""
    scale = max(width / photo.width, height / photo.height)
    resized = photo.convert("RGB").resize(
        (max(width, round(photo.width * scale)), max(height, round(photo.height * scale))),
        Image.Resampling.LANCZOS,
    )
    x = (resized.width - width) // 2
    y = (resized.height - height) // 2
    crop = resized.crop((x, y, x + width, y + height))
    return np.asarray(crop, dtype=np.float32) / 255.0


def _true_motion(
    alpha: Float,
    previous: Float,
    offset: tuple[int, int],
    previous_offset: tuple[int, int],
) -> Motion:
    """Subject pixels (α ≥ ½) move with the subject, the rest with the background. A pixel
    is valid where it lands inside frame t−1 on the same true alpha: that rules out the
    pixels the subject covers or uncovers."""
    height, width = alpha.shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    subject = alpha >= 0.5
    walk = offset[0] - previous_offset[0]
    pan = offset[1] - previous_offset[1]
    map_x = np.where(subject, xs - walk, xs + pan).astype(np.float32)
    map_y = ys
    inside = (map_x >= 0) & (map_x <= width - 1)
    landed = previous[ys.astype(int), np.clip(map_x, 0, width - 1).astype(int)]
    valid = inside & (np.abs(landed - alpha) < 1e-6)
    return Motion(map_x, map_y, valid)
