"""What the README promises of `alphacut serve`: API keys from a file and the environment,
--allow-downloads, and the result cache's byte bound and LRU order."""

from __future__ import annotations

import http.server
import io
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageOps

from helpers import PHOTOS, png_bytes, skimage_photo
from live import ALPHACUT, free_port, live_server
from test_server import ReadyClient, assert_error, client_for

PHOTO = (PHOTOS / "car-1.jpg").read_bytes()


def test_api_keys_from_a_file_and_the_environment_on_a_live_server(tmp_path: Path) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text("# the shop's front end\nfront-end-key\n\n  batch-key  \n# old-key\n")
    env = {"ALPHACUT_API_KEYS": "ops-key, second-ops-key"}
    with live_server("--api-keys-file", str(keys), "--cache-mb", "0", env=env) as (base, _):

        def status(key: str | None) -> int:
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            response = httpx.post(f"{base}/api/remove", content=PHOTO, headers=headers, timeout=60)
            return response.status_code

        for key in ("front-end-key", "batch-key", "ops-key", "second-ops-key"):
            assert status(key) == 200, key
        for key in (None, "old-key", "# old-key", "nope", "front-end"):
            assert status(key) == 401, key
        assert httpx.get(f"{base}/api/config").json()["auth_required"] is True
        assert httpx.get(f"{base}/healthz").status_code == 200


def test_an_unreadable_api_keys_file_stops_the_server_at_once(tmp_path: Path) -> None:
    process = subprocess.run(
        [ALPHACUT, "serve", "--port", str(free_port()), "--api-keys-file", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert process.returncode in (2, 64), process.stderr
    assert "cannot read API key file" in process.stderr or "is a directory" in process.stderr


class _Mirror:
    """A local model mirror that serves the wrong bytes for every file and logs each request,
    so a test sees whether the server tried to download."""

    def __init__(self, payload: bytes) -> None:
        self.requests: list[str] = []
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                mirror.requests.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[_Mirror]:
    """Model caches holding only u2netp, and downloads pointed at a local mirror."""
    from alphacut.models import find_model, get_spec

    u2netp = find_model(get_spec("u2netp"))
    assert u2netp is not None
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(u2netp, models / u2netp.name)
    monkeypatch.setenv("ALPHACUT_MODEL_DIR", str(models))
    monkeypatch.setenv("U2NET_HOME", str(tmp_path / "u2net"))
    monkeypatch.setenv("REMBG_HOME", str(tmp_path / "rembg"))
    served = _Mirror(b"not the model you asked for" * 1000)
    monkeypatch.setenv("ALPHACUT_MODEL_MIRROR", served.url)
    yield served
    served.close()


def test_requests_download_models_only_with_allow_downloads(
    mirror: _Mirror, tmp_path: Path
) -> None:
    wanted = "/api/remove?model=isnet-general-use"
    with client_for() as closed:
        message = assert_error(closed.post(wanted, content=PHOTO), 404, "ModelNotFound")
        assert "models pull" in message
        listed = {row["name"]: row for row in closed.get("/api/models").json()["models"]}
        assert listed["isnet-general-use"]["allowed"] is False
        assert listed["u2netp"]["available"] is True
    assert mirror.requests == []
    with client_for(allow_downloads=True) as open_server:
        listed = {row["name"]: row for row in open_server.get("/api/models").json()["models"]}
        assert listed["isnet-general-use"]["allowed"] is True
        failed = open_server.post(wanted, content=PHOTO)
        assert failed.status_code in (502, 503), failed.text
        assert failed.json()["error"]["type"] in ("ChecksumMismatch", "DownloadFailed")
        assert "isnet-general-use" in failed.json()["error"]["message"]
        assert open_server.post("/api/remove", content=PHOTO).status_code == 200
    assert mirror.requests == ["/isnet-general-use.onnx"]
    left = sorted(p.name for p in (tmp_path / "models").iterdir())
    assert left == ["u2netp.onnx"], "a refused download left a file behind"


def _variants() -> list[bytes]:
    """Five different photos whose cutouts are within a few percent of one size."""
    base = skimage_photo("coffee", 120)
    images = [
        base,
        ImageOps.mirror(base),
        ImageOps.flip(base),
        base.rotate(180),
        base.transpose(Image.Transpose.ROTATE_90),
    ]
    return [png_bytes(image) for image in images]


def _cache(client: ReadyClient, photo: bytes) -> str:
    response = client.post("/api/remove", content=photo)
    assert response.status_code == 200, response.text
    return str(response.headers["x-alphacut-cache"])


def _cache_bytes(client: ReadyClient) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("alphacut_cache_bytes "):
            return float(line.split()[1])
    raise AssertionError("no alphacut_cache_bytes in /metrics")


def test_result_cache_is_bounded_in_bytes_and_evicts_the_least_recently_used() -> None:
    photos = _variants()
    with client_for(cache_bytes=0) as uncached:
        sizes = [len(uncached.post("/api/remove", content=p).content) for p in photos]
    assert max(sizes) < 1.2 * min(sizes), sizes
    budget = 4 * max(sizes)  # room for four results, never five
    with client_for(cache_bytes=budget) as client:
        a, b, c, d, e = photos
        assert [_cache(client, p) for p in (a, b, c, d)] == ["miss"] * 4
        assert _cache_bytes(client) == sum(sizes[:4])
        assert _cache(client, a) == "hit"  # a is now the most recently used
        assert _cache(client, e) == "miss"  # evicts b, the least recently used
        assert _cache_bytes(client) <= budget
        assert _cache(client, a) == "hit"
        assert _cache(client, c) == "hit"
        assert _cache(client, b) == "miss"  # gone; storing it again evicts d
        assert _cache(client, d) == "miss"
        assert _cache_bytes(client) <= budget
    big = png_bytes(skimage_photo("astronaut", 512))
    with client_for(cache_bytes=budget) as client:
        assert _cache(client, big) == "miss"
        assert _cache(client, big) == "miss"  # larger than a quarter of the budget: not kept
        assert _cache_bytes(client) == 0
        assert _cache(client, a) == "miss"
        assert _cache(client, a) == "hit"


def test_cache_mb_on_the_command_line_sets_the_bound() -> None:
    photo = png_bytes(skimage_photo("coffee", 120))
    with live_server("--cache-mb", "0.1") as (base, _):
        first = httpx.post(f"{base}/api/remove", content=photo, timeout=60)
        assert first.headers["x-alphacut-cache"] == "miss"
        assert len(first.content) < 0.1 * 1024 * 1024 / 4
        assert (
            httpx.post(f"{base}/api/remove", content=photo, timeout=60).headers["x-alphacut-cache"]
            == "hit"
        )
        big = png_bytes(skimage_photo("astronaut", 400))
        for _ in range(2):
            response = httpx.post(f"{base}/api/remove", content=big, timeout=60)
            assert response.headers["x-alphacut-cache"] == "miss"
        assert Image.open(io.BytesIO(response.content)).mode == "RGBA"
