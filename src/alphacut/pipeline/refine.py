"""Refine: between mask and compose, solve the alpha again where the model is unsure, and
where the user says so.

1. A trimap from the model's mask: confident foreground and background, each eroded by a
   band that grows with the image (1% of its diagonal, at least 3 pixels), and an unknown
   band between them.
2. User hints override it: keep (1), remove (0) and edge (unknown, for the matting to decide).
3. Alpha is solved only in the unknown band, on crops around it under a pixel budget (a
   larger crop is solved at a reduced scale) and a time budget (past it, the rest get the fast
   guided-filter matte). pymatting's closed-form solver is the default; its failures (an
   incomplete Cholesky that breaks down, CG that does not converge) fall back to the guided
   filter, never to an error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from .._extras import pymatting, pymatting_quietly
from ..options import RefineMethod
from .trimap import band_trimap, disc_grown, fractions, opencv

__all__ = [
    "Hints",
    "Refinement",
    "automatic_alpha",
    "band_radius",
    "guided_matte",
    "refine_alpha",
    "require_refinement",
]

log = logging.getLogger("alphacut.refine")


def require_refinement(method: RefineMethod, *, colours: bool = True) -> None:
    """Import now what refining with `method` needs: OpenCV always, pymatting for its solvers
    (every method but "guided") and, with `colours`, for the decontaminated edge."""
    opencv()
    if method != "guided" or colours:
        pymatting()


Float = NDArray[np.floating[Any]]  # float32 for whole frames, float64 inside the solves
Pixels = NDArray[np.uint8]
_CG_ITERATIONS = 300  # the closed-form system converges in ~60 here; a bad one stops early
Bools = NDArray[np.bool_]


@dataclass(frozen=True)
class Hints:
    """What the user painted, as boolean maps at the image's size."""

    keep: Bools
    remove: Bools
    edge: Bools

    @property
    def any(self) -> bool:
        return bool(self.keep.any() or self.remove.any() or self.edge.any())


@dataclass(frozen=True)
class Refinement:
    """How to refine. pixel_budget: unknown-band pixels one crop may solve at full scale
    (30 000 measured as fast as needed for a stroke on 1 MP in under a second, with the same
    SAD as 160 000 on the benchmark composites). seconds: the time budget for the matting
    solves of one image; crops left when it runs out get the guided filter."""

    method: RefineMethod = "auto"
    pixel_budget: int = 30000
    seconds: float = 2.0


def band_radius(width: int, height: int) -> int:
    """The unknown band's half-width: 1% of the image diagonal, at least 3 pixels."""
    return max(3, round(0.01 * float(np.hypot(width, height))))


def apply_hints(trimap: Float, hints: Hints, radius: int) -> Float:
    """The trimap with the hints painted in: keep is sure foreground, remove sure background,
    edge unknown; and a ring `radius` wide around a stroke that contradicts the trimap
    becomes unknown, so the new edge is matted rather than cut."""

    def ring(stroke: Bools) -> Bools:
        return disc_grown(stroke, radius) & ~stroke

    out: Float = trimap.copy()
    out[ring(hints.remove) & (trimap == 1.0)] = 0.5
    out[ring(hints.keep) & (trimap == 0.0)] = 0.5
    out[hints.edge] = 0.5
    out[hints.keep] = 1.0
    out[hints.remove] = 0.0
    return out


def near_strokes(hints: Hints, radius: int) -> Bools:
    """Where hints may change the result: the strokes and a band of 3 radii around them."""
    return disc_grown(hints.keep | hints.remove | hints.edge, 3 * radius)


def guided_matte(image: Pixels, guide_alpha: Float, radius: int, eps: float = 1e-4) -> Float:
    """He et al.'s guided filter of `guide_alpha` with the grey of `image` (8-bit RGB) as
    guide: edges follow the image's, in milliseconds, in float32 (a 24 MP frame's worth of
    float64 temporaries is gigabytes). The fast fallback, never the first choice."""
    cv2 = opencv()

    grey = image.mean(axis=2, dtype=np.float32) / np.float32(255.0)
    guide_alpha = guide_alpha.astype(np.float32, copy=False)
    size = (2 * radius + 1, 2 * radius + 1)

    def box(values: Float) -> Float:
        return np.asarray(cv2.boxFilter(values, -1, size, borderType=cv2.BORDER_REFLECT))

    mean_i, mean_p = box(grey), box(guide_alpha)
    cov = box(grey * guide_alpha) - mean_i * mean_p
    var = box(grey * grey) - mean_i * mean_i
    a = cov / (var + eps)
    b = mean_p - a * mean_i
    return np.asarray(np.clip(box(a) * grey + box(b), 0.0, 1.0))


def _solver(method: RefineMethod) -> Callable[[Float, Float], Float]:
    matting = pymatting()
    chosen = matting.estimate_alpha_knn if method == "knn" else matting.estimate_alpha_cf

    def solve(image: Float, trimap: Float) -> Float:
        with pymatting_quietly():
            alpha = np.asarray(
                chosen(image, trimap, cg_kwargs={"maxiter": _CG_ITERATIONS}), dtype=np.float64
            )
        if not np.isfinite(alpha).all():  # CG broke down (a degenerate crop)
            raise ArithmeticError("the matting solve did not converge")
        return alpha

    return solve


