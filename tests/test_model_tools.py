"""Model tools: the dynamic-batch rewrite and the .ort export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from alphacut import RuntimeOptions
from alphacut.cli.main import cli, main
from alphacut.imageio import decode
from alphacut.models import find_model, get_spec
from alphacut.models.session import Session
from alphacut.pipeline import prepare
from helpers import PHOTOS


def test_rewritten_model_batches_with_identical_outputs(tmp_path: Path) -> None:
    target = tmp_path / "u2netp-batch.onnx"
    result = CliRunner().invoke(
        cli,
        ["models", "dynamic-batch", "u2netp", "-o", str(target), "--verify-images", str(PHOTOS)],
    )
    assert result.exit_code == 0, result.output
    assert "masks identical" in result.output
    model = onnx.load(str(target))
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    provenance = {p.key: p.value for p in model.metadata_props}
    assert provenance["alphacut.derived_from_md5"] == "8e83ca70e441ab06c318d82300c84806"

    spec = get_spec("u2netp")
    original = find_model(spec)
    assert original is not None
    runtime = RuntimeOptions(backend="onnxruntime")
    single = Session(spec, original, runtime)
    batched = Session(spec, target, runtime)
    tensors = [
        prepare(decode(PHOTOS / n).image, spec) for n in ("car-1.jpg", "horse.jpg", "boat.jpg")
    ]
    joint = batched.run(np.concatenate(tensors))
    assert joint.shape == (3, 320, 320)
    for index, tensor in enumerate(tensors):
        assert np.array_equal(joint[index], single.run(tensor)[0])


def test_not_a_model_is_refused(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    bogus = tmp_path / "bogus.onnx"
    bogus.write_text("not a model")
    with pytest.raises(SystemExit) as exited:
        main(["models", "dynamic-batch", str(bogus), "-o", str(tmp_path / "out.onnx")])
    assert exited.value.code == 69
    assert "not a readable ONNX model" in capsys.readouterr().err
    assert not (tmp_path / "out.onnx").exists()


def test_ort_export_runs_and_matches(tmp_path: Path) -> None:
    target = tmp_path / "u2netp.ort"
    result = CliRunner().invoke(
        cli, ["models", "export", "u2netp", "--format", "ort", "-o", str(target)]
    )
    assert result.exit_code == 0, result.output
    assert target.read_bytes()[4:8] == b"ORTM"  # the flatbuffer identifier of ORT-format models
    assert "MB (ort)" in result.output
    session = Session(get_spec("u2netp"), target, RuntimeOptions(backend="onnxruntime"))
    tensor = prepare(decode(PHOTOS / "car-1.jpg").image, get_spec("u2netp"))
    original = find_model(get_spec("u2netp"))
    assert original is not None
    reference = Session(get_spec("u2netp"), original, RuntimeOptions(backend="onnxruntime")).run(
        tensor
    )
    assert np.abs(session.run(tensor) - reference).max() < 1e-4
