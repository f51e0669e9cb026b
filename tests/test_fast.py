"""--fast: the INT8 copy is built once from the shipped photos, cached with provenance, reused,
rebuilt when stale, and run on OpenVINO (installed by alphacut[fast]) with masks close to exact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from alphacut import RemoveOptions, Remover, new_session
from alphacut.cli.main import cli
from alphacut.graphs.fast import calibration_folder
from alphacut.graphs.quantize import calibration_digest, calibration_files, read_provenance
from helpers import skimage_photo


@pytest.fixture(scope="module")
def fast_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fast-cache")


def test_fast_session_builds_caches_and_reuses_its_int8_model(
    fast_cache: Path, monkeypatch: pytest.MonkeyPatch, session: object
) -> None:
    monkeypatch.setenv("ALPHACUT_MODEL_DIR", str(fast_cache))
    fast = new_session("u2netp", fast=True)
    assert fast.path == fast_cache / "u2netp.int8.onnx"
    assert fast.backend == "openvino"
    assert fast.description.startswith("u2netp INT8 on OpenVINO")
    provenance = read_provenance(fast.path)
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


def test_a_stale_or_corrupt_int8_copy_is_rebuilt(
    fast_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALPHACUT_MODEL_DIR", str(fast_cache))
    target = fast_cache / "u2netp.int8.onnx"
    target.write_bytes(b"not a model")
    rebuilt = new_session("u2netp", fast=True)
    assert rebuilt.path == target
    assert read_provenance(target)["source_model"] == "u2netp"


def test_fast_on_the_command_line_says_what_it_runs(
    fast_cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ALPHACUT_MODEL_DIR", str(fast_cache))
    skimage_photo("rocket", 200).save(tmp_path / "rocket.png")
    result = CliRunner().invoke(
        cli, ["remove", str(tmp_path / "rocket.png"), "-o", str(tmp_path / "out.png"), "--fast"]
    )
    assert result.exit_code == 0, result.output
    assert "fast path: u2netp INT8 on OpenVINO" in result.output
    assert (tmp_path / "out.png").is_file()