def _crops(unknown: Bools, radius: int) -> list[tuple[slice, slice]]:
    """Boxes around each connected piece of the unknown band, with a margin of known pixels
    for the solver to lean on."""
    cv2 = opencv()

    count, _, stats, _ = cv2.connectedComponentsWithStats(unknown.astype(np.uint8), connectivity=8)
    height, width = unknown.shape
    margin = 2 * radius
    boxes = []
    for label in range(1, count):
        x, y, w, h, _ = stats[label]
        boxes.append(
            (
                slice(max(0, y - margin), min(height, y + h + margin)),
                slice(max(0, x - margin), min(width, x + w + margin)),
            )
        )
    return boxes


def automatic_alpha(
    image: Image.Image, mask: Image.Image, refinement: Refinement | None = None
) -> Image.Image:
    """The refined alpha with no hints: the part of `refine_alpha` a server keeps per upload,
    so that each brush stroke pays only for the solve near it."""
    return refine_alpha(image, mask, None, refinement)


def refine_alpha(
    image: Image.Image,
    mask: Image.Image,
    hints: Hints | None = None,
    refinement: Refinement | None = None,
    automatic: Image.Image | None = None,
    radius: int | None = None,
) -> Image.Image:
    """The refined alpha (mode L) of `image` whose model mask is `mask`. `automatic`: the
    result without hints, when known already (see `automatic_alpha`). `radius`: the band's
    half-width, when `image` is a crop of a larger photo whose band it must keep."""
    refinement = refinement or Refinement()
    # Whole frames stay 8-bit or float32 (a 24 MP photo in float64 is 0.6 GB a copy); each
    # crop becomes float64 for the solver.
    rgb = np.asarray(image.convert("RGB"))
    levels = np.asarray(mask.convert("L"))
    radius = radius or band_radius(image.width, image.height)
    trimap = fractions(band_trimap(levels, radius))
    if automatic is not None:
        alpha: Float = np.asarray(automatic.convert("L"), dtype=np.float32) / 255.0
    else:
        alpha = _matte(rgb, trimap, levels.astype(np.float32) / 255.0, radius, refinement)
    if hints is not None and hints.any:
        # Only near the strokes does the result change: there the hinted trimap is solved
        # again (a stroke costs a local solve), everywhere else the automatic alpha stays.
        region = near_strokes(hints, radius)
        # Outside the region the automatic result is taken as known, for the solve to lean on.
        local = np.where(region, apply_hints(trimap, hints, radius), np.round(alpha))
        hinted = _matte(rgb, local, alpha, radius, refinement, within=region)
        alpha = np.where(region, hinted, alpha)
    return Image.fromarray(np.clip(np.rint(alpha * 255.0), 0, 255).astype(np.uint8), "L")


def _matte(
    rgb: Pixels,
    trimap: Float,
    start: Float,
    radius: int,
    refinement: Refinement,
    within: Bools | None = None,
) -> Float:
    """Alpha from `trimap`: its known values, and a solve of its unknown band (only inside
    `within` when given), starting from `start` there."""
    unknown = trimap == 0.5
    if within is not None:
        unknown &= within
    alpha: Float = np.where(trimap == 0.5, start, trimap)
    if unknown.any():
        alpha = _solve(rgb, trimap, alpha, unknown, radius, refinement)
    return alpha


def _solve(
    rgb: Pixels, trimap: Float, alpha: Float, unknown: Bools, radius: int, refinement: Refinement
) -> Float:
    method = "cf" if refinement.method == "auto" else refinement.method
    solve = None if method == "guided" else _solver(method)
    deadline = time.monotonic() + refinement.seconds
    out: Float = alpha.copy()
    for rows, cols in _crops(unknown, radius):
        crop_rgb = rgb[rows, cols]  # 8-bit until the solver's own (scaled) copy
        crop_trimap = trimap[rows, cols].astype(np.float64)
        crop_unknown = unknown[rows, cols]
        result = None
        if solve is not None and time.monotonic() < deadline:
            scale = min(1.0, float(np.sqrt(refinement.pixel_budget / max(crop_unknown.sum(), 1))))
            try:
                result = _solve_scaled(solve, crop_rgb, crop_trimap, scale)
            except Exception as exc:  # pymatting's solver failures: fall back, never crash
                log.info("matting solve failed on a %s crop (%s); guided filter instead",
                         crop_unknown.shape, exc)  # fmt: skip
        if result is None:
            result = guided_matte(crop_rgb, out[rows, cols], max(2, radius))
        region = out[rows, cols]
        region[crop_unknown] = result[crop_unknown]
        out[rows, cols] = region
    return out


def _solve_scaled(
    solve: Callable[[Float, Float], Float], rgb: Pixels, trimap: Float, scale: float
) -> Float:
    cv2 = opencv()

    if scale >= 0.999:
        colour = np.asarray(rgb, dtype=np.float64) / 255.0
        return np.asarray(np.clip(solve(colour, trimap), 0.0, 1.0), dtype=np.float64)
    height, width = trimap.shape
    size = (max(8, round(width * scale)), max(8, round(height * scale)))
    small_rgb = np.asarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), np.float64) / 255.0
    small_trimap = np.asarray(cv2.resize(trimap, size, interpolation=cv2.INTER_NEAREST), np.float64)
    small = np.clip(solve(small_rgb, small_trimap), 0.0, 1.0)
    resized = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.asarray(resized, dtype=np.float64)
