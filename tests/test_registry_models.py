"""The models that come out of registry packages give rembg's pixels: u2net from its wheel
against rembg's own u2net session, and the IS-Net rows from npm against rembg's
`dis_custom` session on the same file."""

from __future__ import annotations

import functools
import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
from PIL import Image

from alphacut import RuntimeOptions, new_session, remove
from alphacut.models import find_model, get_spec
from alphacut.pipeline.resize import lanczos_resize
from helpers import PHOTOS

rembg = pytest.importorskip("rembg")
imagehash = pytest.importorskip("imagehash")


@contextmanager
def pillow_12_resizing() -> Iterator[None]:
    """rembg as it runs on Pillow 12 and older, whose LANCZOS made rembg's references: a
    resize of both axes done as two one-axis passes (see alphacut.pipeline.resize). Pillow
    13 moves rembg's own masks by up to 7 levels on u2net (255 on IS-Net's plants-1)."""
    original = Image.Image.resize

    def two_passes(self: Image.Image, size: Any, resample: Any = None, *args: Any) -> Any:
        both = size[0] != self.width and size[1] != self.height
        if resample == Image.Resampling.LANCZOS and both and not args:
            return lanczos_resize(self, (size[0], size[1]))
        return original(self, size, resample, *args)

    Image.Image.resize = two_passes  # type: ignore[method-assign]
    try:
        yield
    finally:
        Image.Image.resize = original  # type: ignore[method-assign]


@functools.cache
def _ours(name: str) -> Any:
    # The saved optimised graph is the optimised-cache tests' business; skipping it here
    # spares a fresh machine seconds of graph rewriting per IS-Net file.
    return new_session(name, runtime=RuntimeOptions(reuse_optimized_model=False))


@functools.cache
def _theirs(name: str) -> Any:
    """rembg's session: its own for u2net, `dis_custom` on our verified file for IS-Net."""
    if name == "u2net":
        _local(name)
        return rembg.new_session("u2net")
    return rembg.new_session("dis_custom", model_path=_local(name))


def _local(name: str) -> str:
    path = find_model(get_spec(name))
    assert path is not None, f"run `alphacut models pull {name}` (make models does)"
    return str(path)


def _alpha(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).getchannel("A"), dtype=int)


def _compare(name: str, photo: str, *, live: bool = False) -> tuple[int, bool]:
    """(largest alpha difference against rembg on Pillow 12's resizing, and with `live`
    whether the phash equals rembg's as it runs here; else True)."""
    data = (PHOTOS / photo).read_bytes()
    theirs = _theirs(name)
    ours = remove(data, session=_ours(name))
    with pillow_12_resizing():
        reference = rembg.remove(data, session=theirs)
    same_hash = not live or imagehash.phash(Image.open(io.BytesIO(ours))) == imagehash.phash(
        Image.open(io.BytesIO(rembg.remove(data, session=theirs)))
    )
    return int(np.abs(_alpha(ours) - _alpha(reference)).max()), same_hash


# hockey and im_27 are among the photos where Pillow 13 moves rembg's mask most.
@pytest.mark.parametrize("photo", ["girl-1.jpg", "hockey.png", "im_27.png"])
def test_u2net_from_its_wheel_is_rembgs_u2net(photo: str) -> None:
    difference, same_hash = _compare("u2net", photo, live=True)
    assert difference <= 2
    assert same_hash


@pytest.mark.parametrize(
    ("name", "photo"),
    [("isnet-general-fp16", "plants-1.jpg"), ("isnet-general-quantized", "girl-1.jpg")],
)
def test_isnet_rows_from_npm_match_rembgs_dis_custom(name: str, photo: str) -> None:
    difference, _ = _compare(name, photo)
    assert difference == 0


def test_the_shim_reproduces_pillow_12_where_pillow_13_differs() -> None:
    """The reference above means something only if the shim changes rembg's answer on this
    Pillow where Pillow changed, and leaves it alone where it did not."""
    import PIL

    data = (PHOTOS / "hockey.png").read_bytes()
    theirs = _theirs("u2net")
    live = _alpha(rembg.remove(data, session=theirs))
    with pillow_12_resizing():
        reference = _alpha(rembg.remove(data, session=theirs))
    moved = int(np.abs(live - reference).max())
    assert moved >= 3 if int(PIL.__version__.split(".")[0]) >= 13 else moved == 0
