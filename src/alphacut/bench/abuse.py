"""Abuse replay: the probes of a hostile client against a real `alphacut serve` on loopback.

    python -m alphacut.bench.abuse

One server with two API keys answers each probe in turn. Per probe it prints the status
that came back, the time it took and the server's peak resident memory so far, then asks
/healthz; the run fails (exit 1) if the server stops answering, or a probe gets another
answer than the one expected.
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from PIL import Image

from .pipeline import machine_description

PHOTOS = Path(__file__).resolve().parents[3] / "tests" / "data" / "photos"
KEY_A, KEY_B = {"Authorization": "Bearer key-a"}, {"Authorization": "Bearer key-b"}


@dataclass(frozen=True)
class Probe:
    name: str
    expected: int
    send: Callable[[str], int]


def _jpeg(side: int) -> bytes:
    out = io.BytesIO()
    Image.open(PHOTOS / "girl-1.jpg").convert("RGB").resize((side, side)).save(out, "JPEG")
    return out.getvalue()


def _status(method: str, url: str, **kwargs: object) -> int:
    return httpx.request(method, url, timeout=120, **kwargs).status_code  # type: ignore[arg-type]


def _raw(base: str, request: bytes, wait_s: float) -> int:
    """Send raw bytes; the status line's code, or 0 if the server closed without one."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait_s + 5) as connection:
        connection.sendall(request)
        answer = b""
        try:
            while b"\r\n" not in answer and (chunk := connection.recv(4096)):
                answer += chunk
        except OSError:
            return 0
    parts = answer.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def _slowloris(base: str) -> int:
    """20 connections trickling headers; 0 once the server has closed every one."""
    host, port = base.removeprefix("http://").split(":")
    held = [socket.create_connection((host, int(port)), timeout=5) for _ in range(20)]
    for connection in held:
        connection.sendall(b"POST /api/remove HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    deadline = time.monotonic() + 30
    open_ = len(held)
    while open_ and time.monotonic() < deadline:
        open_ = 0
        for connection in held:
            try:
                connection.sendall(b"X-Slow: 1\r\n")
                connection.settimeout(0.01)
                open_ += connection.recv(1) != b""
            except TimeoutError:
                open_ += 1
            except OSError:
                pass
        time.sleep(0.5)
    for connection in held:
        connection.close()
    return 0 if not open_ else 200


def _refine_other_keys_upload(base: str) -> int:
    photo = (PHOTOS / "car-1.jpg").read_bytes()
    first = httpx.post(f"{base}/api/remove", content=photo, headers=KEY_A, timeout=120)
    hints = io.BytesIO()
    Image.new("LA", Image.open(io.BytesIO(photo)).size, (0, 0)).save(hints, "PNG")
    return _status(
        "POST",
        f"{base}/api/refine",
        data={"ref": first.headers["X-Alphacut-Source"]},
        files={"hints": ("h.png", hints.getvalue(), "image/png")},
        headers=KEY_B,
    )


def _read_other_keys_job(base: str, clip: Path) -> int:
    video = {"file": ("clip.mp4", clip.read_bytes(), "video/mp4")}
    job = httpx.post(f"{base}/api/video", files=video, headers=KEY_A, timeout=120).json()
    status = _status("GET", f"{base}{job['status_url']}", headers=KEY_B)
    httpx.delete(f"{base}{job['status_url']}", headers=KEY_A, timeout=30)
    return status


def probes(clip: Path | None) -> list[Probe]:
    small, large = _jpeg(500), _jpeg(1500)
    concat = b"ffconcat version 1.0\nfile 'sibling.mp4'\n"
    found = [
        Probe("a=true&ae=150 on 500x500", 422,
              lambda b: _status("POST", f"{b}/api/remove?a=true&ae=150", content=small, headers=KEY_A)),
        Probe("a=true on 1500x1500 (2.25 MP)", 413,
              lambda b: _status("POST", f"{b}/api/remove?a=true", content=large, headers=KEY_A)),
        Probe("a=true&ae=60 on 500x500 (allowed)", 200,
              lambda b: _status("POST", f"{b}/api/remove?a=true&ae=60", content=small, headers=KEY_A)),
        Probe("non-ASCII bearer token", 401,
              lambda b: _raw(b, b"GET /api/models HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             b"Authorization: Bearer s\xe9cret\r\n\r\n", 10)),
        Probe("refine with another key's ref", 404, _refine_other_keys_upload),
        Probe("/metrics without a key", 401, lambda b: _status("GET", f"{b}/metrics")),
        Probe("DNS-rebound Host header", 421,
              lambda b: _status("GET", f"{b}/api/config", headers={"Host": "evil.example"})),
        Probe("upload that stops arriving", 408,
              lambda b: _raw(b, b"POST /api/remove HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             b"Authorization: Bearer key-a\r\nContent-Length: 999999\r\n\r\nxx", 30)),
        Probe("20 slowloris connections (0: all cut off)", 0, _slowloris),
        Probe("concat playlist as a video", 415,
              lambda b: _status("POST", f"{b}/api/video", headers=KEY_A,
                                files={"file": ("clip", concat, "video/mp4")})),
    ]  # fmt: skip
    if clip is not None:
        found.append(
            Probe("read another key's video job", 404, lambda b: _read_other_keys_job(b, clip))
        )
    return found


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clip", type=Path, help="a short MP4 for the video-job probe")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        keys = Path(scratch) / "keys"
        keys.write_text("key-a\nkey-b\n")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [str(Path(sys.executable).with_name("alphacut")), "serve", "--port", str(port),
             "--api-keys-file", str(keys), "--state-dir", str(Path(scratch) / "state"),
             "--header-timeout", "2", "--body-timeout", "2", "--log-level", "warning"],
            env={**os.environ},
        )  # fmt: skip
        try:
            return _replay(base, server, probes(args.clip))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)


def _replay(base: str, server: subprocess.Popen[bytes], replayed: list[Probe]) -> int:
    deadline = time.monotonic() + 120
    while not _healthy(f"{base}/readyz"):
        if time.monotonic() > deadline or server.poll() is not None:
            print("alphacut: the server did not start", file=sys.stderr)
            return 1
        time.sleep(0.2)
    print(f"machine: {machine_description()}; server pid {server.pid}")
    print(f"{'probe':44s} {'status':>6s} {'want':>5s} {'seconds':>8s} {'peak RSS MB':>12s}  health")
    failures = 0
    for probe in replayed:
        started = time.perf_counter()
        try:
            status = probe.send(base)
        except (httpx.HTTPError, OSError) as exc:
            status = -1
            print(f"  ({probe.name}: {exc})")
        elapsed = time.perf_counter() - started
        healthy = _healthy(f"{base}/healthz")
        failures += status != probe.expected or not healthy
        print(
            f"{probe.name:44s} {status:6d} {probe.expected:5d} {elapsed:8.2f} "
            f"{_peak_rss_mb(server.pid):12.0f}  {'ok' if healthy else 'DOWN'}"
        )
    print(f"{len(replayed) - failures} of {len(replayed)} probes answered as expected")
    return 1 if failures else 0


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    sys.exit(main())
