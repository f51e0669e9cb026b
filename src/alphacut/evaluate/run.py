"""Run a model over images and score its masks against ground truth or a reference model.

One image at a time: decode, predict, score, keep small previews for the report. A
problem with one image (unreadable, no ground truth) becomes an `ImageResult` with an
error, and the run goes on with the next image.
"""

from __future__ import annotations

import dataclasses
import heapq
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import astuple, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageChops

from ..errors import InputError
from ..imagefile import decode
from ..metrics import (
    Agreement,
    AgreementSummary,
    SODResult,
    agreement,
    require_sod_metrics,
    sod_result,
    summarise_agreement,
    summarise_sod,
)
from ..models import Session
from ..options import Limits
from ..pipeline import predict_mask
from .matting import MattingScores, matting_scores

__all__ = [
    "EvalReport",
    "ImageResult",
    "Previews",
    "Sample",
    "collect_images",
    "evaluate_ground_truth",
    "evaluate_reference",
]

log = logging.getLogger("alphacut.evaluate")

Mode = Literal["ground-truth", "reference"]
OnResult = Callable[["ImageResult"], None]

PREVIEW_SIZE = 160  # longest side of the report's thumbnails, in pixels
MAX_PREVIEWS = 100  # thumbnails are kept for this many images, the worst by MAE
DIFFERENCE_GAIN = 4  # the difference thumbnail is amplified so that drifts of a few levels show


@dataclass(frozen=True)
class Sample:
    """One input: `name` labels it in reports (its path below the folder or glob it came
    from); `problem` is set when the input matched no file."""

    name: str
    path: Path
    problem: str | None = None


@dataclass(frozen=True)
class Previews:
    """Thumbnails for the report, at most PREVIEW_SIZE pixels on their longest side.

    image: RGB. prediction, target (ground truth or reference mask): mode L. difference:
    |prediction - target| times DIFFERENCE_GAIN (clipped), so small drifts show, mode L.
    """

    image: Image.Image
    prediction: Image.Image
    target: Image.Image
    difference: Image.Image


@dataclass(frozen=True)
class ImageResult:
    """What one input scored, or why it could not be scored (`error`, `error_type`).

    target: the ground-truth file it was compared with (None against a reference model).
    """

    name: str
    source: Path
    scores: SODResult | Agreement | None = None
    target: Path | None = None
    matting: MattingScores | None = None  # against ground truth: the alpha-matting errors
    error: str | None = None
    error_type: str | None = None
    previews: Previews | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class EvalReport:
    """A whole run: per-image results in input order and the summary of those that scored.

    against: the ground-truth folder, or the reference model's name.
    summary: None when no image could be scored.
    """

    mode: Mode
    model: str
    model_path: Path
    against: str
    against_path: Path
    images: tuple[ImageResult, ...]
    summary: SODResult | AgreementSummary | None
    seconds: float
    matting: MattingScores | None = None  # the images' mean alpha-matting errors

    @property
    def failed(self) -> list[ImageResult]:
        return [r for r in self.images if not r.ok]


def collect_images(inputs: Sequence[str | Path], *, report_dir: Path) -> list[Sample]:
    """Expand files, folders (recursively, hidden names skipped) and globs into samples, in
    order; files inside `report_dir` are never read. An input that matches nothing becomes
    a sample with a `problem`."""
    from ..batch import plan_batch
    from ..options import RemoveOptions

    root = report_dir.resolve()
    plan = plan_batch([str(i) for i in inputs], root, RemoveOptions())
    samples = [
        Sample(str(t.destination.relative_to(root).parent / t.source.name), t.source)
        for t in plan.tasks
        if isinstance(t.source, Path) and isinstance(t.destination, Path)
    ]
    samples += [Sample(text, Path(text), reason) for text, reason in plan.unmatched]
    return samples


def evaluate_ground_truth(
    samples: Sequence[Sample | Path],
    session: Session,
    gt_dir: Path,
    *,
    limits: Limits | None = None,
    on_result: OnResult | None = None,
    max_previews: int = MAX_PREVIEWS,
) -> EvalReport:
    """Score `session`'s masks against the masks in `gt_dir`, matched by file stem (any image
    format; the alpha channel when it has one that is not fully opaque, else the grey levels).
    A prediction is resized (bilinear) to its ground truth's size when the two differ.

    `on_result` is called with each image's result as soon as it is scored. Thumbnails are
    kept for the `max_previews` images with the highest MAE; the others have none."""
    require_sod_metrics()
    if not gt_dir.is_dir():
        raise InputError("not a folder of ground-truth masks", source=str(gt_dir))
    by_stem: dict[str, list[Path]] = {}
    for path in sorted(gt_dir.iterdir()):
        if path.is_file() and not path.name.startswith("."):
            by_stem.setdefault(path.stem, []).append(path)

    def score(sample: Sample, image: Image.Image) -> ImageResult:
        found = by_stem.get(sample.path.stem, [])
        if len(found) != 1:
            names = ", ".join(p.name for p in found)
            reason = (
                f"several ground-truth files for {sample.path.stem!r} in {gt_dir}: {names}"
                if found
                else f"no ground-truth mask named {sample.path.stem}.* in {gt_dir}"
            )
            raise InputError(reason, source=sample.name)
        try:
            truth = _load_mask(found[0], limits)
        except InputError as exc:
            raise InputError(f"ground truth {found[0]}: {exc.reason}", source=sample.name) from exc
        prediction = predict_mask(session, image)
        if prediction.size != truth.size:
            log.info("%s: prediction resized to its ground truth's size", sample.name)
            prediction = prediction.resize(truth.size, Image.Resampling.BILINEAR)
        result = sod_result(np.asarray(prediction), np.asarray(truth))
        matte = matting_scores(np.asarray(prediction) / 255.0, np.asarray(truth) / 255.0)
        return ImageResult(
            sample.name,
            sample.path,
            result,
            target=found[0],
            matting=matte,
            previews=_previews(image, prediction, truth),
        )

    started = time.perf_counter()
    results = _run(samples, score, limits, on_result, max_previews)
    scored = [r.scores for r in results if isinstance(r.scores, SODResult)]
    mattes = [r.matting for r in results if r.matting is not None]
    return EvalReport(
        matting=MattingScores(*np.mean([astuple(m) for m in mattes], axis=0).tolist())
        if mattes
        else None,
        mode="ground-truth",
        model=session.model_name,
        model_path=session.path,
        against=str(gt_dir),
        against_path=gt_dir,
        images=tuple(results),
        summary=summarise_sod(scored) if scored else None,
        seconds=time.perf_counter() - started,
    )


