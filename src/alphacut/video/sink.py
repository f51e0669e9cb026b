"""Writing video: the container follows the output's suffix (or --format).

- webm: VP9 through libvpx with an alpha plane (yuva420p);
- mov: ProRes 4444 with alpha (yuva444p10le), or QuickTime Animation (qtrle, argb, lossless);
- gif: a palette of 255 colours per frame plus one transparent entry (1-bit alpha);
- mp4: H.264, only for results on an opaque background (a colour, an image or a video);
- png / webp: a folder of one image per frame (lossless), zero-padded names.

Every sink writes beside its destination under a temporary name and renames on `close()`;
`abort()` removes what was written, so a failure or Ctrl-C never leaves a partial output.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from ..errors import OptionsError
from ..imagefile.png import encode_png
from ..options import RemoveOptions
from .audio import AudioTrack
from .source import VideoInfo, require_av

__all__ = ["FORMATS", "Sink", "check_opaque", "format_for"]

VideoFormat = Literal["webm", "mov", "mp4", "gif", "png", "webp"]
FORMATS: tuple[VideoFormat, ...] = ("webm", "mov", "mp4", "gif", "png", "webp")
FRAME_FOLDERS = ("png", "webp")
CODECS = ("prores", "qtrle")  # for .mov
_SUFFIXES: dict[str, VideoFormat] = {
    ".webm": "webm", ".mov": "mov", ".mp4": "mp4", ".m4v": "mp4", ".gif": "gif",
}  # fmt: skip

# (codec, pixel format, encoder options). VP9 at crf 18 keeps the alpha plane within about
# 1% MAD of the lossless PNG frames; "good" quality at cpu-used 5 with row threading is the
# speed the alpha needs without making encoding the bottleneck.
_CODECS: dict[str, tuple[str, str, dict[str, str]]] = {
    "webm": (
        "libvpx-vp9",
        "yuva420p",
        {"crf": "18", "b": "0", "deadline": "good", "cpu-used": "5", "row-mt": "1"},
    ),
    "mov": ("prores_ks", "yuva444p10le", {"profile": "4", "alpha_bits": "16"}),
    "mp4": ("libx264", "yuv420p", {"crf": "18", "preset": "veryfast"}),
    "gif": ("gif", "pal8", {}),
    "qtrle": ("qtrle", "argb", {}),
}
_TRANSPARENT = 255  # the GIF palette entry that is see-through
# Muxer options: MP4s start with their index so they play while downloading.
_MUXER_OPTIONS: dict[str, dict[str, str]] = {"mp4": {"movflags": "+faststart"}}


def check_opaque(fmt: VideoFormat, options: RemoveOptions, background_video: bool = False) -> None:
    """H.264 has no alpha: refuse before any work unless the result is opaque anyway."""
    opaque = (
        options.only_mask
        or options.bgcolor is not None
        or options.background_image
        or background_video
    )
    if fmt == "mp4" and not opaque:
        raise OptionsError(
            ".mp4 (H.264) has no alpha channel: give --bgcolor, --background-image, "
            "--background-video or --only-mask, or write .webm or .mov to keep the transparency"
        )


def format_for(destination: Path, requested: str | None) -> VideoFormat:
    """The output format: --format if given, else the suffix; a suffix-less path is a folder."""
    if requested is not None:
        if requested not in FORMATS:
            raise OptionsError(
                f"video format must be one of {', '.join(FORMATS)}, not {requested!r}"
            )
        return requested
    suffix = destination.suffix.lower()
    if suffix in _SUFFIXES:
        return _SUFFIXES[suffix]
    if suffix and suffix != ".png":
        raise OptionsError(
            f"cannot tell the video format from {destination.name!r}: use .webm, .mov or .gif "
            "(alpha), .mp4 (with a background), a folder for PNG frames, or --format"
        )
    return "png"


class Sink:
    """Where the frames of one output go. Call `write` per frame, then `close` or `abort`."""

    def __init__(
        self,
        destination: Path,
        fmt: VideoFormat,
        info: VideoInfo,
        audio_source: Path | None = None,
        codec: str | None = None,
    ):
        self.destination = destination
        self.format = fmt
        self.frames = 0
        self._info = info
        if codec not in (None, *CODECS) or (codec == "qtrle" and fmt != "mov"):
            raise OptionsError(f"--codec {codec} is for .mov only (prores or qtrle)")
        destination.parent.mkdir(parents=True, exist_ok=True)
        self._temporary = destination.with_name(f".{destination.name}.{os.getpid()}.partial")
        self._container: Any = None
        self._audio: AudioTrack | None = None
        if fmt in FRAME_FOLDERS:
            self._temporary.mkdir()
            return
        av = require_av()
        codec_name, pixel_format, options = _CODECS["qtrle" if codec == "qtrle" else fmt]
        self._container = av.open(
            str(self._temporary), "w", format=fmt, options=_MUXER_OPTIONS.get(fmt, {})
        )
        stream = self._container.add_stream(codec_name, rate=info.rate, options=options)
        stream.width = _even(info.width) if fmt == "mp4" else info.width
        stream.height = _even(info.height) if fmt == "mp4" else info.height
        stream.pix_fmt = pixel_format
        stream.codec_context.time_base = info.time_base
        stream.time_base = info.time_base
        if fmt == "webm":
            # Tells players (Chromium included) that the stream carries alpha.
            stream.metadata["alpha_mode"] = "1"
        self._stream = stream
        self._pixel_format = pixel_format
        self._last_pts: int | None = None
        if audio_source and fmt != "gif":
            self._audio = AudioTrack(audio_source, self._container, fmt)

    @property
    def audio_codec(self) -> str | None:
        """The output's audio codec, or None when it has no sound."""
        return self._audio.codec if self._audio is not None else None

    def write(self, result: Image.Image, pts: int | None) -> None:
        if self.format in FRAME_FOLDERS:
            name = f"frame_{self.frames + 1:0{_digits(self._info.frames)}d}.{self.format}"
            (self._temporary / name).write_bytes(_frame_file(result, self.format))
            self.frames += 1
            return
        av = require_av()
        if self._pixel_format == "pal8":
            frame = av.VideoFrame.from_ndarray(_paletted(result), format="pal8")
        else:
            frame = av.VideoFrame.from_ndarray(self._pixels(result), format=self._array_format())
        if pts is None or (self._last_pts is not None and pts <= self._last_pts):
            # Missing or repeated timestamps: continue at the average frame rate.
            step = round(1 / (self._info.rate * self._info.time_base)) or 1
            pts = 0 if self._last_pts is None else self._last_pts + step
        frame.pts = pts
        frame.time_base = self._info.time_base
        self._last_pts = pts
        if self._audio is not None:
            self._audio.feed_until(float(pts * self._info.time_base))
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    def _array_format(self) -> str:
        return "rgb24" if self.format == "mp4" else "rgba"

    def _pixels(self, result: Image.Image) -> np.ndarray:
        if self.format == "mp4":
            pixels = np.asarray(result.convert("RGB"))
            height, width = _even(pixels.shape[0]), _even(pixels.shape[1])
            if (height, width) != pixels.shape[:2]:  # H.264 4:2:0 needs even sizes
                pad = ((0, height - pixels.shape[0]), (0, width - pixels.shape[1]), (0, 0))
                pixels = np.pad(pixels, pad, mode="edge")
            return pixels
        # A matte (mode L) becomes grey and opaque; a cutout keeps its alpha.
        return np.asarray(result.convert("RGBA"))

    def close(self) -> Path:
        """Finish the file (or folder) and move it into place."""
        if self.frames == 0:
            self.abort()
            raise OptionsError("no frames were written")
        if self._container is not None:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            if self._audio is not None:
                self._audio.close()
            self._container.close()
        if self.format in FRAME_FOLDERS and self.destination.is_dir():
            shutil.rmtree(self.destination)  # replaced as a whole, never mixed with old frames
        os.replace(self._temporary, self.destination)
        return self.destination

    def abort(self) -> None:
        if self._audio is not None:
            self._audio.abort()
        if self._container is not None:
            with contextlib.suppress(Exception):
                self._container.close()
        if self._temporary.is_dir():
            shutil.rmtree(self._temporary, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                self._temporary.unlink()


def _frame_file(result: Image.Image, fmt: str) -> bytes:
    if fmt == "png":
        return encode_png(result)
    buffer = io.BytesIO()
    result.save(buffer, "WEBP", lossless=True, quality=50, method=2)  # lossless, quick effort
    return buffer.getvalue()


def _paletted(result: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """A GIF frame: 255 colours from the image (median cut) and one transparent entry where
    alpha is under half. Unused entries stay opaque, since FFmpeg's GIF encoder takes the
    first see-through entry it finds as the transparent one."""
    rgba = result.convert("RGBA")
    colours = rgba.convert("RGB").quantize(colors=255, method=Image.Quantize.MEDIANCUT)
    indices = np.asarray(colours).copy()
    indices[np.asarray(rgba.getchannel("A")) < 128] = _TRANSPARENT
    rgb = np.array(colours.getpalette() or [], np.uint8).reshape(-1, 3)[:255]
    palette = np.zeros((256, 4), np.uint8)  # ARGB, as PyAV takes it
    palette[:, 0] = 255
    palette[: len(rgb), 1:] = rgb
    palette[_TRANSPARENT] = 0
    return indices, palette


def _even(value: int) -> int:
    return value + (value % 2)


def _digits(frames: int) -> int:
    return max(6, len(str(frames)))
