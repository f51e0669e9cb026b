"""Hostile inputs: odd-but-valid images must decode correctly, everything else must be refused
with the right error, and a batch over a folder of both must finish cleanly and resumably."""

from __future__ import annotations

import json
import re
import struct
import subprocess
import sys
import textwrap
import time
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alphacut.errors import ImageTooLarge, InputError, UnsupportedImage
from alphacut.imagefile import atomic_writer, decode
from alphacut.options import Limits
from helpers import png_bytes
from hostile import (
    BOMB_SIZE,
    GIF_FRAME_COLOURS,
    WIDE_GRAY_MARKERS,
    make_hostile_folder,
    photo,
)

ALPHACUT = Path(sys.executable).with_name("alphacut")

# Every valid file, with the mode and size it must decode to.
EXPECTED_VALID = {
    "astronaut.jpg": ("RGB", (128, 128)),
    "rotated-exif6.jpg": ("RGB", (80, 120)),  # stored 120x80, EXIF orientation 6
    "gray16.png": ("RGB", (96, 64)),
    "coffee-cmyk.jpg": ("RGB", (120, 80)),
    "rocket-palette.png": ("RGBA", (96, 64)),
    "animated.gif": ("RGB", (64, 64)),
    "café au lait.webp": ("RGB", (150, 100)),
    "logo-rgba.png": ("RGBA", (100, 100)),
    "nested/gray.jpg": ("RGB", (90, 90)),
    "pixel-1x1.png": ("RGB", (1, 1)),
    "pixels-2x1.png": ("RGB", (2, 1)),
    "really-a-png.jpg": ("RGB", (120, 80)),
    "nested/photo.dat": ("RGB", (90, 60)),
}

# Every invalid file, with the error it must raise and words its reason must contain.
EXPECTED_INVALID: dict[str, tuple[type[InputError], tuple[str, ...]]] = {
    "empty.png": (UnsupportedImage, ("empty", "0 bytes")),
    "notes.txt": (UnsupportedImage, ("text file", "not an image")),
    "truncated.jpg": (UnsupportedImage, ("truncated", "JPEG")),
    "document.pdf": (UnsupportedImage, ("PDF", "not an image")),
    "vector.svg": (UnsupportedImage, ("SVG", "convert it to PNG")),
    "bomb.png": (ImageTooLarge, ("1600000000",)),
    "garbage.bin": (UnsupportedImage, ("not an image",)),
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], list[str]]:
    folder = tmp_path_factory.mktemp("hostile")
    valid, invalid = make_hostile_folder(folder)
    return folder, valid, invalid


def test_folder_has_the_expected_files_and_stays_small(
    hostile: tuple[Path, list[str], list[str]],
) -> None:
    folder, valid, invalid = hostile
    assert sorted(valid) == sorted(EXPECTED_VALID)
    assert sorted(invalid) == sorted(EXPECTED_INVALID)
    on_disk = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert on_disk == sorted(valid + invalid)
    assert sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) < 1_000_000
    assert 0 < (folder / "bomb.png").stat().st_size < 1000


# --- decoding: valid files ---------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED_VALID))
def test_valid_file_decodes_to_rgb_or_rgba_of_the_right_size(
    hostile: tuple[Path, list[str], list[str]], name: str
) -> None:
    folder = hostile[0]
    decoded = decode(folder / name)
    mode, size = EXPECTED_VALID[name]
    assert decoded.image.mode == mode
    assert decoded.image.size == size
    assert decoded.source == str(folder / name)
    # The pixels are really there, not a lazy or broken image.
    assert np.asarray(decoded.image).shape == (size[1], size[0], len(mode))


def test_exif_orientation_6_rotates_clockwise(hostile: tuple[Path, list[str], list[str]]) -> None:
    path = hostile[0] / "rotated-exif6.jpg"
    with Image.open(path) as raw:
        assert raw.size == (120, 80)
        assert raw.getexif()[0x0112] == 6
        upright = np.asarray(raw.convert("RGB").transpose(Image.Transpose.ROTATE_270))
    decoded = decode(path).image
    assert decoded.size == (80, 120)
    assert np.array_equal(np.asarray(decoded), upright)


