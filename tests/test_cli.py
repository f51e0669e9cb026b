"""The command line, through click's CliRunner and as a real subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from alphacut.cli.main import cli
from helpers import PHOTOS, png_bytes, skimage_photo

ALPHACUT = str(Path(sys.executable).with_name("alphacut"))


def run(*args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [ALPHACUT, *args], input=input, capture_output=True, timeout=300, check=False
    )


@pytest.mark.parametrize("args", [["--help"], ["remove", "--help"], ["watch", "--help"]])
def test_help_imports_no_heavy_extra(args: list[str]) -> None:
    code = (
        "import sys; from alphacut.cli.main import main\n"
        f"try: main({args!r})\nexcept SystemExit: pass\n"
        "print(*(m in sys.modules for m in ('onnxruntime', 'numpy', 'ray', 'av', 'fsspec')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("False False False False False"), out.stdout


def test_single_file_with_format_from_suffix(tmp_path: Path) -> None:
    target = tmp_path / "car.webp"
    result = run("remove", str(PHOTOS / "car-1.jpg"), "-o", str(target))
    assert result.returncode == 0, result.stderr
    assert target.read_bytes()[:4] == b"RIFF"


def test_stdin_to_stdout() -> None:
    photo = png_bytes(skimage_photo("chelsea", 96))
    result = run("remove", "-", input=photo)
    assert result.returncode == 0, result.stderr
    assert result.stdout[:8] == b"\x89PNG\r\n\x1a\n"
    assert Image.open(__import__("io").BytesIO(result.stdout)).mode == "RGBA"


def test_stdin_garbage_exits_with_input_error() -> None:
    result = run("remove", "-", input=b"hello, not an image")
    assert result.returncode == 65
    assert b"a text file, not an image" in result.stderr
    assert result.stdout == b""


def test_glob_mirrors_paths_and_resolves_name_clashes(tmp_path: Path) -> None:
    source = tmp_path / "in"
    (source / "sub").mkdir(parents=True)
    photo = skimage_photo("coffee", 80)
    photo.save(source / "sub" / "a.jpg")
    photo.save(source / "sub" / "a.png")
    photo.save(source / "b.jpg")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli, ["remove", str(source / "**" / "*.*"), "-o", str(out), "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    made = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert made == ["b.png", "sub/a.jpg.png", "sub/a.png.png"]


def test_output_inside_input_folder_is_not_reprocessed(tmp_path: Path) -> None:
    source = tmp_path / "in"
    source.mkdir()
    skimage_photo("rocket", 80).save(source / "r.jpg")
    args = ["remove", str(source), "-o", str(source / "out"), "--no-progress"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    # Named as `in/*` expands in a shell, the output folder is an input too: left out.
    again = CliRunner().invoke(cli, ["remove", *map(str, source.iterdir()), *args[2:]])
    assert sorted(p.name for p in (source / "out").iterdir()) == ["r.png"]
    assert "0 done, 1 skipped, 0 failed of 1" in again.output
    # A resumed batch that had nothing left to write says so and does not exit 0.
    assert again.exit_code == 1, again.output
    assert "nothing written: every output already exists" in again.output


def test_missing_input_is_reported(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["remove", str(tmp_path / "nope.jpg"), "-o", str(tmp_path / "o")]
    )
    assert result.exit_code == 1
    assert "nope.jpg: no such file or directory" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bgcolor", "blue"], "not a colour"),
        (["--format", "gif"], "gif"),
        (["-af", "300"], "0..255"),
    ],
)
def test_bad_options_are_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    result = run("remove", str(PHOTOS / "car-1.jpg"), "-o", str(tmp_path), *args)
    assert result.returncode in (2, 64)
    assert message in result.stderr.decode()
    assert list(tmp_path.iterdir()) == []


def test_models_list_and_unknown_model() -> None:
    listing = CliRunner().invoke(cli, ["models", "list"])
    assert listing.exit_code == 0
    assert "u2netp" in listing.output
    assert "birefnet-general-lite" in listing.output
    result = run("remove", str(PHOTOS / "car-1.jpg"), "-o", "/tmp/x.png", "--model", "nope")
    assert result.returncode == 69
    assert b"unknown model 'nope'" in result.stderr


def test_unavailable_provider_fails_fast(tmp_path: Path) -> None:
    result = run(
        "remove", str(PHOTOS / "car-1.jpg"), "-o", str(tmp_path / "x.png"), "--providers", "cuda"
    )
    assert result.returncode == 69
    assert b"CUDAExecutionProvider" in result.stderr
    assert not (tmp_path / "x.png").exists()


def test_ctrl_c_mid_batch_leaves_only_complete_outputs_and_resumes(tmp_path: Path) -> None:
    import signal
    import time

    source = tmp_path / "in"
    source.mkdir()
    photo = skimage_photo("astronaut", 900)
    for index in range(16):
        photo.save(source / f"p{index:02}.jpg")
    out = tmp_path / "out"
    args = [ALPHACUT, "remove", str(source), "-o", str(out), "--no-progress"]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(out.glob("*.png")):
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert b"interrupted" in stderr
    finished = sorted(out.iterdir())
    assert 0 < len(finished) < 16
    for path in finished:
        assert path.suffix == ".png"  # no temporary .part file survives
        with Image.open(path) as image:
            image.load()  # complete, decodable PNG
    resumed = run("remove", str(source), "-o", str(out), "--no-progress")
    assert resumed.returncode == 0
    assert (
        f"{16 - len(finished)} done, {len(finished)} skipped, 0 failed".encode() in resumed.stderr
    )
