"""Scale-out benchmark: `alphacut remove DIR --engine ray` against the local engine on the
same folder of real photos, the real commands, in one run.

    python -m alphacut.bench.scale [--rounds 3] [--copies 3] [--fast]

The folder holds the photos alphacut ships for its tests and scikit-image's colour and
grey photos (34), each as itself and as centre and corner crops (`--copies`, 2 by default:
102 different files). Rounds interleave three runs, each into a fresh folder, with no other
cluster running beside them:
- the local engine (a thread pool, one inference thread per core);
- the Ray engine starting its own local cluster, as `--engine ray` alone does;
- the Ray engine joining a standing cluster (`ray start --head`, one untimed job first),
  then `--ray-address`, as a nightly job on a standing cluster does.
Start-up (imports, cluster start, model loads) is included, as a user would see it. The
best round of each is compared, the outputs are checked byte-identical, and the Ray
engine's overhead on one machine is printed with the CPU named.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .pipeline import machine_description

TEST_PHOTOS = Path(__file__).resolve().parents[3] / "tests" / "data" / "photos"
SKIMAGE_PHOTOS = (
    "astronaut.png", "chelsea.png", "coffee.png", "hubble_deep_field.jpg", "motorcycle_left.png",
    "motorcycle_right.png", "rocket.jpg", "retina.jpg", "camera.png", "moon.png", "coins.png",
)  # fmt: skip


def photo_folder(target: Path, copies: int) -> int:
    """Write the benchmark's photos into `target`; returns how many files."""
    import skimage
    from PIL import Image

    sources = sorted(
        p for p in TEST_PHOTOS.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")
    )
    sources += [Path(skimage.__file__).parent / "data" / name for name in SKIMAGE_PHOTOS]
    target.mkdir(parents=True, exist_ok=True)
    count = 0
    for source in sources:
        image = Image.open(source).convert("RGB")
        width, height = image.size
        for index, box in enumerate(_crops(width, height)[: copies + 1]):
            image.crop(box).save(target / f"{source.stem}-{index}.jpg", quality=92)
            count += 1
    return count


def _crops(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """The whole photo, then crops of 7/8, 3/4 and 5/8 of each side, centred and in corners."""
    boxes = [(0, 0, width, height)]
    for eighths in (7, 6, 5):
        w, h = width * eighths // 8, height * eighths // 8
        boxes += [((width - w) // 2, (height - h) // 2, (width + w) // 2, (height + h) // 2)]
        boxes += [(0, 0, w, h), (width - w, height - h, width, height)]
    return boxes


def _timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return time.perf_counter() - started


def _outputs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _start_head(env: dict[str, str]) -> str:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    ray = str(Path(sys.executable).with_name("ray"))
    subprocess.run(
        [ray, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
         f"--num-cpus={os.cpu_count() or 1}", "--include-dashboard=false",
         "--disable-usage-stats"],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    return f"127.0.0.1:{port}"


def _busy_fraction(seconds: float) -> float:
    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # all, idle + iowait

    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


def _wait_until_idle(limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while _busy_fraction(1.0) > 0.05 and time.monotonic() < deadline:
        pass


def _on_standing_cluster(command: list[str], photos: Path, out: Path, env: dict[str, str]) -> float:
    """Time `command` as a job on a cluster that already ran one (its Ray Data actors and
    workers started), then stop that cluster, so no idle cluster slows the other runs."""
    address = _start_head(env)
    ray = str(Path(sys.executable).with_name("ray"))
    try:
        warm = [*command[:3], str(next(photos.iterdir())), "-o", str(out.with_name("warm"))]
        _timed([*warm, "--engine", "ray", "--ray-address", address, "--overwrite"], env)
        _wait_until_idle()  # a standing cluster has long finished starting its agents
        return _timed([*command, "--engine", "ray", "--ray-address", address], env)
    finally:
        subprocess.run([ray, "stop", "--force"], env=env, capture_output=True, check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--copies", type=int, default=2, choices=range(10), help="crops of each photo, 0 to 9"
    )
    parser.add_argument("--fast", action="store_true", help="also time both engines with --fast")
    args = parser.parse_args(argv)
    alphacut = str(Path(sys.executable).with_name("alphacut"))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.setdefault("RAY_AUTH_MODE", "token")
    with tempfile.TemporaryDirectory(prefix="alphacut-scale-") as work:
        photos = Path(work) / "photos"
        count = photo_folder(photos, args.copies)
        print(f"machine: {machine_description()}; {count} photos; u2netp; {args.rounds} rounds")
        modes: list[tuple[str, list[str]]] = [("", [])]
        modes += [("--fast", ["--fast"])] if args.fast else []
        for label, flags in modes:
            runs = ["local engine", "ray, own local cluster", "ray, running cluster"]
            times: dict[str, list[float]] = {name: [] for name in runs}
            made: dict[str, dict[str, bytes]] = {}
            for index in range(args.rounds):
                for name in runs if index % 2 == 0 else list(reversed(runs)):
                    out = Path(work) / "out"
                    shutil.rmtree(out, ignore_errors=True)
                    command = [
                        alphacut,
                        "-q",
                        "remove",
                        "-m",
                        "u2netp",
                        str(photos),
                        "-o",
                        str(out),
                    ]
                    command += ["--no-progress", *flags]
                    if name == "ray, own local cluster":
                        times[name].append(_timed([*command, "--engine", "ray"], env))
                    elif name == "ray, running cluster":
                        times[name].append(_on_standing_cluster(command, photos, out, env))
                    else:
                        times[name].append(_timed(command, env))
                    made[name] = _outputs(out)
            assert all(len(m) == count for m in made.values()), "missing outputs"
            identical = all(m == made["local engine"] for m in made.values())
            local = min(times["local engine"])
            print(f"\n{label or 'exact mode'}: best of {args.rounds}")
            print("| run | seconds | images/s | overhead against local |")
            print("| --- | --- | --- | --- |")
            for name, measured in times.items():
                best = min(measured)
                overhead = f"{(best / local - 1) * 100:+.1f}%" if name != "local engine" else ""
                print(f"| {name} | {best:.2f} | {count / best:.2f} | {overhead} |")
            print(f"outputs byte-identical across engines: {identical}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
