"""The four alpha-matting errors against cases worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from alphacut.evaluate.matting import (
    connectivity_error,
    gradient_error,
    matting_scores,
    mse_error,
    sad_error,
)


def test_sad_and_mse_by_hand() -> None:
    truth = np.zeros((2, 3))
    guess = np.array([[0.5, 0, 0], [0, 0.25, 1]])
    assert sad_error(guess, truth) == pytest.approx(1.75 / 1000)
    assert mse_error(guess, truth) == pytest.approx((0.25 + 0.0625 + 1) / 6)
    region = np.array([[True, False, False], [False, False, False]])
    assert sad_error(guess, truth, region) == pytest.approx(0.5 / 1000)
    assert mse_error(guess, truth, region) == pytest.approx(0.25)


def test_gradient_error_is_zero_for_the_truth_and_grows_with_edges() -> None:
    truth = np.zeros((20, 20))
    truth[:, 10:] = 1
    assert gradient_error(truth, truth) == 0
    flat = np.full((20, 20), 0.5)
    sharp, blurred = truth.copy(), np.clip((np.arange(20) - 5) / 10, 0, 1)[None, :].repeat(20, 0)
    assert gradient_error(flat, truth) > gradient_error(blurred, truth) > 0
    assert gradient_error(sharp, truth) == 0
    # A constant offset has no gradient: the error ignores it, unlike SAD.
    assert gradient_error(np.clip(truth + 0.1, 0, 1.1), truth) == pytest.approx(0, abs=1e-12)


def test_connectivity_error_of_one_stray_pixel() -> None:
    """Truth is empty; the prediction has one pixel at 1. At every threshold no pixel is in
    both mattes, so every pixel drops out at the first (level 0): the stray pixel's
    φ = 1 − 1 = 0 against the truth's 1; everywhere else both are 1. Error: 1 ÷ 1000."""
    truth = np.zeros((5, 5))
    guess = truth.copy()
    guess[2, 2] = 1
    assert connectivity_error(guess, truth) == pytest.approx(0.001)
    assert connectivity_error(truth, truth) == 0


def test_connectivity_of_pixels_the_truth_lacks_and_of_a_faded_body() -> None:
    """A pixel only the prediction has is never in the region both mattes share, joined to
    the body or not: each costs 1. A body whose alpha fades to 0.5 everywhere stays one
    region up to 0.5: level 0.5, so φ = 1 for both (0.5 − 0.5 = 0 and 1 − 0.5 ≥ 0.15 gives
    φ_t = 0.5): 36 pixels × 0.5."""
    truth = np.zeros((10, 10))
    truth[2:8, 2:8] = 1
    attached = truth.copy()
    attached[2:8, 8] = 1  # a column grown onto the body
    detached = truth.copy()
    detached[0, 0] = 1  # an island apart from the body
    assert connectivity_error(detached, truth) == pytest.approx(0.001)
    assert connectivity_error(attached, truth) == pytest.approx(0.006)
    faded = truth * 0.5
    assert connectivity_error(faded, truth) == pytest.approx(36 * 0.5 / 1000)
    scores = matting_scores(detached, truth)
    assert scores.sad == pytest.approx(0.001)
    assert scores.connectivity == pytest.approx(0.001)
    with pytest.raises(ValueError, match="shapes differ"):
        matting_scores(truth[:5], truth)
