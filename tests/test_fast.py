"""--fast: the INT8 copy is built once from the shipped photos, cached with provenance, reused,
rebuilt when stale, and run on OpenVINO (installed by alphacut[fast]) with masks close to exact."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from alphacut import RemoveOptions, Remover, new_session
from alphacut._system import int8_dot_product
from alphacut.cli.main import cli
from alphacut.errors import OptionsError
from alphacut.graphs.fast import calibration_folder, fast_model_path, fast_recipe, is_current
from alphacut.graphs.quantize import (
    calibration_digest,
    calibration_files,
    read_provenance,
    resolve_source,
)
from helpers import skimage_photo


@pytest.fixture(scope="module")
def fast_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fast-cache")


def test_fast_session_builds_over_a_corrupt_copy_caches_and_reuses_it(
    fast_cache: Path, monkeypatch: pytest.MonkeyPatch, session: object
) -> None:
    monkeypatch.setenv("ALPHACUT_MODEL_DIR", str(fast_cache))
    (fast_cache / "u2netp.int8.onnx").write_bytes(b"not a model")  # an interrupted old build
    fast = new_session("u2netp", fast=True)
    assert fast.path == fast_cache / "u2netp.int8.onnx"
    # OpenVINO where the CPU has an 8-bit dot product, else ONNX Runtime with 7-bit weights.
    runtime = "OpenVINO" if int8_dot_product() else "ONNX Runtime"
    assert fast.backend == ("openvino" if int8_dot_product() else "onnxruntime")
    assert fast.description.startswith(f"u2netp INT8 on {runtime}")
    provenance = read_provenance(fast.path)
    assert json.loads(provenance["recipe"])["reduce_range"] is not int8_dot_product()
    shipped = calibration_files(calibration_folder())
    assert len(shipped) >= 20
    assert provenance["calibration_digest"] == calibration_digest(shipped)
    assert provenance["source_model"] == "u2netp"

    built = fast.path.stat().st_mtime_ns
    assert new_session("u2netp", fast=True).path.stat().st_mtime_ns == built  # reused

    mask_only = RemoveOptions(only_mask=True)
    for name in ("astronaut", "chelsea", "coffee"):
        photo = skimage_photo(name, 320)
        want = np.asarray(Remover(session).remove_image(photo, mask_only)) >= 128  # type: ignore[arg-type]
        got = np.asarray(Remover(fast).remove_image(photo, mask_only)) >= 128
        iou = (want & got).sum() / (want | got).sum()
        assert iou > 0.95, (name, iou)


def test_a_copy_of_another_source_is_stale(
    fast_cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A copy is current only for the very source file it was calibrated from; a changed
    source (here one byte longer) makes it stale, so --fast rebuilds it, and the
    no-build lookup that `models pull --fast` checks says so."""
    monkeypatch.setenv("ALPHACUT_MODEL_DIR", str(fast_cache))
    current = new_session("u2netp", fast=True)
    spec, source = resolve_source("u2netp")
    assert is_current(current.path, source)
    # Made for this CPU; a copy with the other weight range (from a machine with or without
    # VNNI, on a shared cache) is stale here.
    recipe = fast_recipe(spec)
    assert is_current(current.path, source, recipe)
    other = dataclasses.replace(recipe, reduce_range=not recipe.reduce_range)
    assert not is_current(current.path, source, other)
    changed = tmp_path / "u2netp.onnx"
    changed.write_bytes(source.read_bytes() + b"\0")
    assert not is_current(current.path, changed)
    with pytest.raises(OptionsError, match="no INT8 copy of u2netp yet"):
        fast_model_path(spec, changed, build=False)


def test_fast_on_the_command_line_says_what_it_runs(
    fast_cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ALPHACUT_MODEL_DIR", str(fast_cache))
    skimage_photo("rocket", 200).save(tmp_path / "rocket.png")
    result = CliRunner().invoke(
        cli, ["remove", str(tmp_path / "rocket.png"), "-o", str(tmp_path / "out.png"), "--fast"]
    )
    assert result.exit_code == 0, result.output
    runtime = "OpenVINO" if int8_dot_product() else "ONNX Runtime"
    assert f"fast path: u2netp INT8 on {runtime}" in result.output
    assert (tmp_path / "out.png").is_file()


@pytest.mark.parametrize(
    ("cap", "expected"),
    [(None, "OpenVINO"), ("AVX512_CORE_VNNI", "OpenVINO"), ("AVX512_CORE", "ONNX Runtime"),
     ("AVX2", "ONNX Runtime")],
)  # fmt: skip
def test_fast_path_uses_openvino_only_where_its_int8_kernels_pay(
    cap: str | None, expected: str, fast_cache: Path
) -> None:
    """Without VNNI or AMX, OpenVINO's INT8 is slower than float and its masks break (measured
    with ONEDNN_MAX_CPU_ISA=AVX2: 0.92x exact mode, mean IoU 0.83), so the fast path runs ONNX
    Runtime's INT8 there. The cap emulates such a CPU on this one."""
    import os
    import subprocess
    import sys

    from alphacut._system import int8_dot_product

    pytest.importorskip("openvino")
    if not int8_dot_product() and expected == "OpenVINO":
        pytest.skip("this CPU has no VNNI or AMX")
    env = {
        k: v for k, v in os.environ.items() if k not in ("ONEDNN_MAX_CPU_ISA", "ALPHACUT_BACKEND")
    }
    if cap:
        env["ONEDNN_MAX_CPU_ISA"] = cap
    env["ALPHACUT_MODEL_DIR"] = str(fast_cache)  # the module's INT8 copy, not a new build
    code = "from alphacut import new_session; print(new_session('u2netp', fast=True).description)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"INT8 on {expected} (" in done.stdout, done.stdout
