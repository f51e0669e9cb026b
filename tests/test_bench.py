"""Smoke tests of the benchmarks: each really runs (one round, two small photos) and prints
the figures the README quotes, in the shape the README quotes them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import skimage_photo

ALPHACUT = str(Path(sys.executable).with_name("alphacut"))
RATE = r"(\d+\.\d+) img/s"


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bench-photos")
    for name in ("astronaut", "chelsea"):
        skimage_photo(name, 300).save(folder / f"{name}.jpg")
    return folder


def _run(*command: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_alphacut_bench_against_rembg_prints_ratios_stages_and_components(photos: Path) -> None:
    pytest.importorskip("rembg")
    out = _run(ALPHACUT, "bench", "--images", str(photos), "--rounds", "1", "-j", "2")
    assert re.search(r"^machine: .+, \d+ cores, CPUExecutionProvider$", out, re.M), out
    assert "ordinary 2; 1 rounds" in out
    for engine in ("alphacut-j2", "alphacut-j1"):
        line = re.search(rf"^  {engine} +{RATE} +peak RSS +\d+ MB +(\d+\.\d+)x rembg$", out, re.M)
        assert line, out
        assert float(line.group(1)) > 0
    assert re.search(rf"^  rembg +{RATE} +peak RSS +\d+ MB +1\.00x rembg$", out, re.M), out
    stages = re.search(r"ms per image: decode (\S+)  prepare (\S+)  infer (\S+)", out)
    assert stages, out
    assert float(stages.group(3)) > float(stages.group(1))  # inference dominates
    png = re.search(r"PNG encoding, 2 RGBA cutouts .*: (\d+\.\d)x faster, identical pixels", out)
    assert png, out
    load = re.search(r"model load, u2netp: saved optimised graph (\d+) ms, optimised again", out)
    assert load, out
    inference = re.findall(
        r"inference, u2netp on astronaut.jpg, (\d+) threads?: .*bit-identical", out
    )
    assert "1" in inference, out


def test_alphacut_bench_alone_without_components(photos: Path) -> None:
    out = _run(
        ALPHACUT, "bench", "--images", str(photos), "--rounds", "1", "--against", "none",
        "--no-components",
    )  # fmt: skip
    assert "rembg" not in out
    assert "components" not in out
    assert re.search(rf"alphacut-j1 +{RATE}", out), out


def test_fast_bench_compares_each_runtime_with_exact_mode(photos: Path) -> None:
    out = _run(
        sys.executable, "-m", "alphacut.bench.fast", "--images", str(photos), "--rounds", "1"
    )
    assert re.search(rf"exact \(u2netp FP32 on ONNX Runtime .*\): {RATE}", out), out
    runtimes = ["onnxruntime"] + (["openvino"] if _has("openvino") else [])
    for runtime in runtimes:
        line = re.search(
            rf"fast, {runtime} \(u2netp INT8 on .*\): {RATE} = (\d+\.\d+)x exact; "
            r"mask IoU vs exact mean (\d\.\d+), worst (\d\.\d+) \((\S+)\)",
            out,
        )
        assert line, out
        mean, worst = float(line.group(3)), float(line.group(4))
        assert 0.9 < worst <= mean <= 1.0, line.group(0)


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
