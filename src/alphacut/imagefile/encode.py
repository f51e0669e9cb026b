"""Encode a result image as PNG, WebP or JPEG, and write it atomically."""

from __future__ import annotations

import io

from PIL import Image

from ..options import OutputFormat, RemoveOptions
from .png import encode_png

__all__ = ["MEDIA_TYPES", "SUFFIXES", "encode"]

SUFFIXES: dict[str, str] = {"png": ".png", "webp": ".webp", "jpeg": ".jpg"}
MEDIA_TYPES: dict[str, str] = {"png": "image/png", "webp": "image/webp", "jpeg": "image/jpeg"}
_PIL_FORMATS: dict[str, str] = {"png": "PNG", "webp": "WEBP", "jpeg": "JPEG"}


def encode(image: Image.Image, options: RemoveOptions, icc_profile: bytes | None = None) -> bytes:
    """Encode `image` in `options.output_format`.

    JPEG has no alpha channel, so a transparent result is flattened onto white
    (set bgcolor for another colour). The ICC profile is written when
    `options.keep_icc_profile` is set and the image is RGB(A).
    """
    fmt: OutputFormat = options.output_format
    keep_icc = bool(icc_profile and options.keep_icc_profile and image.mode in ("RGB", "RGBA"))
    if fmt == "png" and image.mode in ("L", "LA", "RGB", "RGBA"):
        return encode_png(image, options.png_compress_level, icc_profile if keep_icc else None)
    params: dict[str, object] = {}
    if fmt == "png":
        params["compress_level"] = options.png_compress_level
    elif fmt == "webp":
        params.update(quality=options.quality, method=4, lossless=options.quality == 100)
    else:
        params.update(quality=options.quality)
        if image.mode in ("RGBA", "LA"):
            flat = Image.new("RGB", image.size, (255, 255, 255))
            flat.paste(image, mask=image.getchannel("A"))
            image = flat
    if keep_icc:
        params["icc_profile"] = icc_profile
    buffer = io.BytesIO()
    image.save(buffer, _PIL_FORMATS[fmt], **params)
    return buffer.getvalue()
