"""Video through the image pipeline: decode → (per frame) prepare, infer, mask, compose →
encode, with frames in flight on a small thread pool so that decoding, the model and encoding
overlap. Output order is input order."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from PIL import Image

from .._system import usable_cores
from ..errors import OptionsError
from ..imagefile import DecodedImage
from ..models.recurrent import RecurrentSession
from ..models.session import Session
from ..options import Limits, RemoveOptions
from ..pipeline import apply_background_image, predict_mask_batch, predict_masks
from ..pool import ModelPool
from .options import VideoOptions
from .sequence import ImageSequence, is_sequence
from .sink import Sink, check_opaque, format_for
from .smooth import Smoothing, TemporalSmoother
from .source import VideoSource

__all__ = [
    "FrameMasks",
    "FrameRemover",
    "VideoReport",
    "frame_masks",
    "remove_frames",
    "remove_video",
]

Progress = Callable[[int, int], None]  # (frames done, frames expected or 0)


@dataclass(frozen=True)
class FrameMasks:
    """How a video's frames get their masks: `predict(frames, options)` gives each frame's
    masks for a group of `group` frames; `in_order`: one call at a time, in frame order."""

    predict: Callable[[list[DecodedImage], RemoveOptions], list[list[Image.Image]]]
    group: int
    in_order: bool


def frame_masks(session: Session, pool: ModelPool, batch: int = 1) -> FrameMasks:
    """How one video's frames get their masks from `session`. A stateful (recurrent) model
    sees them one at a time in order (its state runs through the video); with `batch` above
    1, a model that batches runs that many frames per call through the pool's dynamic-batch
    copy of it (identical masks; it pays on GPUs, not on CPUs)."""
    if isinstance(session, RecurrentSession):
        stream = session.stream()
        return FrameMasks(lambda group, _: [[stream.step(d.image)] for d in group], 1, True)
    pool.runtime.check_batch(batch, "--batch")
    if batch > 1 and session.batches:
        batched = pool.batched(session)

        def predict(group: list[DecodedImage], _: RemoveOptions) -> list[list[Image.Image]]:
            return [[m] for m in predict_mask_batch(batched, [d.image for d in group])]

        return FrameMasks(predict, batch, False)
    return FrameMasks(
        lambda group, options: [predict_masks(session, d.image, options) for d in group], 1, False
    )


class FrameRemover(Protocol):
    """What video needs of a remover (`alphacut.Remover` is one)."""

    @property
    def session(self) -> Session: ...

    @property
    def pool(self) -> ModelPool: ...

    def process(
        self,
        decoded: DecodedImage,
        options: RemoveOptions | None = None,
        *,
        masks: list[Image.Image] | None = None,
    ) -> Image.Image: ...


@dataclass(frozen=True)
class VideoReport:
    """One video's outcome: frames written, the input's frame rate, wall time, and speed."""

    source: Path
    destination: Path
    frames: int
    fps: float
    seconds: float
    format: str
    audio: str | None = None  # the output's audio codec, None when it has no sound

    @property
    def speed(self) -> float:
        """Frames processed per second of wall time."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def remove_frames(
    remover: FrameRemover,
    frames: Iterable[Image.Image],
    options: RemoveOptions,
    *,
    smoothing: Smoothing | None = None,
    jobs: int | None = None,
    batch: int = 1,
) -> Iterator[Image.Image]:
    """Each frame's result, in order. The model runs on up to 2 × jobs frames at once (a
    recurrent one on one frame at a time, in order; with `batch`, groups of that many per
    run); the masks are smoothed over time in order (which holds back `smoothing.radius`
    frames), then composited on the pool."""
    plan = frame_masks(remover.session, remover.pool, batch)
    depth = max(2 * (jobs or usable_cores()), 2 * plan.group)
    smoother = TemporalSmoother(smoothing) if smoothing is not None else None
    masking: deque[tuple[list[DecodedImage], Future[list[list[Image.Image]]]]] = deque()
    group: list[DecodedImage] = []
    unsmoothed: deque[DecodedImage] = deque()
    composing: deque[Future[Image.Image]] = deque()
    with (
        ThreadPoolExecutor(jobs or usable_cores(), thread_name_prefix="alphacut-video") as pool,
        ThreadPoolExecutor(1, thread_name_prefix="alphacut-video-model") as one_at_a_time,
    ):
        masker = one_at_a_time if plan.in_order else pool

        def submit_group() -> None:
            if group:
                masking.append((list(group), masker.submit(plan.predict, list(group), options)))
                group.clear()

        def compose(decoded: DecodedImage, masks: list[Image.Image]) -> None:
            composing.append(pool.submit(remover.process, decoded, options, masks=masks))

        def settle_oldest() -> None:
            waiting, future = masking.popleft()
            for decoded, masks in zip(waiting, future.result(), strict=True):
                if smoother is None:
                    compose(decoded, masks)
                    continue
                unsmoothed.append(decoded)
                for smoothed in smoother.push(decoded.image, masks):
                    compose(unsmoothed.popleft(), smoothed)

        try:
            for index, frame in enumerate(frames):
                group.append(DecodedImage(frame.convert("RGB"), None, f"frame {index}"))
                if len(group) >= plan.group:
                    submit_group()
                if len(masking) * plan.group >= depth:
                    settle_oldest()
                while composing and (len(composing) >= depth or composing[0].done()):
                    yield composing.popleft().result()
            submit_group()
            while masking:
                settle_oldest()
            for smoothed in smoother.finish() if smoother is not None else []:
                compose(unsmoothed.popleft(), smoothed)
            while composing:
                yield composing.popleft().result()
        finally:
            for pending in [f for _, f in masking] + list(composing):
                pending.cancel()


