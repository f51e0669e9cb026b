"""`alphacut eval`: real u2netp masks scored by real pysodmetrics, against ground truth made
from rembg's reference cutouts and against a copy of the same model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from alphacut.cli.evaluate import eval_command
from alphacut.evaluate import (
    Agreement,
    SODResult,
    agreement,
    collect_images,
    evaluate_ground_truth,
    sod_result,
)
from helpers import DATA, PHOTOS

REFERENCE = DATA / "rembg-u2netp"
# Small photos, so the whole file runs in seconds.
NAMES = ("car-1.jpg", "girl.png", "im_27.png", "rifle2.jpeg")
GT_METRICS = (
    "mae",
    "max_f",
    "s_measure",
    "mean_e",
    "max_e",
    "sad",
    "mse",
    "gradient",
    "connectivity",
)


def reference_alpha(name: str) -> np.ndarray:
    """rembg's u2netp alpha for photos/<name>, which alphacut reproduces within ±2."""
    return np.asarray(Image.open(REFERENCE / f"{Path(name).stem}.png").getchannel("A"))


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in NAMES:
        shutil.copy(PHOTOS / name, folder / name)
    return folder


@pytest.fixture
def gt_dir(tmp_path: Path) -> Path:
    """Ground truth in several forms: grey PNGs, a grey TIFF, and an RGBA cutout whose
    alpha channel is the mask."""
    folder = tmp_path / "gt"
    folder.mkdir()
    for name in NAMES:
        stem = Path(name).stem
        if name == "girl.png":
            shutil.copy(REFERENCE / f"{stem}.png", folder / f"{stem}.png")  # RGBA cutout
        else:
            suffix = ".tif" if name == "rifle2.jpeg" else ".png"
            Image.fromarray(reference_alpha(name), "L").save(folder / f"{stem}{suffix}")
    return folder


