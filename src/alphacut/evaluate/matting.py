"""The standard alpha-matting errors (Rhemann et al. 2009, as the Composition-1k benchmark
computes them): SAD, MSE, gradient and connectivity, each over a region (the trimap's
unknown band, or the whole image). Alphas are floats in 0..1; SAD, gradient and connectivity
are reported ÷ 1000, MSE as a mean, all as the benchmark tables print them.

No maintained Python package implements all four, so they are written here, following the
benchmark's definitions, and tested against hand-computed cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "MattingScores",
    "connectivity_error",
    "gradient_error",
    "matting_scores",
    "mse_error",
    "sad_error",
]

Alpha = NDArray[np.floating[Any]]
Region = NDArray[np.bool_] | None


@dataclass(frozen=True)
class MattingScores:
    sad: float
    mse: float
    gradient: float
    connectivity: float


def _region(truth: Alpha, region: Region) -> NDArray[np.bool_]:
    return np.ones(truth.shape, bool) if region is None else region


def sad_error(prediction: Alpha, truth: Alpha, region: Region = None) -> float:
    """Sum of absolute differences over the region, ÷ 1000."""
    return float(np.abs(prediction - truth)[_region(truth, region)].sum() / 1000)


def mse_error(prediction: Alpha, truth: Alpha, region: Region = None) -> float:
    """Mean squared difference over the region."""
    inside = _region(truth, region)
    return float(((prediction - truth) ** 2)[inside].sum() / max(int(inside.sum()), 1))


def _gradient_magnitude(alpha: Alpha, sigma: float) -> NDArray[np.float64]:
    """|∇α| from first-derivative-of-Gaussian filters, as the benchmark computes it."""
    from scipy.ndimage import gaussian_filter

    values = np.asarray(alpha, dtype=np.float64)
    dx = gaussian_filter(values, sigma, order=(0, 1))
    dy = gaussian_filter(values, sigma, order=(1, 0))
    return np.asarray(np.hypot(dx, dy))


def gradient_error(
    prediction: Alpha, truth: Alpha, region: Region = None, sigma: float = 1.4
) -> float:
    """Sum over the region of the squared difference of gradient magnitudes, ÷ 1000."""
    difference = (_gradient_magnitude(prediction, sigma) - _gradient_magnitude(truth, sigma)) ** 2
    return float(difference[_region(truth, region)].sum() / 1000)


def _largest_component(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    from scipy.ndimage import label

    labels, count = label(mask, structure=np.ones((3, 3), int))  # 8-connected
    if count == 0:
        return np.zeros(mask.shape, bool)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return np.asarray(labels == int(np.argmax(sizes)))


def connectivity_error(
    prediction: Alpha, truth: Alpha, region: Region = None, step: float = 0.1
) -> float:
    """How far each pixel's alpha is from staying connected to the main body of the matte:
    at each threshold, the largest connected region where both mattes reach it; a pixel's
    level is the last threshold before it drops out of that region; its degree of
    connectivity φ = 1 − (α − level) where that exceeds 0.15, else 1. Sum |φ_p − φ_t| ÷ 1000."""
    thresholds = np.arange(0.0, 1.0 + step / 2, step)
    level = np.full(truth.shape, -1.0)
    for index in range(1, len(thresholds)):
        both = (prediction >= thresholds[index]) & (truth >= thresholds[index])
        dropped = (level == -1) & ~_largest_component(both)
        level[dropped] = thresholds[index - 1]
    level[level == -1] = 1.0

    def phi(alpha: Alpha) -> NDArray[np.float64]:
        distance = alpha - level
        return np.asarray(1.0 - distance * (distance >= 0.15))

    difference = np.abs(phi(prediction) - phi(truth))
    return float(difference[_region(truth, region)].sum() / 1000)


def matting_scores(prediction: Alpha, truth: Alpha, region: Region = None) -> MattingScores:
    """All four errors of `prediction` against `truth` over `region`."""
    prediction = np.asarray(prediction, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    if prediction.shape != truth.shape:
        raise ValueError(f"shapes differ: {prediction.shape} and {truth.shape}")
    return MattingScores(
        sad=sad_error(prediction, truth, region),
        mse=mse_error(prediction, truth, region),
        gradient=gradient_error(prediction, truth, region),
        connectivity=connectivity_error(prediction, truth, region),
    )
