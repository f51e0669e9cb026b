"""The runtimes that execute a model: ONNX Runtime (any provider) and OpenVINO (CPU).

Both take the same prepared float32 batch and return the same output, to within
a few millionths; `Session` picks one and validates what it loaded.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .._system import cache_home, int8_dot_product, usable_cores
from ..errors import (
    InvalidModel,
    MissingDependency,
    ModelNotFound,
    ProviderUnavailable,
)
from ..options import RuntimeOptions
from .optimized import open_session

__all__ = ["OnnxRuntimeRunner", "OpenVINORunner", "Runner", "check_providers", "choose_backend"]

log = logging.getLogger("alphacut.models")

_CPU = "CPUExecutionProvider"
_AUTO_ORDER = ("CUDAExecutionProvider", "CoreMLExecutionProvider", "DmlExecutionProvider")


class Runner(Protocol):
    providers: tuple[str, ...]
    input_shapes: list[list[Any]]
    output_count: int
    #: The keys of the model file's metadata (ONNX metadata_props), as loaded.
    metadata_keys: frozenset[str]

    def run(self, batch: np.ndarray, output_index: int) -> np.ndarray: ...


def choose_backend(runtime: RuntimeOptions) -> str:
    """ "onnxruntime" (the default) or "openvino", as the options say.

    OpenVINO is opt-in: it is 15-20% faster on x86 CPUs and its masks stay within ±2 of
    rembg's, but they are not bit-identical, and on one reference photo in 23 that is
    enough to flip the perceptual hash. ONNX Runtime reproduces rembg exactly.
    """
    if runtime.backend is not None:
        return runtime.backend  # checked when the options were made
    if runtime.fast and not runtime.providers:
        return _fast_backend()
    return "onnxruntime"


def _fast_backend() -> str:
    """OpenVINO where its INT8 kernels pay (x86 with VNNI or AMX: 1.3-2x ONNX Runtime's INT8);
    ONNX Runtime elsewhere, where OpenVINO's INT8 is both slower and wrong (see
    `int8_dot_product`)."""
    if not _installed("openvino"):
        return "onnxruntime"
    if not int8_dot_product():
        log.info(
            "fast path: this CPU has no 8-bit dot-product instructions (VNNI, AMX), where "
            "OpenVINO's INT8 is slow and inaccurate; using ONNX Runtime's INT8"
        )
        return "onnxruntime"
    return "openvino"


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


class OnnxRuntimeRunner:
    def __init__(self, path: Path, runtime: RuntimeOptions) -> None:
        import onnxruntime as ort

        requested = runtime.providers
        available = ort.get_available_providers()
        providers = _choose_providers(requested, available)
        level = {
            "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[runtime.graph_optimization]

        def make_options(optimize: bool) -> Any:
            options = ort.SessionOptions()
            options.graph_optimization_level = (
                level if optimize else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            )
            if runtime.intra_op_threads:
                options.intra_op_num_threads = runtime.intra_op_threads
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            return options

        try:
            self._session, self.optimized_copy = open_session(
                path,
                providers,
                make_options,
                reuse=runtime.reuse_optimized_model and runtime.graph_optimization == "all",
            )
        except Exception as exc:  # ONNX Runtime raises its own untyped exception classes
            raise _load_error(path, exc) from exc
        self.providers = tuple(self._session.get_providers())
        _check_providers(requested, self.providers)
        _log_preference(requested, available, self.providers[0])
        lost = [p for p in providers if p != _CPU and p not in self.providers]
        if lost:
            log.warning(
                "%s is installed but could not start (missing CUDA/cuDNN libraries or driver?); "
                "running on the CPU instead, which is much slower",
                ", ".join(lost),
            )
        self._input = self._session.get_inputs()[0].name
        self.input_shapes = [list(i.shape) for i in self._session.get_inputs()]
        self.input_names = [i.name for i in self._session.get_inputs()]
        self._outputs = [o.name for o in self._session.get_outputs()]
        self.output_count = len(self._outputs)
        self.metadata_keys = frozenset(self._session.get_modelmeta().custom_metadata_map)
        self.io_device = _io_device(self.providers)
        log.info(
            "ONNX Runtime runs on %s%s",
            ", ".join(self.providers),
            f" (optimised graph reused from {self.optimized_copy})" if self.optimized_copy else "",
        )

    def run_feeds(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Every output for named inputs: for models that take more than one image."""
        return [np.asarray(o) for o in self._session.run(None, feeds)]

    def run(self, batch: np.ndarray, output_index: int) -> np.ndarray:
        if self.io_device is not None:
            return self._run_bound(batch, output_index, self.io_device)
        (output,) = self._session.run([self._outputs[output_index]], {self._input: batch})
        return np.asarray(output)

    def _run_bound(self, batch: np.ndarray, output_index: int, device: str) -> np.ndarray:
        """IO binding: the input is copied to the device once, the output is allocated there
        and only the one output the pipeline needs comes back to the host."""
        import onnxruntime as ort

        binding = self._session.io_binding()
        binding.bind_ortvalue_input(self._input, ort.OrtValue.ortvalue_from_numpy(batch, device, 0))
        binding.bind_output(self._outputs[output_index], device)
        self._session.run_with_iobinding(binding)
        return np.asarray(binding.copy_outputs_to_cpu()[0])