def run_eval(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(eval_command, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def expected_mae(name: str) -> float:
    """What pysodmetrics says for rembg's mask scored against itself: not 0, because the
    prediction stays soft while the ground truth is binarised at > 128."""
    return sod_result(reference_alpha(name), reference_alpha(name)).scores.mae


def test_ground_truth_from_reference_masks_scores_nearly_perfect(
    photos: Path, gt_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "report"
    code, stdout, stderr = run_eval(str(photos), "--gt", str(gt_dir), "-o", str(out))
    assert code == 0, stderr

    for label in ("MAE", "max F-measure", "S-measure", "mean E-measure", "max E-measure", "SAD",
                  "gradient error", "connectivity error"):  # fmt: skip
        assert any(line.strip().startswith(label) for line in stdout.splitlines()), stdout
    assert f"report: {out / 'report.html'}" in stdout

    document = json.loads((out / "metrics.json").read_text())
    assert document["mode"] == "ground-truth"
    assert document["counts"] == {"images": 4, "scored": 4, "failed": 0}
    assert [i["name"] for i in document["images"]] == sorted(NAMES)
    for image in document["images"]:
        metrics = image["metrics"]
        assert set(metrics) == set(GT_METRICS)
        # alphacut's mask is rembg's within ±2, so it scores as rembg's own mask does.
        assert metrics["mae"] == pytest.approx(expected_mae(image["name"]), abs=0.002)
        assert metrics["mae"] < 0.03
        assert metrics["max_f"] > 0.99
        assert 0.9 < metrics["s_measure"] <= 1.0
        assert 0.9 < metrics["mean_e"] <= 1.0
        # pysodmetrics' E-measure normalisation can pass 1 by about 1/(pixels).
        assert 0.99 < metrics["max_e"] <= 1.0 + 1e-3
        # As mattes, the two are within two levels everywhere: tiny matting errors.
        assert 0 <= metrics["sad"] < 1.0  # 0: the same mask to the level (no rounding apart)
        assert metrics["mse"] < 1e-4
        assert metrics["gradient"] < 0.05
        assert metrics["connectivity"] < 1.0
    summary = document["summary"]
    assert summary["max_f"] > 0.99
    assert summary["sad"] == pytest.approx(
        sum(i["metrics"]["sad"] for i in document["images"]) / len(document["images"])
    )
    assert summary["mae"] < 0.03
    assert len(summary["f_curve"]) == len(summary["e_curve"]) == 256

    html = (out / "report.html").read_text()
    for name in NAMES:
        assert name in html
    assert html.count("data:image/") >= 1 + 4 * len(NAMES)  # plot + four thumbnails each
    assert "http://" not in html
    assert "https://" not in html
    with Image.open(out / "plot.png") as plot:
        assert plot.format == "PNG"
        assert plot.width > 300


def test_inverted_ground_truth_scores_badly(photos: Path, gt_dir: Path, tmp_path: Path) -> None:
    inverted = tmp_path / "inverted"
    inverted.mkdir()
    for name in NAMES:
        mask = 255 - reference_alpha(name)
        Image.fromarray(mask, "L").save(inverted / f"{Path(name).stem}.png")
    out = tmp_path / "report"
    code, _, stderr = run_eval(str(photos), "--gt", str(inverted), "-o", str(out))
    assert code == 0, stderr
    for image in json.loads((out / "metrics.json").read_text())["images"]:
        assert image["metrics"]["mae"] > 0.5
        assert image["metrics"]["s_measure"] < 0.1
        assert image["metrics"]["mean_e"] < 0.1


def test_same_model_as_reference_agrees_exactly(photos: Path, tmp_path: Path) -> None:
    from alphacut.models import find_model, get_spec

    original = find_model(get_spec("u2netp"))
    assert original is not None, "run `alphacut models pull u2netp` first"
    copy = tmp_path / "u2netp-fp32.onnx"
    shutil.copy(original, copy)
    out = tmp_path / "report"
    code, stdout, stderr = run_eval(
        str(photos), "--model", "u2netp", "--reference-model-path", str(copy), "-o", str(out)
    )
    assert code == 0, stderr
    assert "IoU  1.0000" in stdout
    assert "MAE  0.0000" in stdout

    document = json.loads((out / "metrics.json").read_text())
    assert document["reference"]["name"] == "u2netp-fp32"
    for image in document["images"]:
        assert image["metrics"] == {"iou": 1.0, "mae": 0.0}
    assert document["summary"]["mean_iou"] == 1.0
    assert document["summary"]["worst_mae"] == 0.0
    html = (out / "report.html").read_text()
    assert all(name in html for name in NAMES)


def test_images_without_usable_ground_truth_are_reported_and_the_run_goes_on(
    photos: Path, gt_dir: Path, tmp_path: Path
) -> None:
    (gt_dir / "im_27.png").unlink()  # missing
    (gt_dir / "girl.png").write_bytes(b"\x89PNG\r\n\x1a\ntruncated")  # corrupt
    shutil.copy(gt_dir / "rifle2.tif", gt_dir / "rifle2.png")  # ambiguous
    (photos / "notes.txt").write_text("not an image")
    out = tmp_path / "report"
    code, stdout, stderr = run_eval(str(photos), "--gt", str(gt_dir), "-o", str(out))

    assert code == 1
    assert f"im_27.png: no ground-truth mask named im_27.* in {gt_dir}" in stderr
    assert f"girl.png: ground truth {gt_dir / 'girl.png'}: corrupt" in stderr
    assert "rifle2.jpeg: several ground-truth files for 'rifle2'" in stderr
    assert "notes.txt: a text file, not an image [UnsupportedImage]" in stderr
    assert "1 of 5 images scored" in stdout
    document = json.loads((out / "metrics.json").read_text())
    assert document["counts"] == {"images": 5, "scored": 1, "failed": 4}
    by_name = {i["name"]: i for i in document["images"]}
    assert by_name["im_27.png"]["metrics"] is None
    assert by_name["im_27.png"]["error_type"] == "InputError"
    assert by_name["car-1.jpg"]["metrics"]["max_f"] > 0.99
    assert "no ground-truth mask named im_27.*" in (out / "report.html").read_text()


def test_ground_truth_and_reference_together_is_a_usage_error(
    photos: Path, gt_dir: Path, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        eval_command,
        [str(photos), "--gt", str(gt_dir), "--reference-model", "u2netp", "-o", str(tmp_path)],
    )
    assert result.exit_code == 2
    assert "either --gt" in result.output


def test_summary_is_what_pysodmetrics_gives_for_the_whole_set(
    session, photos: Path, gt_dir: Path, tmp_path: Path
) -> None:
    import py_sod_metrics as sod

    from alphacut.imagefile import decode
    from alphacut.pipeline import predict_mask

    samples = collect_images([photos], report_dir=tmp_path / "report")
    report = evaluate_ground_truth(samples, session, gt_dir, max_previews=2)
    assert isinstance(report.summary, SODResult)
    worst_two = sorted(report.images, key=lambda r: r.scores.scores.mae)[-2:]
    assert {r.name for r in report.images if r.previews} == {r.name for r in worst_two}

    mae, s_measure, e_measure = sod.MAE(), sod.Smeasure(), sod.Emeasure()
    f_measure = sod.FmeasureV2(
        metric_handlers={"fm": sod.FmeasureHandler(with_dynamic=True, with_adaptive=False)}
    )
    for name in sorted(NAMES):
        prediction = np.asarray(predict_mask(session, decode(photos / name).image))
        truth = reference_alpha(name)
        for metric in (mae, f_measure, s_measure, e_measure):
            metric.step(pred=prediction, gt=truth)
    e_curve = e_measure.get_results()["em"]["curve"]
    scores = report.summary.scores
    assert scores.mae == pytest.approx(mae.get_results()["mae"], abs=1e-12)
    assert scores.s_measure == pytest.approx(s_measure.get_results()["sm"], abs=1e-12)
    assert scores.max_f == pytest.approx(f_measure.get_results()["fm"]["dynamic"].max(), abs=1e-12)
    assert scores.mean_e == pytest.approx(e_curve.mean(), abs=1e-12)
    assert scores.max_e == pytest.approx(e_curve.max(), abs=1e-12)


def test_agreement_of_masks() -> None:
    empty = np.zeros((4, 4), np.uint8)
    assert agreement(empty, empty) == Agreement(iou=1.0, mae=0.0)
    half = empty.copy()
    half[:2] = 255
    quarter = empty.copy()
    quarter[:1] = 255
    result = agreement(half, quarter)
    assert result.iou == 0.5
    assert result.mae == pytest.approx(0.25)
    assert agreement(np.full((2, 2), 127, np.uint8), np.full((2, 2), 128, np.uint8)).iou == 0.0
    with pytest.raises(ValueError, match="shapes differ"):
        agreement(empty, np.zeros((4, 5), np.uint8))


def test_a_different_reference_model_is_really_compared(photos: Path, tmp_path: Path) -> None:
    """Against an INT8 copy the scores are not perfect, and each one is what comparing the
    two models' masks directly gives: a bug that ignored the reference would fail here."""
    from alphacut.graphs.int8 import quantize_model
    from alphacut.imagefile import decode
    from alphacut.pipeline import predict_mask
    from alphacut.pool import load_session

    int8 = tmp_path / "u2netp-int8.onnx"
    quantize_model("u2netp", photos, int8)
    out = tmp_path / "report"
    code, _, stderr = run_eval(
        str(photos), "--model", "u2netp", "--reference-model-path", str(int8), "-o", str(out)
    )
    assert code == 0, stderr
    document = json.loads((out / "metrics.json").read_text())
    fp32, reference = load_session("u2netp"), load_session("u2netp", model_path=int8)
    scores = {image["name"]: image["metrics"] for image in document["images"]}
    assert sorted(scores) == sorted(NAMES)
    for name in NAMES:
        image = decode(photos / name).image
        want = agreement(
            np.asarray(predict_mask(fp32, image)), np.asarray(predict_mask(reference, image))
        )
        assert scores[name]["iou"] == pytest.approx(want.iou, abs=1e-6), name
        assert scores[name]["mae"] == pytest.approx(want.mae, abs=1e-6), name
    assert min(s["mae"] for s in scores.values()) > 0
    assert document["summary"]["mean_iou"] < 1.0