def test_sixteen_bit_png_is_scaled_not_clipped(hostile: tuple[Path, list[str], list[str]]) -> None:
    path = hostile[0] / "gray16.png"
    with Image.open(path) as raw:
        assert raw.mode == "I;16"
        assert raw.getpixel((0, 0)) == 65535
        assert raw.getpixel((1, 0)) == 32768
    pixels = np.asarray(decode(path).image)
    # Gray in, gray out: the three channels are equal.
    assert np.array_equal(pixels[..., 0], pixels[..., 1])
    assert np.array_equal(pixels[..., 0], pixels[..., 2])
    for column, (_, expected) in enumerate(WIDE_GRAY_MARKERS):
        assert int(pixels[0, column, 0]) == expected, (column, pixels[0, column])
    # The rest of the image was the 8-bit photo times 257, so it must come back exactly.
    original = np.asarray(photo("camera", (96, 64)))
    assert np.array_equal(pixels[1:, :, 0], original[1:])
    assert np.array_equal(pixels[0, 5:, 0], original[0, 5:])
    assert int(pixels.max()) == 255
    assert len(np.unique(pixels)) > 100  # a photo, not a clipped black-and-white mask


def test_cmyk_jpeg_becomes_the_same_photo_in_rgb(
    hostile: tuple[Path, list[str], list[str]],
) -> None:
    path = hostile[0] / "coffee-cmyk.jpg"
    with Image.open(path) as raw:
        assert raw.mode == "CMYK"
    decoded = np.asarray(decode(path).image, dtype=np.int16)
    original = np.asarray(photo("coffee", (120, 80)), dtype=np.int16)
    assert float(np.abs(decoded - original).mean()) < 12


def test_palette_transparency_becomes_alpha(hostile: tuple[Path, list[str], list[str]]) -> None:
    path = hostile[0] / "rocket-palette.png"
    with Image.open(path) as raw:
        assert raw.mode == "P"
        assert raw.info["transparency"] == 0
    alpha = np.asarray(decode(path).image.getchannel("A"))
    assert (alpha[:8] == 0).all()
    assert (alpha[-8:] == 0).all()
    assert (alpha[8:-8] == 255).all()


def test_animated_gif_gives_its_first_frame(hostile: tuple[Path, list[str], list[str]]) -> None:
    path = hostile[0] / "animated.gif"
    with Image.open(path) as raw:
        assert raw.n_frames == 3
    pixels = np.asarray(decode(path).image, dtype=np.int16)
    band = pixels[:16].reshape(-1, 3)
    first, second, _ = (np.array(colour, dtype=np.int16) for colour in GIF_FRAME_COLOURS)
    assert np.abs(band - first).max() <= 8
    assert np.abs(band - second).max(axis=1).min() > 100
    # Below the band is the photo, not a flat colour.
    assert len(np.unique(pixels[16:].reshape(-1, 3), axis=0)) > 20


def test_rgba_logo_keeps_its_transparency(hostile: tuple[Path, list[str], list[str]]) -> None:
    alpha = np.asarray(decode(hostile[0] / "logo-rgba.png").image.getchannel("A"))
    assert int(alpha[0, 0]) == int(alpha[99, 99]) == 0
    assert int(alpha[50, 50]) == 255
    soft = alpha[(alpha > 0) & (alpha < 255)]
    assert soft.size > 100  # the soft edge survives, not rounded to 0 or 255


def test_tiny_images_keep_their_pixels(hostile: tuple[Path, list[str], list[str]]) -> None:
    one = decode(hostile[0] / "pixel-1x1.png").image
    assert one.getpixel((0, 0)) == (200, 30, 30)
    two = decode(hostile[0] / "pixels-2x1.png").image
    assert np.array_equal(np.asarray(two), np.asarray(photo("astronaut", (2, 1))))


@pytest.mark.parametrize(
    ("name", "real_format"),
    [("really-a-png.jpg", "PNG"), ("nested/photo.dat", "JPEG"), ("café au lait.webp", "WEBP")],
)
def test_format_comes_from_the_content_not_the_name(
    hostile: tuple[Path, list[str], list[str]], name: str, real_format: str
) -> None:
    assert decode(hostile[0] / name).format == real_format


