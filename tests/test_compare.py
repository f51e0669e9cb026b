"""The truth set and the model comparison: exact alpha from agreement, the boundary F-measure,
and `alphacut truth` / `alphacut compare` end to end on real photos and real models."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from alphacut import OptionsError
from alphacut.evaluate.boundary import boundary_f_measure
from alphacut.evaluate.compare import ModelResult, SampleScore, Variant, parse_variant
from alphacut.evaluate.compare_report import quality_first
from alphacut.evaluate.truth_set import agreement_mask, load_truth_set
from helpers import PHOTOS, alphacut, skimage_photo

pytest.importorskip("pymatting")


def test_boundary_f_is_one_for_the_same_outline_and_falls_as_it_moves() -> None:
    square = np.zeros((200, 200), bool)
    square[50:150, 50:150] = True
    assert boundary_f_measure(square, square) == 1.0
    near = np.roll(square, 1, axis=1)  # one pixel: inside the 0.8% tolerance (3 px)
    assert boundary_f_measure(near, square) == 1.0
    far = np.roll(square, 20, axis=1)  # the two vertical edges miss, the horizontal ones meet
    assert 0.3 < boundary_f_measure(far, square) < 0.8
    assert boundary_f_measure(np.zeros_like(square), square) == 0.0
    assert boundary_f_measure(np.zeros_like(square), np.zeros_like(square)) == 1.0


def test_the_trimap_is_sure_only_where_a_majority_of_the_models_is() -> None:
    a = Image.fromarray(np.array([[255, 250, 0, 10, 128]], np.uint8), "L")
    b = Image.fromarray(np.array([[245, 100, 5, 200, 128]], np.uint8), "L")
    # Two models: a majority is both.
    assert np.asarray(agreement_mask([a, b])).tolist() == [[255, 128, 0, 128, 128]]
    # Three: one hesitant or dissenting model is outvoted, but one sure vote is not enough.
    c = Image.fromarray(np.array([[100, 240, 0, 0, 255]], np.uint8), "L")
    assert np.asarray(agreement_mask([a, b, c])).tolist() == [[255, 255, 0, 0, 128]]


def test_variants_parse_and_refuse_what_is_not_a_variant() -> None:
    assert parse_variant("u2net") == Variant("u2net")
    assert parse_variant("u2net --fast --refine guided") == Variant("u2net", True, "guided")
    assert parse_variant("u2net --refine").label == "u2net --refine auto"
    for wrong in ("--fast", "u2net --refine magic", "u2net -a"):
        with pytest.raises(OptionsError):
            parse_variant(wrong)


def _result(label: str, sad: float, seconds: float, packaged: bool = True) -> ModelResult:
    score = SampleScore("s", False, sad, 0, 0, 0, 1, 1)
    return ModelResult(
        parse_variant(label), packaged=packaged, seconds={2: seconds}, scores=(score,)
    )


def test_the_quality_first_rule_takes_the_best_registry_model_fast_enough() -> None:
    results = [
        _result("u2netp", 10, 0.2),
        _result("u2net", 8, 0.8),
        _result("isnet-general-fp16", 7, 1.5),  # better, but under 1/5 of u2netp's speed
        _result("birefnet-general", 5, 0.5, packaged=False),  # a model-hub download
    ]
    chosen = quality_first(results)
    assert chosen is not None
    assert chosen.variant.label == "u2net"
    assert quality_first(results[1:]) is None  # no u2netp baseline, no choice


def test_truth_then_compare_end_to_end(tmp_path: Path) -> None:
    truth = tmp_path / "truth"
    chelsea = tmp_path / "chelsea.png"  # scikit-image's cat: --fast never calibrated on it
    skimage_photo("chelsea", 300).save(chelsea)
    blank = tmp_path / "blank.png"  # nothing for the models to agree on
    Image.new("RGB", (200, 150), (128, 128, 128)).save(blank)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes((PHOTOS / "girl-1.jpg").read_bytes()[:300])
    made = alphacut(
        "truth",
        str(PHOTOS / "girl-1.jpg"),
        str(blank),
        str(broken),
        str(chelsea),
        "-b",
        str(PHOTOS / "long.jpg"),
        "-b",
        str(PHOTOS / "sailboat3.jpg"),
        "-o",
        str(truth),
        "--pixels",
        "40000",
        "--agree",
        "u2net,u2netp",
    )
    # The two bad photos are one line each; the others are made all the same.
    assert made.returncode == 1, made.stderr
    problems = [line for line in made.stderr.splitlines() if line.startswith("alphacut: /")]
    assert len(problems) == 2, made.stderr
    assert "blank.png: no pixel is surely subject" in problems[0]
    assert "broken.jpg" in problems[1]
    truth_set = load_truth_set(truth)
    # --fast was calibrated on girl-1, so it is not held out and the cat is; sailboat3 falls
    # in the held-out part by its name: a photo only goes over a background of its own part.
    assert [(s.photo, s.background, s.held_out) for s in truth_set.samples] == [
        ("girl-1.jpg", "long.jpg", False),
        ("chelsea.png", "sailboat3.jpg", True),
    ]
    assert truth_set.agreeing_models == ("u2net", "u2netp")
    sample = truth_set.samples[0]
    alpha, image = truth_set.alpha(sample), truth_set.image(sample)
    assert alpha.shape == (image.height, image.width)
    assert 0.02 < float(alpha.mean()) < 0.6  # a subject, not an empty or a full matte
    assert float(((alpha > 0.02) & (alpha < 0.98)).mean()) > 0  # soft edges were solved

    report = tmp_path / "report"
    compared = alphacut(
        "compare", str(truth), "-m", "u2netp", "-m", "selfie", "-m", "no-such-model",
        "-o", str(report), "--photos", str(PHOTOS / "car-1.jpg"), "--threads", "1",
    )  # fmt: skip
    assert compared.returncode == 1, compared.stderr  # one row could not be measured
    assert "no-such-model: ModelNotFound" in compared.stderr
    markdown = (report / "report.md").read_text()
    assert "| `u2netp` |" in markdown
    assert "| `selfie` |" in markdown
    assert "Not measured here" in markdown
    verdict = re.search(
        r"by the rule .*: `(u2netp|selfie)`, at (\d\.\d{3})× u2netp's SAD", markdown
    )
    assert verdict, markdown
    assert (verdict[1] == "u2netp") == (verdict[2] == "1.000")
    assert "alphacut's default model is `u2netp`" in markdown  # the suite's ALPHACUT_MODEL
    assert "| `u2netp` | 1.000 |" in markdown  # agreement on the real photo: a matrix
    agreement = json.loads((report / "metrics.json").read_text())["agreement"]
    assert list(agreement) == ["u2netp ~ selfie"]
    assert 0 <= agreement["u2netp ~ selfie"]["car-1.jpg"] <= 1
    page = (report / "report.html").read_text()
    for n in (0, 1):
        for s in truth_set.samples:
            assert f"previews/{n}/{s.name}.png" in page
            assert (report / "previews" / str(n) / f"{s.name}.png").is_file()
    metrics = json.loads((report / "metrics.json").read_text())
    rows = {row["variant"]: row for row in metrics["results"]}
    assert rows["u2netp"]["peak_rss_mb"] > 50
    assert rows["u2netp"]["seconds"]["1"] > 0
    assert rows["u2netp"]["load_s"] > 0
    assert 0 < rows["u2netp"]["means"]["sad"] < 100
    held_out = [s for s in rows["u2netp"]["scores"] if s["held_out"]]
    assert [s["name"] for s in held_out] == ["chelsea__sailboat3"]
    assert rows["no-such-model"]["error"].startswith("ModelNotFound")
