"""Large images are resized, composited and compressed in strips on all cores; the
bytes must be exactly those of doing each step in one piece."""

from __future__ import annotations

import io
import itertools
import struct
import sys
import threading
import zlib

import numpy as np
import pytest
from PIL import Image

import alphacut._parallel as parallel
from alphacut._parallel import run_parallel, spans, strip_count
from alphacut.imagefile.png import _adler32_combine, encode_png
from alphacut.pipeline.edge import cutout
from alphacut.pipeline.resize import lanczos_resize
from helpers import skimage_photo


@pytest.fixture
def many_strips(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cut even small test images into five strips, as a 5-core machine would cut a photo."""
    monkeypatch.setattr(parallel, "PARALLEL_PIXELS", 1)
    monkeypatch.setattr(parallel, "usable_cores", lambda: 5)


def _one_piece_resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    if image.width != size[0]:
        image = image.resize((size[0], image.height), Image.Resampling.LANCZOS)
    if image.height != size[1]:
        image = image.resize(size, Image.Resampling.LANCZOS)
    return image


def _random_mask(size: tuple[int, int], seed: int = 0) -> Image.Image:
    levels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0]), dtype=np.uint8)
    levels[:, : size[0] // 3] = 0
    levels[:, -size[0] // 3 :] = 255
    return Image.fromarray(levels, "L")


@pytest.mark.parametrize("length", [1, 2, 7, 64, 481, 2000])
@pytest.mark.parametrize("parts", [1, 2, 3, 5])
def test_spans_cover_the_range_evenly(length: int, parts: int) -> None:
    ranges = spans(length, parts)
    assert ranges[0][0] == 0
    assert ranges[-1][1] == length
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    sizes = [stop - start for start, stop in ranges]
    assert min(sizes) >= 1
    assert max(sizes) - min(sizes) <= 1


def test_small_images_stay_in_one_piece() -> None:
    assert strip_count(640 * 480, 480) == 1
    assert strip_count(3000 * 2000, 2000) == min(parallel.usable_cores(), 2000 // 64)


def test_run_parallel_keeps_order_and_uses_other_threads() -> None:
    threads: set[str] = set()
    barrier = threading.Barrier(2, timeout=10)

    def work(item: int) -> int:
        threads.add(threading.current_thread().name)
        if item < 2:
            barrier.wait()  # only passes if two items really run at the same time
        return item * item

    if parallel.usable_cores() < 2:
        pytest.skip("one core: nothing runs beside the caller")
    assert run_parallel(work, list(range(6))) == [i * i for i in range(6)]
    assert len(threads) >= 2


def test_run_parallel_raises_the_workers_error() -> None:
    def work(item: int) -> int:
        if item == 3:
            raise ValueError("strip 3 failed")
        return item

    with pytest.raises(ValueError, match="strip 3"):
        run_parallel(work, list(range(5)))


@pytest.mark.usefixtures("many_strips")
@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA"])
@pytest.mark.parametrize("size", [(320, 320), (1021, 611), (97, 803)])
def test_resize_in_strips_gives_the_same_pixels(mode: str, size: tuple[int, int]) -> None:
    photo = skimage_photo("coffee", 600).convert(mode)
    assert np.array_equal(
        np.asarray(lanczos_resize(photo, size)), np.asarray(_one_piece_resize(photo, size))
    )


@pytest.mark.usefixtures("many_strips")
@pytest.mark.parametrize("name", ["astronaut", "chelsea", "rocket"])
def test_cutout_matches_rembg_composite(name: str) -> None:
    photo = skimage_photo(name, 517)
    mask = _random_mask(photo.size)
    expected = Image.composite(photo, Image.new("RGBA", photo.size, 0), mask)
    actual = cutout(photo, mask)
    assert actual.mode == "RGBA"
    assert np.array_equal(np.asarray(actual), np.asarray(expected))


def test_cutout_of_a_transparent_image_multiplies_both_alphas() -> None:
    photo = skimage_photo("chelsea", 200).convert("RGBA")
    photo.putalpha(_random_mask(photo.size, seed=1))
    mask = _random_mask(photo.size, seed=2)
    expected = Image.composite(photo, Image.new("RGBA", photo.size, 0), mask)
    assert np.array_equal(np.asarray(cutout(photo, mask)), np.asarray(expected))


def _idat(data: bytes) -> bytes:
    start = data.index(b"IDAT")
    (length,) = struct.unpack(">I", data[start - 4 : start])
    return data[start + 4 : start + 4 + length]


@pytest.mark.usefixtures("many_strips")
@pytest.mark.parametrize("level", [0, 1, 2, 3, 6, 9])
@pytest.mark.parametrize("mode", ["L", "RGBA"])
def test_png_in_bands_is_one_valid_stream(level: int, mode: str) -> None:
    image = cutout(skimage_photo("astronaut", 640), _random_mask((640, 640)))
    image = image if mode == "RGBA" else image.getchannel("A")
    data = encode_png(image, level)
    # zlib.decompress checks the joined stream's structure and its Adler-32.
    scanlines = zlib.decompress(_idat(data))
    assert len(scanlines) == image.height * (image.width * len(mode) + 1)
    decoded = Image.open(io.BytesIO(data))
    decoded.load()
    assert np.array_equal(np.asarray(decoded), np.asarray(image))


def test_banded_png_has_the_same_scanlines(monkeypatch: pytest.MonkeyPatch) -> None:
    image = cutout(skimage_photo("rocket", 600), _random_mask((600, 400)))
    whole = zlib.decompress(_idat(encode_png(image)))
    monkeypatch.setattr(parallel, "PARALLEL_PIXELS", 1)
    monkeypatch.setattr(parallel, "usable_cores", lambda: 3)
    assert zlib.decompress(_idat(encode_png(image))) == whole


def test_png_without_isal_falls_back_to_zlib_ng(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "isal", None)  # makes `import isal` fail
    image = skimage_photo("chelsea", 300).convert("RGBA")
    decoded = Image.open(io.BytesIO(encode_png(image, 2)))
    decoded.load()
    assert np.array_equal(np.asarray(decoded), np.asarray(image))


@pytest.mark.parametrize("split", [0, 1, 5000, 65521, 65522, 200_000])
def test_adler32_combine_matches_zlib(split: int) -> None:
    data = np.random.default_rng(split).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
    first, second = data[:split], data[split:]
    combined = _adler32_combine(zlib.adler32(first), zlib.adler32(second), len(second))
    assert combined == zlib.adler32(data)
