"""The graph ONNX Runtime optimised is saved once and reused: same outputs, no stale copies."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from alphacut import RuntimeOptions
from alphacut.models.optimized import optimized_cache_dir
from alphacut.pipeline import prepare
from alphacut.pool import load_session
from helpers import skimage_photo


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ALPHACUT_CACHE_DIR", str(tmp_path / "cache"))
    return optimized_cache_dir()


@pytest.fixture
def model_copy(tmp_path: Path) -> Path:
    """A private copy of u2netp, so its modification time can change."""
    original = load_session("u2netp", runtime=RuntimeOptions(reuse_optimized_model=False)).path
    return Path(shutil.copy(original, tmp_path / "mine.onnx"))


def _copies(cache: Path) -> list[Path]:
    return sorted(cache.glob("*.onnx")) if cache.is_dir() else []


def _saliency(session, name: str = "astronaut") -> np.ndarray:
    return session.run(prepare(skimage_photo(name, 400), session.spec))


def test_the_second_load_reuses_the_saved_graph_and_gives_the_same_bits(cache: Path) -> None:
    first = load_session("u2netp")
    assert first._runner.optimized_copy is None
    (saved,) = _copies(cache)
    second = load_session("u2netp")
    assert second._runner.optimized_copy == saved
    # The copy is checked at the session's thread count; it must hold at any other too.
    one_thread = load_session("u2netp", runtime=RuntimeOptions(intra_op_threads=1))
    assert one_thread._runner.optimized_copy == saved
    plain = load_session("u2netp", runtime=RuntimeOptions(reuse_optimized_model=False))
    for name in ("astronaut", "chelsea", "rocket"):
        expected = _saliency(plain, name)
        assert np.array_equal(_saliency(first, name), expected)
        assert np.array_equal(_saliency(second, name), expected)
        assert np.array_equal(_saliency(one_thread, name), expected)


def test_a_corrupt_copy_is_made_again(cache: Path) -> None:
    load_session("u2netp")
    (saved,) = _copies(cache)
    saved.write_bytes(saved.read_bytes()[:5000])  # as a crash in mid-write would leave it
    again = load_session("u2netp")
    assert again._runner.optimized_copy is None
    assert _copies(cache) == [saved]
    assert load_session("u2netp")._runner.optimized_copy == saved


def test_a_changed_model_file_replaces_its_old_copy(cache: Path, model_copy: Path) -> None:
    load_session("u2netp", model_path=model_copy)
    (old,) = _copies(cache)
    stat = model_copy.stat()
    os.utime(model_copy, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    session = load_session("u2netp", model_path=model_copy)
    assert session._runner.optimized_copy is None
    (new,) = _copies(cache)
    assert new != old
    assert new.name.startswith("mine.")


def test_copies_of_other_models_are_kept(cache: Path, model_copy: Path) -> None:
    load_session("u2netp")
    load_session("u2netp", model_path=model_copy)
    assert [p.name.split(".")[0] for p in _copies(cache)] == ["mine", "u2netp"]


def test_an_unwritable_cache_only_costs_the_saving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("ALPHACUT_CACHE_DIR", str(blocker))
    session = load_session("u2netp")
    assert session._runner.optimized_copy is None
    assert _saliency(session).shape == (1, 320, 320)
    assert blocker.read_text().startswith("a file")


def test_turning_it_off_writes_nothing(cache: Path) -> None:
    load_session("u2netp", runtime=RuntimeOptions(reuse_optimized_model=False))
    load_session("u2netp", runtime=RuntimeOptions(graph_optimization="extended"))
    assert _copies(cache) == []


def _op_counts(path: Path) -> dict[str, int]:
    import collections

    import onnx

    return collections.Counter(node.op_type for node in onnx.load(str(path)).graph.node)


def test_the_saved_graph_keeps_the_decoder_in_the_blocked_layout(cache: Path) -> None:
    load_session("u2netp")
    (saved,) = _copies(cache)
    ops = _op_counts(saved)
    if ops["Conv"] and not ops["Reshape"]:
        pytest.skip("this CPU's ONNX Runtime does not use the NCHWc layout")
    # Only the 1-channel side outputs and the final mask still leave the blocked layout, and
    # every decoder convolution reads its two halves without a concatenated copy.
    assert ops["ReorderInput"] == 0
    assert ops["ReorderOutput"] <= 8
    assert ops["Resize"] == 38
    assert ops["Concat"] <= 2
    assert ops["Conv"] == 119 + 50


def test_a_rewrite_that_changes_any_output_bit_is_refused(tmp_path: Path) -> None:
    import onnxruntime as ort

    from alphacut.models.blocked_layout import block_size_candidates, rewrite_in_blocked_layout
    from alphacut.models.optimized import _cpu_features, _reference_run, _reproduces

    original = load_session("u2netp", runtime=RuntimeOptions(reuse_optimized_model=False)).path
    optimized = tmp_path / "optimized.onnx"
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(optimized)
    options.log_severity_level = 3
    reference = ort.InferenceSession(str(original), options, providers=["CPUExecutionProvider"])
    plain = ort.SessionOptions()
    plain.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    right, wrong = block_size_candidates(_cpu_features())
    for block, split, identical in (
        (right, True, True),
        (right, False, True),
        (wrong, True, False),
    ):
        data = rewrite_in_blocked_layout(optimized, original, block, split_concatenations=split)
        if data is None:
            pytest.skip("this CPU's ONNX Runtime does not use the NCHWc layout")
        candidate = ort.InferenceSession(data, plain, providers=["CPUExecutionProvider"])
        # With the wrong block size the reshaped pixels are scrambled, and the check sees it.
        run = _reference_run(reference)
        assert run is not None
        assert _reproduces(candidate, run) is identical, block


def test_loading_keeps_the_plain_graph_when_every_rewrite_is_refused(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guard production runs at first load: offered only a wrong block size, it must
    refuse the rewrite and keep ONNX Runtime's own optimised graph, bit-identical."""
    from alphacut.models import optimized

    _right, wrong = optimized.block_size_candidates(optimized._cpu_features())
    offered: list[int] = []

    def only_the_wrong_size(features: str) -> tuple[int, ...]:
        offered.append(wrong)
        return (wrong,)

    monkeypatch.setattr(optimized, "block_size_candidates", only_the_wrong_size)
    refused = load_session("u2netp")
    assert offered, "the rewrite was never attempted"
    (saved,) = _copies(cache)
    ops = _op_counts(saved)
    if ops["Conv"] and not ops["Reshape"] and not ops["ReorderOutput"]:
        pytest.skip("this CPU's ONNX Runtime does not use the NCHWc layout")
    assert ops["ReorderOutput"] > 8  # the decoder still leaves the blocked layout
    assert ops["Concat"] > 2
    plain = load_session("u2netp", runtime=RuntimeOptions(reuse_optimized_model=False))
    for name in ("astronaut", "chelsea"):
        assert np.array_equal(_saliency(refused, name), _saliency(plain, name))
