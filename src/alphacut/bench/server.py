"""Server benchmark: alphacut's server against rembg's, the same load, in one run.

    python -m alphacut.bench.server --rembg .venv-rembg/bin/rembg

Each round starts one server at a time on loopback, warms it up, sends the same
requests (u2netp, every photo of --images in turn) at the same concurrency, and
samples the resident memory of the server's process tree. Rounds alternate
between the two servers so that machine noise hits both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from .pipeline import machine_description

DEFAULT_IMAGES = Path(__file__).resolve().parents[3] / "tests" / "data" / "photos"


@dataclass
class RunResult:
    name: str
    seconds: float
    latencies: list[float]
    statuses: dict[int, int]
    peak_rss_mb: float
    requests: int = field(default=0)

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _tree_rss_mb(pid: int) -> float:
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        total += next(
            (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0
        )
        pending.extend(int(c) for c in children)
    return total / 1024


def _start(name: str, rembg: str, port: int) -> tuple[subprocess.Popen[bytes], str]:
    if name.startswith("alphacut"):
        command = [
            sys.executable,
            "-m",
            "alphacut",
            "serve",
            "--port",
            str(port),
            "--cache-mb",
            "0",
            "--log-level",
            "warning",
        ] + (["--fast"] if name == "alphacut-fast" else [])
        ready = "/readyz"
    else:
        command = [rembg, "s", "--host", "127.0.0.1", "--port", str(port)]
        ready = "/api"  # rembg serves its API docs here
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name} server exited with {process.returncode}: {' '.join(command)}")
        try:
            if httpx.get(base + ready, timeout=2).status_code == 200:
                return process, base
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise SystemExit(f"{name} server did not become ready")


async def _load(
    base: str, images: list[bytes], count: int, concurrency: int
) -> tuple[list[float], dict[int, int]]:
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    async with httpx.AsyncClient(timeout=600) as client:

        async def one(index: int) -> None:
            async with gate:
                started = time.perf_counter()
                try:
                    response = await client.post(
                        f"{base}/api/remove",
                        files={"file": (f"{index}.jpg", images[index % len(images)])},
                        data={"model": "u2netp"},
                    )
                    status = response.status_code
                except httpx.TransportError:
                    status = 0
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1

        await asyncio.gather(*(one(i) for i in range(count)))
    return latencies, statuses


def run_once(name: str, rembg: str, images: list[bytes], count: int, concurrency: int) -> RunResult:
    process, base = _start(name, rembg, _free_port())
    peak = [0.0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _tree_rss_mb(process.pid))
            time.sleep(0.05)

    try:
        asyncio.run(_load(base, images, 2, 1))  # warm-up: first-use allocations, model load
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.perf_counter()
        latencies, statuses = asyncio.run(_load(base, images, count, concurrency))
        seconds = time.perf_counter() - started
        stop.set()
        sampler.join()
        return RunResult(name, seconds, latencies, statuses, peak[0], count)
    finally:
        stop.set()
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rembg", required=True, help="path to the `rembg` executable (rembg[cli])"
    )
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES)
    parser.add_argument("--requests", type=int, default=36)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--fast",
        action="store_true",
        help="also run `alphacut serve --fast` (INT8; the photos should not be calibration ones "
        "for accuracy, but throughput does not depend on that)",
    )
    args = parser.parse_args(argv)
    images = [p.read_bytes() for p in sorted(args.images.iterdir()) if p.is_file()]
    print(
        f"machine: {machine_description()}; model u2netp; {len(images)} photos from {args.images}"
    )
    print(
        f"load: {args.requests} requests at concurrency {args.concurrency}, {args.rounds} rounds, interleaved\n"
    )
    engines = ["alphacut", *(["alphacut-fast"] if args.fast else []), "rembg"]
    results: dict[str, list[RunResult]] = {name: [] for name in engines}
    for round_index in range(args.rounds):
        for name in engines if round_index % 2 == 0 else engines[::-1]:
            result = run_once(name, args.rembg, images, args.requests, args.concurrency)
            results[name].append(result)
            print(
                f"round {round_index + 1} {name:13s} {result.throughput:6.2f} img/s  "
                f"p50 {result.percentile(0.5):6.2f}s  p99 {result.percentile(0.99):6.2f}s  "
                f"peak RSS {result.peak_rss_mb:7.0f} MB  statuses {dict(sorted(result.statuses.items()))}"
            )
    best = {name: max(runs, key=lambda r: r.throughput) for name, runs in results.items()}
    peak = {name: max(x.peak_rss_mb for x in runs) for name, runs in results.items()}
    r = best["rembg"]
    for name in engines[:-1]:
        a = best[name]
        print(f"\nbest of rounds   {name:>13s}      rembg   ratio")
        print(
            f"throughput (img/s) {a.throughput:11.2f}  {r.throughput:9.2f}   {a.throughput / r.throughput:.2f}x"
        )
        print(
            f"p50 latency (s)    {a.percentile(0.5):11.2f}  {r.percentile(0.5):9.2f}   {r.percentile(0.5) / a.percentile(0.5):.2f}x faster"
        )
        print(
            f"p99 latency (s)    {a.percentile(0.99):11.2f}  {r.percentile(0.99):9.2f}   {r.percentile(0.99) / a.percentile(0.99):.2f}x faster"
        )
        print(
            f"peak RSS (MB)      {peak[name]:11.0f}  {peak['rembg']:9.0f}   {peak['rembg'] / peak[name]:.2f}x less"
        )
    ok = all(x.statuses.get(200, 0) == x.requests for n in engines[:-1] for x in results[n])
    print(f"\nalphacut answered {'every' if ok else 'NOT every'} request with 200")
    print(f"rembg statuses: {[dict(x.statuses) for x in results['rembg']]}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
