"""POST /api/refine in-process: strokes against an earlier upload by reference (no image sent
again, no second inference), the same pixels as the library, and clear errors."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

pytest.importorskip("pymatting")

from alphacut import RemoveOptions, Remover
from alphacut.imagefile import decode
from alphacut.pipeline.hints import read_hints
from alphacut.server import ServerSettings, create_app
from helpers import PHOTOS
from test_server import ReadyClient, assert_error

PHOTO = (PHOTOS / "girl-1.jpg").read_bytes()


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with ReadyClient(create_app(ServerSettings(workers=2))) as c:
        yield c


def _stroke(size: tuple[int, int], box: tuple[int, int, int, int], grey: int) -> bytes:
    layer = Image.new("LA", size, (0, 0))
    layer.paste((grey, 255), box)
    buffer = io.BytesIO()
    layer.save(buffer, "PNG")
    return buffer.getvalue()


def _alpha(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).getchannel("A"))


def test_a_stroke_by_reference_matches_the_library(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = client.post("/api/remove", files={"file": ("girl.jpg", PHOTO, "image/jpeg")})
    assert first.status_code == 200
    reference = first.headers["x-alphacut-source"]
    assert reference == hashlib.sha256(PHOTO).hexdigest()
    size = Image.open(io.BytesIO(PHOTO)).size
    box = (0, 0, size[0] // 4, size[1] // 3)  # the sky and mountains at the top left
    hints = _stroke(size, box, 0)
    predictions = []
    real_predict = Remover.predict
    monkeypatch.setattr(
        Remover,
        "predict",
        lambda self, *a, **k: predictions.append(1) or real_predict(self, *a, **k),
    )
    stroked = client.post("/api/refine", data={"ref": reference},
                          files={"hints": ("h.png", hints, "image/png")})  # fmt: skip
    assert stroked.status_code == 200, stroked.text
    assert predictions == []  # the model's mask came from the first upload
    assert stroked.headers["x-alphacut-source"] == reference
    alpha = _alpha(stroked.content)
    assert alpha[box[1] : box[3], box[0] : box[2]].max() == 0  # removed where painted
    decoded = decode(PHOTO)
    expected = Remover("u2netp").process(
        decoded, RemoveOptions(refine="auto"), hints=read_hints(hints, size)
    )
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(stroked.content))),
                                  np.asarray(expected))  # fmt: skip
    predictions.clear()  # the library's own run above predicted; the server must not
    again = client.post("/api/refine", data={"ref": reference, "refine": "guided"},
                        files={"hints": ("h.png", hints, "image/png")})  # fmt: skip
    assert again.status_code == 200
    assert predictions == []


def test_image_and_hints_in_one_request(client: TestClient) -> None:
    size = Image.open(io.BytesIO(PHOTO)).size
    hints = _stroke(size, (0, 0, 40, 40), 0)
    done = client.post("/api/refine", files={"file": ("g.jpg", PHOTO, "image/jpeg"),
                                             "hints": ("h.png", hints, "image/png")})  # fmt: skip
    assert done.status_code == 200, done.text
    assert _alpha(done.content)[:40, :40].max() == 0


def test_refine_errors(client: TestClient) -> None:
    size = Image.open(io.BytesIO(PHOTO)).size
    hints = ("h.png", _stroke(size, (0, 0, 9, 9), 0), "image/png")
    unknown = client.post("/api/refine", data={"ref": "0" * 64}, files={"hints": hints})
    assert "send the image again" in assert_error(unknown, 404, "UnknownSource")
    both = client.post("/api/refine", data={"ref": "x"},
                       files={"hints": hints, "file": ("g.jpg", PHOTO, "image/jpeg")})  # fmt: skip
    assert_error(both, 400, "InputError")
    assert_error(client.post("/api/refine", files={"hints": hints}), 400, "InputError")
    no_hints = client.post("/api/refine", files={"file": ("g.jpg", PHOTO, "image/jpeg")})
    assert "hints" in assert_error(no_hints, 400, "InputError")
    small = ("h.png", _stroke((10, 10), (0, 0, 5, 5), 0), "image/png")
    wrong = client.post(
        "/api/refine", files={"file": ("g.jpg", PHOTO, "image/jpeg"), "hints": small}
    )
    assert "the hints are 10x10" in assert_error(wrong, 400, "InputError")
    junk = client.post("/api/refine", files={"file": ("g.jpg", PHOTO, "image/jpeg"),
                                             "hints": ("h.png", b"not a png", "image/png")})  # fmt: skip
    assert_error(junk, 415, "UnsupportedImage")
    bad_option = client.post("/api/refine", data={"refine": "magic"},
                             files={"file": ("g.jpg", PHOTO, "image/jpeg"), "hints": hints})  # fmt: skip
    assert_error(bad_option, 422, "OptionsError")


def test_refine_needs_the_api_key() -> None:
    with ReadyClient(create_app(ServerSettings(api_keys=("k",)))) as locked:
        size = Image.open(io.BytesIO(PHOTO)).size
        refused = locked.post("/api/refine", files={
            "file": ("g.jpg", PHOTO, "image/jpeg"),
            "hints": ("h.png", _stroke(size, (0, 0, 9, 9), 0), "image/png"),
        })  # fmt: skip
        assert_error(refused, 401, "AuthenticationFailed")


def test_remove_takes_hints_too(client: TestClient) -> None:
    """The same field name on /api/remove: hints there refine as /api/refine does."""
    size = Image.open(io.BytesIO(PHOTO)).size
    hints = _stroke(size, (0, 0, 40, 40), 0)
    files = {"file": ("g.jpg", PHOTO, "image/jpeg"), "hints": ("h.png", hints, "image/png")}
    by_remove = client.post("/api/remove", files=files)
    by_refine = client.post("/api/refine", files=files)
    assert by_remove.status_code == by_refine.status_code == 200
    assert by_remove.content == by_refine.content
    assert _alpha(by_remove.content)[:40, :40].max() == 0
