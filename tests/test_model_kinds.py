"""Every rembg model kind, run on small real ONNX files, against rembg's own sessions.

rembg's session classes load the same file (only their download step is pointed at it),
so each comparison is alphacut's pre- and post-processing against rembg's, end to end.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import inspect
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from click.testing import CliRunner
from PIL import Image

import alphacut
from alphacut import LicenseNotAccepted, RemoveOptions, Remover, remove
from alphacut.cli.main import cli
from alphacut.models import MODELS, ensure_model, get_spec
from alphacut.pool import load_session
from helpers import skimage_photo
from tiny_models import pointwise_model, sam_models

rembg = pytest.importorskip("rembg")
from rembg.sessions import sessions_names  # noqa: E402

PHOTO = skimage_photo("astronaut", 192)
CLOUD = {"withoutbg", "atlascloud"}  # they send images to a paid remote API: out of scope


def rembg_session(monkeypatch: pytest.MonkeyPatch, cls: type, path: object) -> Any:
    """rembg's own session class, loading `path` instead of downloading."""
    monkeypatch.setattr(cls, "download_models", classmethod(lambda _cls, *a, **k: path))
    return cls(
        cls.name(), ort.SessionOptions(), providers=["CPUExecutionProvider"], model_path=path
    )


def alpha_difference(a: Image.Image, b: Image.Image) -> int:
    assert a.size == b.size
    assert a.mode == b.mode
    return int(np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).max())


def test_every_local_rembg_model_is_registered_and_listed() -> None:
    local = set(sessions_names) - CLOUD
    assert local <= set(MODELS), sorted(local - set(MODELS))
    listed = CliRunner().invoke(cli, ["models", "list"])
    assert listed.exit_code == 0, listed.output
    names = {line.split()[0] for line in listed.output.splitlines() if line.strip()}
    assert local <= names


