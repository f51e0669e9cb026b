"""The fast path against exact mode: `remove()` throughput and mask agreement, one run.

    python -m alphacut.bench.fast [--images DIR] [--rounds 3]

Every session is loaded first (exact mode, then the fast path on each runtime installed:
OpenVINO and ONNX Runtime); rounds then alternate between them over the same photos (bytes
in, PNG bytes out, as `remove(bytes)`), and the best round of each is compared. Masks are
compared at alpha >= 128 (IoU), each photo at its own size. The photos must not be ones used
for calibration (those in alphacut/calibration); without --images, scikit-image's bundled
photos are used, which alphacut has never been calibrated on.
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["main", "run"]


# Photos scikit-image bundles: people, animals, objects, and scientific images (the hardest).
SKIMAGE_PHOTOS = (
    "astronaut", "chelsea", "coffee", "rocket", "motorcycle_left",
    "camera", "coins", "retina", "immunohistochemistry", "clock",
)  # fmt: skip


def skimage_photos(folder: Path) -> Path:
    """Write scikit-image's bundled photos into `folder` as PNG; returns `folder`."""
    from PIL import Image

    try:
        from skimage import data
    except ImportError:
        raise SystemExit("without --images this benchmark needs scikit-image") from None
    folder.mkdir(parents=True, exist_ok=True)
    for name in SKIMAGE_PHOTOS:
        # The motorcycle comes as a stereo pair; its left view is the photo.
        pixels = data.stereo_motorcycle()[0] if name == "motorcycle_left" else getattr(data, name)()  # type: ignore[no-untyped-call]
        Image.fromarray(pixels).save(folder / f"{name}.png")
    return folder


def run(images: Path, *, rounds: int = 3, model: str = "u2netp") -> list[str]:
    from ..api import new_session, remove
    from ..graphs.quantize import calibration_files
    from ..options import RemoveOptions, RuntimeOptions
    from ..remover import Remover
    from .pipeline import machine_description

    files = calibration_files(images, role="benchmark")
    blobs = [p.read_bytes() for p in files]
    sessions = {"exact": new_session(model, runtime=RuntimeOptions(backend="onnxruntime"))}
    backends = ["openvino"] if importlib.util.find_spec("openvino") else []
    for backend in [*backends, "onnxruntime"]:
        runtime = RuntimeOptions(fast=True, backend=backend)  # type: ignore[arg-type]
        sessions[f"fast, {backend}"] = new_session(model, runtime=runtime)
    best = dict.fromkeys(sessions, float("inf"))
    order = list(sessions.items())
    for index in range(rounds):
        for name, session in order if index % 2 == 0 else order[::-1]:
            started = time.perf_counter()
            for blob in blobs:
                remove(blob, session=session)
            best[name] = min(best[name], time.perf_counter() - started)
    mask_only = RemoveOptions(only_mask=True)
    exact = Remover(sessions["exact"])
    wanted = [np.asarray(exact.remove_image(blob, mask_only)) >= 128 for blob in blobs]
    lines = [
        f"machine: {machine_description()}",
        f"{len(files)} photos from {images}, best of {rounds} interleaved rounds, "
        "remove(bytes) to PNG bytes",
    ]
    exact_rate = len(blobs) / best["exact"]
    lines.append(f"  exact ({sessions['exact'].description}): {exact_rate:.2f} img/s")
    for name, session in sessions.items():
        if name == "exact":
            continue
        ious = []
        for path, blob, want in zip(files, blobs, wanted, strict=True):
            got = np.asarray(Remover(session).remove_image(blob, mask_only)) >= 128
            union = int((want | got).sum())
            ious.append((1.0 if union == 0 else int((want & got).sum()) / union, path.name))
        worst = min(ious)
        rate = len(blobs) / best[name]
        lines.append(
            f"  {name} ({session.description}): {rate:.2f} img/s = {rate / exact_rate:.2f}x exact; "
            f"mask IoU vs exact mean {np.mean([i for i, _ in ious]):.4f}, "
            f"worst {worst[0]:.4f} ({worst[1]})"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, help="[default: scikit-image's photos]")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default="u2netp")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="alphacut-unseen-") as scratch:
        images = args.images or skimage_photos(Path(scratch))
        for line in run(images, rounds=args.rounds, model=args.model):
            print(line)


if __name__ == "__main__":
    main()
