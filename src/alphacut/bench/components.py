"""The figures the README gives for single components, each measured side by side:

- PNG encoding: alphacut's encoder against Pillow's default, on the same cutouts, pixels checked;
- model load: from the saved optimised graph against ONNX Runtime optimising it again;
- inference: the saved graph with the blocked-layout rewrite against ONNX Runtime's own
  optimisation of the model (what rembg runs), at all cores and at one thread.

Rounds alternate between the two sides of each pair; the best of each is reported.
"""

from __future__ import annotations

import functools
import io
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["run_components"]


def _best(rounds: int, pairs: Sequence[tuple[str, Callable[[], Any]]]) -> dict[str, float]:
    best = {name: float("inf") for name, _ in pairs}
    for index in range(rounds):
        for name, work in pairs if index % 2 == 0 else pairs[::-1]:
            started = time.perf_counter()
            work()
            best[name] = min(best[name], time.perf_counter() - started)
    return best


def _png_lines(cutouts: list[Any], rounds: int) -> list[str]:
    from PIL import Image

    from ..imagefile.png import encode_png

    def ours() -> list[bytes]:
        return [encode_png(image) for image in cutouts]

    def pillows() -> list[bytes]:
        encoded = []
        for image in cutouts:
            buffer = io.BytesIO()
            image.save(buffer, "PNG")  # Pillow's default: zlib level 6, adaptive filters
            encoded.append(buffer.getvalue())
        return encoded

    for data, image in zip(ours(), cutouts, strict=True):
        with Image.open(io.BytesIO(data)) as decoded:
            if not np.array_equal(np.asarray(decoded), np.asarray(image)):
                raise RuntimeError("alphacut's PNG does not decode to the encoded pixels")
    best = _best(rounds, [("alphacut", ours), ("pillow", pillows)])
    sizes = {"alphacut": sum(map(len, ours())), "pillow": sum(map(len, pillows()))}
    megapixels = sum(i.width * i.height for i in cutouts) / 1e6
    return [
        f"PNG encoding, {len(cutouts)} RGBA cutouts ({megapixels:.1f} MP): alphacut level 2 "
        f"{best['alphacut'] * 1000:.0f} ms, Pillow default {best['pillow'] * 1000:.0f} ms: "
        f"{best['pillow'] / best['alphacut']:.1f}x faster, identical pixels, "
        f"{sizes['alphacut'] / sizes['pillow']:.2f}x the size"
    ]


def _load_lines(model: str, rounds: int) -> list[str]:
    from ..options import RuntimeOptions
    from ..pool import load_session

    saved = RuntimeOptions(backend="onnxruntime")
    fresh = RuntimeOptions(backend="onnxruntime", reuse_optimized_model=False)
    load_session(model, runtime=saved)  # make sure the saved copy exists
    times: dict[str, float] = {"saved": float("inf"), "fresh": float("inf")}
    for index in range(rounds):
        order = (("saved", saved), ("fresh", fresh))
        for name, runtime in order if index % 2 == 0 else order[::-1]:
            times[name] = min(times[name], load_session(model, runtime=runtime).load_seconds)
    return [
        f"model load, {model}: saved optimised graph {times['saved'] * 1000:.0f} ms, "
        f"optimised again {times['fresh'] * 1000:.0f} ms "
        f"({times['fresh'] / times['saved']:.1f}x)"
    ]


def _inference_lines(model: str, photo: Path, rounds: int, cores: int) -> list[str]:
    from PIL import Image

    from ..options import RuntimeOptions
    from ..pipeline import prepare
    from ..pool import load_session

    lines = []
    for threads in sorted({cores, 1}, reverse=True):
        rewritten = load_session(
            model, runtime=RuntimeOptions(backend="onnxruntime", intra_op_threads=threads)
        )
        plain = load_session(
            model,
            runtime=RuntimeOptions(
                backend="onnxruntime", intra_op_threads=threads, reuse_optimized_model=False
            ),
        )
        with Image.open(photo) as image:
            tensor = prepare(image.convert("RGB"), rewritten.spec)
        outputs = [session.run(tensor)[0] for session in (rewritten, plain)]
        identical = np.array_equal(outputs[0], outputs[1])
        best = _best(
            rounds,
            [
                ("rewritten", functools.partial(rewritten.run, tensor)),
                ("plain", functools.partial(plain.run, tensor)),
            ],
        )
        lines.append(
            f"inference, {model} on {photo.name}, {threads} thread{'s' if threads > 1 else ''}: "
            f"ONNX Runtime's graph {best['plain'] * 1000:.0f} ms, alphacut's rewrite "
            f"{best['rewritten'] * 1000:.0f} ms ({best['plain'] / best['rewritten']:.2f}x), "
            f"outputs {'bit-identical' if identical else 'DIFFERENT'}"
        )
    return lines


def run_components(
    images: Sequence[Path], *, model: str = "u2netp", rounds: int = 5, cores: int = 2
) -> list[str]:
    """Report lines for the PNG encoder, model loading and the graph rewrite."""
    from ..imagefile import decode
    from ..remover import Remover

    remover = Remover(model)
    cutouts = [remover.process(decode(path)) for path in images]
    lines = [f"\ncomponents (best of {rounds}, interleaved):"]
    lines += ["  " + line for line in _png_lines(cutouts, rounds)]
    lines += ["  " + line for line in _load_lines(model, rounds)]
    lines += ["  " + line for line in _inference_lines(model, images[0], rounds * 2, cores)]
    return lines
