"""Execution providers: a list is a preference, one named alone must run, failures come when
the Remover is built; loud fallbacks, IO binding, and GPU consistency."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image

from alphacut import ProviderUnavailable, Remover, RuntimeOptions, new_session
from alphacut.imagefile import decode
from alphacut.models import get_spec
from alphacut.models.backends import _io_device
from alphacut.pipeline import prepare
from alphacut.pool import load_session
from helpers import PHOTOS

HAS_CUDA = "CUDAExecutionProvider" in ort.get_available_providers()
ALPHACUT = str(Path(sys.executable).with_name("alphacut"))


def photo_tensor() -> np.ndarray:
    return prepare(decode(PHOTOS / "car-1.jpg").image, get_spec("u2netp"))


needs_no_cuda = pytest.mark.skipif(HAS_CUDA, reason="this machine really has CUDA")
CUDA_THEN_CPU = ("CUDAExecutionProvider", "CPUExecutionProvider")


@needs_no_cuda
def test_a_preference_list_runs_on_the_first_available_provider(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """cuda,cpu on a machine without CUDA: the CPU runs, the same pixels as the default,
    and the log says which provider runs and which was missing."""
    with caplog.at_level(logging.INFO, logger="alphacut.models"):
        remover = Remover("u2netp", runtime=RuntimeOptions(providers=CUDA_THEN_CPU))
        cutout = remover.remove_image(PHOTOS / "car-1.jpg")
    assert remover.session.providers == ("CPUExecutionProvider",)
    default = Remover("u2netp").remove_image(PHOTOS / "car-1.jpg")
    assert np.array_equal(np.asarray(cutout), np.asarray(default))
    assert "running on CPUExecutionProvider" in caplog.text
    assert "CUDAExecutionProvider not offered" in caplog.text


@needs_no_cuda
def test_a_preference_list_works_through_new_session_and_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    session = new_session("u2netp", providers=list(CUDA_THEN_CPU))
    assert session.providers == ("CPUExecutionProvider",)
    assert new_session("u2netp", providers="cuda,cpu").providers == ("CPUExecutionProvider",)
    monkeypatch.setenv("ALPHACUT_PROVIDERS", "cuda,cpu")
    assert load_session("u2netp").providers == ("CPUExecutionProvider",)
    assert Remover("u2netp").session.providers == ("CPUExecutionProvider",)


@needs_no_cuda
@pytest.mark.parametrize(
    "providers",
    [("CUDAExecutionProvider",), ("CUDAExecutionProvider", "DmlExecutionProvider")],
    ids=["alone", "none-available"],
)
def test_unavailable_providers_fail_when_the_remover_is_built(
    providers: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A provider named alone, or a list of which none is offered: ProviderUnavailable from
    the constructor, before any image (and before any download: bria-rmbg is not here and
    its licence was not accepted, yet the provider is what is reported)."""
    with pytest.raises(ProviderUnavailable, match="CUDAExecutionProvider"):
        Remover("u2netp", runtime=RuntimeOptions(providers=providers))
    with pytest.raises(ProviderUnavailable, match="CUDAExecutionProvider"):
        new_session("bria-rmbg", providers=list(providers))
    monkeypatch.setenv("ALPHACUT_PROVIDERS", ",".join(providers))
    with pytest.raises(ProviderUnavailable):
        Remover()
    with pytest.raises(ProviderUnavailable):
        load_session("u2netp")


@needs_no_cuda
def test_a_provider_alone_names_the_fallback_spelling() -> None:
    with pytest.raises(ProviderUnavailable, match="cuda,cpu"):
        Remover(runtime=RuntimeOptions(providers=("CUDAExecutionProvider",)))


@needs_no_cuda
def test_the_cli_takes_a_preference_list_from_the_environment(tmp_path: Path) -> None:
    env = {**os.environ, "ALPHACUT_PROVIDERS": "cuda,cpu"}
    listed = subprocess.run(
        [ALPHACUT, "remove", str(PHOTOS / "car-1.jpg"), "-o", str(tmp_path / "list.png")],
        capture_output=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    plain = Remover("u2netp").remove_image(PHOTOS / "car-1.jpg")
    with Image.open(tmp_path / "list.png") as written:
        assert np.array_equal(np.asarray(written), np.asarray(plain))


@needs_no_cuda
def test_the_cli_refuses_a_provider_alone_in_one_line(tmp_path: Path) -> None:
    target = str(tmp_path / "x.png")
    failed = subprocess.run(
        [ALPHACUT, "remove", str(PHOTOS / "car-1.jpg"), "-o", target, "--providers", "cuda"],
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert failed.returncode == 69
    lines = failed.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert "CUDAExecutionProvider" in lines[0]
    assert not (tmp_path / "x.png").exists()


@needs_no_cuda
def test_the_server_refuses_a_provider_alone_at_start_up() -> None:
    from alphacut.server import ServerSettings, create_app

    with pytest.raises(ProviderUnavailable):
        create_app(ServerSettings(runtime=RuntimeOptions(providers=("CUDAExecutionProvider",))))
    create_app(ServerSettings(runtime=RuntimeOptions(providers=CUDA_THEN_CPU)))


def test_after_loading_a_provider_alone_must_have_started_and_a_list_falls_back(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """onnxruntime-gpu lists CUDA even when its libraries are missing, then quietly runs on
    the CPU. Here onnxruntime is told CUDA exists (no GPU can run here) and the real
    session starts on the CPU, as it would on such a machine: CUDA named alone is an
    error, cuda,cpu runs on the CPU with a loud warning."""
    from alphacut.models import backends

    if HAS_CUDA:
        pytest.skip("this machine really has CUDA")
    real = backends._choose_providers
    monkeypatch.setattr(
        backends,
        "_choose_providers",
        lambda requested, available: real(requested, [*available, "CUDAExecutionProvider"]),
    )
    alone = RuntimeOptions(backend="onnxruntime", providers=("CUDAExecutionProvider",))
    with (
        pytest.raises(ProviderUnavailable, match="could not be loaded"),
        pytest.warns(UserWarning, match="not in available provider"),  # onnxruntime's own note
    ):
        load_session("u2netp", runtime=alone)
    listed = RuntimeOptions(backend="onnxruntime", providers=CUDA_THEN_CPU)
    with (
        caplog.at_level(logging.WARNING, logger="alphacut.models"),
        pytest.warns(UserWarning, match="not in available provider"),
    ):
        session = load_session("u2netp", runtime=listed)
    assert session.providers == ("CPUExecutionProvider",)
    assert "CUDAExecutionProvider is installed but could not start" in caplog.text


def test_a_list_none_of_which_started_is_an_error() -> None:
    from alphacut.models.backends import _check_providers

    with pytest.raises(ProviderUnavailable, match="none of"):
        _check_providers(
            ("CUDAExecutionProvider", "TensorrtExecutionProvider"), ("CPUExecutionProvider",)
        )
    _check_providers(CUDA_THEN_CPU, ("CPUExecutionProvider",))
    _check_providers(("CPUExecutionProvider",), ("CPUExecutionProvider",))


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
