"""Video matte metrics: how much a matte flickers, and how far it is from the truth.

- Warping error (Lai et al., ECCV 2018): mean |α_t(p) − α_{t−1}(p + d(p))| where d carries
  each pixel of frame t back to frame t−1, counted only where that motion is valid (not
  occluded). It is the incoherence of the matte in the subject's own frame of reference.
- dtSSD (Erofeev et al. 2015, as the RVM paper reports it): the root mean square of the
  difference between the predicted and the true temporal derivative of α, × 100.
- MAD and MSE against the truth, × 1000 (the video-matting convention).

Alphas are float arrays in 0..1. A motion is a pair of maps (x, y), the position in frame
t−1 of every pixel of frame t, and a boolean mask of where it is valid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._extras import require

__all__ = [
    "Motion",
    "TemporalScores",
    "dtssd",
    "estimated_motion",
    "mad",
    "mse",
    "score_clip",
    "warping_error",
]

Alpha = NDArray[np.floating[Any]]


@dataclass(frozen=True)
class Motion:
    """Where each pixel of frame t was in frame t−1, and where that is known to be right."""

    map_x: NDArray[np.float32]
    map_y: NDArray[np.float32]
    valid: NDArray[np.bool_]


@dataclass(frozen=True)
class TemporalScores:
    """Means over a clip. warping_error in 0..1 × 1000; dtssd, mad and mse as in the module
    docstring; the accuracy figures are None when there is no truth."""

    frames: int
    warping_error: float
    dtssd: float | None
    mad: float | None
    mse: float | None


def mad(prediction: Alpha, truth: Alpha) -> float:
    return float(np.abs(prediction - truth).mean() * 1e3)


def mse(prediction: Alpha, truth: Alpha) -> float:
    return float(((prediction - truth) ** 2).mean() * 1e3)


def dtssd(prediction: Alpha, previous: Alpha, truth: Alpha, previous_truth: Alpha) -> float:
    change = (prediction - previous) - (truth - previous_truth)
    return float(np.sqrt((change**2).mean()) * 1e2)


def warping_error(alpha: Alpha, previous: Alpha, motion: Motion) -> float:
    """Mean absolute difference between `alpha` and `previous` carried along `motion`, over
    the valid pixels, × 1000 (0 when no pixel is valid)."""
    cv2 = require("cv2", "scoring over time", extra="video")

    carried = cv2.remap(
        previous.astype(np.float32),
        motion.map_x,
        motion.map_y,
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    if not motion.valid.any():
        return 0.0
    return float(np.abs(alpha - carried)[motion.valid].mean() * 1e3)


def estimated_motion(grey: NDArray[np.uint8], previous_grey: NDArray[np.uint8]) -> Motion:
    """The motion of a real clip, from DIS optical flow at its finest preset. A pixel is
    valid where the forward and backward flows agree (Sundaram et al. 2010), which rules
    out occlusions and flow failures."""
    cv2 = require("cv2", "scoring over time", extra="video")

    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    grey, previous_grey = np.ascontiguousarray(grey), np.ascontiguousarray(previous_grey)
    back = dis.calc(grey, previous_grey, None)  # frame t → t−1
    forth = dis.calc(previous_grey, grey, None)  # frame t−1 → t
    height, width = grey.shape
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    map_x, map_y = xs + back[..., 0], ys + back[..., 1]
    forth_there = cv2.remap(forth, map_x, map_y, cv2.INTER_LINEAR)
    round_trip = ((back + forth_there) ** 2).sum(axis=2)
    size = (back**2).sum(axis=2) + (forth_there**2).sum(axis=2)
    inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
    valid = inside & (round_trip < 0.01 * size + 0.5)
    return Motion(map_x, map_y, valid)


def score_clip(
    alphas: Sequence[Alpha],
    motions: Sequence[Motion],
    truths: Sequence[Alpha] | None = None,
) -> TemporalScores:
    """Score a clip: `motions[i]` carries frame i+1 back to frame i (one fewer than frames)."""
    if len(alphas) < 2 or len(motions) != len(alphas) - 1:
        raise ValueError("need two frames or more and one motion between each pair")
    warp = [warping_error(alphas[i + 1], alphas[i], m) for i, m in enumerate(motions)]
    if truths is None:
        return TemporalScores(len(alphas), float(np.mean(warp)), None, None, None)
    if len(truths) != len(alphas):
        raise ValueError("one truth per frame")
    pairs = range(1, len(alphas))
    return TemporalScores(
        frames=len(alphas),
        warping_error=float(np.mean(warp)),
        dtssd=float(
            np.mean([dtssd(alphas[i], alphas[i - 1], truths[i], truths[i - 1]) for i in pairs])
        ),
        mad=float(np.mean([mad(a, t) for a, t in zip(alphas, truths, strict=True)])),
        mse=float(np.mean([mse(a, t) for a, t in zip(alphas, truths, strict=True)])),
    )
