"""The numbers: salient-object metrics against ground truth, and agreement between two models.

Against ground truth, every score comes from pysodmetrics (the implementation that salient
object detection papers report), used the way the field uses it: the prediction is
min-max stretched to 0..1 and the ground truth binarised at > 128 before scoring, and a
set of images is scored as in pysodmetrics' own `get_results` (means over images; the
F and E curves are averaged over images before their max or mean is taken).

Against a reference model, the two 8-bit masks are compared directly, without stretching.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._extras import require

__all__ = [
    "METRICS",
    "Agreement",
    "AgreementSummary",
    "MetricInfo",
    "SODResult",
    "SODScores",
    "agreement",
    "mask_iou",
    "require_sod_metrics",
    "sod_result",
    "summarise_agreement",
    "summarise_sod",
]

_F_BETA_SQUARED = 0.3  # β² of the F-measure, as in every SOD benchmark


@dataclass(frozen=True)
class MetricInfo:
    """How one metric is labelled and read: `lower_is_better` says which way is good."""

    label: str
    description: str
    lower_is_better: bool = False


#: The one table of metric names, labels and definitions: the CLI, report.html and
#: metrics.json all read it.
METRICS: dict[str, MetricInfo] = {
    "mae": MetricInfo(
        "MAE",
        "mean absolute error between the masks, 0..1 (against ground truth: the prediction "
        "min-max stretched, the ground truth binarised at > 128, as pysodmetrics does)",
        lower_is_better=True,
    ),
    "max_f": MetricInfo(
        "max F-measure",
        "F-measure with β² = 0.3 at the best of 256 thresholds; for a set of images, the "
        "maximum of the F curve averaged over images",
    ),
    "s_measure": MetricInfo("S-measure", "structure measure (α = 0.5), mean over images"),
    "mean_e": MetricInfo(
        "mean E-measure",
        "enhanced-alignment measure averaged over 256 thresholds (and over images); "
        "may exceed 1 by about 1/(pixels), from pysodmetrics' normalisation",
    ),
    "max_e": MetricInfo(
        "max E-measure",
        "enhanced-alignment measure at the best of 256 thresholds; for a set of images, "
        "the maximum of the E curve averaged over images; may exceed 1 by about 1/(pixels)",
    ),
    "sad": MetricInfo(
        "SAD",
        "alpha matting: sum of absolute differences against the ground truth as a matte "
        "(0..1), ÷ 1000, over the whole image (Composition-1k's definition)",
        lower_is_better=True,
    ),
    "mse": MetricInfo(
        "MSE", "alpha matting: mean squared difference against the matte", lower_is_better=True
    ),
    "gradient": MetricInfo(
        "gradient error",
        "alpha matting: squared difference of gradient magnitudes (Gaussian derivatives, "
        "σ = 1.4), summed, ÷ 1000",
        lower_is_better=True,
    ),
    "connectivity": MetricInfo(
        "connectivity error",
        "alpha matting: difference in how each pixel stays connected to the matte's main "
        "body (thresholds in steps of 0.1), summed, ÷ 1000",
        lower_is_better=True,
    ),
    "iou": MetricInfo(
        "IoU",
        "intersection over union of the two masks binarised at alpha >= 128 "
        "(1.0 when both are empty)",
    ),
}


@dataclass(frozen=True)
class SODScores:
    """Salient-object scores of one image or of a set; all on a 0..1 scale.

    mae: lower is better. max_f, s_measure, mean_e, max_e: higher is better.
    """

    mae: float
    max_f: float
    s_measure: float
    mean_e: float
    max_e: float


@dataclass(frozen=True)
class SODResult:
    """Scores plus the per-threshold curves a set's max F and E-measures are taken from.

    f_curve and e_curve hold 256 values, one per binarisation threshold.
    """

    scores: SODScores
    f_curve: np.ndarray = field(repr=False, compare=False)
    e_curve: np.ndarray = field(repr=False, compare=False)


@dataclass(frozen=True)
class Agreement:
    """How closely a prediction matches a reference model's mask.

    iou: of the masks binarised at alpha >= 128, 1.0 when both are empty (higher is better).
    mae: mean absolute difference of the 8-bit masks on a 0..1 scale (lower is better).
    """

    iou: float
    mae: float


@dataclass(frozen=True)
class AgreementSummary:
    """Agreement over a set of images: means, and the worst image for each metric."""

    mean_iou: float
    worst_iou: float
    worst_iou_image: str
    mean_mae: float
    worst_mae: float
    worst_mae_image: str


def require_sod_metrics() -> Any:
    """The pysodmetrics module, or MissingDependency naming the extra that installs it."""
    return require("py_sod_metrics", "scoring against ground truth")


def sod_result(prediction: np.ndarray, ground_truth: np.ndarray) -> SODResult:
    """Score one 8-bit prediction against its 8-bit ground truth (same HxW shape)."""
    sod = require_sod_metrics()
    mae, s_measure, e_measure = sod.MAE(), sod.Smeasure(), sod.Emeasure()
    f_measure = sod.FmeasureV2(
        metric_handlers={
            "fm": sod.FmeasureHandler(with_dynamic=True, with_adaptive=False, beta=_F_BETA_SQUARED)
        }
    )
    for metric in (mae, f_measure, s_measure, e_measure):
        metric.step(pred=prediction, gt=ground_truth)
    f_curve = np.asarray(f_measure.get_results()["fm"]["dynamic"], dtype=np.float64)
    e_curve = np.asarray(e_measure.get_results()["em"]["curve"], dtype=np.float64)
    return _sod_from(
        mae=float(mae.get_results()["mae"]),
        s_measure=float(s_measure.get_results()["sm"]),
        f_curve=f_curve,
        e_curve=e_curve,
    )


def summarise_sod(results: Sequence[SODResult]) -> SODResult:
    """Score a set of images from their per-image results, as pysodmetrics' `get_results`
    does after stepping through them all: means of MAE and S-measure, and the max (or
    mean) of the F and E curves averaged over images. Needs at least one result."""
    if not results:
        raise ValueError("no results to summarise")
    return _sod_from(
        mae=float(np.mean([r.scores.mae for r in results])),
        s_measure=float(np.mean([r.scores.s_measure for r in results])),
        f_curve=np.mean([r.f_curve for r in results], axis=0),
        e_curve=np.mean([r.e_curve for r in results], axis=0),
    )


def _sod_from(
    *, mae: float, s_measure: float, f_curve: np.ndarray, e_curve: np.ndarray
) -> SODResult:
    scores = SODScores(
        mae=mae,
        max_f=float(f_curve.max()),
        s_measure=s_measure,
        mean_e=float(e_curve.mean()),
        max_e=float(e_curve.max()),
    )
    return SODResult(scores, f_curve, e_curve)


def mask_iou(ours: np.ndarray, theirs: np.ndarray) -> float:
    """Intersection over union of two boolean masks; 1.0 when both are empty."""
    union = int(np.count_nonzero(ours | theirs))
    return 1.0 if union == 0 else int(np.count_nonzero(ours & theirs)) / union


def agreement(prediction: np.ndarray, reference: np.ndarray) -> Agreement:
    """Compare two 8-bit masks of the same shape."""
    if prediction.shape != reference.shape:
        raise ValueError(f"mask shapes differ: {prediction.shape} and {reference.shape}")
    iou = mask_iou(prediction >= 128, reference >= 128)
    difference = np.abs(prediction.astype(np.int16) - reference.astype(np.int16))
    return Agreement(iou=iou, mae=float(difference.mean()) / 255.0)


def summarise_agreement(named: Sequence[tuple[str, Agreement]]) -> AgreementSummary:
    """Means over the images, and the image with the lowest IoU and the highest MAE."""
    if not named:
        raise ValueError("no results to summarise")
    worst_iou = min(named, key=lambda item: item[1].iou)
    worst_mae = max(named, key=lambda item: item[1].mae)
    return AgreementSummary(
        mean_iou=float(np.mean([a.iou for _, a in named])),
        worst_iou=worst_iou[1].iou,
        worst_iou_image=worst_iou[0],
        mean_mae=float(np.mean([a.mae for _, a in named])),
        worst_mae=worst_mae[1].mae,
        worst_mae_image=worst_mae[0],
    )
