"""Rewrite a model so its batch dimension is dynamic, and prove it computes the same.

rembg's ONNX files declare a batch of exactly 1. The U²-Net family computes its
resize targets from `Shape` at run time, so declaring the first dimension of the
inputs and outputs symbolic is all it takes; `verify` then runs the rewritten
model on a batch and the original on each image alone and compares.
"""

from __future__ import annotations

import datetime
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import InferenceError, InvalidModel
from ..imagefile import atomic_write_bytes
from ..models.session import Session, custom_spec
from ..options import RuntimeOptions
from ..pipeline.mask import saliency_to_mask
from .quantize_graph import require_onnx

__all__ = ["BatchCheck", "batched_session", "make_batch_dynamic", "verify_dynamic_batch"]

BATCH_DIM = "batch"


@dataclass(frozen=True)
class BatchCheck:
    """How the batched model compared with the original, image by image."""

    batch_size: int
    max_abs_difference: float
    identical_masks: bool


def make_batch_dynamic(source: Path, target: Path) -> None:
    """Write a copy of `source` whose inputs and outputs take any batch size."""
    onnx = require_onnx()
    try:
        model = onnx.load(str(source))
    except Exception as exc:  # protobuf decode errors have no common base class
        raise InvalidModel(f"{source} is not a readable ONNX model: {exc}") from exc
    for value in [*model.graph.input, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if len(dims) == 0:
            raise InvalidModel(f"{source}: {value.name} has no shape to make dynamic")
        dims[0].Clear()
        dims[0].dim_param = BATCH_DIM
    # Intermediate shapes recorded for batch 1 would now be wrong; let runtimes infer them.
    del model.graph.value_info[:]
    onnx.checker.check_model(model)
    digest = hashlib.md5(source.read_bytes()).hexdigest()
    for key, value in {
        "alphacut.derived_from": source.name,
        "alphacut.derived_from_md5": digest,
        "alphacut.transform": "dynamic batch dimension",
        "alphacut.version": __version__,
        "alphacut.created": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
    }.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    atomic_write_bytes(target, model.SerializeToString())


def verify_dynamic_batch(original: Path, batched: Path, tensors: list[np.ndarray]) -> BatchCheck:
    """Run `tensors` (each 1xCxHxW) one by one through `original` and as one batch through
    `batched`; compare raw outputs and the resulting 8-bit masks."""
    spec = custom_spec(original)
    runtime = RuntimeOptions(backend="onnxruntime")
    single = Session(spec, original, runtime)
    together = Session(spec, batched, runtime)
    alone = np.concatenate([single.run(t) for t in tensors])
    joint = together.run(np.concatenate(tensors))
    size = (alone.shape[2], alone.shape[1])
    same_masks = all(
        np.array_equal(
            np.asarray(saliency_to_mask(a, spec, size)), np.asarray(saliency_to_mask(b, spec, size))
        )
        for a, b in zip(alone, joint, strict=True)
    )
    return BatchCheck(len(tensors), float(np.abs(alone - joint).max()), same_masks)


def batched_session(session: Session, runtime: RuntimeOptions | None = None) -> Session:
    """A session on a dynamic-batch copy of `session`'s model, made once in the model cache
    and checked to give the original's masks exactly; InferenceError if it cannot.

    The copy is named after the source file's checksum, so an INT8 and an FP32 source (or
    two versions of a custom file) never share one. It is placed only once its check passed:
    a copy that fails, for any reason, is removed and never read again."""
    from ..models.store import cache_dir, file_checksum

    digest = file_checksum(session.path)[:16]
    target = cache_dir() / f"{session.path.stem}.{digest}.dynamic-batch.onnx"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        candidate = target.with_name(f".{target.name}.{os.getpid()}.partial")
        try:
            make_batch_dynamic(session.path, candidate)
            width, height = session.spec.input_size
            rng = np.random.default_rng(0)
            probes = [
                rng.standard_normal((1, 3, height, width)).astype(np.float32) for _ in range(2)
            ]
            try:
                same = verify_dynamic_batch(session.path, candidate, probes).identical_masks
            except Exception as exc:  # a runtime that cannot run the graph on a batch
                raise InferenceError(
                    f"{session.spec.name} ({'INT8' if session.quantized else 'FP32'}) cannot run "
                    f"on a batch: {exc}"
                ) from exc
            if not same:
                raise InferenceError(
                    f"{session.spec.name} cannot be batched without changing its output"
                )
            candidate.replace(target)
        finally:
            candidate.unlink(missing_ok=True)
    return Session(session.spec, target, runtime or session.runtime)
