"""The fast path against exact mode: `remove()` throughput and mask agreement, one run.

    python -m alphacut.bench.fast --images DIR [--rounds 3]

Both sessions are loaded first; rounds then alternate between them over the same photos
(bytes in, PNG bytes out, as `remove(bytes)`), and the best round of each is compared.
Masks are compared at alpha >= 128 (IoU), each photo at its own size. Use photos that were
not used for calibration (the ones in alphacut/calibration were).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

__all__ = ["main", "run"]


def run(images: Path, *, rounds: int = 3, model: str = "u2netp") -> list[str]:
    from ..api import new_session, remove
    from ..graphs.quantize import calibration_files
    from ..options import RemoveOptions
    from ..remover import Remover
    from .pipeline import machine_description

    files = calibration_files(images, role="benchmark")
    blobs = [p.read_bytes() for p in files]
    exact = new_session(model)
    fast = new_session(model, fast=True)
    best = {"exact": float("inf"), "fast": float("inf")}
    for _ in range(rounds):
        for name, session in (("exact", exact), ("fast", fast)):
            started = time.perf_counter()
            for blob in blobs:
                remove(blob, session=session)
            best[name] = min(best[name], time.perf_counter() - started)
    mask_only = RemoveOptions(only_mask=True)
    ious = []
    for path, blob in zip(files, blobs, strict=True):
        want = np.asarray(Remover(exact).remove_image(blob, mask_only)) >= 128
        got = np.asarray(Remover(fast).remove_image(blob, mask_only)) >= 128
        union = int((want | got).sum())
        ious.append((1.0 if union == 0 else int((want & got).sum()) / union, path.name))
    worst = min(ious)
    exact_rate, fast_rate = len(blobs) / best["exact"], len(blobs) / best["fast"]
    return [
        f"machine: {machine_description()}",
        f"exact: {exact.description}",
        f"fast:  {fast.description}",
        f"{len(files)} photos from {images}, best of {rounds} interleaved rounds",
        f"remove() exact {exact_rate:.2f} img/s, fast {fast_rate:.2f} img/s: "
        f"{fast_rate / exact_rate:.2f}x",
        f"mask IoU fast vs exact: mean {np.mean([i for i, _ in ious]):.4f}, "
        f"worst {worst[0]:.4f} ({worst[1]})",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default="u2netp")
    args = parser.parse_args(argv)
    for line in run(args.images, rounds=args.rounds, model=args.model):
        print(line)


if __name__ == "__main__":
    main()
