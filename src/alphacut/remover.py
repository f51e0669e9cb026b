"""`Remover`: the typed, reusable way to remove backgrounds."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from .batch import BatchItem, Task, plan_batch, process_task, run_batch
from .errors import OptionsError
from .imagefile import DecodedImage, ImageSource, decode, encode
from .models.policy import ModelPolicy
from .models.registry import ModelSpec
from .models.session import Session
from .models.store import ProgressCallback
from .options import Limits, RemoveOptions, RuntimeOptions
from .pipeline import predict_masks
from .pipeline.edge import require_edge
from .pipeline.refine import Hints
from .pipeline.runner import Given, admit, finish
from .pool import ModelPool, model_policy

if TYPE_CHECKING:
    from .video import Smoothing, VideoOptions, VideoReport

__all__ = ["Remover"]


class Remover:
    """Holds one model and default options over a `ModelPool`; safe to share between threads.

    >>> remover = Remover("u2netp", options=RemoveOptions(bgcolor=(255, 255, 255, 255)))
    >>> remover.remove_file("photo.jpg", "photo.png")  # doctest: +SKIP

    model: a registered name, a `ModelSpec`, a ready `Session`, or None for the default
    (u2netp). model_path: a custom ONNX file. The model is loaded on first use, or by
    calling `load()`; execution providers that cannot run here fail at once
    (ProviderUnavailable), before any image. accept_licenses: model or licence names (e.g.
    "bria-rmbg") whose non-commercial or copyleft terms the user accepted; needed to download
    such a model. policy: download, licences and progress as one `ModelPolicy` (a server's),
    in place of those three arguments; it governs every model this remover loads, ViTMatte
    refiners included. pool: the `ModelPool` to load from and share (a server's), in place of
    `runtime` and the policy.
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
        pool: ModelPool | None = None,
    ) -> None:
        self.options = options or RemoveOptions()
        self.limits = limits or Limits()
        accepted = tuple(accept_licenses)
        if pool is not None and (runtime or policy or progress or accepted or not download):
            raise OptionsError("pass either pool= or runtime= and the download policy")
        if pool is None:
            policy = model_policy(policy, download, progress, accepted)
            if runtime is None and isinstance(model, Session):
                runtime = model.runtime
            pool = ModelPool(runtime, policy)
        self.pool = pool
        self._session = model if isinstance(model, Session) else None
        self._model = None if isinstance(model, Session) else model
        self._model_path = model_path

    @property
    def runtime(self) -> RuntimeOptions:
        return self.pool.runtime

    @property
    def policy(self) -> ModelPolicy:
        return self.pool.policy

    @property
    def session(self) -> Session:
        """The loaded model session (loading it now if needed)."""
        return self.load()

    def load(self) -> Session:
        """Load the model now (downloading a registered model if allowed); returns the session.
        The extras the default options need are imported first, so a missing one is a
        MissingDependency before any download or load."""
        if self._session is None:
            require_edge(self.options)
            self._session = self.pool.session(self._model, model_path=self._model_path)
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
        `automatic`: each mask's refinement without hints, when known (see `finish`)."""
        options = options or self.options
        if masks is None:
            admit(decoded.image.size, options, self.limits, decoded.source)  # before the model
            masks = self.predict(decoded, options)
        path = options.background_image
        given = Given(
            refiner=self.pool.refiner(options),
            background=self.pool.background(path, self.limits) if path else None,
            hints=hints,
            automatic=automatic,
            limits=self.limits,
        )
        return finish(decoded, masks, options, given)

    def predict(
        self, decoded: DecodedImage, options: RemoveOptions | None = None
    ) -> list[Image.Image]:
        """The model's masks for a decoded image (8-bit L at its size), before post-processing,
        matting and compositing: one for most models, one per category for clothes."""
        return predict_masks(self.session, decoded.image, options or self.options)

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
        fed in by `smoothing.radius`); `batch`: frames per model run (see
        `alphacut.video.frame_masks`)."""
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