# --- decoding: invalid files -------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED_INVALID))
def test_invalid_file_is_refused_with_a_specific_reason(
    hostile: tuple[Path, list[str], list[str]], name: str
) -> None:
    path = hostile[0] / name
    error_type, words = EXPECTED_INVALID[name]
    with pytest.raises(InputError) as caught:
        decode(path)
    error = caught.value
    assert type(error) is error_type
    assert error.source == str(path)
    assert name in str(error)
    for word in words:
        assert word in error.reason, (word, error.reason)


@pytest.mark.parametrize("name", sorted(set(EXPECTED_INVALID) - {"empty.png"}))
def test_invalid_bytes_are_refused_the_same_way(
    hostile: tuple[Path, list[str], list[str]], name: str
) -> None:
    error_type, words = EXPECTED_INVALID[name]
    with pytest.raises(error_type) as caught:
        decode((hostile[0] / name).read_bytes(), source=f"upload/{name}")
    assert str(caught.value).startswith(f"upload/{name}: ")
    for word in words:
        assert word in caught.value.reason


def test_empty_bytes_are_refused() -> None:
    with pytest.raises(UnsupportedImage, match=r"^<0 bytes>: empty input \(0 bytes\)$"):
        decode(b"")


def test_bomb_is_refused_fast_and_without_allocating(
    hostile: tuple[Path, list[str], list[str]],
) -> None:
    path = hostile[0] / "bomb.png"
    # The header is valid (signature, IHDR with a correct CRC): only the size gives it away.
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    assert struct.unpack(">II", data[16:24]) == BOMB_SIZE
    assert struct.unpack(">I", data[29:33])[0] == zlib.crc32(data[12:29])
    assert data.endswith(b"IEND\xaeB`\x82")
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(ImageTooLarge) as caught:
            decode(path)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 1.0
    assert peak < 50_000_000
    assert "bomb.png" in str(caught.value)


@pytest.mark.parametrize(
    ("size", "max_pixels"),
    [
        ((100, 100), 5000),
        ((12_000, 8_000), None),  # 96 MP: over alphacut's 80 MP default, under Pillow's bomb error
        ((65_535, 65_535), None),
    ],
)
def test_oversized_headers_are_refused_before_any_pixel_is_allocated(
    size: tuple[int, int], max_pixels: int | None
) -> None:
    """In a child process whose address space is capped at 200 MB above what it already uses,
    so that allocating the pixels (96 MP RGB is 384 MB) would fail with MemoryError."""
    code = textwrap.dedent(
        f"""
        import json, resource, sys
        from alphacut.imagefile import decode
        from alphacut.options import Limits
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from hostile import bomb_png
        data = bomb_png(*{size!r})
        limits = Limits() if {max_pixels!r} is None else Limits(max_pixels={max_pixels!r})
        decode(bomb_png(4, 4))  # warm up lazy imports and plugin registration
        with open("/proc/self/status") as status:
            vm = next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))
        cap = vm * 1024 + 200 * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        try:
            decode(data, limits=limits, source="crafted.png")
        except Exception as exc:
            print(json.dumps([type(exc).__name__, str(exc)]))
        else:
            print(json.dumps(["no error", ""]))
        """
    )
    if not sys.platform.startswith("linux"):
        pytest.skip("needs /proc and RLIMIT_AS")
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    kind, message = json.loads(result.stdout.strip().splitlines()[-1])
    assert kind == "ImageTooLarge", message
    assert message.startswith("crafted.png: ")
    assert f"{size[0]}x{size[1]}" in message or str(size[0] * size[1]) in message


def test_limits_max_pixels_refuses_a_small_image() -> None:
    image = photo("chelsea", (100, 100))
    with pytest.raises(ImageTooLarge, match=r"100x100 is 0\.0 megapixels") as caught:
        decode(image, limits=Limits(max_pixels=5000), source="cat.png")
    assert caught.value.source == "cat.png"
    # The same image as encoded bytes takes the header path and is refused the same way.
    with pytest.raises(ImageTooLarge, match="100x100"):
        decode(png_bytes(image), limits=Limits(max_pixels=5000))
    # At exactly the limit it is accepted.
    assert decode(image, limits=Limits(max_pixels=10_000)).image.size == (100, 100)


# --- the CLI over the whole folder -------------------------------------------------------

_SUMMARY = re.compile(
    r"^alphacut: (\d+) done, (\d+) skipped, (\d+) failed of (\d+) in ", re.MULTILINE
)
_FAILED = re.compile(r"^alphacut: failed: (.+?): (.+) \[(\w+)\]$", re.MULTILINE)


