"""Execution providers: loud fallbacks, fast failures, IO binding, and GPU consistency."""

from __future__ import annotations

import logging

import numpy as np
import onnxruntime as ort
import pytest

from alphacut import ProviderUnavailable, RuntimeOptions, new_session
from alphacut.imageio import decode
from alphacut.models import get_spec, load_session
from alphacut.models.backends import _io_device
from alphacut.pipeline import prepare
from helpers import PHOTOS

HAS_CUDA = "CUDAExecutionProvider" in ort.get_available_providers()


def photo_tensor() -> np.ndarray:
    return prepare(decode(PHOTOS / "car-1.jpg").image, get_spec("u2netp"))


def test_explicit_accelerator_that_cannot_load_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    if HAS_CUDA:
        pytest.skip("this machine really has CUDA")
    with pytest.raises(ProviderUnavailable, match="CUDAExecutionProvider"):
        new_session("u2netp", providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setenv("ALPHACUT_PROVIDERS", "cuda,cpu")
    with pytest.raises(ProviderUnavailable):
        load_session("u2netp")


def test_the_provider_in_use_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="alphacut.models"):
        session = load_session("u2netp", runtime=RuntimeOptions(backend="onnxruntime"))
    assert session.providers[-1] == "CPUExecutionProvider"
    assert "CPUExecutionProvider" in caplog.text


def test_io_binding_path_gives_the_same_output() -> None:
    """The IO-binding code that CUDA uses, run for real with host buffers."""
    session = load_session("u2netp", runtime=RuntimeOptions(backend="onnxruntime"))
    runner = session._runner
    tensor = photo_tensor()
    plain = session.run(tensor)
    bound = runner._run_bound(tensor, 0, "cpu")  # type: ignore[union-attr]
    assert np.array_equal(bound[:, 0], plain)


def test_io_binding_is_chosen_for_cuda_providers_only() -> None:
    assert _io_device(("CUDAExecutionProvider", "CPUExecutionProvider")) == "cuda"
    assert (
        _io_device(("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"))
        == "cuda"
    )
    assert _io_device(("CPUExecutionProvider",)) is None
    assert _io_device(("OpenVINO-CPU",)) is None


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU and onnxruntime-gpu")
def test_cpu_and_gpu_masks_agree() -> None:
    from alphacut.pipeline import saliency_to_mask

    spec = get_spec("u2netp")
    cpu = load_session("u2netp", runtime=RuntimeOptions(providers=("CPUExecutionProvider",)))
    gpu = load_session("u2netp", runtime=RuntimeOptions(providers=("CUDAExecutionProvider",)))
    assert gpu.providers[0] == "CUDAExecutionProvider"
    for name in ("car-1.jpg", "horse.jpg", "bike.jpg"):
        image = decode(PHOTOS / name).image
        tensor = prepare(image, spec)
        a = np.asarray(saliency_to_mask(cpu.run(tensor)[0], spec, image.size), dtype=int)
        b = np.asarray(saliency_to_mask(gpu.run(tensor)[0], spec, image.size), dtype=int)
        assert np.abs(a - b).max() <= 2, name


def test_automatic_accelerator_that_fails_to_start_is_a_loud_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """onnxruntime-gpu lists CUDA even when its libraries are missing, then quietly runs on the
    CPU; here onnxruntime is told CUDA exists (no GPU can run here), and the real session then
    starts on the CPU, as it would on such a machine."""
    from alphacut.models import backends

    real = backends._choose_providers
    monkeypatch.setattr(
        backends,
        "_choose_providers",
        lambda requested, available: real(requested, [*available, "CUDAExecutionProvider"]),
    )
    if HAS_CUDA:
        pytest.skip("this machine really has CUDA")
    with (
        caplog.at_level(logging.WARNING, logger="alphacut.models"),
        pytest.warns(UserWarning, match="not in available provider"),  # onnxruntime's own note
    ):
        session = load_session("u2netp", runtime=RuntimeOptions(backend="onnxruntime"))
    assert session.providers == ("CPUExecutionProvider",)
    assert "CUDAExecutionProvider is installed but could not start" in caplog.text