def evaluate_reference(
    samples: Sequence[Sample | Path],
    session: Session,
    reference: Session,
    *,
    limits: Limits | None = None,
    on_result: OnResult | None = None,
    max_previews: int = MAX_PREVIEWS,
) -> EvalReport:
    """Compare `session`'s masks with `reference`'s on the same images (say an INT8 model
    with its FP32 original): IoU of the masks binarised at 128 and their MAE on 0..1.

    `on_result` and `max_previews` work as in `evaluate_ground_truth`."""

    def score(sample: Sample, image: Image.Image) -> ImageResult:
        prediction = predict_mask(session, image)
        target = predict_mask(reference, image)
        result = agreement(np.asarray(prediction), np.asarray(target))
        return ImageResult(
            sample.name, sample.path, result, previews=_previews(image, prediction, target)
        )

    started = time.perf_counter()
    results = _run(samples, score, limits, on_result, max_previews)
    scored = [(r.name, r.scores) for r in results if isinstance(r.scores, Agreement)]
    return EvalReport(
        mode="reference",
        model=session.model_name,
        model_path=session.path,
        against=reference.model_name,
        against_path=reference.path,
        images=tuple(results),
        summary=summarise_agreement(scored) if scored else None,
        seconds=time.perf_counter() - started,
    )


def _run(
    samples: Sequence[Sample | Path],
    score: Callable[[Sample, Image.Image], ImageResult],
    limits: Limits | None,
    on_result: OnResult | None,
    max_previews: int,
) -> list[ImageResult]:
    results: list[ImageResult] = []
    with_previews: list[tuple[float, int]] = []  # min-heap of (MAE, index in results)
    for item in samples:
        sample = item if isinstance(item, Sample) else Sample(item.name, item)
        try:
            if sample.problem:
                raise InputError(sample.problem, source=sample.name)
            result = score(sample, decode(sample.path, limits=limits).image)
        except InputError as exc:
            # A bad input (unreadable, no ground truth) is recorded and the run goes on;
            # model and runtime failures stop it.
            result = ImageResult(sample.name, sample.path, error=exc.reason, error_type=exc.kind)
        results.append(result)
        if on_result is not None:
            on_result(result)
        if result.previews is not None:
            # Bound memory and report size on large sets: drop the best image's thumbnails.
            heapq.heappush(with_previews, (_mae(result), len(results) - 1))
            if len(with_previews) > max_previews:
                _, best = heapq.heappop(with_previews)
                results[best] = dataclasses.replace(results[best], previews=None)
    return results


def _mae(result: ImageResult) -> float:
    if isinstance(result.scores, SODResult):
        return result.scores.scores.mae
    return result.scores.mae if isinstance(result.scores, Agreement) else 0.0


def _load_mask(path: Path, limits: Limits | None) -> Image.Image:
    """A ground-truth mask as 8-bit grey: its alpha channel when that is not fully opaque,
    else its grey levels."""
    image = decode(path, limits=limits).image
    if image.mode == "RGBA":
        alpha = image.getchannel("A")
        if alpha.getextrema() != (255, 255):
            return alpha
    return image.convert("L")


def _previews(image: Image.Image, prediction: Image.Image, target: Image.Image) -> Previews:
    def small(picture: Image.Image) -> Image.Image:
        copy = picture.copy()
        copy.thumbnail((PREVIEW_SIZE, PREVIEW_SIZE), Image.Resampling.BILINEAR)
        return copy

    photo = image
    if photo.mode == "RGBA":
        photo = Image.new("RGB", image.size, (255, 255, 255))
        photo.paste(image, mask=image.getchannel("A"))
    return Previews(
        image=small(photo.convert("RGB")),
        prediction=small(prediction),
        target=small(target),
        difference=small(
            ImageChops.difference(prediction, target).point(
                lambda value: min(255, value * DIFFERENCE_GAIN)
            )
        ),
    )
