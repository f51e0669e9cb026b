"""Export a model to ONNX Runtime's mobile format (.ort), for phones and edge devices."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InferenceError, InvalidModel
from ..models.session import Session, custom_spec
from ..options import RuntimeOptions

__all__ = ["ExportReport", "export_ort"]


@dataclass(frozen=True)
class ExportReport:
    source_bytes: int
    output_bytes: int
    max_abs_difference: float


def export_ort(source: Path, target: Path) -> ExportReport:
    """Convert `source` (.onnx, FP32 or INT8) to `target` (.ort) with ONNX Runtime's own
    converter, then check the .ort file runs and reproduces the source's output."""
    with tempfile.TemporaryDirectory(prefix="alphacut-ort-") as folder:
        staged = Path(folder) / (target.stem + ".onnx")
        shutil.copyfile(source, staged)
        command = [
            sys.executable,
            "-m",
            "onnxruntime.tools.convert_onnx_models_to_ort",
            str(staged),
            "--output_dir",
            str(Path(folder) / "out"),
            "--optimization_style",
            "Fixed",
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        produced = Path(folder) / "out" / (target.stem + ".ort")
        if done.returncode != 0 or not produced.exists():
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise InvalidModel(f"ONNX Runtime could not convert {source}: {' '.join(tail)}")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(produced), target)
    spec = custom_spec(source)
    runtime = RuntimeOptions(backend="onnxruntime")
    width, height = spec.input_size
    probe = np.random.default_rng(0).standard_normal((1, 3, height, width)).astype(np.float32)
    difference = float(
        np.abs(
            Session(spec, source, runtime).run(probe) - Session(spec, target, runtime).run(probe)
        ).max()
    )
    if difference > _tolerance(source):
        target.unlink()
        raise InferenceError(
            f"the .ort export differs from {source} by {difference:.2e}; removed it"
        )
    return ExportReport(source.stat().st_size, target.stat().st_size, difference)


_QUANTIZED_OPS = frozenset({"QuantizeLinear", "DequantizeLinear", "QLinearConv"})


def _tolerance(source: Path) -> float:
    """How far the .ort output may stray from the source's on the probe. Float models must
    agree to 1e-3. In INT8 ones the converter may fuse Q/DQ pairs differently from a live
    session, and a requantisation rounded the other way moves the mask by up to a grey
    level, so two grey levels of the 8-bit mask are allowed; three on a CPU without an 8-bit
    dot product, whose 7-bit kernels round differently again (measured 2.3 levels on an
    AVX2-only AMD EPYC)."""
    from .._system import int8_dot_product
    from .quantize_graph import require_onnx

    model = require_onnx().load(str(source), load_external_data=False)
    if any(node.op_type in _QUANTIZED_OPS for node in model.graph.node):
        return (2 if int8_dot_product() else 3) / 255
    return 1e-3
