"""A small but real CMYK ICC profile (v2, input class, an 8-bit CMYK→Lab lookup table), built
here because no CMYK profile ships with the test machine's packages."""

from __future__ import annotations

import itertools
import struct

import numpy as np


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ \0\0\0\0" + _s15(x) + _s15(y) + _s15(z)


def _desc(text: str) -> bytes:
    ascii_text = text.encode() + b"\0"
    return (
        b"desc\0\0\0\0"
        + struct.pack(">I", len(ascii_text))
        + ascii_text
        + struct.pack(">II", 0, 0)  # no Unicode description
        + struct.pack(">HB", 0, 0)
        + b"\0" * 67  # no ScriptCode description
    )


def _srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (0..1) to CIE Lab against D50, the profile connection space's white."""
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    # sRGB to XYZ, Bradford-adapted to D50 (the ICC's own matrix).
    to_xyz = np.array(
        [[0.4360, 0.3851, 0.1431], [0.2225, 0.7169, 0.0606], [0.0139, 0.0971, 0.7142]]
    )
    xyz = linear @ to_xyz.T / np.array([0.9642, 1.0, 0.8249])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack(
        [116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])],
        axis=-1,
    )


def _lut8(paper: tuple[float, float, float]) -> bytes:
    """CMYK→Lab on a 2-point grid: each ink subtracts its primary from a tinted paper white."""
    corners = []
    for c, m, y, k in itertools.product((0, 1), repeat=4):  # first channel varies slowest
        rgb = np.array(paper) * np.array([1 - c, 1 - m, 1 - y]) * (1 - k)
        lab = _srgb_to_lab(rgb)
        corners.append(
            [
                round(np.clip(lab[0] / 100 * 255, 0, 255)),
                round(np.clip(lab[1] + 128, 0, 255)),
                round(np.clip(lab[2] + 128, 0, 255)),
            ]
        )
    identity_curve = bytes(range(256))
    return (
        b"mft1\0\0\0\0"
        + struct.pack(">BBBB", 4, 3, 2, 0)
        + b"".join(_s15(v) for v in (1, 0, 0, 0, 1, 0, 0, 0, 1))
        + identity_curve * 4
        + bytes(np.array(corners, dtype=np.uint8).ravel())
        + identity_curve * 3
    )


def cmyk_profile(paper: tuple[float, float, float] = (1.0, 0.9, 0.75)) -> bytes:
    """An ICC profile for CMYK data on warm paper, so its colours differ visibly from Pillow's
    profile-less conversion (which assumes white paper and no ink interaction)."""
    tags = [
        (b"desc", _desc("alphacut test CMYK on warm paper")),
        (b"wtpt", _xyz(0.9642, 1.0, 0.8249)),
        (b"cprt", b"text\0\0\0\0" + b"No copyright, test data\0"),
        (b"A2B0", _lut8(paper)),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table = struct.pack(">I", len(tags))
    body = b""
    for signature, data in tags:
        padded = data + b"\0" * (-len(data) % 4)
        table += signature + struct.pack(">II", offset + len(body), len(data))
        body += padded
    size = offset + len(body)
    header = (
        struct.pack(">I", size)
        + b"lcms"
        + struct.pack(">I", 0x02100000)
        + b"scnrCMYKLab "
        + struct.pack(">6H", 2026, 1, 1, 0, 0, 0)
        + b"acsp"
        + b"\0" * 4  # platform
        + struct.pack(">I", 0)  # flags
        + b"\0" * 8  # manufacturer, model
        + b"\0" * 8  # attributes
        + struct.pack(">I", 0)  # perceptual intent
        + _s15(0.9642)
        + _s15(1.0)
        + _s15(0.8249)
        + b"\0" * 4  # creator
        + b"\0" * 16  # profile id
        + b"\0" * 28
    )
    assert len(header) == 128
    return header + table + body
