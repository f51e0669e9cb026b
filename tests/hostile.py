"""A folder of hostile inputs: odd but valid images next to files that are not images at all.

`make_hostile_folder` writes it and returns the names (paths relative to the folder, with
forward slashes) of the valid images and of the invalid files. Real photos from
scikit-image are used wherever a photo fits, scaled down so the whole folder stays small.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = [
    "BOMB_SIZE",
    "GIF_FRAME_COLOURS",
    "WIDE_GRAY_MARKERS",
    "bomb_png",
    "make_hostile_folder",
    "photo",
    "png_chunk",
]

# Width and height the bomb's IHDR claims.
BOMB_SIZE = (40_000, 40_000)
# The 16-bit PNG's first row starts with these values (16-bit value, expected 8-bit value).
WIDE_GRAY_MARKERS = ((65535, 255), (32768, 128), (0, 0), (257, 1), (1000, 4))
# Each GIF frame gets a solid band of one of these colours along its top rows.
GIF_FRAME_COLOURS = ((255, 0, 0), (0, 255, 0), (0, 0, 255))


def photo(name: str, size: tuple[int, int]) -> Image.Image:
    """A scikit-image sample photo resized to exactly `size` (width, height)."""
    from skimage import data

    image = Image.fromarray(getattr(data, name)())
    return image.resize(size, Image.Resampling.LANCZOS)


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    """One PNG chunk: length, type, payload and the CRC of type + payload."""
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def bomb_png(width: int, height: int) -> bytes:
    """A valid-looking 8-bit RGB PNG header that claims `width` × `height` pixels, with a
    tiny IDAT (a few rows of zeros) that could never fill it."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 4096, 9)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def _encoded(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def _write_valid(folder: Path) -> list[str]:
    files: dict[str, bytes] = {}

    # A normal JPEG photo.
    files["astronaut.jpg"] = _encoded(photo("astronaut", (128, 128)), "JPEG", quality=85)

    # Stored 120 wide and 80 high, EXIF orientation 6: shown (and decoded) 80 × 120.
    rotated = photo("chelsea", (120, 80))
    exif = Image.Exif()
    exif[0x0112] = 6
    files["rotated-exif6.jpg"] = _encoded(rotated, "JPEG", quality=85, exif=exif.tobytes())

    # 16-bit grayscale: the camera photo widened by 257 (so it narrows back exactly),
    # with marker values at the start of the first row.
    gray = np.asarray(photo("camera", (96, 64)), dtype=np.uint16) * 257
    for column, (value, _) in enumerate(WIDE_GRAY_MARKERS):
        gray[0, column] = value
    wide = Image.fromarray(gray)
    assert wide.mode == "I;16", wide.mode
    files["gray16.png"] = _encoded(wide, "PNG")

    # CMYK JPEG.
    cmyk = photo("coffee", (120, 80)).convert("CMYK")
    files["coffee-cmyk.jpg"] = _encoded(cmyk, "JPEG", quality=85)

    # Palette PNG whose index 0 is transparent: a photo with a transparent frame around it.
    palette = photo("rocket", (96, 64)).quantize(colors=63)
    indices = np.asarray(palette, dtype=np.uint8) + 1
    indices[:8, :] = 0
    indices[-8:, :] = 0
    colours = [0, 0, 0, *palette.getpalette()[: 63 * 3]]
    with_hole = Image.fromarray(indices, "P")
    with_hole.putpalette(colours)
    files["rocket-palette.png"] = _encoded(with_hole, "PNG", transparency=0)

    # Animated GIF, 3 frames of the same photo, each with a band of its own colour on top.
    base = photo("astronaut", (64, 64))
    frames = []
    for colour in GIF_FRAME_COLOURS:
        frame = base.copy()
        frame.paste(colour, (0, 0, 64, 16))
        frames.append(frame.quantize(colors=64))
    files["animated.gif"] = _encoded(
        frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0
    )

    # WebP, with a name that has spaces and a non-ASCII letter.
    files["café au lait.webp"] = _encoded(photo("coffee", (150, 100)), "WEBP", quality=80)

    # RGBA PNG with real transparency: the (opaque) logo cut to a disc with a soft edge.
    logo = photo("logo", (100, 100))
    yy, xx = np.mgrid[:100, :100]
    distance = np.hypot(xx - 49.5, yy - 49.5)
    alpha = np.clip((48 - distance) / 8 * 255, 0, 255).round().astype(np.uint8)
    logo.putalpha(Image.fromarray(alpha, "L"))
    files["logo-rgba.png"] = _encoded(logo, "PNG")

    # Grayscale JPEG, one folder down.
    files["nested/gray.jpg"] = _encoded(photo("camera", (90, 90)), "JPEG", quality=85)

    # The smallest images possible.
    files["pixel-1x1.png"] = _encoded(Image.new("RGB", (1, 1), (200, 30, 30)), "PNG")
    files["pixels-2x1.png"] = _encoded(photo("astronaut", (2, 1)), "PNG")

    # A PNG named .jpg, and a JPEG named .dat.
    files["really-a-png.jpg"] = _encoded(photo("rocket", (120, 80)), "PNG")
    files["nested/photo.dat"] = _encoded(photo("chelsea", (90, 60)), "JPEG", quality=85)

    for name, payload in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(payload)
    return list(files)


_PDF = b"""%PDF-1.4
1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj
2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj
3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 72 72] >> endobj
trailer << /Root 1 0 R >>
%%EOF
"""

_SVG = b"""<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">
  <circle cx="32" cy="32" r="24" fill="tomato"/>
</svg>
"""


def _write_invalid(folder: Path) -> list[str]:
    whole = _encoded(photo("chelsea", (200, 133)), "JPEG", quality=90)
    files = {
        "empty.png": b"",
        "notes.txt": b"Shopping list:\n- coffee\n- cat food\n\nThese are notes, not pixels.\n",
        "truncated.jpg": whole[: len(whole) * 2 // 5],
        "document.pdf": _PDF,
        "vector.svg": _SVG,
        "bomb.png": bomb_png(*BOMB_SIZE),
        "garbage.bin": np.random.default_rng(20240601).bytes(2048),
    }
    for name, payload in files.items():
        (folder / name).write_bytes(payload)
    return list(files)


def make_hostile_folder(folder: Path) -> tuple[list[str], list[str]]:
    """Fill `folder` with valid and invalid inputs; returns (valid names, invalid names)."""
    folder.mkdir(parents=True, exist_ok=True)
    return _write_valid(folder), _write_invalid(folder)
