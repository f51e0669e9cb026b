"""Image sequences as video: a folder of frames, a glob ("shots/*.png") or a printf pattern
("render/frame_%04d.exr" style, as ffmpeg's image2 reads them). Frames are decoded by the same
image decoder as `alphacut remove` (orientation, colour modes, limits) and played at a rate the
caller gives, since image files carry none.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

from PIL import Image

from ..errors import InputError, UnsupportedVideo, VideoTooLarge
from ..imagefile import decode
from ..options import Limits
from .source import Closing, Frame, VideoInfo

__all__ = ["DEFAULT_RATE", "ImageSequence", "is_sequence", "sequence_files"]

DEFAULT_RATE = Fraction(25)
_PRINTF = re.compile(r"%0?(\d*)d")
_GLOB = frozenset("*?[")
_DIGITS = re.compile(r"(\d+)")


def is_sequence(source: str | Path) -> bool:
    """Whether `source` names frames rather than one video file."""
    text = str(source)
    if Path(text).is_dir():
        return True
    if Path(text).exists():
        return False
    return bool(_PRINTF.search(text)) or any(ch in text for ch in _GLOB)


def _natural(path: Path) -> list[object]:
    """Sort key: frame_2 before frame_10."""
    return [int(part) if part.isdigit() else part for part in _DIGITS.split(path.name)]


def sequence_files(source: str | Path) -> list[Path]:
    """The frames `source` names, in order (natural order for folders and globs)."""
    text = str(source)
    path = Path(text)
    if path.is_dir():
        files = [p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")]
        return sorted(files, key=_natural)
    match = _PRINTF.search(text)
    if match:
        width = int(match[1] or 1)

        def numbered(n: int) -> Path:
            return Path(_PRINTF.sub(f"{n:0{width}d}", text, count=1))

        # Like ffmpeg's image2: the first number is any of 0 to 4, then no gaps.
        start = next((n for n in range(5) if numbered(n).is_file()), None)
        found: list[Path] = []
        while start is not None and numbered(start + len(found)).is_file():
            found.append(numbered(start + len(found)))
        return found
    return sorted((Path(m) for m in glob.glob(text) if Path(m).is_file()), key=_natural)


class ImageSequence(Closing):
    """Frames from image files, with the interface of `VideoSource`."""

    def __init__(
        self, source: str | Path, limits: Limits | None = None, rate: Fraction | None = None
    ) -> None:
        self._name = str(source)
        self._limits = limits or Limits()
        self.files = sequence_files(source)
        if not self.files:
            raise UnsupportedVideo("names no image files (a folder, glob or %d pattern)",
                                   source=self._name)  # fmt: skip
        most = self._limits.max_frames
        if most is not None and len(self.files) > most:
            raise VideoTooLarge(f"{len(self.files)} frames, over the limit of {most}",
                                source=self._name)  # fmt: skip
        self._first = self._decode(self.files[0])
        rate = Fraction(rate or DEFAULT_RATE)
        self.info = VideoInfo(
            width=self._first.width,
            height=self._first.height,
            frames=len(self.files),
            rate=rate,
            time_base=1 / rate,
            codec="image sequence",
            duration=float(len(self.files) / rate),
        )
        longest = self._limits.max_seconds
        if longest is not None and self.info.duration and self.info.duration > longest:
            raise VideoTooLarge(f"{self.info.duration:.1f} s at {float(rate):g} fps, over the "
                                f"limit of {longest:g} s", source=self._name)  # fmt: skip

    def _decode(self, path: Path) -> Image.Image:
        try:
            return decode(path, limits=self._limits).image.convert("RGB")
        except InputError as exc:
            raise UnsupportedVideo(f"frame {path.name}: {getattr(exc, 'reason', exc)}",
                                   source=self._name) from None  # fmt: skip

    def __iter__(self) -> Iterator[Frame]:
        for index, path in enumerate(self.files):
            image = self._first if index == 0 else self._decode(path)
            if image.size != self._first.size:
                raise UnsupportedVideo(
                    f"frame {path.name} is {image.width}x{image.height}, not "
                    f"{self._first.width}x{self._first.height} like the first",
                    source=self._name,
                )
            yield Frame(image, index, index)

    def close(self) -> None:
        """Nothing to release: each frame's file is opened only while it is decoded."""
