"""What a video run does beyond the image options: the container, smoothing and sound."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from ..errors import OptionsError
from ..options import parse_flag
from .sink import CODECS, FORMATS
from .smooth import Smoothing

__all__ = ["VIDEO_SETTINGS", "VideoOptions", "VideoSetting", "video_options", "video_params"]


@dataclass(frozen=True)
class VideoOptions:
    """format: "webm", "mov", "mp4", "gif", or "png" / "webp" (a folder of frames), or None
    to go by the destination's suffix. codec: for .mov, "prores" (ProRes 4444, the default)
    or "qtrle" (QuickTime Animation, lossless). smoothing: temporal smoothing of the masks,
    None for each frame on its own. audio: keep the input's sound where the output can carry
    it. rate: frames per second of an image-sequence input (None: 25); a video file keeps its
    own timing. background: a video to composite the cutouts onto (looped when shorter,
    cut when longer, scaled to cover the frame). batch: frames per model run (1 to 64), for
    GPUs; on CPUs one frame per run on each core is faster (measured 7.8 against 6.3 fps)."""

    format: str | None = None
    codec: str | None = None
    smoothing: Smoothing | None = field(default_factory=Smoothing)
    audio: bool = True
    rate: Fraction | None = None
    background: Path | None = None
    batch: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.batch <= 64:
            raise OptionsError(f"batch must be 1 to 64 frames, not {self.batch}")
        if self.codec not in (None, "prores", "qtrle"):
            raise OptionsError(f"codec must be prores or qtrle, not {self.codec!r}")
        if self.rate is not None:
            if self.rate <= 0 or self.rate > 1000:
                raise OptionsError(f"rate must be above 0 and at most 1000 fps, not {self.rate}")
            object.__setattr__(self, "rate", Fraction(self.rate).limit_denominator(1001))


@dataclass(frozen=True)
class VideoSetting:
    """One video option as every edge spells it: `alphacut video`'s --flag (the name with
    dashes) and, where `over_http`, the same name as a field of POST /api/video. `kind`:
    bool, int, float, str or Path; `choices` and `bounds` limit it."""

    name: str
    help: str
    kind: type
    default: Any = None
    choices: tuple[str, ...] = ()
    bounds: tuple[float, float] | None = None
    over_http: bool = False


VIDEO_SETTINGS: tuple[VideoSetting, ...] = (
    VideoSetting(
        "format",
        "Output format; png and webp write a folder of frames. [default: from the suffix; "
        "webm for several inputs and over HTTP]",
        str,
        choices=FORMATS,
        over_http=True,
    ),
    VideoSetting(
        "codec",
        "For .mov: ProRes 4444 (default) or QuickTime Animation (lossless, larger).",
        str,
        choices=CODECS,
        over_http=True,
    ),
    VideoSetting(
        "background_video",
        "Composite onto this video (looped or cut to length), e.g. for .mp4.",
        Path,
    ),
    VideoSetting(
        "batch",
        "Frames per model run, through a dynamic-batch copy of the model (same masks). "
        "Pays on a GPU; on a CPU one frame per run on each core is faster (7.8 against "
        "6.3 fps at --batch 4, 640x360, 2 cores).",
        int,
        1,
        bounds=(1, 64),
    ),
    VideoSetting(
        "audio",
        "Keep the sound: copied where the container takes its codec, else transcoded "
        "(Opus in WebM, AAC in MOV/MP4). PNG frames have none.",
        bool,
        True,
        over_http=True,
    ),
    VideoSetting(
        "fps",
        "Frame rate of an image-sequence input (a folder, glob or %d pattern). [default: 25]",
        float,
        bounds=(0.01, 1000),
    ),
    VideoSetting(
        "smooth",
        "Steady the masks over time: each is averaged with its neighbours' masks carried "
        "along the optical flow (no ghosting behind motion); off cuts each frame alone.",
        bool,
        True,
        over_http=True,
    ),
)


def video_options(values: Mapping[str, Any]) -> VideoOptions:
    """The video options that settings' `values` (by name; absent: the default) ask for."""
    chosen = {row.name: values.get(row.name, row.default) for row in VIDEO_SETTINGS}
    return VideoOptions(
        format=chosen["format"],
        codec=chosen["codec"],
        background=chosen["background_video"],
        batch=chosen["batch"],
        smoothing=Smoothing() if chosen["smooth"] else None,
        audio=chosen["audio"],
        rate=Fraction(chosen["fps"]) if chosen["fps"] else None,
    )


def video_params(params: Mapping[str, str]) -> dict[str, Any]:
    """The values of the settings a client may send as text fields (the others are left
    for the image options), each parsed and checked as the CLI checks its flag."""
    rows = {row.name: row for row in VIDEO_SETTINGS if row.over_http}
    values: dict[str, Any] = {}
    for name, raw in params.items():
        row = rows.get(name)
        if row is None:
            continue
        values[name] = _parsed(row, raw)
    return values


def _parsed(row: VideoSetting, raw: str) -> Any:
    if row.kind is bool:
        return parse_flag(row.name, raw)
    text = raw.strip().lower()
    if row.choices and text not in row.choices:
        raise OptionsError(f"{row.name} must be one of {', '.join(row.choices)}, not {raw!r}")
    if row.kind not in (int, float):
        return text
    try:
        number = row.kind(text)
    except ValueError:
        raise OptionsError(f"{row.name} must be a number, not {raw!r}") from None
    if row.bounds and not row.bounds[0] <= number <= row.bounds[1]:
        raise OptionsError(f"{row.name} must be {row.bounds[0]:g} to {row.bounds[1]:g}, not {raw}")
    return number
