"""Reading video: any container and codec PyAV decodes, frame by frame with its timestamp.

Every way a file can fail to be a usable video ends here, as `UnsupportedVideo` naming the
file and the reason, before anything is written.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from PIL import Image

from .._extras import require
from ..errors import UnsupportedVideo, VideoTooLarge
from ..options import Limits

__all__ = ["Closing", "Frame", "VideoInfo", "VideoSource", "require_av"]

_Self = TypeVar("_Self", bound="Closing")

# Demuxers that read still images: a photo handed to `alphacut video` is a mistake to name.
_IMAGE_FORMATS = ("image2", "_pipe", "png", "jpeg", "webp_pipe", "bmp", "tiff")


def require_av() -> Any:
    return require("av", "video")


@dataclass(frozen=True)
class VideoInfo:
    """What the output must keep. width, height: as displayed, after `rotation` (degrees
    counter-clockwise, 0, 90, 180 or 270, from the display matrix phones write), which every
    frame has already had applied; frames: the container's count (0 when it does not say);
    rate: the average frame rate; time_base: the unit of each frame's pts."""

    width: int
    height: int
    frames: int
    rate: Fraction
    time_base: Fraction
    codec: str
    duration: float | None
    audio: str | None = None  # the first audio stream's codec, if there is one
    rotation: int = 0


@dataclass(frozen=True)
class Frame:
    image: Image.Image  # RGB
    pts: int | None
    index: int


class Closing:
    """`with` support for readers that have a `close`."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


#: Only real media containers (and single still images, so that a photo gets its "use
#: alphacut remove" hint) are probed, and only local files read: FFmpeg's concat, playlist
#: (HLS, DASH), SDP and image-pattern demuxers open other files or URLs named inside the one
#: given, which an upload must never steer.
_DEMUXERS = (
    "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,gif,apng,mpegts,mpeg,flv,asf,ogg,mxf,nut,ivf,"
    "yuv4mpegpipe,h264,hevc,mjpeg,m4v,"
    "png_pipe,jpeg_pipe,webp_pipe,gif_pipe,bmp_pipe,tiff_pipe,j2k_pipe,qoi_pipe,dpx_pipe"
)
_OPEN_OPTIONS = {"format_whitelist": _DEMUXERS, "protocol_whitelist": "file"}


class VideoSource(Closing):
    """An open video file. Iterate for frames; `info` describes the video stream."""

    def __init__(self, path: str | Path, limits: Limits | None = None) -> None:
        av = require_av()
        self.path = Path(path)
        self._name = str(path)
        limits = limits or Limits()
        if not self.path.is_file():
            raise UnsupportedVideo("no such file", source=self._name)
        if self.path.stat().st_size == 0:
            raise UnsupportedVideo("an empty file, not a video", source=self._name)
        try:
            self._container = av.open(str(self.path), "r", container_options=_OPEN_OPTIONS)
        except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
            raise UnsupportedVideo(
                f"not a video PyAV can read ({_reason(exc)})", source=self._name
            ) from None
        try:
            self.info = self._describe(limits)
        except BaseException:
            self._container.close()
            raise

    def _describe(self, limits: Limits) -> VideoInfo:
        container = self._container
        format_name = container.format.name
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams}) or ["nothing"]
            raise UnsupportedVideo(
                f"has no video stream (only {', '.join(kinds)})", source=self._name
            )
        stream = container.streams.video[0]
        if any(part in format_name for part in _IMAGE_FORMATS) and (stream.frames or 0) <= 1:
            raise UnsupportedVideo(
                "a still image, not a video: use `alphacut remove` for images",
                source=self._name,
            )
        width, height = stream.codec_context.width, stream.codec_context.height
        if width <= 0 or height <= 0:
            raise UnsupportedVideo("its video stream has no frame size", source=self._name)
        if width * height > limits.max_pixels:
            raise VideoTooLarge(
                f"frames of {width}x{height} are over the limit of {limits.max_pixels} pixels "
                f"({limits.raise_hint})",
                source=self._name,
            )
        stream.thread_type = "AUTO"
        # The first frame is decoded now: it carries the display rotation the output needs
        # before it starts, and a file that decodes nothing fails before anything is written.
        self._decoded = self._container.decode(video=0)
        self._first = self._next_frame(0)
        if self._first is None:
            raise UnsupportedVideo("has no frames that decode", source=self._name)
        rotation = round(getattr(self._first, "rotation", 0) / 90) % 4 * 90
        if rotation in (90, 270):
            width, height = height, width
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        time_base = stream.time_base or Fraction(1, 90000)
        duration = float(stream.duration * time_base) if stream.duration else None
        if duration is None and container.duration:
            duration = container.duration / 1_000_000  # AV_TIME_BASE
        self._limits = limits
        if limits.max_seconds is not None and duration and duration > limits.max_seconds:
            raise VideoTooLarge(
                f"{duration:.1f} s long, over the limit of {limits.max_seconds:g} s",
                source=self._name,
            )
        if limits.max_frames is not None and (stream.frames or 0) > limits.max_frames:
            raise VideoTooLarge(
                f"{stream.frames} frames, over the limit of {limits.max_frames}",
                source=self._name,
            )
        return VideoInfo(
            width=width,
            height=height,
            frames=int(stream.frames or 0),
            rate=Fraction(rate),
            time_base=Fraction(time_base),
            codec=stream.codec_context.name,
            duration=duration,
            audio=container.streams.audio[0].codec_context.name
            if container.streams.audio
            else None,
            rotation=rotation,
        )

    def _next_frame(self, index: int) -> Any:
        """The next decoded frame, None at the end."""
        av = require_av()
        try:
            return next(self._decoded, None)
        except av.error.FFmpegError as exc:
            raise UnsupportedVideo(
                f"corrupt or truncated after {index} frames ({_reason(exc)})", source=self._name
            ) from None

    def __iter__(self) -> Iterator[Frame]:
        upright = _TURNS.get(self.info.rotation)
        frame, index = self._first, 0
        most = self._limits.max_frames
        while frame is not None:
            if most is not None and index >= most:  # the header undercounted
                raise VideoTooLarge(f"more than {most} frames", source=self._name)
            longest = self._limits.max_seconds
            if longest is not None and frame.time is not None and frame.time > longest:
                raise VideoTooLarge(f"longer than {longest:g} s", source=self._name)
            image = frame.to_image()
            yield Frame(image.transpose(upright) if upright else image, frame.pts, index)
            index += 1
            frame = self._next_frame(index)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._container.close()


# Display rotations (counter-clockwise) as the PIL turn that shows the frame upright.
_TURNS = {
    90: Image.Transpose.ROTATE_90,
    180: Image.Transpose.ROTATE_180,
    270: Image.Transpose.ROTATE_270,
}


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).strip() or type(exc).__name__
