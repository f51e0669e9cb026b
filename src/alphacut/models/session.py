"""One generic ONNX Runtime session for every registered or custom model."""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InferenceError, InvalidModel, ModelNotFound, OptionsError, ProviderUnavailable
from ..options import RuntimeOptions
from .registry import DEFAULT_MODEL, IMAGENET_MEAN, IMAGENET_STD, ModelSpec, get_spec
from .store import ProgressCallback, ensure_model

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["Session", "custom_spec", "load_session"]

log = logging.getLogger("alphacut.models")

_CPU = "CPUExecutionProvider"
_AUTO_ORDER = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "CoreMLExecutionProvider",
    "DmlExecutionProvider",
)


class Session:
    """A loaded model: `run` takes a prepared NCHW float32 batch and returns the saliency map.

    Thread-safe: ONNX Runtime allows concurrent `run` calls on one session.
    """

    def __init__(self, spec: ModelSpec, path: Path, runtime: RuntimeOptions | None = None) -> None:
        import onnxruntime as ort

        self.spec = spec
        self.path = path
        self.runtime = runtime or RuntimeOptions()
        requested = self.runtime.resolved_providers()
        providers = _choose_providers(requested, ort.get_available_providers())
        options = ort.SessionOptions()
        options.graph_optimization_level = {
            "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[self.runtime.graph_optimization]
        if self.runtime.intra_op_threads:
            options.intra_op_num_threads = self.runtime.intra_op_threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        started = time.perf_counter()
        try:
            self._session = ort.InferenceSession(
                str(path), sess_options=options, providers=list(providers)
            )
        except Exception as exc:  # ONNX Runtime raises its own untyped exception classes
            if not path.exists():
                raise ModelNotFound(f"model file not found: {path}") from exc
            raise InvalidModel(f"{path} is not a readable ONNX model: {exc}") from exc
        self.load_seconds = time.perf_counter() - started
        self.providers: tuple[str, ...] = tuple(self._session.get_providers())
        _check_providers(requested, self.providers)
        inputs = self._session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            raise InvalidModel(
                f"{path}: expected one NCHW image input, found {[i.shape for i in inputs]}"
            )
        outputs = self._session.get_outputs()
        if spec.output_index >= len(outputs):
            raise InvalidModel(
                f"{path}: has {len(outputs)} outputs, spec wants #{spec.output_index}"
            )
        self.input_name: str = inputs[0].name
        self._output_name: str = outputs[spec.output_index].name
        log.info(
            "loaded %s from %s in %.2fs on %s",
            spec.name,
            path,
            self.load_seconds,
            ", ".join(self.providers),
        )

    @property
    def model_name(self) -> str:
        return self.spec.name

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Run the model on an NCHW float32 batch; returns its saliency output, shape (N, H, W)."""
        try:
            (output,) = self._session.run([self._output_name], {self.input_name: batch})
        except Exception as exc:
            raise InferenceError(f"{self.spec.name} failed on input {batch.shape}: {exc}") from exc
        result = np.asarray(output)
        return result[:, 0, :, :] if result.ndim == 4 else result

    def predict(self, img: Image.Image, *args: Any, **kwargs: Any) -> list[Image.Image]:
        """rembg-compatible: the mask for `img` at its own size, in a one-element list."""
        from ..pipeline.predict import predict_mask

        return [predict_mask(self, img)]

    def __repr__(self) -> str:
        return f"<alphacut.Session {self.spec.name} on {','.join(self.providers)}>"


def _choose_providers(requested: tuple[str, ...] | None, available: list[str]) -> tuple[str, ...]:
    if requested:
        missing = [p for p in requested if p not in available]
        if missing:
            raise ProviderUnavailable(
                f"execution provider(s) {', '.join(missing)} requested but this onnxruntime build "
                f"offers only {', '.join(available)} (for CUDA install alphacut[gpu])"
            )
        return requested if _CPU in requested else (*requested, _CPU)
    best = [p for p in _AUTO_ORDER if p in available and p != "TensorrtExecutionProvider"]
    return (*best[:1], _CPU)


def _check_providers(requested: tuple[str, ...] | None, active: tuple[str, ...]) -> None:
    wanted = [p for p in (requested or ()) if p != _CPU]
    failed = [p for p in wanted if p not in active]
    if failed:
        raise ProviderUnavailable(
            f"{', '.join(failed)} was requested but could not be loaded (missing CUDA/cuDNN "
            f"libraries or a driver mismatch); active providers: {', '.join(active)}"
        )
    if requested is None and active[:1] == (_CPU,) and len(active) == 1:
        log.info("running on CPU (no accelerator provider available)")


def custom_spec(
    path: Path,
    *,
    input_size: tuple[int, int] | None = None,
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
    sigmoid: bool = False,
) -> ModelSpec:
    """A spec for an ONNX file that is not in the registry. `input_size` is (width, height);
    when None it is read from the model's input shape, which must then be static."""
    if input_size is None:
        input_size = _static_input_size(path)
    return ModelSpec(
        name=path.stem,
        file_name=path.name,
        checksum=None,
        input_size=input_size,
        mean=mean,
        std=std,
        license="unknown (custom file)",
        description=f"custom model from {path}",
        sigmoid=sigmoid,
    )


def _static_input_size(path: Path) -> tuple[int, int]:
    import onnxruntime as ort

    if not path.is_file():
        raise ModelNotFound(f"model file not found: {path}")
    try:
        probe = ort.InferenceSession(str(path), providers=[_CPU])
    except Exception as exc:
        raise InvalidModel(f"{path} is not a readable ONNX model: {exc}") from exc
    shape = probe.get_inputs()[0].shape
    if len(shape) == 4 and isinstance(shape[2], int) and isinstance(shape[3], int):
        return (shape[3], shape[2])
    raise OptionsError(f"{path}: input shape {shape} is dynamic; pass input_size=(width, height)")


_CUSTOM_ALIASES = {"u2net_custom": "u2net", "dis_custom": "isnet-general-use"}


def load_session(
    model: str | ModelSpec | None = None,
    *,
    model_path: str | Path | None = None,
    runtime: RuntimeOptions | None = None,
    download: bool = True,
    progress: ProgressCallback | None = None,
) -> Session:
    """Make a ready `Session`.

    model: a registered name (fetched and verified when missing), a `ModelSpec`, or None
    for the default model. With `model_path`, that ONNX file is loaded instead: a named
    model lends its preprocessing (rembg's "u2net_custom" and "dis_custom" work too), and
    with no name the input size is read from the file.
    """
    if model_path is not None:
        path = Path(model_path).expanduser()
        if isinstance(model, ModelSpec):
            spec = model
        elif model is None:
            spec = custom_spec(path)
        else:
            base = get_spec(_CUSTOM_ALIASES.get(model, model))
            spec = dataclasses.replace(
                base,
                name=path.stem,
                file_name=path.name,
                checksum=None,
                urls=(),
                pypi=None,
                license="unknown (custom file)",
                description=f"custom model from {path}",
            )
        return Session(spec, path, runtime)
    spec = model if isinstance(model, ModelSpec) else get_spec(model or DEFAULT_MODEL)
    return Session(spec, ensure_model(spec, download=download, progress=progress), runtime)
