"""The model used when none is named: u2net (the comparison's choice, and rembg's default),
or $ALPHACUT_MODEL. The rest of the suite runs with ALPHACUT_MODEL=u2netp (conftest); these
tests unset it to see what a user gets."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alphacut import ModelNotFound, RemoveOptions, Remover, remove
from alphacut.metrics import mask_iou
from alphacut.models import DEFAULT_MODEL, default_model
from alphacut.server import ServerSettings
from helpers import PHOTOS, alphacut


@pytest.fixture
def shipped_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ALPHACUT_MODEL", raising=False)


def _mask_of(model: str, photo: Path) -> np.ndarray:
    mask = Remover(model).remove_image(photo.read_bytes(), RemoveOptions(only_mask=True))
    return np.asarray(mask) >= 128


@pytest.mark.usefixtures("shipped_default")
def test_the_shipped_default_is_u2net() -> None:
    assert DEFAULT_MODEL == "u2net"
    assert default_model() == "u2net"
    assert ServerSettings().default_model == "u2net"


def test_alphacut_model_names_another(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALPHACUT_MODEL", " isnet-general-fp16 ")
    assert default_model() == "isnet-general-fp16"
    assert ServerSettings().default_model == "isnet-general-fp16"
    monkeypatch.setenv("ALPHACUT_MODEL", "u2nett")
    with pytest.raises(ModelNotFound, match=r"ALPHACUT_MODEL: .*u2nett.*u2net"):
        default_model()


@pytest.mark.usefixtures("shipped_default")
def test_remove_with_no_model_flag_cuts_as_u2net(tmp_path: Path) -> None:
    """The issue's check: `alphacut remove girl-1.jpg` with no model flag gives u2net's mask
    (within IoU 0.95), where u2netp leaves both arms half transparent."""
    photo = PHOTOS / "girl-1.jpg"
    out = tmp_path / "girl-1.png"
    done = alphacut("remove", str(photo), "-o", str(out), "--only-mask")
    assert done.returncode == 0, done.stderr
    got = np.asarray(Image.open(out)) >= 128
    u2net, u2netp = _mask_of("u2net", photo), _mask_of("u2netp", photo)
    assert mask_iou(got, u2net) >= 0.95
    assert mask_iou(got, u2netp) < 0.9  # the photo tells the two apart
    assert "ALPHACUT_MODEL" in alphacut("remove", "--help").stdout


@pytest.mark.usefixtures("shipped_default")
def test_remove_without_a_session_uses_the_default() -> None:
    """rembg's `remove(data)` runs u2net; so does alphacut's, with the same pixels as a
    session named u2net."""
    data = (PHOTOS / "car-1.jpg").read_bytes()
    default = remove(data, only_mask=True)
    named = Remover("u2net").remove_image(data, RemoveOptions(only_mask=True))
    assert isinstance(default, bytes)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(default))), np.asarray(named))
