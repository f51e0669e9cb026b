"""Graph work for the model tools: loading, opset upgrade, channel equalisation, the head.

Everything here reads or rewrites ONNX graphs and keeps the float function unchanged;
`quantize` decides what to do with them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._extras import require
from ..errors import InvalidModel
from ..models.blocked_layout import node_attribute

__all__ = [
    "consumer_map",
    "equalize_channels",
    "head_nodes",
    "load_onnx",
    "model_input_name",
    "ort_session",
    "plain_conv",
    "prepare_float_model",
    "require_onnx",
]

log = logging.getLogger("alphacut.models")

_MIN_OPSET = 13
# Ops that scale each channel independently and commute with a positive per-channel
# factor: a channel scaled by s before them comes out scaled by s.
_HOMOGENEOUS = frozenset({"Relu", "MaxPool", "Resize", "Concat"})


def require_onnx() -> Any:
    return require("onnx", "this tool")


def load_onnx(path: Path) -> Any:
    onnx = require_onnx()
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:  # protobuf DecodeError, ValidationError, OSError...
        raise InvalidModel(f"{path} is not a readable ONNX model: {exc}") from exc
    if len(model.graph.node) == 0:
        raise InvalidModel(f"{path} is not a readable ONNX model: its graph is empty")
    return model


def prepare_float_model(source: Path, workdir: Path) -> Path:
    """`source` upgraded to opset 13 when older, then ONNX Runtime's quantisation
    pre-processing; returns the new file in `workdir`."""
    onnx = require_onnx()
    from onnx import version_converter
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model = load_onnx(source)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < _MIN_OPSET:
        try:
            model = version_converter.convert_version(model, _MIN_OPSET)
        except Exception as exc:
            raise InvalidModel(f"{source}: cannot convert opset {opset} to 13: {exc}") from exc
        log.info("converted %s from opset %d to %d", source.name, opset, _MIN_OPSET)
    upgraded, cleaned = workdir / "opset.onnx", workdir / "float.onnx"
    onnx.save(model, str(upgraded))
    # The input shape is static, so ONNX's own shape inference suffices; the symbolic one
    # would need sympy.
    quant_pre_process(str(upgraded), str(cleaned), skip_symbolic_shape=True)
    return cleaned


def ort_session(model: Any, extra_outputs: Sequence[str] = (), *, plain: bool = False) -> Any:
    """An ONNX Runtime CPU session on an in-memory model, with `extra_outputs` exposed.
    plain: no graph optimisation, so QDQ pairs run as written (for inspecting tensors)."""
    import onnxruntime as ort

    onnx = require_onnx()
    if extra_outputs:
        model = onnx.ModelProto.FromString(model.SerializeToString())
        present = {o.name for o in model.graph.output}
        for name in dict.fromkeys(extra_outputs):
            if name not in present:
                model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if plain:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def consumer_map(graph: Any) -> dict[str, list[tuple[Any, int]]]:
    found: dict[str, list[tuple[Any, int]]] = {}
    for node in graph.node:
        for index, name in enumerate(node.input):
            found.setdefault(name, []).append((node, index))
    return found


def plain_conv(node: Any) -> bool:
    return bool(node.op_type == "Conv" and node_attribute(node, "group", 1) == 1)


def _equalisation_groups(model: Any) -> list[tuple[Any, str, list[tuple[Any, int]]]]:
    """(producer conv, its Relu output, [(consumer conv, channel offset)]) for every conv
    whose channels reach only other convs, through Relu first and then MaxPool, linear
    Resize and Concat (on channels). Scaling such a channel is exact in float."""
    onnx = require_onnx()
    inferred = onnx.shape_inference.infer_shapes(model)
    channels = {
        info.name: info.type.tensor_type.shape.dim[1].dim_value
        for info in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]
        if len(info.type.tensor_type.shape.dim) == 4
    }
    consumers = consumer_map(model.graph)
    outputs = {o.name for o in model.graph.output}
    groups = []
    for conv in model.graph.node:
        if not plain_conv(conv) or len(conv.input) < 3:
            continue
        first = consumers.get(conv.output[0], [])
        if len(first) != 1 or first[0][0].op_type != "Relu" or conv.output[0] in outputs:
            continue
        relu_output = first[0][0].output[0]
        absorbers: list[tuple[Any, int]] = []
        stack, ok = [(relu_output, 0)], True
        while stack and ok:
            tensor, offset = stack.pop()
            ok = tensor not in outputs and bool(consumers.get(tensor))
            for node, index in consumers.get(tensor, []):
                if node.op_type == "Conv" and index == 0 and plain_conv(node):
                    absorbers.append((node, offset))
                elif node.op_type == "Concat" and node_attribute(node, "axis") == 1:
                    before = [channels.get(name, -1) for name in node.input[:index]]
                    ok = ok and min(before, default=0) >= 0
                    stack.append((node.output[0], offset + sum(before)))
                elif node.op_type in _HOMOGENEOUS and node.op_type != "Relu" and index == 0:
                    mode = node_attribute(node, "mode", b"nearest")
                    ok = ok and (node.op_type != "Resize" or mode in (b"linear", b"nearest"))
                    stack.append((node.output[0], offset))
                else:
                    ok = False
        if ok and absorbers:
            groups.append((conv, relu_output, absorbers))
    return groups


def equalize_channels(
    model: Any, tensors: Sequence[np.ndarray], input_name: str
) -> tuple[Any, int]:
    """A float-equivalent copy of `model` with channel ranges balanced, and how many convs
    were rescaled. For each channel c of a producer conv, with activation maximum a_c over
    `tensors` and largest consumer weight w_c, the producer's row is divided and the
    consumers' columns multiplied by s_c = sqrt(a_c / w_c), so both become sqrt(a_c * w_c)."""
    onnx = require_onnx()
    from onnx import numpy_helper

    model = onnx.ModelProto.FromString(model.SerializeToString())
    groups = _equalisation_groups(model)
    if not groups:
        return model, 0
    session = ort_session(model, [relu for _, relu, _ in groups])
    names = [o.name for o in session.get_outputs()]
    peaks: dict[str, np.ndarray] = {}
    for tensor in tensors:
        for name, value in zip(names, session.run(None, {input_name: tensor}), strict=True):
            if value.ndim == 4:
                peak = value.max(axis=(0, 2, 3))
                peaks[name] = np.maximum(peaks.get(name, peak), peak)
    initializers = {t.name: t for t in model.graph.initializer}
    arrays = {name: numpy_helper.to_array(t).copy() for name, t in initializers.items()}
    for conv, relu_output, absorbers in groups:
        weight, bias = arrays[conv.input[1]], arrays[conv.input[2]]
        count = weight.shape[0]
        column_peak = np.zeros(count, dtype=np.float64)
        for consumer, offset in absorbers:
            block = arrays[consumer.input[1]][:, offset : offset + count]
            column_peak = np.maximum(column_peak, np.abs(block).max(axis=(0, 2, 3)))
        activation_peak = peaks[relu_output].astype(np.float64)
        scale = np.ones(count, dtype=np.float64)
        usable = (activation_peak > 1e-6) & (column_peak > 1e-6)
        scale[usable] = np.sqrt(activation_peak[usable] / column_peak[usable])
        weight /= scale[:, None, None, None].astype(weight.dtype)
        bias /= scale.astype(bias.dtype)
        for consumer, offset in absorbers:
            block = arrays[consumer.input[1]][:, offset : offset + count]
            block *= scale[None, :, None, None].astype(block.dtype)
    for name, tensor in initializers.items():
        tensor.CopyFrom(numpy_helper.from_array(arrays[name], name))
    return model, len(groups)


def head_nodes(model: Any) -> list[str]:
    """Every Conv with a single output channel and every node downstream of one: in the
    U²-Net family, the side outputs, their upsampling, the fusing conv and the sigmoids."""
    out_channels = {t.name: (list(t.dims) or [0])[0] for t in model.graph.initializer}
    consumers = consumer_map(model.graph)
    stack = [
        n
        for n in model.graph.node
        if n.op_type == "Conv" and len(n.input) > 1 and out_channels.get(n.input[1]) == 1
    ]
    seen: dict[str, None] = {}
    while stack:
        node = stack.pop()
        if node.name in seen:
            continue
        seen[node.name] = None
        for output in node.output:
            stack.extend(consumer for consumer, _ in consumers.get(output, []))
    order = {n.name: i for i, n in enumerate(model.graph.node)}
    return sorted(seen, key=order.__getitem__)


def model_input_name(path: Path) -> str:
    onnx = require_onnx()
    model = onnx.load(str(path), load_external_data=False)
    initializers = {t.name for t in model.graph.initializer}
    return str(next(i.name for i in model.graph.input if i.name not in initializers))
