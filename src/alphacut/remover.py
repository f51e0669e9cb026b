"""`Remover`: the typed, reusable way to remove backgrounds."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from .batch import BatchItem, Task, plan_batch, process_task, run_batch
from .imagefile import DecodedImage, ImageSource, decode, encode
from .models.backends import check_providers
from .models.policy import ModelPolicy
from .models.recurrent import RecurrentSession
from .models.registry import ModelSpec, get_spec, vitmatte_name
from .models.session import Session
from .models.store import ProgressCallback, ensure_model
from .options import Limits, RemoveOptions, RuntimeOptions
from .pipeline import Refiner, compose, post_process, predict_mask_batch, predict_masks
from .pipeline.compose import require_extras
from .pipeline.hints import hints_for, read_hints
from .pipeline.refine import (
    Hints,
    Refinement,
    automatic_alpha,
    band_radius,
    near_strokes,
    refine_alpha,
)
from .pipeline.vitmatte import vitmatte_alpha
from .pool.loading import load_session, model_policy

if TYPE_CHECKING:
    from .video import Smoothing, VideoOptions, VideoReport
    from .video.run import FrameMasks

__all__ = ["Remover", "RemoverRecipe", "extra_models"]


def extra_models(options: RemoveOptions) -> list[str]:
    """The registered models `options` load besides the main one."""
    if options.vitmatte and not options.only_mask:
        return [vitmatte_name(options.vitmatte_model)]
    return []


class Remover:
    """Holds one model session and default options; safe to share between threads.

    >>> remover = Remover("u2netp", options=RemoveOptions(bgcolor=(255, 255, 255, 255)))
    >>> remover.remove_file("photo.jpg", "photo.png")  # doctest: +SKIP

    model: a registered name, a `ModelSpec`, a ready `Session`, or None for the default
    (u2netp). model_path: a custom ONNX file. The model is loaded on first use, or by
    calling `load()`; execution providers that cannot run here fail at once
    (ProviderUnavailable), before any image. accept_licenses: model or licence names (e.g.
    "bria-rmbg") whose non-commercial or copyleft terms the user accepted; needed to download
    such a model. policy: download, licences and progress as one `ModelPolicy` (a server's),
    in place of those three arguments; it governs every model this remover loads, ViTMatte
    refiners included.
    """

    def __init__(
        self,
        model: str | ModelSpec | Session | None = None,
        *,
        model_path: str | Path | None = None,
        options: RemoveOptions | None = None,
        runtime: RuntimeOptions | None = None,
        limits: Limits | None = None,
        download: bool = True,
        progress: ProgressCallback | None = None,
        accept_licenses: Iterable[str] = (),
        policy: ModelPolicy | None = None,
    ) -> None:
        self.options = options or RemoveOptions()
        self.runtime = runtime or RuntimeOptions()
        self.limits = limits or Limits()
        if not isinstance(model, Session):
            check_providers(self.runtime)
        self._session = model if isinstance(model, Session) else None
        self._model = None if isinstance(model, Session) else model
        self._model_path = model_path
        self.policy = model_policy(policy, download, progress, accept_licenses)
        self._lock = threading.Lock()
        self._backgrounds: dict[Path, Image.Image] = {}
        self._refiners: dict[str, Session] = {}
        self._batched_session: Session | None = None

    @property
    def session(self) -> Session:
        """The loaded model session (loading it now if needed)."""
        return self.load()

    def load(self) -> Session:
        """Load the model now (downloading a registered model if allowed); returns the session.
        The extras the default options need are imported first, so a missing one is a
        MissingDependency before any download or load."""
        if self._session is None:
            require_extras(self.options)
            with self._lock:
                if self._session is None:
                    self._session = load_session(
                        self._model,
                        model_path=self._model_path,
                        runtime=self.runtime,
                        policy=self.policy,
                    )
        return self._session

    def decode(self, data: ImageSource, *, source: str | None = None) -> DecodedImage:
        """Decode an input under this remover's limits."""
        return decode(data, limits=self.limits, source=source)

    def process(
        self,
        decoded: DecodedImage,
        options: RemoveOptions | None = None,
        *,
        masks: list[Image.Image] | None = None,
        hints: Hints | None = None,
        automatic: list[Image.Image] | None = None,
    ) -> Image.Image:
        """Run the pipeline on a decoded image: the cutout (RGBA) or mask (L) as a PIL image.
        `masks`: the model's masks when the caller already has them (from a batched run, or
        smoothed over time), as `predict` gives them. `hints`: painted hints already read
        (else `options.hints`, a file or a folder of files named like the inputs).
        `automatic`: each mask's refinement without hints, when known (a server keeps it
        per upload, so a stroke only solves near itself)."""
        options = options or self.options
        image = decoded.image
        masks = self._post_processed(
            masks if masks is not None else self.predict(decoded, options), options
        )
        refiner = self._vitmatte(options) if options.vitmatte and not options.only_mask else None
        background = (
            self._background(options.background_image) if options.background_image else None
        )
        if options.refine is not None:
            if hints is None and options.hints is not None:
                found = hints_for(options.hints, decoded.source)
                hints = read_hints(found, image.size, self.limits) if found else None
            if options.refine_scope == "strokes":
                return self._refine_strokes(image, masks, options, hints, background)
            refinement = Refinement(method=options.refine)
            known = automatic if automatic is not None else [None] * len(masks)
            masks = [
                refine_alpha(image, m, hints, refinement, a)
                for m, a in zip(masks, known, strict=True)
            ]
        return compose(image, masks, options, background, refiner)

    def automatic_alphas(
        self, decoded: DecodedImage, masks: list[Image.Image], options: RemoveOptions
    ) -> list[Image.Image]:
        """Each of the model's `masks` refined without hints, as `process` would refine it
        (post-processed first): what a stroke's solve starts from. A server keeps them per
        upload and passes them back to `process` as `automatic`."""
        refinement = Refinement(method=options.refine or "auto")
        return [
            automatic_alpha(decoded.image, m, refinement)
            for m in self._post_processed(masks, options)
        ]

    @staticmethod
    def _post_processed(masks: list[Image.Image], options: RemoveOptions) -> list[Image.Image]:
        return [post_process(m) for m in masks] if options.post_process_mask else masks

    def _refine_strokes(
        self,
        image: Image.Image,
        masks: list[Image.Image],
        options: RemoveOptions,
        hints: Hints | None,
        background: Image.Image | None,
    ) -> Image.Image:
        """refine_scope="strokes": the plain cut, with only the box around the strokes cut
        again from the hints (alpha and colours), so a stroke costs what it covers."""
        untouched = compose(image, masks, options.replace(refine=None), background)
        if hints is None or not hints.any:
            return untouched
        radius = band_radius(image.width, image.height)
        near = near_strokes(hints, radius)
        rows, cols = np.nonzero(near)
        margin = 2 * radius
        box = (
            max(0, int(cols.min()) - margin),
            max(0, int(rows.min()) - margin),
            min(image.width, int(cols.max()) + 1 + margin),
            min(image.height, int(rows.max()) + 1 + margin),
        )
        if len(masks) != 1 or background is not None:
            box = (0, 0, image.width, image.height)  # stacked masks or a fitted backdrop: whole
        window = (slice(box[1], box[3]), slice(box[0], box[2]))
        local = Hints(hints.keep[window], hints.remove[window], hints.edge[window])
        crop = image.crop(box)
        refined = [
            refine_alpha(
                crop, m.crop(box), local, Refinement(method=options.refine or "auto"),
                automatic=m.crop(box), radius=radius,
            )
            for m in masks
        ]  # fmt: skip
        patch = compose(crop, refined, options, background)
        region = Image.fromarray(near[window].astype(np.uint8) * 255)
        untouched.paste(Image.composite(patch, untouched.crop(box), region), box[:2])
        return untouched

    def predict(
        self, decoded: DecodedImage, options: RemoveOptions | None = None
    ) -> list[Image.Image]:
        """The model's masks for a decoded image (8-bit L at its size), before post-processing,
        matting and compositing: one for most models, one per category for clothes."""
        return predict_masks(self.session, decoded.image, options or self.options)

    def frame_masks(self, batch: int = 1) -> FrameMasks:
        """How one video's frames get their masks. A recurrent model sees them one at a time
        in order (its state runs through the video); with `batch` above 1, a saliency model
        runs that many frames per call through a dynamic-batch copy of itself (identical
        masks; it pays on GPUs, not on CPUs)."""
        from .video.run import FrameMasks

        session = self.session
        if isinstance(session, RecurrentSession):
            stream = session.stream()
            return FrameMasks(lambda group, _: [[stream.step(d.image)] for d in group], 1, True)
        self.runtime.check_batch(batch, "--batch")
        if batch > 1 and session.spec.kind == "saliency":
            batched = self._batched()

            def predict(group: list[DecodedImage], _: RemoveOptions) -> list[list[Image.Image]]:
                return [[m] for m in predict_mask_batch(batched, [d.image for d in group])]

            return FrameMasks(predict, batch, False)
        return FrameMasks(
            lambda group, options: [self.predict(d, options) for d in group], 1, False
        )

    def _batched(self) -> Session:
        from .graphs.dynamic_batch import batched_session

        with self._lock:
            if self._batched_session is None:
                self._batched_session = batched_session(self.session, self.runtime)
            return self._batched_session

    def _vitmatte(self, options: RemoveOptions) -> Refiner:
        name = vitmatte_name(options.vitmatte_model)
        with self._lock:
            session = self._refiners.get(name)
            if session is None:
                spec = get_spec(name)
                path = self.policy.model_file(spec)
                runtime = dataclasses.replace(self.runtime, reuse_optimized_model=False)
                session = self._refiners[name] = Session(spec, path, runtime)

        def refine(image: Image.Image, mask: Image.Image) -> Image.Image:
            return vitmatte_alpha(session, image, mask, options)

        return refine

    def remove_image(self, data: ImageSource, options: RemoveOptions | None = None) -> Image.Image:
        """Remove the background of any supported input; returns a PIL image."""
        return self.process(self.decode(data), options)

    def remove_bytes(self, data: ImageSource, options: RemoveOptions | None = None) -> bytes:
        """Remove the background and encode the result in `options.output_format`."""
        options = options or self.options
        decoded = self.decode(data)
        return encode(self.process(decoded, options), options, decoded.icc_profile)

    def remove_file(
        self, source: str | Path, destination: str | Path, options: RemoveOptions | None = None
    ) -> Path:
        """Read `source`, write the result to `destination` atomically; returns the destination."""
        destination = Path(destination)
        process_task(self, Task(Path(source), destination), options or self.options)
        return destination

    def remove_video(
        self,
        source: str | Path,
        destination: str | Path,
        options: RemoveOptions | None = None,
        video: VideoOptions | None = None,
        *,
        jobs: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> VideoReport:
        """Cut out every frame of a video into `destination`: .webm (VP9 with alpha), .mov
        (ProRes 4444 with alpha), .mp4 (on a background colour or image) or a folder of PNG
        frames, keeping the frame count, timestamps and the sound, with the masks smoothed
        over time (see `VideoOptions`). Written atomically; returns a report. `jobs` frames
        are in the model at once; give this Remover `RuntimeOptions(intra_op_threads=1)`
        (or cores ÷ jobs) so that they share the cores rather than fight over them."""
        from .video import remove_video

        self.load()
        return remove_video(
            self,
            source,
            destination,
            options or self.options,
            video,
            limits=self.limits,
            jobs=jobs,
            progress=progress,
        )

    def remove_frames(
        self,
        frames: Iterable[Image.Image],
        options: RemoveOptions | None = None,
        *,
        smoothing: Smoothing | None = None,
        batch: int = 1,
    ) -> Iterator[Image.Image]:
        """Results for frames you decode yourself, in order, several in flight at once;
        with `smoothing`, the masks are steadied over time (results then lag the frames
        fed in by `smoothing.radius`); `batch`: frames per model run (see `frame_masks`)."""
        from .video import remove_frames

        self.load()
        return remove_frames(
            self, frames, options or self.options, smoothing=smoothing, batch=batch
        )

    def remove_many(
        self,
        inputs: Iterable[str | Path],
        output_dir: str | Path,
        *,
        overwrite: bool = False,
        jobs: int | None = None,
        options: RemoveOptions | None = None,
    ) -> Iterator[BatchItem]:
        """Process files and folders into `output_dir`, yielding one `BatchItem` per input as it
        finishes. Failures are reported in the items, never raised, so one bad file cannot stop
        the rest; existing outputs are skipped unless `overwrite`."""
        plan = plan_batch([str(i) for i in inputs], Path(output_dir), options or self.options)
        yield from run_batch(self, plan, options or self.options, overwrite=overwrite, jobs=jobs)

    def _background(self, path: Path) -> Image.Image:
        with self._lock:
            cached = self._backgrounds.get(path)
        if cached is None:
            cached = self.decode(path).image
            with self._lock:
                self._backgrounds = {path: cached}  # keep only the latest: options rarely vary
        return cached


@dataclass(frozen=True)
class RemoverRecipe:
    """How to build a `Remover`: what a command's flags chose, and what a Ray actor needs to
    build the driver's remover in its own process (it pickles small; nothing loads yet)."""

    model: str | None = None
    model_path: str | Path | None = None
    options: RemoveOptions = field(default_factory=RemoveOptions)
    runtime: RuntimeOptions = field(default_factory=RuntimeOptions)
    limits: Limits = field(default_factory=Limits)
    accept_licenses: tuple[str, ...] = ()

    def build(self, threads: int | None = None) -> Remover:
        """The Remover; `threads`: the CPUs this process was given (an actor's share)."""
        runtime = self.runtime
        if threads is not None:
            # Several actors share each node: OpenVINO must not pin them all onto core 0.
            runtime = dataclasses.replace(runtime, intra_op_threads=threads, pin_threads=False)
        return Remover(
            self.model,
            model_path=self.model_path,
            options=self.options,
            runtime=runtime,
            limits=self.limits,
            accept_licenses=self.accept_licenses,
        )

    def make_ready(self) -> None:
        """Fetch and verify a registered model once, on the driver, so a missing licence or
        a failed download is one clear error rather than one per actor."""
        if self.model_path is None:
            from .models.registry import DEFAULT_MODEL

            spec = get_spec(self.model or DEFAULT_MODEL)
            if not spec.is_custom:
                ensure_model(spec, accept_licenses=self.accept_licenses)
