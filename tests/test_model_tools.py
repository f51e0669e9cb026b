"""Model tools: the dynamic-batch rewrite and the .ort export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from alphacut import RuntimeOptions
from alphacut.cli.main import cli, main
from alphacut.imagefile import decode
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


def test_batched_copies_are_named_for_their_source_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, session: Session
) -> None:
    """Two different files under one name (an INT8 and an FP32 u2netp, say) get two copies:
    a server never loads a batched copy of another graph than the one it was given."""
    from alphacut.graphs.dynamic_batch import batched_session
    from alphacut.models import custom_spec
    from tiny_models import pointwise_model

    monkeypatch.setenv("ALPHACUT_MODEL_DIR", str(tmp_path / "cache"))
    first = batched_session(session)
    (tmp_path / "other").mkdir()
    other_file = pointwise_model(tmp_path / "other" / "u2netp.onnx", 32, np.ones((1, 3)))
    other = batched_session(Session(custom_spec(other_file), other_file))
    assert first.path != other.path
    assert first.path.name == "u2netp.8e83ca70e441ab06.dynamic-batch.onnx"
    assert batched_session(session).path == first.path  # made once, then reused
    assert np.asarray(other.run(np.zeros((2, 3, 32, 32), np.float32))).shape == (2, 32, 32)


@pytest.mark.parametrize("mixes_the_batch", [False, True], ids=["fails", "differs"])
def test_a_copy_that_fails_its_check_is_refused_and_never_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mixes_the_batch: bool
) -> None:
    from alphacut.errors import InferenceError
    from alphacut.graphs.dynamic_batch import batched_session
    from alphacut.models import custom_spec
    from tiny_models import batch_bound_model

    cache = tmp_path / "cache"
    monkeypatch.setenv("ALPHACUT_MODEL_DIR", str(cache))
    path = batch_bound_model(tmp_path / "bound.onnx", 16, mixes_the_batch=mixes_the_batch)
    single = Session(custom_spec(path), path)
    assert single.run(np.zeros((1, 3, 16, 16), np.float32)).shape == (1, 16, 16)
    message = "without changing its output" if mixes_the_batch else "cannot run on a batch"
    for _ in range(2):  # the second try checks again rather than loading a kept copy
        with pytest.raises(InferenceError, match=message):
            batched_session(single)
        assert list(cache.iterdir()) == []


def test_the_description_names_the_graph_loaded_not_the_flag(session: Session) -> None:
    """An FP32 file loaded with fast=True is described as FP32 (the INT8 copy's own
    description is checked in test_fast)."""
    runtime = RuntimeOptions(backend="onnxruntime", fast=True)
    assert not session.quantized
    assert Session(session.spec, session.path, runtime).description.startswith("u2netp FP32 ")


@pytest.mark.parametrize(
    "command",
    [["serve", "--fast", "--max-batch", "4"], ["video", "clip.mp4", "-o", "x.webm", "--fast", "--batch", "2"]],
)  # fmt: skip
def test_fast_with_a_batch_is_refused_in_one_line(command: list[str], capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as exited:
        main(command)
    assert exited.value.code == 64  # OptionsError
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert "the fast path runs one image per model call" in lines[0]
