"""Folder benchmark: `alphacut remove DIR` against `rembg p DIR`, the real commands, in one run.

    python -m alphacut.bench.batch --rembg .venv-rembg/bin/rembg [--images DIR] [--rounds 3]

Rounds alternate between the two commands; each writes into a fresh folder, and
the best round of each is compared. Start-up (imports, model load) is included,
as a user would see it.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .pipeline import machine_description

DEFAULT_IMAGES = Path(__file__).resolve().parents[3] / "tests" / "data" / "photos"


def _timed(command: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{command[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rembg", required=True, help="path to the `rembg` executable (rembg[cli])"
    )
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    count = sum(1 for p in args.images.iterdir() if p.is_file())
    alphacut = str(Path(sys.executable).with_name("alphacut"))
    print(
        f"machine: {machine_description()}; {count} photos from {args.images}; u2netp; {args.rounds} rounds"
    )
    times: dict[str, list[float]] = {"alphacut remove": [], "rembg p": []}
    for index in range(args.rounds):
        order = list(times) if index % 2 == 0 else list(reversed(times))
        for name in order:
            with tempfile.TemporaryDirectory(prefix="alphacut-bench-") as folder:
                out = Path(folder) / "out"
                out.mkdir()
                if name == "rembg p":
                    command = [args.rembg, "p", "-m", "u2netp", str(args.images), str(out)]
                else:
                    command = [
                        alphacut,
                        "-q",
                        "remove",
                        "-m",
                        "u2netp",
                        str(args.images),
                        "-o",
                        str(out),
                        "--no-progress",
                    ]
                seconds = _timed(command)
                made = sum(1 for _ in out.rglob("*.png"))
                shutil.rmtree(out)
            times[name].append(seconds)
            print(
                f"round {index + 1} {name:16s} {seconds:6.2f} s  {count / seconds:5.2f} img/s  ({made} outputs)"
            )
    best = {name: min(values) for name, values in times.items()}
    ratio = best["rembg p"] / best["alphacut remove"]
    print(
        f"\nbest: alphacut remove {count / best['alphacut remove']:.2f} img/s, "
        f"rembg p {count / best['rembg p']:.2f} img/s: {ratio:.2f}x"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
