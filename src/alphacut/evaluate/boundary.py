"""The boundary F-measure (Perazzi et al. 2016, as the DAVIS benchmark computes it): how well
two binary masks' outlines match, each outline pixel counting as matched when the other
outline passes within a tolerance of 0.8% of the image diagonal."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["boundary_f_measure"]


def _outline(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """The mask's pixels that touch a pixel outside it (4-neighbours; the frame is outside)."""
    padded = np.pad(mask, 1, constant_values=False)
    inner = (
        padded[1:-1, 1:-1]
        & padded[:-2, 1:-1]
        & padded[2:, 1:-1]
        & padded[1:-1, :-2]
        & padded[1:-1, 2:]
    )
    return np.asarray(mask & ~inner)


def _near(outline: NDArray[np.bool_], radius: float) -> NDArray[np.bool_]:
    from scipy.ndimage import distance_transform_edt

    if not outline.any():
        return np.zeros(outline.shape, bool)
    return np.asarray(distance_transform_edt(~outline) <= radius)


def boundary_f_measure(
    prediction: NDArray[np.bool_], truth: NDArray[np.bool_], tolerance: float = 0.008
) -> float:
    """F = 2PR / (P + R) of the outlines' precision and recall; 1.0 when both masks are
    empty, 0.0 when only one is."""
    radius = max(1.0, float(np.ceil(tolerance * np.hypot(*truth.shape))))
    mine, theirs = _outline(prediction), _outline(truth)
    if not mine.any() and not theirs.any():
        return 1.0
    if not mine.any() or not theirs.any():
        return 0.0
    precision = float((mine & _near(theirs, radius)).sum() / mine.sum())
    recall = float((theirs & _near(mine, radius)).sum() / theirs.sum())
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