class OpenVINORunner:
    """OpenVINO's CPU runtime, at full float32 precision (never bf16), for parity."""

    def __init__(self, path: Path, runtime: RuntimeOptions) -> None:
        try:
            import openvino as ov
        except ImportError as exc:
            raise MissingDependency(
                "the openvino backend needs: pip install 'alphacut[openvino]'"
            ) from exc
        cores = usable_cores()
        threads = min(runtime.intra_op_threads or cores, cores)
        # Callers that run several images at once give each a share of the cores; one
        # OpenVINO stream per share lets those requests really run side by side.
        streams = max(1, cores // threads)
        config = {
            "INFERENCE_PRECISION_HINT": "f32",
            "NUM_STREAMS": str(streams),
            "INFERENCE_NUM_THREADS": str(threads * streams),
            "ENABLE_CPU_PINNING": runtime.pin_threads,
            # OpenVINO keeps the compiled model, keyed by model, settings and CPU, so the
            # next start skips the compile (1.2 s for u2netp's INT8 graph here, 0.1 s after).
            "CACHE_DIR": str(cache_home() / "openvino"),
        }
        try:
            core = ov.Core()
            model = core.read_model(str(path))
            self._compiled = core.compile_model(model, "CPU", config)
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses of its own
            raise _load_error(path, exc) from exc
        self.providers: tuple[str, ...] = ("OpenVINO-CPU",)
        self.input_shapes = [
            list(i.get_partial_shape().to_shape())
            if i.get_partial_shape().is_static
            else [str(d) for d in i.get_partial_shape()]
            for i in self._compiled.inputs
        ]
        self.output_count = len(self._compiled.outputs)
        # OpenVINO's ONNX reader files the metadata_props under "framework".
        info = model.get_rt_info()
        framework = info["framework"] if "framework" in info else {}  # noqa: SIM401 (no .get)
        if hasattr(framework, "astype"):  # an OVAny, depending on how it was read
            framework = framework.astype(dict)
        self.metadata_keys = frozenset(framework)
        self._local = threading.local()

    def run(self, batch: np.ndarray, output_index: int) -> np.ndarray:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self._compiled.create_infer_request()
        result = request.infer({0: batch})
        # The request reuses its buffers on the next call, so hand out a copy.
        return np.array(result[self._compiled.output(output_index)])


def _io_device(providers: tuple[str, ...]) -> str | None:
    """The device to bind buffers on: CUDA (also under TensorRT) when it leads; else none."""
    if providers and providers[0] in ("CUDAExecutionProvider", "TensorrtExecutionProvider"):
        return "cuda"
    return None


def _load_error(path: Path, exc: Exception) -> Exception:
    if not path.exists():
        return ModelNotFound(f"model file not found: {path}")
    return InvalidModel(f"{path} is not a readable ONNX model: {exc}")


def check_providers(runtime: RuntimeOptions) -> None:
    """Fail now, with ProviderUnavailable, when the execution providers `runtime` asks for
    cannot run with this onnxruntime build (see `_choose_providers` for the rule), before
    any model is fetched or loaded. Asks onnxruntime only what it offers, which is cheap;
    nothing to check for OpenVINO or when no provider is named."""
    requested = runtime.providers
    if not requested or choose_backend(runtime) != "onnxruntime":
        return
    import onnxruntime as ort

    _choose_providers(requested, ort.get_available_providers())


def _choose_providers(requested: tuple[str, ...] | None, available: list[str]) -> tuple[str, ...]:
    """The providers to open a session with, the CPU last (for the operators an accelerator
    lacks).

    None: the best accelerator this build offers (CUDA, CoreML, DirectML), if any.
    One provider named alone: that one, which this build must offer (ProviderUnavailable).
    Two or more: a preference list; those this build offers, in the order given, so the
    first of them runs. ProviderUnavailable when it offers none of them.
    """
    if not requested:
        best = [p for p in _AUTO_ORDER if p in available]
        return (*best[:1], _CPU)
    wanted = tuple(dict.fromkeys(requested))
    usable = [p for p in wanted if p in available]
    if not usable:
        hint = "; to fall back to the CPU, list it second: cuda,cpu" if len(wanted) == 1 else ""
        raise ProviderUnavailable(
            f"execution provider(s) {', '.join(wanted)} requested but this onnxruntime build "
            f"offers only {', '.join(available)} (for CUDA install alphacut[gpu]{hint})"
        )
    return tuple(usable) if _CPU in usable else (*usable, _CPU)


def _check_providers(requested: tuple[str, ...] | None, active: tuple[str, ...]) -> None:
    """After loading: a provider named alone must have started (onnxruntime quietly falls
    back to the CPU when, say, the CUDA libraries are missing); of a preference list, at
    least one must have."""
    wanted = tuple(dict.fromkeys(requested or ()))
    if len(wanted) > 1:
        if not any(p in active for p in wanted):
            raise ProviderUnavailable(
                f"none of the execution providers {', '.join(wanted)} could be loaded (missing "
                f"CUDA/cuDNN libraries or a driver mismatch?); active providers: "
                f"{', '.join(active)}"
            )
        return
    failed = [p for p in wanted if p != _CPU and p not in active]
    if failed:
        raise ProviderUnavailable(
            f"{', '.join(failed)} was requested but could not be loaded (missing CUDA/cuDNN "
            f"libraries or a driver mismatch); active providers: {', '.join(active)}"
        )


def _log_preference(requested: tuple[str, ...] | None, available: list[str], runs: str) -> None:
    """For a preference list, which provider runs and which of those listed were unavailable."""
    wanted = tuple(dict.fromkeys(requested or ()))
    if len(wanted) < 2:
        return
    missing = [p for p in wanted if p not in available]
    log.info(
        "execution providers in order of preference: %s; running on %s%s",
        ", ".join(wanted),
        runs,
        f" ({', '.join(missing)} not offered by this onnxruntime build)" if missing else "",
    )
