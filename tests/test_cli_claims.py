"""What the README promises of `alphacut remove`, each checked by running it."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from alphacut.cli.main import cli
from helpers import alphacut, skimage_photo

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    result = CliRunner().invoke(cli, [*args], env=env)
    return result


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    source = tmp_path / "in"
    source.mkdir()
    for name in PHOTOS:
        skimage_photo(name, 120).save(source / f"{name}.jpg")
    return source


def outputs(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


class _Concurrency:
    """Counts how many images are inside `Remover.process` at once (the real one runs)."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0
        self.threads: set[int] = set()
        self._lock = threading.Lock()

    def wrap(self, real: Any) -> Any:
        def process(remover: Any, *args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.now += 1
                self.most = max(self.most, self.now)
                self.threads.add(threading.get_ident())
            try:
                time.sleep(0.2)  # long enough that two workers must overlap if there are two
                return real(remover, *args, **kwargs)
            finally:
                with self._lock:
                    self.now -= 1

        return process


@pytest.fixture
def concurrency(monkeypatch: pytest.MonkeyPatch) -> _Concurrency:
    from alphacut.remover import Remover

    counter = _Concurrency()
    monkeypatch.setattr(Remover, "process", counter.wrap(Remover.process))
    return counter


@pytest.mark.parametrize("jobs", [1, 3])
def test_jobs_sets_how_many_images_run_at_once(
    folder: Path, tmp_path: Path, jobs: int, concurrency: _Concurrency
) -> None:
    out = tmp_path / f"out{jobs}"
    result = invoke("remove", str(folder), "-o", str(out), "--jobs", str(jobs), "--no-progress")
    assert result.exit_code == 0, result.output
    assert concurrency.most == jobs
    assert len(concurrency.threads) == jobs
    assert len(list(out.glob("*.png"))) == len(PHOTOS)


def test_jobs_do_not_change_the_pixels(folder: Path, tmp_path: Path) -> None:
    made = []
    for jobs in ("1", "2"):
        out = tmp_path / f"out{jobs}"
        result = invoke("remove", str(folder), "-o", str(out), "-j", jobs, "--no-progress")
        assert result.exit_code == 0, result.output
        made.append(outputs(out))
    assert made[0] == made[1]
    assert len(made[0]) == len(PHOTOS)


def test_existing_outputs_are_skipped_unless_overwrite(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = invoke("remove", str(folder), "-o", str(out), "--no-progress")
    assert first.exit_code == 0, first.output
    assert "4 done, 0 skipped" in first.output
    kept = out / "rocket.png"
    kept.write_bytes(b"left by an earlier run")
    again = invoke("remove", str(folder), "-o", str(out), "--no-progress")
    assert "0 done, 4 skipped" in again.output
    assert kept.read_bytes() == b"left by an earlier run"
    forced = invoke("remove", str(folder), "-o", str(out), "--no-progress", "--overwrite")
    assert forced.exit_code == 0, forced.output
    assert "4 done, 0 skipped" in forced.output
    assert Image.open(kept).mode == "RGBA"


def test_hidden_files_and_folders_are_ignored(folder: Path, tmp_path: Path) -> None:
    photo = skimage_photo("coffee", 80)
    photo.save(folder / ".thumbnail.jpg")
    (folder / ".cache").mkdir()
    photo.save(folder / ".cache" / "copy.jpg")
    (folder / "sub").mkdir()
    photo.save(folder / "sub" / "visible.jpg")
    photo.save(folder / "sub" / ".hidden.jpg")
    out = tmp_path / "out"
    result = invoke("remove", str(folder), "-o", str(out), "--no-progress")
    assert result.exit_code == 0, result.output
    expected = sorted([f"{name}.png" for name in PHOTOS] + ["sub/visible.png"])
    assert sorted(outputs(out)) == expected
    assert "5 done, 0 skipped, 0 failed of 5" in result.output


@pytest.mark.parametrize(
    ("short", "long"),
    [
        (["-om"], ["--only-mask"]),
        (
            ["-a", "-af", "200", "-ab", "30", "-ae", "5"],
            [
                "--alpha-matting",
                "--alpha-matting-foreground-threshold",
                "200",
                "--alpha-matting-background-threshold",
                "30",
                "--alpha-matting-erode-size",
                "5",
            ],
        ),
        (["-ppm"], ["--post-process-mask"]),
        (["-bgc", "255", "0", "0", "255"], ["--bgcolor", "255,0,0,255"]),
    ],
    ids=["om", "a-af-ab-ae", "ppm", "bgc"],
)
def test_rembg_short_flags_mean_what_the_long_ones_do(
    tmp_path: Path, short: list[str], long: list[str]
) -> None:
    source = tmp_path / "cat.jpg"
    skimage_photo("chelsea", 160).save(source)
    made = {}
    for name, flags in (("plain", []), ("short", short), ("long", long)):
        target = tmp_path / f"{name}.png"
        result = invoke("remove", str(source), "-o", str(target), *flags)
        assert result.exit_code == 0, result.output
        made[name] = target.read_bytes()
    assert made["short"] == made["long"]
    assert made["short"] != made["plain"], "the flag changed nothing"


def test_rembg_bgcolor_spelling_paints_the_background(tmp_path: Path) -> None:
    source = tmp_path / "rocket.jpg"
    skimage_photo("rocket", 160).save(source)
    target = tmp_path / "red.png"
    result = invoke("remove", str(source), "-o", str(target), "-bgc", "255", "0", "0", "255")
    assert result.exit_code == 0, result.output
    pixels = np.asarray(Image.open(target).convert("RGBA"))
    mask = np.asarray(invoke_mask(tmp_path, source))
    background = pixels[mask == 0]
    assert len(background) > 1000
    assert (background == [255, 0, 0, 255]).all()
    twice = invoke("remove", str(source), "-o", str(target), "-bgc", "1", "2", "3", "4",
                   "--bgcolor", "#ff0000")  # fmt: skip
    assert twice.exit_code == 2
    assert "give the background colour once" in twice.output


def invoke_mask(tmp_path: Path, source: Path) -> Image.Image:
    target = tmp_path / "mask.png"
    result = invoke("remove", str(source), "-o", str(target), "-om")
    assert result.exit_code == 0, result.output
    return Image.open(target)


def test_png_compress_level_trades_size_for_time_with_the_same_pixels(tmp_path: Path) -> None:
    source = tmp_path / "astronaut.jpg"
    skimage_photo("astronaut", 512).save(source)
    sizes = {}
    pixels = {}
    for level in ("0", "1", "9"):
        target = tmp_path / f"level{level}.png"
        result = invoke("remove", str(source), "-o", str(target), "--png-compress-level", level)
        assert result.exit_code == 0, result.output
        sizes[level] = target.stat().st_size
        pixels[level] = np.asarray(Image.open(target))
    assert sizes["0"] > sizes["1"] > sizes["9"]
    assert sizes["0"] > 512 * 512 * 4  # level 0 stores the pixels uncompressed
    for level in ("1", "9"):
        np.testing.assert_array_equal(pixels[level], pixels["0"])
    bad = alphacut(
        "remove", str(source), "-o", str(tmp_path / "x.png"), "--png-compress-level", "12"
    )
    assert bad.returncode in (2, 64)
    assert "png_compress_level must be an integer in 0..9" in bad.stderr
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("suffix", [".jpg", ".webp"])
def test_quality_sets_lossy_encoding_quality(tmp_path: Path, suffix: str) -> None:
    source = tmp_path / "coffee.jpg"
    skimage_photo("coffee", 400).save(source, quality=98)
    white = ["-bgc", "255", "255", "255", "255"]
    lossless = _pixels(_write(tmp_path, source, ".png", white))
    size, error = {}, {}
    for quality in ("20", "95"):
        target = _write(tmp_path, source, suffix, [*white, "--quality", quality])
        size[quality] = target.stat().st_size
        error[quality] = float(np.abs(_pixels(target) - lossless).mean())
    assert size["20"] < size["95"] / 2
    assert error["20"] > 2 * error["95"]
    assert error["95"] < 3


def _write(tmp_path: Path, source: Path, suffix: str, flags: list[str]) -> Path:
    target = tmp_path / f"out-{len(list(tmp_path.iterdir()))}{suffix}"
    result = invoke("remove", str(source), "-o", str(target), *flags)
    assert result.exit_code == 0, result.output
    return target


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)


def test_max_pixels_from_the_environment_and_the_flag(folder: Path, tmp_path: Path) -> None:
    big = skimage_photo("astronaut", 400)  # 400 × 400 = 160 000 pixels; the others 120 wide
    big.save(folder / "big.jpg")
    out = tmp_path / "out"
    result = alphacut(
        "remove",
        str(folder),
        "-o",
        str(out),
        "--no-progress",
        env={"ALPHACUT_MAX_PIXELS": "100000"},
    )
    assert result.returncode == 1, result.stderr
    assert "failed: " in result.stderr
    assert "big.jpg" in result.stderr
    assert "[ImageTooLarge]" in result.stderr
    assert "4 done, 0 skipped, 1 failed of 5" in result.stderr
    assert not (out / "big.png").exists()
    flag = alphacut(
        "remove", str(folder), "-o", str(out), "--no-progress", "--max-pixels", "200000",
        env={"ALPHACUT_MAX_PIXELS": "100000"},
    )  # fmt: skip
    assert flag.returncode == 0, flag.stderr
    assert (out / "big.png").exists()
    bad = alphacut("remove", str(folder), "-o", str(out), env={"ALPHACUT_MAX_PIXELS": "lots"})
    assert bad.returncode in (2, 64)
    assert "ALPHACUT_MAX_PIXELS must be an integer" in bad.stderr


def test_backend_openvino_runs_on_openvino_within_two_levels(tmp_path: Path) -> None:
    pytest.importorskip("openvino")
    source = tmp_path / "astronaut.jpg"
    skimage_photo("astronaut", 320).save(source)
    masks = {}
    for backend in ("onnxruntime", "openvino"):
        target = tmp_path / f"{backend}.png"
        result = alphacut(
            "-v", "remove", str(source), "-o", str(target), "-om", "--backend", backend
        )
        assert result.returncode == 0, result.stderr
        masks[backend] = np.asarray(Image.open(io.BytesIO(target.read_bytes())), dtype=np.int16)
        assert ("on OpenVINO-CPU" in result.stderr) == (backend == "openvino"), result.stderr
    difference = np.abs(masks["openvino"] - masks["onnxruntime"])
    assert difference.max() <= 2
    assert masks["onnxruntime"].std() > 50  # a real cutout, not an empty mask
    env = alphacut(
        "-v", "remove", str(source), "-o", str(tmp_path / "env.png"), "-om",
        env={"ALPHACUT_BACKEND": "openvino"},
    )  # fmt: skip
    assert "on OpenVINO-CPU" in env.stderr, env.stderr
