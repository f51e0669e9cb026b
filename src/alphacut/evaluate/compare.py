"""Models measured against each other on a truth set: the matting errors against the exact
alpha, IoU and boundary F, speed at 1 and 2 threads, peak memory, size, load time, licence
and source.

Each variant (a model, alone or with --fast or --refine) runs in a process of its own, so its
peak memory is its own and a crash or a missing model costs that row only.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import resource
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import AlphacutError, OptionsError
from ..imagefile import decode
from ..metrics import mask_iou
from ..options import REFINE_METHODS, RefineMethod
from .boundary import boundary_f_measure
from .matting import matting_scores
from .truth_set import TruthSample, load_truth_set

__all__ = ["ModelResult", "SampleScore", "Variant", "compare_models", "parse_variant"]

THUMBNAIL = 160
AGREEMENT_SIDE = 512


@dataclass(frozen=True)
class Variant:
    """A model as compared: with its INT8 copy (`fast`) and an automatic refinement."""

    model: str
    fast: bool = False
    refine: RefineMethod | None = None

    @property
    def label(self) -> str:
        words = [self.model] + (["--fast"] if self.fast else [])
        return " ".join(words + ([f"--refine {self.refine}"] if self.refine else []))


def parse_variant(text: str) -> Variant:
    """'u2net', 'u2net --fast', 'u2net --refine auto' as a Variant."""
    words = shlex.split(text)
    if not words or words[0].startswith("-"):
        raise OptionsError(f"a compared model starts with its name, not {text!r}")
    model, fast, refine = words[0], False, None
    rest = iter(words[1:])
    for word in rest:
        if word == "--fast":
            fast = True
        elif word == "--refine":
            method = next(rest, "auto")
            refine = next((m for m in REFINE_METHODS if m == method), None)
            if refine is None:
                raise OptionsError(f"{text!r}: --refine is one of {', '.join(REFINE_METHODS)}")
        else:
            raise OptionsError(f"{text!r}: only --fast and --refine MODE may follow a model")
    return Variant(model, fast, refine)


@dataclass(frozen=True)
class SampleScore:
    name: str
    held_out: bool
    sad: float
    mse: float
    gradient: float
    connectivity: float
    iou: float
    boundary_f: float


@dataclass(frozen=True)
class ModelResult:
    """One variant's row. seconds: per image at each thread count (remove_image on a decoded
    composite: prepare, model, mask, refine, compose). Errors are means over all samples;
    `held_out` gives the same means over the held-out part only."""

    variant: Variant
    license: str = ""
    source: str = ""
    packaged: bool = False  # the file comes out of a package registry (PyPI, npm)
    size_mb: float = 0.0
    load_s: float = 0.0
    seconds: dict[int, float] = field(default_factory=dict)
    peak_rss_mb: float = 0.0
    scores: tuple[SampleScore, ...] = ()
    error: str | None = None
    #: Real photos' masks at alpha 0.5 (longest side ≤ AGREEMENT_SIDE), for agreement.
    photo_masks: dict[str, np.ndarray] = field(default_factory=dict)

    def mean(self, metric: str, *, held_out: bool = False) -> float:
        chosen = [s for s in self.scores if s.held_out or not held_out]
        return float(np.mean([getattr(s, metric) for s in chosen])) if chosen else float("nan")


def compare_models(
    variants: Sequence[Variant],
    truth_folder: Path,
    previews: Path,
    *,
    threads: Sequence[int] = (1, 2),
    timed_images: int = 4,
    photos: Sequence[Path] = (),
    on_result: Callable[[ModelResult], None] | None = None,
) -> list[ModelResult]:
    """Measure every variant on the truth set in `truth_folder`; thumbnails of each cutout go
    to `previews/<n>/` (n: the variant's position). `photos`: real photos on which the
    variants' masks are kept, to measure how far they agree with each other."""
    results = []
    context = multiprocessing.get_context("spawn")
    for position, variant in enumerate(variants):
        folder = previews / str(position)
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as worker:
            job = worker.submit(
                _measure, variant, truth_folder, folder, tuple(threads), timed_images, tuple(photos)
            )
            try:
                result = job.result()
            except concurrent.futures.process.BrokenProcessPool as exc:
                result = ModelResult(variant, error=f"its process died: {exc}")
            except Exception as exc:  # a runtime's own error: this row fails, the rest go on
                result = ModelResult(variant, error=f"{type(exc).__name__}: {exc}")
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def _measure(
    variant: Variant,
    truth_folder: Path,
    previews: Path,
    threads: tuple[int, ...],
    timed: int,
    photos: tuple[Path, ...],
) -> ModelResult:
    """In a process of its own: load, time and score one variant."""
    from ..models import find_model, get_spec
    from ..options import RemoveOptions, RuntimeOptions
    from ..remover import Remover

    try:
        spec = get_spec(variant.model)
        truth = load_truth_set(truth_folder)
        options = RemoveOptions(refine=variant.refine)
        started = time.perf_counter()
        removers = {
            n: Remover(
                variant.model,
                runtime=RuntimeOptions(intra_op_threads=n, fast=variant.fast),
                download=False,
            )
            for n in threads
        }
        for remover in removers.values():
            remover.session  # loads now, so load_s is the load  # noqa: B018
        load_s = (time.perf_counter() - started) / len(threads)
        path = find_model(spec)
        images = {s.name: truth.image(s) for s in truth.samples}
        seconds = {}
        for n, remover in removers.items():
            timed_samples = truth.samples[:timed]
            remover.remove_image(images[timed_samples[0].name], options)  # warm up
            best = float("inf")
            for _ in range(2):
                begun = time.perf_counter()
                for sample in timed_samples:
                    remover.remove_image(images[sample.name], options)
                best = min(best, (time.perf_counter() - begun) / len(timed_samples))
            seconds[n] = best
        scorer = removers[max(threads)]
        scores = []
        previews.mkdir(parents=True, exist_ok=True)
        for sample in truth.samples:
            cutout = scorer.remove_image(images[sample.name], options)
            scores.append(_score(sample, np.asarray(cutout.getchannel("A")), truth.alpha(sample)))
            thumbnail(cutout, previews / f"{sample.name}.png")
        photo_masks = {}
        for photo in photos:
            small = decode(photo).image.convert("RGB")
            small.thumbnail((AGREEMENT_SIDE, AGREEMENT_SIDE))
            cutout = scorer.remove_image(small, options)
            photo_masks[photo.name] = np.asarray(cutout.getchannel("A")) >= 128
    except (AlphacutError, OSError, ValueError) as exc:
        return ModelResult(variant, error=f"{type(exc).__name__}: {exc}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return ModelResult(
        variant,
        license=spec.license,
        source=spec.source,
        packaged=spec.package is not None,
        size_mb=(path.stat().st_size / 1e6) if path else spec.size_mb,
        load_s=load_s,
        seconds=seconds,
        peak_rss_mb=peak,
        scores=tuple(scores),
        photo_masks=photo_masks,
    )


def _score(sample: TruthSample, predicted: np.ndarray, truth: np.ndarray) -> SampleScore:
    alpha = predicted.astype(np.float32) / 255.0
    errors = matting_scores(alpha, truth)
    mine, theirs = alpha >= 0.5, truth >= 0.5
    iou = mask_iou(mine, theirs)
    return SampleScore(
        sample.name,
        sample.held_out,
        errors.sad,
        errors.mse,
        errors.gradient,
        errors.connectivity,
        iou,
        boundary_f_measure(mine, theirs),
    )


def thumbnail(picture: Image.Image, path: Path, kind: str = "PNG") -> None:
    """`picture` shrunk to fit the report's thumbnails, saved to `path`."""
    small = picture.copy()
    small.thumbnail((THUMBNAIL, THUMBNAIL))
    small.save(path, kind)
