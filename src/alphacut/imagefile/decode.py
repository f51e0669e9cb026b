"""Turn bytes, paths, PIL images or arrays into one 8-bit RGB or RGBA image.

Everything that can go wrong with an input surfaces here as an `InputError`
naming the source: empty data, non-images, truncated or corrupt files, and
images over the pixel limit, which are refused from their header before any
pixel memory is allocated.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Union

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from .._extras import require
from ..errors import (
    ImageTooLarge,
    InputError,
    MissingDependency,
    StorageError,
    UnsupportedImage,
)
from ..options import Limits

__all__ = ["DecodedImage", "ImageSource", "decode", "describe_source"]

log = logging.getLogger("alphacut.imagefile")

ImageSource = Union[
    bytes, bytearray, memoryview, str, "os.PathLike[str]", Image.Image, np.ndarray, IO[bytes]
]

# Exceptions Pillow's decoders raise on damaged data; all mean "this file is broken".
_DECODE_FAILURES = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    IndexError,
    TypeError,
    zlib.error,
)


@dataclass
class DecodedImage:
    """An input ready for the pipeline.

    image: mode "RGB", or "RGBA" when the input has transparency; EXIF orientation applied.
    icc_profile: the input's RGB colour profile, if it has one worth keeping.
    """

    image: Image.Image
    icc_profile: bytes | None
    source: str
    format: str | None = None


def describe_source(data: object) -> str:
    """A short name for `data` in messages: the path, or the kind of object."""
    if isinstance(data, (str, os.PathLike)):
        return os.fspath(data)
    if isinstance(data, (bytes, bytearray, memoryview)):
        return f"<{len(data)} bytes>"
    if isinstance(data, Image.Image):
        return f"<PIL image {data.mode} {data.width}x{data.height}>"
    if isinstance(data, np.ndarray):
        return f"<array {data.dtype} {data.shape}>"
    return getattr(data, "name", None) or f"<{type(data).__name__}>"


def decode(
    data: ImageSource, *, limits: Limits | None = None, source: str | None = None
) -> DecodedImage:
    """Decode `data` into a `DecodedImage`, or raise an `InputError` that names `source`."""
    limits = limits or Limits()
    name = source or describe_source(data)
    if isinstance(data, Image.Image):
        _check_pixels(data.size, limits, name)
        return _finish(data, name, data.format)
    if isinstance(data, np.ndarray):
        image = _from_array(data, name)
        _check_pixels(image.size, limits, name)
        return _finish(image, name, None)
    if isinstance(data, (bytes, bytearray, memoryview)):
        if len(data) == 0:
            raise UnsupportedImage("empty input (0 bytes)", source=name)
        return _open(io.BytesIO(data), limits, name)
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        try:
            size = path.stat().st_size
            handle = path.open("rb")
        except FileNotFoundError:
            raise InputError("no such file", source=name) from None
        except IsADirectoryError:
            raise InputError("is a directory, not an image file", source=name) from None
        except PermissionError:
            raise StorageError("cannot read: permission denied", source=name) from None
        except OSError as exc:  # a failing disk or network mount: not the image's fault
            raise StorageError(f"cannot read: {exc.strerror or exc}", source=name) from exc
        with handle:
            if size == 0:
                raise UnsupportedImage("empty file (0 bytes)", source=name)
            return _open(handle, limits, name)
    if hasattr(data, "read"):
        if not (hasattr(data, "seekable") and data.seekable()):
            return decode(data.read(), limits=limits, source=name)
        # A seekable reader (a local or object-store file) is sniffed from its header, so a
        # huge or hostile file is refused before it is read whole.
        if not data.read(1):
            raise UnsupportedImage("empty input (0 bytes)", source=name)
        data.seek(0)
        return _open(data, limits, name)
    raise InputError(
        f"unsupported input type {type(data).__name__}; pass bytes, a path, a PIL image or an array",
        source=name,
    )


def _open(handle: IO[bytes], limits: Limits, name: str) -> DecodedImage:
    _register_optional_formats()
    head = handle.read(512)
    handle.seek(0)
    try:
        image = Image.open(handle)
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(
            f"over the pixel limit of {limits.max_pixels / 1e6:.1f} megapixels, refused from the "
            f"header before decoding ({exc}; {limits.raise_hint})",
            source=name,
        ) from None
    except UnidentifiedImageError:
        if _is_heif(head):  # Pillow reads neither without pillow-heif: name the extra
            require("pillow_heif", "reading HEIC and AVIF images")
        raise UnsupportedImage(_not_an_image_reason(head), source=name) from None
    except _DECODE_FAILURES as exc:
        raise UnsupportedImage(f"corrupt image header: {exc}", source=name) from None
    with image:
        _check_pixels(image.size, limits, name)
        try:
            image.load()
        except Image.DecompressionBombError as exc:
            raise ImageTooLarge(f"{exc} ({limits.raise_hint})", source=name) from None
        except _DECODE_FAILURES as exc:
            raise UnsupportedImage(
                f"corrupt or truncated {image.format or 'image'} data: {exc}", source=name
            ) from None
        return _finish(image, name, image.format, owned=True)


def _check_pixels(size: tuple[int, int], limits: Limits, name: str) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise UnsupportedImage(f"image has no pixels ({width}x{height})", source=name)
    if width * height > limits.max_pixels:
        raise ImageTooLarge(
            f"{width}x{height} is {width * height / 1e6:.1f} megapixels, over the limit of "
            f"{limits.max_pixels / 1e6:.1f} ({limits.raise_hint})",
            source=name,
        )


def _finish(image: Image.Image, name: str, fmt: str | None, *, owned: bool = False) -> DecodedImage:
    icc = image.info.get("icc_profile") or None
    try:
        if owned:
            # Our own decoded image: rotate in place rather than copying 24 MB per 6-MP photo.
            ImageOps.exif_transpose(image, in_place=True)
        else:
            image = ImageOps.exif_transpose(image)  # a caller's image is never modified
    except _DECODE_FAILURES as exc:
        log.warning("%s: ignoring unreadable EXIF orientation (%s)", name, exc)
    try:
        rgb, icc = _to_rgb_or_rgba(image, icc)
    except _DECODE_FAILURES as exc:
        raise UnsupportedImage(
            f"cannot convert {image.mode} pixels to RGB: {exc}", source=name
        ) from None
    return DecodedImage(rgb, icc, name, fmt)


def _to_rgb_or_rgba(image: Image.Image, icc: bytes | None) -> tuple[Image.Image, bytes | None]:
    mode = image.mode
    if mode in ("RGB", "RGBA"):
        return image, icc if _profile_space(icc) == b"RGB " else None
    if mode == "CMYK":
        return _cmyk_to_rgb(image, icc), None
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        return Image.fromarray(_wide_gray_to_uint8(image), "L").convert("RGB"), None
    has_alpha = mode in ("LA", "La", "PA", "RGBa") or (mode == "P" and "transparency" in image.info)
    # A gray profile cannot tag the RGB output, so only RGB profiles survive.
    return image.convert("RGBA" if has_alpha else "RGB"), icc if _profile_space(
        icc
    ) == b"RGB " else None


def _profile_space(icc: bytes | None) -> bytes | None:
    # The ICC header stores the data colour space as a 4-byte tag at offset 16.
    return icc[16:20] if icc and len(icc) >= 20 else None


def _cmyk_to_rgb(image: Image.Image, icc: bytes | None) -> Image.Image:
    if icc and _profile_space(icc) == b"CMYK":
        try:
            source_profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(
                image, source_profile, ImageCms.createProfile("sRGB"), outputMode="RGB"
            )
            if converted is not None:
                return converted
        except (ImageCms.PyCMSError, OSError, ValueError) as exc:
            log.info("CMYK profile unusable (%s); using a plain conversion", exc)
    return image.convert("RGB")


def _wide_gray_to_uint8(image: Image.Image) -> np.ndarray:
    values = np.asarray(image)
    if image.mode == "F":
        scale = 255.0 if float(np.nanmax(values, initial=0.0)) <= 1.0 else 1.0
        narrow: np.ndarray = np.clip(np.nan_to_num(values) * scale, 0, 255).round().astype(np.uint8)
        return narrow
    wide = np.clip(values.astype(np.int64), 0, 65535)
    scaled: np.ndarray = ((wide * 255 + 32767) // 65535).astype(np.uint8)
    return scaled


def _from_array(array: np.ndarray, name: str) -> Image.Image:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise InputError(f"array shape {array.shape} is not HxW, HxWx3 or HxWx4", source=name)
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    elif array.dtype == np.uint16:
        array = ((array.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    elif np.issubdtype(array.dtype, np.floating):
        array = np.clip(np.nan_to_num(array) * 255.0, 0, 255).round().astype(np.uint8)
    elif array.dtype != np.uint8:
        raise InputError(
            f"array dtype {array.dtype} is not uint8, uint16, bool or float", source=name
        )
    channels = 1 if array.ndim == 2 else array.shape[2]
    return Image.fromarray(np.ascontiguousarray(array), {1: "L", 3: "RGB", 4: "RGBA"}[channels])


_TEXT_BYTES = bytes(range(32, 127)) + b"\t\n\r\f\b"


_STILL_IMAGE_BRANDS = (b"avif", b"avis", b"heic", b"heix", b"mif1", b"msf1", b"hevc")
_VIDEO_HINT = "a video, not an image: use `alphacut video` for videos"


def _is_heif(head: bytes) -> bool:
    """HEIC, HEIF or AVIF: an ISO media file whose brand is a still image."""
    return head[4:8] == b"ftyp" and head[8:12] in _STILL_IMAGE_BRANDS


def _is_video(head: bytes) -> bool:
    if head[4:8] == b"ftyp":  # MP4, MOV, 3GP and friends (AVIF and HEIC are stills)
        return head[8:12] not in _STILL_IMAGE_BRANDS
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # Matroska / WebM
        return True
    return (head.startswith(b"RIFF") and head[8:12] == b"AVI ") or head.startswith(b"FLV\x01")


def _not_an_image_reason(head: bytes) -> str:
    if _is_video(head):
        return _VIDEO_HINT
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"%PDF"):
        return "a PDF document, not an image"
    lowered = stripped[:256].lower()
    if lowered.startswith(b"<svg") or (lowered.startswith(b"<?xml") and b"<svg" in head.lower()):
        return "an SVG vector drawing; convert it to PNG first"
    if lowered.startswith((b"<!doctype html", b"<html")):
        return "an HTML page, not an image"
    if head and all(b in _TEXT_BYTES or b >= 0x80 for b in head) and b"\x00" not in head:
        return "a text file, not an image"
    return "not an image format alphacut can read"


@functools.cache
def _register_optional_formats() -> None:
    # HEIC/AVIF come from optional plugins; registering them is cheap but not free,
    # so it happens on the first decode rather than at import.
    with contextlib.suppress(MissingDependency):  # absent: a HEIC input says so when it comes
        require("pillow_heif", "reading HEIC and AVIF images").register_heif_opener()
