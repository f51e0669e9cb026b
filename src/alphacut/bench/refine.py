"""Refinement, measured on composites made as Composition-1k makes them: a true matte and
foreground (closed-form matting of the subject's own photo, see evaluate.truth_clip) over
other real photos. Prints the matting errors of the raw mask and of each refinement, the
edge colour error with and without decontamination, and the time per image.

    python -m alphacut.bench.refine [--latency]

--latency: the time one brush stroke costs, as the server runs it for the page (the model's
mask already known, refine_scope="strokes": a stroke pays the matting and the colours near
itself) and with the automatic band solved again too (refine_scope="image"): 10 strokes at
seeded random places on a 1 MP and a 6 MP photo, p50 and p95.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from .pipeline import machine_description

if TYPE_CHECKING:
    from ..imagefile import DecodedImage
    from ..options import RefineScope
    from ..remover import Remover

ROOT = Path(__file__).resolve().parents[3]
CASES = [
    ("im_21.png", "chelsea.png"),
    ("im_21.png", "rocket.jpg"),
    ("im_21.png", "coffee.png"),
    ("0002-01.jpg", "coffee.png"),
    ("0002-01.jpg", "rocket.jpg"),
    ("0002-01.jpg", "chelsea.png"),
]


def latency(strokes: int = 10) -> None:
    from ..imagefile import DecodedImage
    from ..remover import Remover

    remover = Remover("u2netp")
    print(f"\none stroke (keep or remove, 2% of the width thick), {strokes} strokes each:")
    for name, megapixels in (("girl-1.jpg", 1.0), ("bike.jpg", 6.0)):
        photo = Image.open(ROOT / "tests" / "data" / "photos" / name).convert("RGB")
        scale = (megapixels * 1e6 / (photo.width * photo.height)) ** 0.5
        photo = photo.resize((round(photo.width * scale), round(photo.height * scale)))
        decoded = DecodedImage(photo, None, name)
        masks = remover.predict(decoded)
        for scope in ("strokes", "image"):
            times = _time_strokes(remover, decoded, masks, strokes, scope)
            p50, p95 = np.percentile(times, [50, 95])
            print(f"  {name} at {photo.width}x{photo.height} "
                  f"({photo.width * photo.height / 1e6:.1f} MP), refine_scope={scope}: "
                  f"p50 {p50:.2f} s, p95 {p95:.2f} s")  # fmt: skip


def _time_strokes(
    remover: Remover,
    decoded: DecodedImage,
    masks: list[Image.Image],
    strokes: int,
    scope: RefineScope,
) -> list[float]:
    """Seconds per stroke for `strokes` strokes at seeded random places (the same ones for
    each scope), alternating remove and keep."""
    from ..options import RemoveOptions
    from ..pipeline.refine import Hints

    rng = np.random.default_rng(0)
    width, height = decoded.image.size
    thick = max(4, width // 50)
    times = []
    for index in range(strokes):
        painted = np.zeros((height, width), bool)
        x, y = int(rng.integers(0, width - width // 4)), int(rng.integers(0, height - thick))
        painted[y : y + thick, x : x + width // 4] = True
        none = np.zeros_like(painted)
        hints = Hints(keep=painted if index % 2 else none, remove=none if index % 2 else painted,
                      edge=none)  # fmt: skip
        options = RemoveOptions(refine="auto", refine_scope=scope)
        started = time.perf_counter()
        remover.process(decoded, options, masks=masks, hints=hints)
        times.append(time.perf_counter() - started)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", action="store_true", help="also time single strokes")
    args = parser.parse_args(argv)
    quality()
    if args.latency:
        latency()
    return 0


def quality() -> None:
    import skimage.data

    from ..evaluate.matting import matting_scores
    from ..evaluate.truth_clip import cached_matte
    from ..imagefile import DecodedImage
    from ..options import RemoveOptions
    from ..pipeline.refine import band_radius
    from ..remover import Remover

    remover = Remover("u2netp")
    print(f"machine: {machine_description()}; u2netp; {len(CASES)} composites")
    totals: dict[str, list[tuple[float, float, float, float, float]]] = {}
    colour: dict[str, list[float]] = {"plain cutout": [], "decontaminated": [], "refined": []}
    for subject, background in CASES:
        matte = cached_matte(
            ROOT / "tests" / "data" / "photos" / subject, ROOT / ".cache" / "truth"
        )
        alpha, fg = matte.alpha.astype(np.float64), matte.foreground.astype(np.float64)
        height, width = alpha.shape
        photo = Path(skimage.data.__file__).with_name(background)
        plate = (
            np.asarray(Image.open(photo).convert("RGB").resize((width, height)), np.float64) / 255
        )
        pixels = alpha[..., None] * fg + (1 - alpha[..., None]) * plate
        image = Image.fromarray(np.rint(pixels * 255).astype(np.uint8))
        decoded = DecodedImage(image, None, subject)
        for name, options in (
            ("raw mask", RemoveOptions(only_mask=True)),
            ("refine cf", RemoveOptions(only_mask=True, refine="cf")),
            ("refine guided", RemoveOptions(only_mask=True, refine="guided")),
        ):
            started = time.perf_counter()
            result = np.asarray(remover.process(decoded, options), np.float64) / 255
            seconds = time.perf_counter() - started
            s = matting_scores(result, alpha)
            totals.setdefault(name, []).append((s.sad, s.mse, s.gradient, s.connectivity, seconds))
        # Edge colours: where 0.05 < α < 0.95 in the truth, against the true foreground.
        import cv2

        radius = band_radius(width, height)
        kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
        soft = (alpha > 0.05) & (alpha < 0.95)
        band = cv2.dilate(soft.astype(np.uint8), kernel).astype(bool) & (alpha > 0.05)
        for name, options in (
            ("plain cutout", RemoveOptions()),
            ("decontaminated", RemoveOptions(decontaminate=True)),
            ("refined", RemoveOptions(refine="cf")),
        ):
            rgba = np.asarray(remover.process(decoded, options), np.float64) / 255
            colour[name].append(float(np.abs(rgba[..., :3] - fg)[band].mean()))
    print(f"\n{'method':16s} {'SAD':>8s} {'MSE':>9s} {'grad':>8s} {'conn':>8s} {'s/image':>8s}")
    raw_sad = np.mean([t[0] for t in totals["raw mask"]])
    for name, rows in totals.items():
        sad, mse, grad, conn, seconds = np.mean(rows, axis=0)
        change = f"  ({sad / raw_sad - 1:+.0%} SAD)" if name != "raw mask" else ""
        print(f"{name:16s} {sad:8.3f} {mse:9.5f} {grad:8.3f} {conn:8.3f} {seconds:8.2f}{change}")
    plain = np.mean(colour["plain cutout"])
    print(f"\nedge colour error against the true foreground: plain cutout {plain:.4f}", end="")
    for name in ("decontaminated", "refined"):
        value = np.mean(colour[name])
        print(f", {name} {value:.4f} ({value / plain - 1:+.0%})", end="")
    print()


if __name__ == "__main__":
    raise SystemExit(main())