class Backdrop:
    """A background video's frames, one per call, looping back to its start at its end."""

    def __init__(self, path: Path, limits: Limits | None) -> None:
        self._path, self._limits = path, limits
        self._reader = VideoSource(path, limits)
        self._frames = iter(self._reader)

    def behind(self, cutout: Image.Image) -> Image.Image:
        frame = next(self._frames, None)
        if frame is None:  # shorter than the video: start again
            self._reader.close()
            self._reader = VideoSource(self._path, self._limits)
            self._frames = iter(self._reader)
            frame = next(self._frames)
        return apply_background_image(cutout.convert("RGBA"), frame.image).convert("RGB")

    def close(self) -> None:
        self._reader.close()


def remove_video(
    remover: FrameRemover,
    source: str | Path,
    destination: str | Path,
    options: RemoveOptions,
    video: VideoOptions | None = None,
    *,
    limits: Limits | None = None,
    jobs: int | None = None,
    progress: Progress | None = None,
) -> VideoReport:
    """Cut out every frame of `source` (a video file, or an image sequence: a folder, glob or
    %d pattern) into `destination` (see `sink` for the formats).
    Nothing appears at `destination` unless the whole video was written."""
    video = video or VideoOptions()
    destination = Path(destination)
    fmt = format_for(destination, video.format)
    check_opaque(fmt, options, video.background is not None)
    if video.background is not None and (options.bgcolor or options.background_image):
        raise OptionsError("give one background: a colour, an image or a video")
    started = time.perf_counter()
    reader: VideoSource | ImageSequence = (
        ImageSequence(source, limits, video.rate)
        if is_sequence(source)
        else VideoSource(source, limits)
    )
    with reader:
        info = reader.info
        timestamps: deque[int | None] = deque()

        def images() -> Iterator[Image.Image]:
            for frame in reader:
                timestamps.append(frame.pts)
                yield frame.image

        sound = Path(source) if video.audio and info.audio else None  # sequences have none
        sink = Sink(destination, fmt, info, sound, video.codec)
        frames = remove_frames(
            remover, images(), options, smoothing=video.smoothing, jobs=jobs, batch=video.batch
        )
        backdrop = Backdrop(video.background, limits) if video.background is not None else None
        try:
            for cutout in frames:
                result = backdrop.behind(cutout) if backdrop is not None else cutout
                sink.write(result, timestamps.popleft())
                if progress is not None:
                    progress(sink.frames, info.frames)
            sink.close()
        except BaseException:
            sink.abort()
            raise
        finally:
            if backdrop is not None:
                backdrop.close()
    return VideoReport(
        source=Path(source),
        destination=destination,
        frames=sink.frames,
        fps=float(info.rate),
        seconds=time.perf_counter() - started,
        format=fmt,
        audio=sink.audio_codec,
    )
