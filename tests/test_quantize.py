"""INT8 static quantisation: real u2netp, real ONNX Runtime, real photos; no mocks.

Calibration uses 4 photos and the masks are checked on 6 others, never seen in calibration.
Speed is not asserted here (shared machines are noisy); docs/int8.md has the timings.
"""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from helpers import PHOTOS

pytest.importorskip("onnx")

CALIBRATION = ["0002-01.jpg", "animal-1.jpg", "bike.jpg", "car-1.jpg"]
HELD_OUT = ["0003.jpg", "anime-girl-1.jpg", "boat.jpg", "hockey.png", "im_21.png", "vangogh.jpeg"]
STAGE2_PATH = ("Conv_765", "Relu_766", "Resize_785", "Concat_786", "Conv_787")


def _folder(root: Path, names: list[str]) -> Path:
    root.mkdir(parents=True)
    for name in names:
        shutil.copy(PHOTOS / name, root / name)
    return root


@pytest.fixture(scope="module")
def quantized(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """u2netp quantised through the CLI command, with a 2-photo --evaluate run."""
    from alphacut.cli.quantize import quantize_command

    root = tmp_path_factory.mktemp("quantize")
    calibration = _folder(root / "calibration", CALIBRATION)
    evaluation = _folder(root / "evaluation", HELD_OUT[:2])
    output = root / "u2netp.int8.onnx"
    args = ["u2netp", "--calibration", str(calibration), "-o", str(output)]
    result = CliRunner().invoke(quantize_command, [*args, "--evaluate", str(evaluation)])
    assert result.exit_code == 0, result.output
    return output, result.output


def test_report_names_recipe_size_and_measurements(quantized: tuple[Path, str]) -> None:
    _, report = quantized
    for label in ("recipe", "float nodes", "size", "mask IoU", "speed-up"):
        assert label in report
    assert "Conv_787" in report


def test_quantized_model_loads_by_path_and_is_int8(quantized: tuple[Path, str]) -> None:
    import onnx

    from alphacut import new_session
    from alphacut.models import find_model, get_spec

    path, _ = quantized
    session = new_session(model_path=str(path))
    assert session.run(np.zeros((1, 3, 320, 320), np.float32)).shape == (1, 320, 320)
    model = onnx.load(str(path))
    ops = {node.op_type for node in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 13
    fp32 = find_model(get_spec("u2netp"))
    assert fp32 is not None
    assert path.stat().st_size < 0.5 * fp32.stat().st_size


def test_provenance_is_in_metadata(quantized: tuple[Path, str]) -> None:
    import json

    from alphacut import __version__
    from alphacut.graphs.quantize import read_provenance
    from alphacut.models import get_spec

    path, _ = quantized
    meta = read_provenance(path)
    assert meta["source_model"] == "u2netp"
    assert "md5:" + meta["source_md5"] == get_spec("u2netp").checksum
    assert meta["alphacut_version"] == __version__
    assert meta["date"][:2] == "20"
    assert meta["calibration_images"] == str(len(CALIBRATION))
    assert meta["calibration_digest"].startswith("sha256:")
    assert meta["method"] == "minmax"
    assert set(STAGE2_PATH) <= set(meta["float_nodes"].split(","))
    evaluation = json.loads(meta["evaluation"])
    assert evaluation["images"] == 2
    # The file records the very figures the report printed.
    _, report = quantized
    assert f"mean {evaluation['mean_iou']:.4f}, worst {evaluation['worst_iou']:.4f}" in report
    assert f"{evaluation['speedup']:.2f}x end to end" in report


def test_int8_model_exports_to_ort_and_agrees_with_its_source(
    quantized: tuple[Path, str], tmp_path: Path
) -> None:
    from alphacut import new_session
    from alphacut.graphs.export import export_ort
    from alphacut.imagefile import decode
    from alphacut.metrics import agreement
    from alphacut.pipeline import predict_mask

    path, _ = quantized
    report = export_ort(path, tmp_path / "u2netp.int8.ort")
    assert (tmp_path / "u2netp.int8.ort").stat().st_size == report.output_bytes
    assert report.output_bytes < 2.5e6  # the FP32 model is 4.6 MB
    # Beyond export_ort's own probe: on a real photo the .ort file gives the source's mask.
    source = new_session("u2netp", model_path=str(path))
    exported = new_session("u2netp", model_path=str(tmp_path / "u2netp.int8.ort"))
    image = decode(PHOTOS / HELD_OUT[0]).image
    want, got = np.asarray(predict_mask(source, image)), np.asarray(predict_mask(exported, image))
    difference = np.abs(want.astype(np.int16) - got)
    # export_ort's probe allows 2/255 on the raw output; the mask's min-max stretch and the
    # upscale to the photo's size widen that to a few grey levels on a handful of pixels.
    assert int(difference.max()) <= 10
    assert float(difference.mean()) < 0.1
    assert agreement(got, want).iou >= 0.995


def test_an_export_that_strays_from_its_source_is_refused_and_removed(
    quantized: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from alphacut.errors import InferenceError
    from alphacut.graphs import export

    path, _ = quantized
    # No tolerance at all: the converter's Q/DQ fusion always moves an INT8 output a little.
    monkeypatch.setattr(export, "_tolerance", lambda source: 0.0)
    with pytest.raises(InferenceError, match="differs from"):
        export.export_ort(path, tmp_path / "strays.ort")
    assert not (tmp_path / "strays.ort").exists()


def test_no_exact_input_quantises_the_normalised_input_as_it_comes(tmp_path: Path) -> None:
    from alphacut.cli.quantize import quantize_command
    from alphacut.graphs.quantize import read_provenance
    from alphacut.graphs.quantize_input import PIXELS

    calibration = _folder(tmp_path / "calibration", CALIBRATION[:2])
    output = tmp_path / "plain-input.int8.onnx"
    result = CliRunner().invoke(
        quantize_command,
        ["u2netp", "--calibration", str(calibration), "-o", str(output), "--no-exact-input"],
    )
    assert result.exit_code == 0, result.output
    assert "pixel-exact input" not in result.output
    float_nodes = read_provenance(output)["float_nodes"].split(",")
    assert not [n for n in float_nodes if n.startswith(PIXELS)]


def test_the_shipped_recipe_uses_the_pixel_exact_input(quantized: tuple[Path, str]) -> None:
    from alphacut.graphs.quantize import read_provenance
    from alphacut.graphs.quantize_input import PIXELS

    path, report = quantized
    assert "pixel-exact input" in report
    assert [n for n in read_provenance(path)["float_nodes"].split(",") if n.startswith(PIXELS)]


def test_a_short_search_keeps_only_steps_that_improve_the_masks(tmp_path: Path) -> None:
    from alphacut.graphs.quantize import (
        QuantRecipe,
        open_workspace,
        prepared_tensors,
        resolve_source,
    )
    from alphacut.graphs.quantize_search import search_recipe

    spec, source = resolve_source("u2netp")
    tensors = prepared_tensors([PHOTOS / name for name in CALIBRATION[:2]], spec)
    work = open_workspace(source, spec, tensors, tmp_path, equalize=True)
    messages: list[str] = []
    result = search_recipe(
        work, QuantRecipe(), steps=1, breadth=2, max_images=2, progress=messages.append
    )
    assert result.candidates[0].label.startswith("all int8")
    assert any(m.startswith("search: step 1:") for m in messages)
    for earlier, later in itertools.pairwise(result.candidates):
        assert later.fidelity.mad <= 0.97 * earlier.fidelity.mad  # kept only if clearly better
        assert set(earlier.recipe.float_nodes) < set(later.recipe.float_nodes)
    assert result.chosen in [c.recipe for c in result.candidates]
    assert all(c.speedup > 0 for c in result.candidates)


def test_masks_match_fp32_on_held_out_photos(quantized: tuple[Path, str], session) -> None:
    """Naive full INT8 gives IoU ~0.6 here, so this bound does fail on a bad recipe."""
    from alphacut import new_session
    from alphacut.imagefile import decode
    from alphacut.metrics import agreement
    from alphacut.pipeline import predict_mask

    path, _ = quantized
    int8 = new_session("u2netp", model_path=str(path))
    ious = []
    for name in HELD_OUT:
        image = decode(PHOTOS / name).image
        reference = np.asarray(predict_mask(session, image))
        ious.append(agreement(np.asarray(predict_mask(int8, image)), reference).iou)
    assert np.mean(ious) >= 0.97, dict(zip(HELD_OUT, ious, strict=True))
    assert min(ious) >= 0.93, dict(zip(HELD_OUT, ious, strict=True))


def test_sensitivity_finds_the_stage2_decoder_path(tmp_path: Path) -> None:
    """Fully quantised, Conv_787 loses the most precision, and its unit is the whole path."""
    import onnx

    from alphacut.graphs.quantize import QuantRecipe, open_workspace, prepared_tensors
    from alphacut.graphs.quantize_search import conv_units, sqnr_drops
    from alphacut.models import ensure_model, get_spec

    spec = get_spec("u2netp")
    tensors = prepared_tensors([PHOTOS / n for n in CALIBRATION[:2]], spec)
    work = open_workspace(ensure_model(spec), spec, tensors, tmp_path, equalize=True)
    assert work.equalized_convs > 50
    everything = tmp_path / "all.onnx"
    work.quantize(QuantRecipe(), everything)
    drops = sqnr_drops(work, everything, tensors[:1])
    assert max(drops, key=drops.__getitem__) == "Conv_787"
    units = conv_units(onnx.load(str(work.float_path)))
    assert set(units["Conv_787"]) == set(STAGE2_PATH)


def test_equalisation_keeps_the_float_function(tmp_path: Path) -> None:
    import onnx
    import onnxruntime as ort

    from alphacut.graphs.quantize import prepared_tensors
    from alphacut.graphs.quantize_graph import equalize_channels, prepare_float_model
    from alphacut.models import ensure_model, get_spec

    spec = get_spec("u2netp")
    tensors = prepared_tensors([PHOTOS / CALIBRATION[0]], spec)
    path = prepare_float_model(ensure_model(spec), tmp_path)
    model = onnx.load(str(path))
    balanced, count = equalize_channels(model, tensors, "input.1")
    assert count == 90
    probe = prepared_tensors([PHOTOS / HELD_OUT[0]], spec)[0]
    before, after = (
        ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(
            None, {"input.1": probe}
        )[0]
        for m in (model, balanced)
    )
    assert np.abs(before - after).max() < 1e-3


def test_pixel_exact_input_keeps_the_float_function_and_sees_whole_pixels(
    tmp_path: Path,
) -> None:
    """The rewritten first conv reads k/255 for a photo whose brightest byte is 255, so an
    8-bit scale of 1/255 represents every input pixel exactly."""
    import onnx
    import onnxruntime as ort

    from alphacut.graphs.quantize import prepared_tensors
    from alphacut.graphs.quantize_graph import prepare_float_model
    from alphacut.graphs.quantize_input import PIXELS, pixel_exact_input
    from alphacut.imagefile import decode
    from alphacut.models import ensure_model, get_spec
    from alphacut.pipeline.resize import lanczos_resize

    spec = get_spec("u2netp")
    model = onnx.load(str(prepare_float_model(ensure_model(spec), tmp_path)))
    rewritten, pixel_input = pixel_exact_input(model, "input.1", spec.mean, spec.std)
    assert pixel_input is not None
    assert set(pixel_input.overrides) == {PIXELS}
    photo = PHOTOS / "boat.jpg"  # brightest resized byte: 255
    probe = prepared_tensors([photo], spec)[0]
    pixels_out = onnx.helper.make_tensor_value_info(PIXELS, onnx.TensorProto.FLOAT, None)
    rewritten.graph.output.append(pixels_out)
    before = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    after = ort.InferenceSession(rewritten.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = before.run(None, {"input.1": probe})[0]
    mask, pixels = (lambda r: (r[0], r[-1]))(after.run(None, {"input.1": probe}))
    assert np.abs(expected - mask).max() < 1e-3
    small = np.asarray(lanczos_resize(decode(photo).image.convert("RGB"), spec.input_size))
    assert small.max() == 255
    inner = pixels[0, :, 1:-1, 1:-1] * 255  # the border ring is the conv's moved padding
    assert np.abs(inner - np.rint(inner)).max() < 1e-3
    assert np.array_equal(np.rint(inner).astype(np.uint8), small.transpose(2, 0, 1))


def test_pixel_exact_input_leaves_other_graphs_alone() -> None:
    import onnx
    from onnx import TensorProto, helper

    from alphacut.graphs.quantize_input import pixel_exact_input

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4, 4])],
    )
    model = helper.make_model(graph)
    unchanged, pixel_input = pixel_exact_input(model, "x", (0.5,) * 3, (0.2,) * 3)
    assert pixel_input is None
    assert [n.op_type for n in unchanged.graph.node] == ["Relu"]
    assert isinstance(unchanged, onnx.ModelProto)


