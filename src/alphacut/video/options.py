"""What a video run does beyond the image options: the container, smoothing and sound."""

from __future__ import annotations

from dataclasses import dataclass, field

from .smooth import Smoothing

__all__ = ["VideoOptions"]


@dataclass(frozen=True)
class VideoOptions:
    """format: "webm", "mov", "mp4" or "png" (frames), or None to go by the destination's
    suffix. smoothing: temporal smoothing of the masks, None for each frame on its own.
    audio: keep the input's sound where the output can carry it."""

    format: str | None = None
    smoothing: Smoothing | None = field(default_factory=Smoothing)
    audio: bool = True
