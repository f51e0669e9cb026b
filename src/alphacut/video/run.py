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
from ..imageio import DecodedImage
from ..options import Limits, RemoveOptions
from .sink import Sink, check_opaque, format_for
from .source import VideoSource

__all__ = ["FrameRemover", "VideoReport", "remove_frames", "remove_video"]

Progress = Callable[[int, int], None]  # (frames done, frames expected or 0)


class FrameRemover(Protocol):
    def process(
        self, decoded: DecodedImage, options: RemoveOptions | None = None
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
    jobs: int | None = None,
) -> Iterator[Image.Image]:
    """Each frame's result, in order, with up to 2 × jobs frames in flight."""
    jobs = jobs or usable_cores()
    pending: deque[Future[Image.Image]] = deque()
    with ThreadPoolExecutor(jobs, thread_name_prefix="alphacut-video") as pool:
        try:
            for index, frame in enumerate(frames):
                decoded = DecodedImage(frame.convert("RGB"), None, f"frame {index}")
                pending.append(pool.submit(remover.process, decoded, options))
                if len(pending) >= 2 * jobs:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def remove_video(
    remover: FrameRemover,
    source: str | Path,
    destination: str | Path,
    options: RemoveOptions,
    *,
    video_format: str | None = None,
    limits: Limits | None = None,
    jobs: int | None = None,
    progress: Progress | None = None,
    audio: bool = True,
) -> VideoReport:
    """Cut out every frame of `source` into `destination` (see `sink` for the formats), with
    its sound unless `audio` is False. Nothing appears at `destination` unless the whole
    video was written."""
    destination = Path(destination)
    fmt = format_for(destination, video_format)
    check_opaque(fmt, options)
    started = time.perf_counter()
    with VideoSource(source, limits) as video:
        info = video.info
        timestamps: deque[int | None] = deque()

        def images() -> Iterator[Image.Image]:
            for frame in video:
                timestamps.append(frame.pts)
                yield frame.image

        sink = Sink(destination, fmt, info, Path(source) if audio and info.audio else None)
        try:
            for result in remove_frames(remover, images(), options, jobs=jobs):
                sink.write(result, timestamps.popleft())
                if progress is not None:
                    progress(sink.frames, info.frames)
            sink.close()
        except BaseException:
            sink.abort()
            raise
    return VideoReport(
        source=Path(source),
        destination=destination,
        frames=sink.frames,
        fps=float(info.rate),
        seconds=time.perf_counter() - started,
        format=fmt,
        audio=sink.audio_codec,
    )
