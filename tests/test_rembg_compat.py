"""alphacut against the real rembg, live, option by option (same model file, same machine)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from alphacut import remove
from helpers import png_bytes, skimage_photo

rembg = pytest.importorskip("rembg")


@pytest.fixture(scope="module")
def rembg_session():
    from alphacut.models import find_model, get_spec

    path = find_model(get_spec("u2netp"))
    assert path is not None, "run `alphacut models pull u2netp` first"
    # rembg finds the same verified file in the shared cache; it must never download here.
    return rembg.new_session("u2netp")


OPTION_CASES = {
    "default": {},
    "only_mask": {"only_mask": True},
    "bgcolor": {"bgcolor": (0, 128, 255, 255)},
    "post_process_mask": {"post_process_mask": True},
    "only_mask_post_processed": {"only_mask": True, "post_process_mask": True},
    "translucent_bgcolor": {"bgcolor": (255, 0, 0, 100)},
}


@pytest.mark.parametrize("case", sorted(OPTION_CASES))
@pytest.mark.parametrize("photo", ["chelsea", "astronaut", "coffee"])
def test_options_match_rembg(session, rembg_session, case: str, photo: str) -> None:
    data = png_bytes(skimage_photo(photo, 240))
    kwargs = OPTION_CASES[case]
    ours = np.asarray(Image.open(io.BytesIO(remove(data, session=session, **kwargs))), dtype=int)
    theirs = np.asarray(
        Image.open(io.BytesIO(rembg.remove(data, session=rembg_session, **kwargs))), dtype=int
    )
    assert ours.shape == theirs.shape
    assert int(np.abs(ours - theirs).max()) == 0


def test_rgba_input_matches_rembg(session, rembg_session) -> None:
    logo = skimage_photo("logo", 200)
    assert logo.mode == "RGBA"
    ours = np.asarray(remove(logo, session=session), dtype=int)
    theirs = np.asarray(rembg.remove(logo, session=rembg_session), dtype=int)
    assert np.abs(ours - theirs).max() == 0


def test_alpha_matting_matches_rembg(session, rembg_session) -> None:
    photo = skimage_photo("chelsea", 120)
    kwargs = {"alpha_matting": True, "alpha_matting_erode_size": 5}
    ours = np.asarray(remove(photo, session=session, **kwargs), dtype=int)
    theirs = np.asarray(rembg.remove(photo, session=rembg_session, **kwargs), dtype=int)
    assert ours.shape == theirs.shape == (photo.height, photo.width, 4)
    assert np.abs(ours[..., 3] - theirs[..., 3]).max() <= 2
