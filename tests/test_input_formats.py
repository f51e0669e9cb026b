"""The input formats the README names, each decoded to the pixels its own decoder gives and
cut out exactly as the same pixels in a PNG; CMYK through its ICC profile; `remove()` with
no session."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image, ImageCms

from alphacut import RemoveOptions, Remover
from alphacut.imagefile import decode
from helpers import png_bytes, skimage_photo
from icc import cmyk_profile


def _pillow(format: str, **params: object) -> Callable[[Image.Image], bytes]:
    def encode(image: Image.Image) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, format, **params)
        return buffer.getvalue()

    return encode


def _heic(image: Image.Image) -> bytes:
    pillow_heif = pytest.importorskip("pillow_heif")
    buffer = io.BytesIO()
    pillow_heif.from_pillow(image).save(buffer, quality=90)
    return buffer.getvalue()


def _heic_pixels(data: bytes) -> Image.Image:
    import pillow_heif

    return pillow_heif.open_heif(io.BytesIO(data)).to_pillow().convert("RGB")


ENCODERS: dict[str, tuple[Callable[[Image.Image], bytes], bytes]] = {
    "heic": (_heic, b"ftyp"),
    "avif": (_pillow("AVIF", quality=80), b"ftyp"),
    "tiff": (_pillow("TIFF", compression="tiff_lzw"), b"II*\0"),
    "bmp": (_pillow("BMP"), b"BM"),
}


@pytest.fixture(scope="module")
def remover() -> Remover:
    return Remover("u2netp", options=RemoveOptions(only_mask=True))


@pytest.mark.parametrize("name", list(ENCODERS))
def test_format_gives_the_cutout_of_its_decoded_pixels(name: str, remover: Remover) -> None:
    encode, magic = ENCODERS[name]
    photo = skimage_photo("astronaut", 240)
    data = encode(photo)
    assert magic in data[:12]
    if name == "heic":
        pixels = _heic_pixels(data)
    else:
        with Image.open(io.BytesIO(data)) as opened:
            assert opened.format == name.upper()
            pixels = opened.convert("RGB")
    decoded = decode(data)
    assert decoded.format.lower() == {"heic": "heif"}.get(name, name)
    np.testing.assert_array_equal(np.asarray(decoded.image), np.asarray(pixels))
    if name in ("tiff", "bmp"):  # lossless: the photo itself
        np.testing.assert_array_equal(np.asarray(pixels), np.asarray(photo))
    mask = np.asarray(remover.remove_image(data))
    same_as_png = np.asarray(remover.remove_image(png_bytes(pixels)))
    np.testing.assert_array_equal(mask, same_as_png)
    assert mask.std() > 50  # the astronaut is found, not an empty mask


def test_cmyk_is_converted_through_its_icc_profile() -> None:
    profile = cmyk_profile()
    cmyk = skimage_photo("coffee", 200).convert("CMYK")
    buffer = io.BytesIO()
    cmyk.save(buffer, "JPEG", quality=95, icc_profile=profile)
    data = buffer.getvalue()
    with Image.open(io.BytesIO(data)) as opened:
        assert opened.mode == "CMYK"
        assert opened.info["icc_profile"] == profile
        through_profile = ImageCms.profileToProfile(
            opened,
            ImageCms.ImageCmsProfile(io.BytesIO(profile)),
            ImageCms.createProfile("sRGB"),
            outputMode="RGB",
        )
        plain = opened.convert("RGB")
    assert through_profile is not None
    decoded = decode(data)
    assert decoded.image.mode == "RGB"
    assert decoded.icc_profile is None  # the pixels are sRGB now; a CMYK profile would lie
    pixels = np.asarray(decoded.image, dtype=np.int16)
    np.testing.assert_array_equal(pixels, np.asarray(through_profile))
    # The warm paper of the profile shows: a profile-less conversion is far from it.
    assert float(np.abs(pixels - np.asarray(plain, dtype=np.int16)).mean()) > 8


def test_cmyk_with_a_broken_profile_falls_back_to_a_plain_conversion() -> None:
    cmyk = skimage_photo("coffee", 120).convert("CMYK")
    broken = bytearray(cmyk_profile())
    broken[128 + 4 + 12 * 3 + 4 : 128 + 4 + 12 * 3 + 8] = (10**6).to_bytes(4, "big")  # A2B0 offset
    buffer = io.BytesIO()
    cmyk.save(buffer, "JPEG", quality=95, icc_profile=bytes(broken))
    decoded = decode(buffer.getvalue())
    with Image.open(io.BytesIO(buffer.getvalue())) as opened:
        plain = np.asarray(opened.convert("RGB"))
    np.testing.assert_array_equal(np.asarray(decoded.image), plain)


def test_remove_without_a_session_uses_u2netp_and_loads_it_once() -> None:
    photo = png_bytes(skimage_photo("chelsea", 160))
    code = (
        "import logging, sys\n"
        "logging.basicConfig(level=logging.INFO, stream=sys.stderr)\n"
        "from alphacut import new_session, remove\n"
        "data = sys.stdin.buffer.read()\n"
        "first = remove(data)\n"
        "second = remove(data, only_mask=True)\n"
        "explicit = remove(data, session=new_session('u2netp'))\n"
        "print(first == explicit, len(second) > 0, first[:8] == b'\\x89PNG\\r\\n\\x1a\\n')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], input=photo, capture_output=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [b"True", b"True", b"True"]
    loads = [line for line in result.stderr.decode().splitlines() if "loaded u2netp" in line]
    assert len(loads) == 2, loads  # once for both session-less calls, once for new_session
