"""Real services on loopback for the scale-out tests: moto's standalone S3 server and a
Ray head node started with `ray start`, each one per test session (see conftest)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from live import free_port

BIN = Path(sys.executable).parent
S3_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextmanager
def s3_server() -> Iterator[dict[str, str]]:
    """moto's S3 server in its own process; yields the environment that points boto3 and
    s3fs at it (as a user's AWS_ENDPOINT_URL and credentials would)."""
    port = free_port()
    # What the server receives can be recorded (moto's recorder), to count requests.
    recording = Path(tempfile.mkdtemp(prefix="moto-")) / "requests.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "MOTO_RECORDER_FILEPATH": str(recording)},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "moto server exited"
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "moto server did not start"
                time.sleep(0.1)
        yield {**S3_CREDENTIALS, "AWS_ENDPOINT_URL": url}
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(recording.parent, ignore_errors=True)


@contextmanager
def recorded_requests(endpoint: str) -> Iterator[list[dict[str, str]]]:
    """Every request the moto server at `endpoint` receives inside the block (method, URL)."""
    httpx.post(f"{endpoint}/moto-api/recorder/reset-recording").raise_for_status()
    httpx.post(f"{endpoint}/moto-api/recorder/start-recording").raise_for_status()
    received: list[dict[str, str]] = []
    try:
        yield received
    finally:
        httpx.post(f"{endpoint}/moto-api/recorder/stop-recording").raise_for_status()
        text = httpx.get(f"{endpoint}/moto-api/recorder/download-recording").text
        received.extend(
            {"method": entry["method"], "url": entry["url"]}
            for entry in map(json.loads, text.splitlines())
        )


@contextmanager
def ray_head(env: dict[str, str]) -> Iterator[tuple[str, str]]:
    """A one-node Ray cluster started by `ray start --head` on loopback, 2 CPUs, no
    dashboard, a small object store; yields its address and its Ray Client URL. Its
    workers get `env`."""
    port, client_port = free_port(), free_port()
    temp = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
    full_env = {**os.environ, **env, "RAY_USAGE_STATS_ENABLED": "0"}
    full_env.pop("RAY_ADDRESS", None)
    command = [
        str(BIN / "ray"),
        "start",
        "--head",
        "--node-ip-address=127.0.0.1",
        f"--port={port}",
        f"--ray-client-server-port={client_port}",
        "--num-cpus=2",
        "--include-dashboard=false",
        f"--object-store-memory={200 * 2**20}",
        f"--temp-dir={temp}",
        "--disable-usage-stats",
    ]
    started = subprocess.run(command, env=full_env, capture_output=True, text=True, timeout=180)
    assert started.returncode == 0, started.stderr + started.stdout
    try:
        yield f"127.0.0.1:{port}", f"ray://127.0.0.1:{client_port}"
    finally:
        subprocess.run(
            [str(BIN / "ray"), "stop", "--force"], env=full_env, capture_output=True, timeout=120
        )
        shutil.rmtree(temp, ignore_errors=True)
