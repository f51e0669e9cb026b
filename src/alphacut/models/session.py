"""One generic ONNX Runtime session for every registered or custom model."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import InferenceError, InvalidModel, ModelNotFound, OptionsError
from ..options import RemoveOptions, RuntimeOptions
from .backends import OnnxRuntimeRunner, OpenVINORunner, Runner, choose_backend
from .registry import IMAGENET_MEAN, IMAGENET_STD, ModelSpec

__all__ = ["Session", "custom_spec"]

log = logging.getLogger("alphacut.models")

_CPU = "CPUExecutionProvider"  # what custom-model probing always runs on


class Session:
    """A loaded model: `run` takes a prepared NCHW float32 batch and returns the saliency map.

    Thread-safe: several threads may call `run` at once.
    """

    def __init__(self, spec: ModelSpec, path: Path, runtime: RuntimeOptions | None = None) -> None:
        self.spec = spec
        self.path = path
        self.runtime = runtime or RuntimeOptions()
        self.backend = choose_backend(self.runtime)
        started = time.perf_counter()
        runner: Runner
        if self.backend == "openvino":
            runner = OpenVINORunner(path, self.runtime)
        else:
            runner = OnnxRuntimeRunner(path, self.runtime)
        self._runner = runner
        self.load_seconds = time.perf_counter() - started
        self.providers: tuple[str, ...] = runner.providers
        shapes = runner.input_shapes
        # Models of other inputs than one NCHW image (SAM, RVM): their own classes check them.
        if spec.traits.image_input and (len(shapes) != 1 or len(shapes[0]) != 4):
            raise InvalidModel(f"{path}: expected one NCHW image input, found {shapes}")
        if spec.output_index >= runner.output_count:
            raise InvalidModel(
                f"{path}: has {runner.output_count} outputs, spec wants #{spec.output_index}"
            )
        log.info(
            "loaded %s from %s in %.2fs on %s",
            spec.name,
            path,
            self.load_seconds,
            ", ".join(self.providers),
        )

    @property
    def description(self) -> str:
        """One line naming the model, the precision of the graph really loaded (not what was
        asked for) and the runtime, e.g. for --fast."""
        precision = "INT8" if self.quantized else "FP32"
        runtime = "OpenVINO" if self.backend == "openvino" else "ONNX Runtime"
        return f"{self.spec.name} {precision} on {runtime} ({', '.join(self.providers)})"

    @property
    def quantized(self) -> bool:
        """Whether the loaded graph is an INT8 copy made by alphacut (its metadata says so)."""
        return any(k.startswith("alphacut.quantization.") for k in self._runner.metadata_keys)

    def own_masks(self, image: Image.Image, options: RemoveOptions) -> list[Image.Image] | None:
        """The masks of a model that makes them its own way (from prompts, or with state
        from the frames before); None for one whose prepared input and output the pipeline
        handles."""
        return None

    @property
    def batches(self) -> bool:
        """Whether a dynamic-batch copy of this model runs several images per call, with
        masks identical to one at a time's."""
        return self.spec.traits.batches

    @property
    def stateful(self) -> bool:
        """Whether the model carries state from frame to frame (a video's frames then go
        through it one at a time, in order)."""
        return self.spec.traits.stateful

    @property
    def model_name(self) -> str:
        return self.spec.name

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Run the model on an NCHW float32 batch; returns its saliency output, shape (N, H, W)
        (for a clothes model, the class of each pixel)."""
        try:
            result = self._runner.run(batch, self.spec.output_index)
        except Exception as exc:
            raise InferenceError(f"{self.spec.name} failed on input {batch.shape}: {exc}") from exc
        if self.spec.traits.labels:
            return np.asarray(np.argmax(result, axis=1))
        return result[:, 0, :, :] if result.ndim == 4 else result

    def __repr__(self) -> str:
        return f"<alphacut.Session {self.spec.name} on {','.join(self.providers)}>"


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
