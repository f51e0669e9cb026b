"""Pipeline benchmark: alphacut against rembg on the same photos, in one run.

    alphacut bench --images tests/data/photos --against rembg

Each engine runs in a child process of its own (so peak RSS is its own), rounds
alternate between the engines, and the best round of each is compared. alphacut
reports per-stage times (decode, prepare, infer, mask, compose, encode). Every
run is bytes in, PNG bytes out, with u2netp: what `rembg.remove(bytes)` does.
Photos of 5 megapixels or more are reported separately as "large".
"""

from __future__ import annotations

import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["image_sets", "machine_description", "run_benchmark"]

STAGES = ("decode", "prepare", "infer", "mask", "compose", "encode")
LARGE_PIXELS = 5_000_000


def machine_description(providers: str = "CPUExecutionProvider") -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from .._system import usable_cores

    return f"{cpu}, {usable_cores()} cores, {providers}"


def _alphacut_worker(paths: list[Path], model: str, jobs: int) -> dict[str, Any]:
    from ..imagefile import decode, encode
    from ..options import RemoveOptions, RuntimeOptions
    from ..pipeline import compose, prepare, saliency_to_mask
    from ..pool import load_session

    threads = max(1, _cores() // jobs)
    session = load_session(model, runtime=RuntimeOptions(intra_op_threads=threads))
    options = RemoveOptions()
    blobs = [p.read_bytes() for p in paths]

    def one(data: bytes) -> dict[str, float]:
        marks = [time.perf_counter()]
        decoded = decode(data)
        marks.append(time.perf_counter())
        tensor = prepare(decoded.image, session.spec)
        marks.append(time.perf_counter())
        saliency = session.run(tensor)
        marks.append(time.perf_counter())
        mask = saliency_to_mask(saliency[0], session.spec, decoded.image.size)
        marks.append(time.perf_counter())
        result = compose(decoded.image, [mask], options)
        marks.append(time.perf_counter())
        encode(result, options, decoded.icc_profile)
        marks.append(time.perf_counter())
        return {stage: marks[i + 1] - marks[i] for i, stage in enumerate(STAGES)}

    one(blobs[0])  # warm-up
    started = time.perf_counter()
    if jobs == 1:
        per_image = [one(b) for b in blobs]
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(jobs) as pool:
            per_image = list(pool.map(one, blobs))
    total = time.perf_counter() - started
    return {
        "total": total,
        "per_image": [sum(s.values()) for s in per_image],
        "stages": per_image,
        "providers": ",".join(session.providers),
    }


def _rembg_worker(paths: list[Path], model: str) -> dict[str, Any]:
    from rembg import new_session, remove

    session = new_session(model)
    blobs = [p.read_bytes() for p in paths]
    remove(blobs[0], session=session)  # warm-up
    per_image = []
    started = time.perf_counter()
    for blob in blobs:
        t = time.perf_counter()
        remove(blob, session=session)
        per_image.append(time.perf_counter() - t)
    return {"total": time.perf_counter() - started, "per_image": per_image}


def _cores() -> int:
    from .._system import usable_cores

    return usable_cores()


def _child(engine: str, paths: list[Path], model: str, jobs: int) -> dict[str, Any]:
    listing = json.dumps([str(p) for p in paths])
    command = [sys.executable, "-m", "alphacut.bench.pipeline", "--child", engine, model, str(jobs)]
    done = subprocess.run(command, input=listing, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{engine} benchmark failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def image_sets(images: Path, minimum_large: int = 8) -> dict[str, list[Path]]:
    """Ordinary photos, and photos of 5+ megapixels, repeated up to `minimum_large` so that
    several workers reach their steady state (with 4, their ramp-up and tail weigh heavily)."""
    from PIL import Image

    ordinary: list[Path] = []
    large: list[Path] = []
    for path in sorted(p for p in images.iterdir() if p.is_file() and not p.name.startswith(".")):
        with Image.open(path) as image:
            (large if image.width * image.height >= LARGE_PIXELS else ordinary).append(path)
    sets = {"ordinary": ordinary}
    if large:
        sets["large"] = (large * minimum_large)[: max(minimum_large, len(large))]
    return {name: paths for name, paths in sets.items() if paths}


def run_benchmark(
    images: Path, *, against: str | None, model: str, rounds: int, jobs: int
) -> list[str]:
    """Run the benchmark and return the report lines."""
    sets = image_sets(images)
    engines = [f"alphacut-j{jobs}", "alphacut-j1"] + ([against] if against else [])
    lines = [
        f"machine: {machine_description()}",
        f"model {model}; photos from {images}: "
        + ", ".join(f"{name} {len(paths)}" for name, paths in sets.items())
        + f"; {rounds} rounds, engines interleaved, best round reported",
    ]
    for name, paths in sets.items():
        runs: dict[str, list[dict[str, Any]]] = {e: [] for e in engines}
        for index in range(rounds):
            for engine in engines if index % 2 == 0 else engines[::-1]:
                worker = "rembg" if engine == against else "alphacut"
                runs[engine].append(
                    _child(worker, paths, model, jobs if engine.endswith(f"j{jobs}") else 1)
                )
        best = {e: min(runs[e], key=lambda r: r["total"]) for e in engines}
        rates = {e: len(paths) / best[e]["total"] for e in engines}
        lines.append(f"\n{name} photos ({len(paths)}):")
        for engine in engines:
            ratio = f"   {rates[engine] / rates[against]:.2f}x {against}" if against else ""
            lines.append(
                f"  {engine:12s} {rates[engine]:6.2f} img/s  peak RSS {best[engine]['rss_mb']:5.0f} MB{ratio}"
            )
        single = best["alphacut-j1"]["stages"]
        means = {s: sum(img[s] for img in single) / len(single) * 1000 for s in STAGES}
        outside = sum(v for s, v in means.items() if s != "infer")
        lines.append(
            "  alphacut stages, ms per image: " + "  ".join(f"{s} {means[s]:.1f}" for s in STAGES)
        )
        lines.append(
            f"  outside the model: {outside:.1f} ms = {outside / means['infer'] * 100:.1f}% of inference"
            f" ({best['alphacut-j1']['providers']})"
        )
    return lines


def _child_main(engine: str, model: str, jobs: str) -> None:
    paths = [Path(p) for p in json.loads(sys.stdin.read())]
    if engine == "rembg":
        result = _rembg_worker(paths, model)
    else:
        result = _alphacut_worker(paths, model, int(jobs))
    result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        _child_main(*sys.argv[2:5])