def _run_cli(folder: Path, out: Path) -> tuple[int, str, tuple[int, ...], dict[str, str]]:
    result = subprocess.run(
        [str(ALPHACUT), "remove", str(folder), "-o", str(out), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    summaries = _SUMMARY.findall(result.stderr)
    assert len(summaries) == 1, result.stderr
    counts = tuple(int(n) for n in summaries[0])
    failed = {path: kind for path, _, kind in _FAILED.findall(result.stderr)}
    return result.returncode, result.stderr, counts, failed


def _files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir())


def test_cli_batch_over_hostile_folder_and_resume(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    valid, invalid = make_hostile_folder(folder)
    out = tmp_path / "out"

    code, stderr, counts, failed = _run_cli(folder, out)
    assert code == 1, stderr
    assert counts == (len(valid), 0, len(invalid), len(valid) + len(invalid)), stderr

    # Exactly one output per valid input, nothing else (no .part files, nothing for bad inputs).
    expected_outputs = sorted(Path(name).with_suffix(".png").as_posix() for name in valid)
    assert _files_under(out) == expected_outputs
    for name in valid:
        result = out / Path(name).with_suffix(".png")
        with Image.open(result) as image:
            assert image.format == "PNG"
            assert image.mode == "RGBA"
            assert image.size == decode(folder / name).image.size == EXPECTED_VALID[name][1]
            image.load()

    # One failed line per invalid file, with its path and error type; none for valid files.
    assert sorted(failed) == sorted(str(folder / name) for name in invalid), stderr
    for name in invalid:
        assert failed[str(folder / name)] == EXPECTED_INVALID[name][0].__name__
        reason_line = next(
            line
            for line in stderr.splitlines()
            if line.startswith(f"alphacut: failed: {folder / name}: ")
        )
        assert all(word in reason_line for word in EXPECTED_INVALID[name][1]), reason_line
    assert stderr.count("alphacut: failed: ") == len(invalid)

    # A second run resumes: valid outputs are skipped, left untouched, bad inputs fail again.
    before = {path: (out / path).stat().st_mtime_ns for path in expected_outputs}
    code, stderr, counts, failed = _run_cli(folder, out)
    assert code == 1, stderr
    assert counts == (0, len(valid), len(invalid), len(valid) + len(invalid)), stderr
    assert sorted(failed) == sorted(str(folder / name) for name in invalid)
    assert _files_under(out) == expected_outputs
    assert {path: (out / path).stat().st_mtime_ns for path in expected_outputs} == before
    # The inputs themselves were never touched or joined by anything.
    assert _files_under(folder) == sorted(valid + invalid)


# --- atomic writes -------------------------------------------------------------------------


@pytest.mark.parametrize("exception", [RuntimeError, KeyboardInterrupt])
@pytest.mark.parametrize("existing", [None, b"the old, complete output"])
def test_interrupted_write_leaves_nothing_behind(
    tmp_path: Path, exception: type[BaseException], existing: bytes | None
) -> None:
    target = tmp_path / "result.png"
    if existing is not None:
        target.write_bytes(existing)
    before = sorted(p.name for p in tmp_path.iterdir())

    during: list[str] = []

    def write_half_then_fail() -> None:
        with atomic_writer(target) as handle:
            handle.write(b"\x89PNG\r\n\x1a\n half of an image")
            handle.flush()
            during.extend(sorted(p.name for p in tmp_path.iterdir()))
            raise exception("interrupted")

    with pytest.raises(exception, match=r"^interrupted$"):
        write_half_then_fail()

    # While writing, the data went to one hidden temporary file, not to the target.
    temps = [name for name in during if name not in before]
    assert len(temps) == 1
    assert re.fullmatch(r"\.result\.png\..+\.part", temps[0])
    # Afterwards: the temporary file is gone and the target is as it was.
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    if existing is None:
        assert not target.exists()
    else:
        assert target.read_bytes() == existing


def test_completed_write_replaces_the_target(tmp_path: Path) -> None:
    target = tmp_path / "deeper" / "result.png"
    with atomic_writer(target) as handle:
        handle.write(b"complete")
    assert target.read_bytes() == b"complete"
    assert [p.name for p in target.parent.iterdir()] == ["result.png"]