def test_remove_has_rembgs_exact_signature() -> None:
    def shape(function: Any) -> list[tuple[str, Any, Any]]:
        return [
            (p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()
        ]

    assert shape(alphacut.remove) == shape(rembg.remove)
    # The 9th positional argument is decontaminate in both.
    assert list(inspect.signature(alphacut.remove).parameters)[8] == "decontaminate"
    with pytest.raises(TypeError, match="unexpected keyword"):
        remove(b"", no_such_option=1)


def test_a_non_commercial_model_downloads_only_with_consent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = b"stand-in for bria-rmbg-2.0.onnx" * 100
    (tmp_path / "served").mkdir()
    (tmp_path / "served" / "bria-rmbg-2.0.onnx").write_bytes(payload)
    monkeypatch.setenv("ALPHACUT_MODEL_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("U2NET_HOME", str(tmp_path / "u2net"))
    monkeypatch.setenv("REMBG_HOME", str(tmp_path / "rembg"))
    monkeypatch.delenv("ALPHACUT_ACCEPT_LICENSES", raising=False)
    spec = dataclasses.replace(
        get_spec("bria-rmbg"), checksum="sha256:" + hashlib.sha256(payload).hexdigest()
    )
    assert spec.restriction is not None
    with pytest.raises(LicenseNotAccepted, match=r"CC BY-NC 4\.0.*non-commercial"):
        ensure_model(spec)
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())

    result = subprocess.run(
        [str(Path(sys.executable).with_name("alphacut")), "models", "pull", "bria-rmbg"],
        capture_output=True,
        text=True,
        env=os.environ,
        check=False,
    )
    assert result.returncode == 69
    assert "CC BY-NC 4.0" in result.stderr
    assert "--accept-license bria-rmbg" in result.stderr

    with _serve(tmp_path / "served") as base:
        monkeypatch.setenv("ALPHACUT_MODEL_MIRROR", base)
        assert ensure_model(spec, accept_licenses=["BRIA-RMBG"]).read_bytes() == payload
        (tmp_path / "cache" / "bria-rmbg.onnx").unlink()
        monkeypatch.setenv("ALPHACUT_ACCEPT_LICENSES", "cc by-nc 4.0")
        assert ensure_model(spec).read_bytes() == payload


def test_birefnet_sigmoid_output_matches_rembg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rembg.sessions.birefnet_portrait import BiRefNetSessionPortrait

    weights = np.array([[2.0, -1.5, 0.7]])
    path = pointwise_model(tmp_path / "birefnet.onnx", 1024, weights)
    theirs = rembg.remove(PHOTO, session=rembg_session(monkeypatch, BiRefNetSessionPortrait, path))
    ours = remove(PHOTO, session=load_session("birefnet-portrait", model_path=path))
    assert alpha_difference(ours, theirs) <= 1


def test_cloth_categories_match_rembg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rembg.sessions.u2net_cloth_seg import Unet2ClothSession

    # Four class scores from the colours, so that every class wins somewhere in the photo.
    weights = np.array([[0.0, 0.0, 0.0], [3.0, -1.0, -1.0], [-1.0, 3.0, -1.0], [-1.0, -1.0, 3.0]])
    path = pointwise_model(tmp_path / "cloth.onnx", 768, weights)
    theirs_session = rembg_session(monkeypatch, Unet2ClothSession, path)
    ours_session = load_session("u2net_cloth_seg", model_path=path)
    stacked = remove(PHOTO, session=ours_session)
    assert stacked.size == (PHOTO.width, PHOTO.height * 3)
    assert alpha_difference(stacked, rembg.remove(PHOTO, session=theirs_session)) == 0
    for category in ("upper", "lower", "full", "attire"):
        ours = remove(PHOTO, session=ours_session, cc=category)
        theirs = rembg.remove(PHOTO, session=theirs_session, cc=category)
        assert alpha_difference(ours, theirs) == 0, category
        assert 0 < int((np.asarray(ours)[..., 3] > 0).sum()) < PHOTO.width * PHOTO.height
    masks = Remover(ours_session).remove_image(PHOTO, RemoveOptions(only_mask=True))
    assert masks.size == stacked.size


def test_sam_prompts_match_rembg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rembg.sessions.sam import SamSession

    encoder, decoder = sam_models(tmp_path)
    theirs_session = rembg_session(monkeypatch, SamSession, (encoder, decoder))
    ours_session = load_session("sam", model_path=encoder)
    photo = skimage_photo("chelsea", 300)  # 300 x 200: scaled by 3.42 onto the canvas
    prompts: list[list[dict[str, Any]]] = [
        [{"type": "point", "data": [60, 50], "label": 1}],
        [{"type": "rectangle", "data": [150, 100, 260, 180]}],
    ]
    masks = []
    for prompt in prompts:
        ours = remove(photo, session=ours_session, only_mask=True, sam_prompt=prompt)
        theirs = rembg.remove(photo, session=theirs_session, only_mask=True, sam_prompt=prompt)
        assert alpha_difference(ours, theirs) == 0
        masks.append(np.asarray(ours) > 0)
    # The disc follows the prompt: around (60, 50) for the point, (150, 100) for the box.
    assert masks[0][50, 60]
    assert not masks[0][50, 250]
    assert masks[1][100, 150]
    assert not masks[1][10, 10]
    centre = remove(photo, session=ours_session, only_mask=True)
    assert (
        alpha_difference(centre, rembg.remove(photo, session=theirs_session, only_mask=True)) == 0
    )


def test_custom_kinds_use_their_preprocessing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rembg.sessions.ben_custom import BenCustomSession
    from rembg.sessions.u2net_custom import U2netCustomSession

    for name, cls, side in (
        ("ben_custom", BenCustomSession, 1024),
        ("u2net_custom", U2netCustomSession, 320),
    ):
        path = pointwise_model(tmp_path / f"{name}.onnx", side, np.array([[1.0, 0.5, -2.0]]))
        theirs = rembg.remove(PHOTO, session=rembg_session(monkeypatch, cls, path))
        ours = remove(PHOTO, session=load_session(name, model_path=path))
        assert alpha_difference(ours, theirs) <= 1, name
    with pytest.raises(alphacut.ModelNotFound, match="--model-path"):
        load_session("ben_custom")


def test_decontaminate_and_vitmatte_match_rembg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, session: Any
) -> None:
    from rembg import matting, new_session

    rembg_u2netp = new_session("u2netp")
    ours = remove(PHOTO, session=session, decontaminate=True)
    theirs = rembg.remove(PHOTO, session=rembg_u2netp, decontaminate=True)
    assert alpha_difference(ours, theirs) <= 1
    assert alpha_difference(ours, remove(PHOTO, session=session)) > 0  # colours really changed

    # A 4-channel "ViTMatte" (image + trimap in, alpha out) that leans on the trimap.
    vit = _four_channel_model(tmp_path / "vitmatte-small-distinctions-646.onnx")
    monkeypatch.setattr(
        matting._ViTMatteFiles, "download_models", classmethod(lambda c, *a, **k: str(vit))
    )
    matting._sessions.clear()
    monkeypatch.setenv("ALPHACUT_MODEL_DIR", str(tmp_path))
    spec = get_spec("vitmatte-small-distinctions-646")
    monkeypatch.setitem(MODELS, spec.name, dataclasses.replace(spec, checksum=None))
    ours = remove(PHOTO, session=session, vitmatte=True)
    theirs = rembg.remove(PHOTO, session=rembg_u2netp, vitmatte=True)
    assert alpha_difference(ours, theirs) <= 1
    with pytest.raises(alphacut.OptionsError, match="refines edges"):
        load_session("vitmatte-small-distinctions-646")


def _four_channel_model(path: Path) -> Path:
    import onnx.helper as h
    from onnx import TensorProto, numpy_helper

    from tiny_models import _save

    weights = np.array([[0.2, 0.1, 0.1, 0.6]], dtype=np.float32).reshape(1, 4, 1, 1)
    graph = h.make_graph(
        [h.make_node("Conv", ["pixel_values", "w"], ["alphas"])],
        "vitmatte",
        [h.make_tensor_value_info("pixel_values", TensorProto.FLOAT, [1, 4, 1024, 1024])],
        [h.make_tensor_value_info("alphas", TensorProto.FLOAT, [1, 1, 1024, 1024])],
        [numpy_helper.from_array(weights, "w")],
    )
    return _save(graph, path)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


from contextlib import contextmanager  # noqa: E402


@contextmanager
def _serve(root: Path) -> Iterator[str]:
    handler = lambda *a, **k: _Quiet(*a, directory=str(root), **k)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