def test_non_onnx_file_is_invalid_model(tmp_path: Path) -> None:
    from alphacut.errors import InvalidModel
    from alphacut.graphs.int8 import quantize_model

    bogus = tmp_path / "model.onnx"
    bogus.write_bytes(b"this is not a protobuf\x00\xff" * 10)
    calibration = _folder(tmp_path / "calibration", CALIBRATION[:1])
    with pytest.raises(InvalidModel, match="not a readable ONNX model"):
        quantize_model(bogus, calibration, tmp_path / "out.onnx")


def test_empty_calibration_folder_is_an_options_error(tmp_path: Path) -> None:
    from alphacut.cli.quantize import quantize_command
    from alphacut.errors import OptionsError

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a photo")
    result = CliRunner().invoke(
        quantize_command, ["u2netp", "--calibration", str(empty), "-o", str(tmp_path / "x.onnx")]
    )
    assert isinstance(result.exception, OptionsError)
    assert "holds no images" in str(result.exception)
    assert not (tmp_path / "x.onnx").exists()


def test_unknown_model_name_is_model_not_found(tmp_path: Path) -> None:
    from alphacut.errors import ModelNotFound
    from alphacut.graphs.quantize import resolve_source

    with pytest.raises(ModelNotFound, match="neither a registered model"):
        resolve_source("no-such-model")


def test_recipe_rejects_unknown_values() -> None:
    from alphacut.errors import OptionsError
    from alphacut.graphs.quantize import QuantRecipe

    with pytest.raises(OptionsError, match="method must be one of"):
        QuantRecipe(method="magic")  # type: ignore[arg-type]
