"""Refinement, measured on composites made as Composition-1k makes them: a true matte and
foreground (closed-form matting of the subject's own photo, see evaluate.truth_clip) over
other real photos. Prints the matting errors of the raw mask and of each refinement, the
edge colour error with and without decontamination, and the time per image.

    python -m alphacut.bench.refine
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image

from .pipeline import machine_description

ROOT = Path(__file__).resolve().parents[3]
CASES = [
    ("im_21.png", "chelsea.png"),
    ("im_21.png", "rocket.jpg"),
    ("im_21.png", "coffee.png"),
    ("0002-01.jpg", "coffee.png"),
    ("0002-01.jpg", "rocket.jpg"),
    ("0002-01.jpg", "chelsea.png"),
]


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__).parse_args(argv)
    import skimage.data

    from ..evaluate.matting import matting_scores
    from ..evaluate.truth_clip import cached_matte
    from ..imageio import DecodedImage
    from ..options import RemoveOptions
    from ..pipeline.refine import band_radius
    from ..remover import Remover

    remover = Remover("u2netp")
    print(f"machine: {machine_description()}; u2netp; {len(CASES)} composites")
    totals: dict[str, list[tuple[float, float, float, float, float]]] = {}
    colour: dict[str, list[float]] = {"plain cutout": [], "decontaminated": []}
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
        ):
            rgba = np.asarray(remover.process(decoded, options), np.float64) / 255
            colour[name].append(float(np.abs(rgba[..., :3] - fg)[band].mean()))
    print(f"\n{'method':16s} {'SAD':>8s} {'MSE':>9s} {'grad':>8s} {'conn':>8s} {'s/image':>8s}")
    raw_sad = np.mean([t[0] for t in totals["raw mask"]])
    for name, rows in totals.items():
        sad, mse, grad, conn, seconds = np.mean(rows, axis=0)
        change = f"  ({sad / raw_sad - 1:+.0%} SAD)" if name != "raw mask" else ""
        print(f"{name:16s} {sad:8.3f} {mse:9.5f} {grad:8.3f} {conn:8.3f} {seconds:8.2f}{change}")
    plain, clean = np.mean(colour["plain cutout"]), np.mean(colour["decontaminated"])
    print(f"\nedge colour error against the true foreground: plain cutout {plain:.4f}, "
          f"decontaminated {clean:.4f} ({clean / plain - 1:+.0%})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
